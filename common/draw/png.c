// png.c: PNG through libpng's "simplified" API (png_image_*), which reports errors as return values instead of
// longjmp, so the code reads top to bottom. See png.h.
#include "draw/png.h"

#include <libpng16/png.h>  // libpng itself (this directory has a png.h of its own)
#include <stdlib.h>
#include <string.h>

#include "util.h"

void image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels) {
    if (width <= 0 || height <= 0 || (channels != 3 && channels != 4))
        fatal("image_write_png %s: bad image %dx%d with %d channels", path, width, height, channels);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    image.width = (png_uint_32)width;
    image.height = (png_uint_32)height;
    image.format = channels == 4 ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    AtomicFile out;
    atomic_open(&out, path);
    int row_stride = width * channels;
    if (!png_image_write_to_stdio(&image, out.f, 0, pixels, row_stride, NULL)) {
        char message[sizeof image.message + 1];
        memcpy(message, image.message, sizeof image.message);
        message[sizeof image.message] = 0;
        atomic_abort(&out);
        fatal("image_write_png %s: %s", path, message);
    }
    atomic_commit(&out);
}

void image_read_png(const char *path, Image *img) {
    memset(img, 0, sizeof *img);
    png_image image;
    memset(&image, 0, sizeof image);
    image.version = PNG_IMAGE_VERSION;
    if (!file_exists(path)) input_error(path, "cannot open: no such file");
    if (!png_image_begin_read_from_file(&image, path)) input_error(path, "not a PNG image: %s", image.message);
    bool has_alpha = (image.format & PNG_FORMAT_FLAG_ALPHA) != 0;
    image.format = has_alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
    img->width = (int)image.width;
    img->height = (int)image.height;
    img->channels = has_alpha ? 4 : 3;
    img->pixels = xmalloc(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, NULL, img->pixels, 0, NULL)) {
        free(img->pixels);
        img->pixels = NULL;
        input_error(path, "corrupt PNG data: %s", image.message);
    }
}

void image_free(Image *img) {
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

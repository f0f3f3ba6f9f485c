// png.h: writing and reading PNG images with libpng (8 bits per channel, RGB or RGBA).
//
// Pixels are row-major [height][width][channels], top row first. Writing is atomic (PATH.partial, then rename),
// so a figure is either complete on disk or absent. Reading exists for the tests (and for tools that check figures).
// Names avoid the png_ prefix, which is libpng's. This header is included as "draw/png.h"; libpng's own header is
// included as <libpng16/png.h> (png.c), so the two can never be confused.
#pragma once
#include <stdint.h>

// channels: 3 (RGB) or 4 (RGBA). Exits 1 (fatal) if the file cannot be written.
void image_write_png(const char *path, const uint8_t *pixels, int width, int height, int channels);

typedef struct {
    int width, height;
    int channels;      // 3 or 4: RGB, or RGBA when the file has transparency
    uint8_t *pixels;   // [height][width][channels], malloc'd; free with image_free
} Image;

// Reads any PNG (grey, palette, 16-bit... are converted to 8-bit RGB/RGBA). Exits 2 naming the file on bad input.
void image_read_png(const char *path, Image *img);
void image_free(Image *img);

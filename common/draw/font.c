// font.c: Unifont glyph lookup, UTF-8 decoding, text measuring and rendering (rotated, anti-aliased at 45 degrees).
// The glyph tables are generated (tools/gen_unifont.sh -> build/gen/unifont_glyphs.c); see font.h for the API.
#include "draw/font.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

// Defined in the generated build/gen/unifont_glyphs.c.
extern const char unifont_hex[];
extern const uint32_t unifont_hex_length;
extern const uint32_t unifont_runs[][4];  // {first cp, last cp, width px, offset into unifont_hex}
extern const int unifont_run_count;
extern const int32_t unifont_combining[][2];  // {cp, x offset}, sorted by cp
extern const int unifont_combining_count;

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return 0;
}

// A hollow box, the glyph for "no such character" (and for bytes that are not UTF-8).
static void replacement_box(Glyph *g, int width) {
    memset(g, 0, sizeof *g);
    g->width = g->advance = width;
    uint16_t left = (uint16_t)(1u << 14), right = (uint16_t)(1u << (16 - width + 1));
    uint16_t full = 0;
    for (int x = 1; x <= width - 2; x++) full |= (uint16_t)(1u << (15 - x));
    for (int y = 2; y <= 13; y++) g->rows[y] = (y == 2 || y == 13) ? full : (uint16_t)(left | right);
}

static int combining_offset(uint32_t cp, bool *found) {
    int lo = 0, hi = unifont_combining_count - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uint32_t c = (uint32_t)unifont_combining[mid][0];
        if (c == cp) { *found = true; return unifont_combining[mid][1]; }
        if (c < cp) lo = mid + 1; else hi = mid - 1;
    }
    *found = false;
    return 0;
}

// U+2423 OPEN BOX marks a space in every token label. Unifont draws it 2 pixels tall, which reads as '_' at the
// label size; this one is 7 pixels wide and 4 tall with square corners: a bracket, lower and wider than a 'u'.
static const uint16_t open_box_rows[FONT_HEIGHT] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x8200, 0x8200, 0x8200, 0xFE00, 0, 0};

bool font_glyph(uint32_t cp, Glyph *g) {
    if (cp & FONT_INVALID_BYTE) { replacement_box(g, 8); return false; }
    if (cp == 0x2423) {
        memset(g, 0, sizeof *g);
        g->width = g->advance = 8;
        memcpy(g->rows, open_box_rows, sizeof g->rows);
        return true;
    }
    int lo = 0, hi = unifont_run_count - 1;
    while (lo <= hi) {  // binary search for the run holding cp
        int mid = lo + (hi - lo) / 2;
        if (cp < unifont_runs[mid][0]) hi = mid - 1;
        else if (cp > unifont_runs[mid][1]) lo = mid + 1;
        else {
            int width = (int)unifont_runs[mid][2];
            size_t digits_per_glyph = (size_t)width * FONT_HEIGHT / 4;
            size_t at = unifont_runs[mid][3] + (size_t)(cp - unifont_runs[mid][0]) * digits_per_glyph;
            if (at + digits_per_glyph > unifont_hex_length) fatal("font: glyph table corrupt at U+%04X", cp);
            const char *hex = unifont_hex + at;
            memset(g, 0, sizeof *g);
            g->width = g->advance = width;
            int digits_per_row = width / 4;
            for (int y = 0; y < FONT_HEIGHT; y++) {
                uint32_t row = 0;
                for (int d = 0; d < digits_per_row; d++) row = row * 16 + (uint32_t)hex_digit(hex[y * digits_per_row + d]);
                g->rows[y] = (uint16_t)(row << (16 - width));  // left-align: bit 15 = leftmost pixel
            }
            bool combining;
            int off = combining_offset(cp, &combining);
            if (combining) { g->x_offset = off; g->advance = 0; }
            return true;
        }
    }
    replacement_box(g, cp > 0xFFFF ? 16 : 8);
    return false;
}

uint32_t font_utf8_next(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t c = p[0];
    int extra;
    uint32_t min;
    if (c < 0x80) { *s += 1; return c; }
    else if ((c & 0xE0) == 0xC0) { extra = 1; c &= 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { extra = 2; c &= 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { extra = 3; c &= 0x07; min = 0x10000; }
    else { *s += 1; return FONT_INVALID_BYTE | p[0]; }
    for (int i = 1; i <= extra; i++) {
        if ((p[i] & 0xC0) != 0x80) { *s += 1; return FONT_INVALID_BYTE | p[0]; }  // also stops at the NUL
        c = (c << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8 either.
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) { *s += 1; return FONT_INVALID_BYTE | p[0]; }
    *s += 1 + extra;
    return c;
}

int font_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int font_text_width(const char *utf8, int scale) {
    int width = 0;
    for (const char *s = utf8; *s;) {
        Glyph g;
        font_glyph(font_utf8_next(&s), &g);
        width += g.advance;
    }
    return width * scale;
}

// The unrotated text as a coverage mask [height][width], one byte per pixel (0 or 255).
static uint8_t *rasterize(const char *utf8, int scale, int *out_w, int *out_h) {
    int w = font_text_width(utf8, scale), h = FONT_HEIGHT * scale;
    uint8_t *mask = xcalloc((size_t)(w > 0 ? w : 1) * (size_t)h, 1);
    int pen = 0;  // in unscaled pixels
    for (const char *s = utf8; *s;) {
        Glyph g;
        font_glyph(font_utf8_next(&s), &g);
        int gx = pen + g.x_offset;
        for (int y = 0; y < FONT_HEIGHT; y++)
            for (int x = 0; x < g.width; x++) {
                if (!(g.rows[y] & (1u << (15 - x)))) continue;
                int px = gx + x;
                if (px < 0 || px * scale >= w) continue;  // a combining mark at the very start: clipped
                for (int sy = 0; sy < scale; sy++)
                    for (int sx = 0; sx < scale; sx++) mask[(size_t)(y * scale + sy) * (size_t)w + (size_t)(px * scale + sx)] = 255;
            }
        pen += g.advance;
    }
    *out_w = w;
    *out_h = h;
    return mask;
}

void font_render(const char *utf8, int scale, int angle_deg, float pivot_x, float pivot_y, int x, int y,
                 FontPlotFn plot, void *ctx) {
    if (scale < 1) scale = 1;
    int w, h;
    uint8_t *mask = rasterize(utf8, scale, &w, &h);
    int angle = ((angle_deg % 360) + 360) % 360;
    if (angle == 0) {  // the common case: a straight copy
        int x0 = x - (int)lroundf(pivot_x), y0 = y - (int)lroundf(pivot_y);
        for (int v = 0; v < h; v++)
            for (int u = 0; u < w; u++)
                if (mask[(size_t)v * (size_t)w + (size_t)u]) plot(ctx, x0 + u, y0 + v, 255);
        free(mask);
        return;
    }
    // Rotation counter-clockwise on screen (y grows downwards): a text-space offset (u, v) from the pivot lands at
    // (u cos a + v sin a, -u sin a + v cos a). Each canvas pixel is mapped back into text space and sampled;
    // angles that are not multiples of 90 degrees take 4x4 samples per pixel, so the edges are smoothed.
    double a = angle * M_PI / 180.0, ca = cos(a), sa = sin(a);
    if (angle % 90 == 0) { ca = round(ca); sa = round(sa); }
    double corners[4][2] = {{0, 0}, {w, 0}, {0, h}, {w, h}};
    double minx = 1e30, maxx = -1e30, miny = 1e30, maxy = -1e30;
    for (int i = 0; i < 4; i++) {
        double du = corners[i][0] - pivot_x, dv = corners[i][1] - pivot_y;
        double cx = x + du * ca + dv * sa, cy = y - du * sa + dv * ca;
        if (cx < minx) minx = cx;
        if (cx > maxx) maxx = cx;
        if (cy < miny) miny = cy;
        if (cy > maxy) maxy = cy;
    }
    int samples = (angle % 90 == 0) ? 1 : 4;
    for (int py = (int)floor(miny) - 1; py <= (int)ceil(maxy) + 1; py++)
        for (int px = (int)floor(minx) - 1; px <= (int)ceil(maxx) + 1; px++) {
            int hits = 0;
            for (int sy = 0; sy < samples; sy++)
                for (int sx = 0; sx < samples; sx++) {
                    double dx = px + (sx + 0.5) / samples - x, dy = py + (sy + 0.5) / samples - y;
                    double u = dx * ca - dy * sa + pivot_x, v = dx * sa + dy * ca + pivot_y;
                    if (u < 0 || v < 0 || u >= w || v >= h) continue;
                    if (mask[(size_t)v * (size_t)w + (size_t)u]) hits++;
                }
            if (hits) plot(ctx, px, py, hits * 255 / (samples * samples));
        }
    free(mask);
}

// draw.c: the canvas, shapes, text through font.h, colour maps and the colour bar. See draw.h.
#include "draw/draw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/font.h"
#include "draw/png.h"
#include "util.h"

void canvas_init(Canvas *c, int width, int height, Rgb background) {
    if (width <= 0 || height <= 0 || width > 20000 || height > 20000) fatal("canvas_init: bad size %dx%d", width, height);
    c->width = width;
    c->height = height;
    size_t n = (size_t)width * (size_t)height;
    c->pixels = xmalloc(n * 3);
    for (size_t i = 0; i < n; i++) {
        c->pixels[3 * i] = background.r;
        c->pixels[3 * i + 1] = background.g;
        c->pixels[3 * i + 2] = background.b;
    }
}

void canvas_free(Canvas *c) {
    free(c->pixels);
    memset(c, 0, sizeof *c);
}

void canvas_write_png(const Canvas *c, const char *path) { image_write_png(path, c->pixels, c->width, c->height, 3); }

Rgb canvas_get(const Canvas *c, int x, int y) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return COLOR_BLACK;
    const uint8_t *p = c->pixels + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
    return RGB(p[0], p[1], p[2]);
}

void draw_pixel(Canvas *c, int x, int y, Rgb color) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    uint8_t *p = c->pixels + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
    p[0] = color.r;
    p[1] = color.g;
    p[2] = color.b;
}

void draw_blend(Canvas *c, int x, int y, Rgb color, int alpha) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height || alpha <= 0) return;
    if (alpha >= 255) { draw_pixel(c, x, y, color); return; }
    uint8_t *p = c->pixels + 3 * ((size_t)y * (size_t)c->width + (size_t)x);
    p[0] = (uint8_t)((p[0] * (255 - alpha) + color.r * alpha + 127) / 255);
    p[1] = (uint8_t)((p[1] * (255 - alpha) + color.g * alpha + 127) / 255);
    p[2] = (uint8_t)((p[2] * (255 - alpha) + color.b * alpha + 127) / 255);
}

void draw_rect(Canvas *c, int x, int y, int w, int h, Rgb color) {
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->width ? c->width : x + w, y1 = y + h > c->height ? c->height : y + h;
    for (int py = y0; py < y1; py++)
        for (int px = x0; px < x1; px++) draw_pixel(c, px, py, color);
}

void draw_rect_outline(Canvas *c, int x, int y, int w, int h, int thickness, Rgb color) {
    draw_rect(c, x, y, w, thickness, color);
    draw_rect(c, x, y + h - thickness, w, thickness, color);
    draw_rect(c, x, y, thickness, h, color);
    draw_rect(c, x + w - thickness, y, thickness, h, color);
}

void draw_hatch(Canvas *c, int x, int y, int w, int h, int spacing) {
    if (spacing < 3) spacing = 3;
    for (int py = y; py < y + h; py++)
        for (int px = x; px < x + w; px++) {
            // Canvas coordinates, not the rect's, so the lines run on unbroken across neighbouring masked cells.
            int diagonal = (px + py) % spacing;  // lines from bottom-left to top-right
            draw_pixel(c, px, py, diagonal == 0 ? COLOR_MASK_HATCH : COLOR_MASK_FILL);
        }
}

// Coverage of a pixel by a stroke of half-width r at distance d from its centre line: a one-pixel ramp.
static int stroke_alpha(double d, double half_width) {
    double a = half_width + 0.5 - d;
    if (a <= 0) return 0;
    if (a >= 1) return 255;
    return (int)(a * 255.0 + 0.5);
}

void draw_line(Canvas *c, float x0, float y0, float x1, float y1, float thickness, Rgb color) {
    double half = thickness / 2.0;
    double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    int bx0 = (int)floor(fmin(x0, x1) - half - 1), bx1 = (int)ceil(fmax(x0, x1) + half + 1);
    int by0 = (int)floor(fmin(y0, y1) - half - 1), by1 = (int)ceil(fmax(y0, y1) + half + 1);
    if (bx0 < 0) bx0 = 0;
    if (by0 < 0) by0 = 0;
    if (bx1 >= c->width) bx1 = c->width - 1;
    if (by1 >= c->height) by1 = c->height - 1;
    for (int py = by0; py <= by1; py++)
        for (int px = bx0; px <= bx1; px++) {
            double cx = px + 0.5, cy = py + 0.5;
            double t = len2 > 0 ? ((cx - x0) * dx + (cy - y0) * dy) / len2 : 0;  // nearest point on the segment
            t = t < 0 ? 0 : t > 1 ? 1 : t;
            double ex = cx - (x0 + t * dx), ey = cy - (y0 + t * dy);
            draw_blend(c, px, py, color, stroke_alpha(sqrt(ex * ex + ey * ey), half));
        }
}

void draw_dashed_line(Canvas *c, float x0, float y0, float x1, float y1, float thickness, float dash, Rgb color) {
    double len = hypot(x1 - x0, y1 - y0);
    if (dash <= 0 || len <= dash) { draw_line(c, x0, y0, x1, y1, thickness, color); return; }
    double ux = (x1 - x0) / len, uy = (y1 - y0) / len;
    for (double s = 0; s < len; s += 2 * dash) {
        double e = fmin(s + dash, len);
        draw_line(c, (float)(x0 + ux * s), (float)(y0 + uy * s), (float)(x0 + ux * e), (float)(y0 + uy * e), thickness, color);
    }
}

void draw_circle(Canvas *c, float cx, float cy, float radius, float thickness, float dash, Rgb color) {
    double half = thickness / 2.0, reach = radius + half + 1;
    for (int py = (int)floor(cy - reach); py <= (int)ceil(cy + reach); py++)
        for (int px = (int)floor(cx - reach); px <= (int)ceil(cx + reach); px++) {
            double ex = px + 0.5 - cx, ey = py + 0.5 - cy;
            int alpha = stroke_alpha(fabs(sqrt(ex * ex + ey * ey) - radius), half);
            if (!alpha) continue;
            if (dash > 0) {  // on for `dash` pixels of arc length, off for the next `dash`
                double arc = (atan2(ey, ex) + M_PI) * radius;
                if (fmod(arc, 2 * dash) >= dash) continue;
            }
            draw_blend(c, px, py, color, alpha);
        }
}

void draw_disc(Canvas *c, float cx, float cy, float radius, Rgb color) {
    for (int py = (int)floor(cy - radius - 1); py <= (int)ceil(cy + radius + 1); py++)
        for (int px = (int)floor(cx - radius - 1); px <= (int)ceil(cx + radius + 1); px++) {
            double d = hypot(px + 0.5 - cx, py + 0.5 - cy);
            double a = radius + 0.5 - d;
            if (a > 0) draw_blend(c, px, py, color, a >= 1 ? 255 : (int)(a * 255));
        }
}

// Signed distance from (px, py) to the edge of a rounded rectangle centred at (cx, cy) with half sizes (hw, hh):
// negative inside.
static double round_rect_distance(double px, double py, double cx, double cy, double hw, double hh, double r) {
    double qx = fabs(px - cx) - (hw - r), qy = fabs(py - cy) - (hh - r);
    double ox = fmax(qx, 0.0), oy = fmax(qy, 0.0);
    return hypot(ox, oy) + fmin(fmax(qx, qy), 0.0) - r;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }

void draw_round_rect(Canvas *c, float x, float y, float w, float h, float radius, bool filled, Rgb fill, float thickness,
                     Rgb stroke) {
    if (w <= 0 || h <= 0) return;
    double hw = w / 2.0, hh = h / 2.0, cx = x + hw, cy = y + hh;
    double r = fmin(fmax(radius, 0.0), fmin(hw, hh));
    for (int py = (int)floor(y) - 1; py <= (int)ceil(y + h); py++)
        for (int px = (int)floor(x) - 1; px <= (int)ceil(x + w); px++) {
            double d = round_rect_distance(px + 0.5, py + 0.5, cx, cy, hw, hh, r);
            double inside = clamp01(0.5 - d);  // coverage of the whole shape: a one-pixel ramp across the edge
            if (inside <= 0) continue;
            if (filled) draw_blend(c, px, py, fill, (int)(inside * 255 + 0.5));
            if (thickness > 0) {  // the band between the edge and `thickness` inside it
                double band = inside - clamp01(0.5 - (d + thickness));
                if (band > 0) draw_blend(c, px, py, stroke, (int)(band * 255 + 0.5));
            }
        }
}

static bool polygon_contains(const float *xy, int n, double px, double py) {
    bool in = false;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        double xi = xy[2 * i], yi = xy[2 * i + 1], xj = xy[2 * j], yj = xy[2 * j + 1];
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi) in = !in;
    }
    return in;
}

void draw_polygon(Canvas *c, const float *xy, int n, Rgb color) {
    if (n < 3) return;
    float x0 = xy[0], x1 = xy[0], y0 = xy[1], y1 = xy[1];
    for (int i = 1; i < n; i++) {
        x0 = fminf(x0, xy[2 * i]), x1 = fmaxf(x1, xy[2 * i]);
        y0 = fminf(y0, xy[2 * i + 1]), y1 = fmaxf(y1, xy[2 * i + 1]);
    }
    for (int py = (int)floor(y0); py <= (int)ceil(y1); py++)
        for (int px = (int)floor(x0); px <= (int)ceil(x1); px++) {
            int hits = 0;
            for (int sy = 0; sy < 4; sy++)
                for (int sx = 0; sx < 4; sx++) hits += polygon_contains(xy, n, px + (sx + 0.5) / 4, py + (sy + 0.5) / 4);
            if (hits) draw_blend(c, px, py, color, hits * 255 / 16);
        }
}

typedef struct {
    Canvas *canvas;
    Rgb color;
} TextTarget;

static void plot_text_pixel(void *ctx, int x, int y, int coverage) {
    TextTarget *t = ctx;
    draw_blend(t->canvas, x, y, t->color, coverage);
}

int draw_text(Canvas *c, int x, int y, const char *utf8, int scale, int angle_deg, int align, Rgb color) {
    if (scale < 1) scale = 1;
    int w = font_text_width(utf8, scale), h = FONT_HEIGHT * scale;
    float pivot_x = (align & ALIGN_RIGHT) ? (float)w : (align & ALIGN_CENTER) ? w / 2.0f : 0.0f;
    float pivot_y = (align & ALIGN_BOTTOM) ? (float)h : (align & ALIGN_MIDDLE) ? h / 2.0f : 0.0f;
    TextTarget target = {c, color};
    font_render(utf8, scale, angle_deg, pivot_x, pivot_y, x, y, plot_text_pixel, &target);
    return w;
}

// Colour maps as a few anchor colours, linearly interpolated. Viridis: matplotlib's published anchors at
// t = 0, 1/8, ..., 1 (interpolating 9 of its 256 entries stays within a few RGB units of the full table).
static const uint8_t viridis_anchors[9][3] = {
    {68, 1, 84}, {71, 45, 123}, {59, 82, 139}, {44, 114, 142}, {33, 145, 140},
    {40, 174, 128}, {94, 201, 98}, {173, 220, 48}, {253, 231, 37},
};
// Blue -> near-white -> red (ColorBrewer RdBu, reversed so that positive is red).
static const uint8_t diverging_anchors[9][3] = {
    {33, 102, 172}, {67, 147, 195}, {146, 197, 222}, {209, 229, 240}, {247, 247, 247},
    {253, 219, 199}, {244, 165, 130}, {214, 96, 77}, {178, 24, 43},
};
// White -> dark red (ColorBrewer Reds): zero error is white.
static const uint8_t reds_anchors[9][3] = {
    {255, 245, 240}, {254, 224, 210}, {252, 187, 161}, {252, 146, 114}, {251, 106, 74},
    {239, 59, 44}, {203, 24, 29}, {165, 15, 21}, {103, 0, 13},
};

Rgb colormap_rgb(Colormap map, float t) {
    const uint8_t(*anchors)[3] = map == COLORMAP_DIVERGING ? diverging_anchors : map == COLORMAP_REDS ? reds_anchors : viridis_anchors;
    if (!(t > 0)) t = 0;  // also catches NaN
    if (t > 1) t = 1;
    float pos = t * 8.0f;
    int i = (int)pos;
    if (i >= 8) i = 7;
    float f = pos - (float)i;
    return RGB(lroundf(anchors[i][0] + f * (anchors[i + 1][0] - anchors[i][0])),
               lroundf(anchors[i][1] + f * (anchors[i + 1][1] - anchors[i][1])),
               lroundf(anchors[i][2] + f * (anchors[i + 1][2] - anchors[i][2])));
}

int nice_ticks(double lo, double hi, int max_ticks, double *ticks, double *step_out) {
    if (max_ticks < 2) max_ticks = 2;
    if (!isfinite(lo) || !isfinite(hi)) { *step_out = 1; return 0; }
    if (hi < lo) { double t = lo; lo = hi; hi = t; }
    if (hi - lo < 1e-300) { ticks[0] = lo; *step_out = fabs(lo) > 0 ? fabs(lo) : 1; return 1; }
    double raw = (hi - lo) / (max_ticks - 1);
    double magnitude = pow(10.0, floor(log10(raw)));
    static const double multipliers[] = {1, 2, 2.5, 5, 10, 20};
    double step = magnitude * 10;
    int count = 0;
    for (int m = 0; m < 6; m++) {
        step = magnitude * multipliers[m];
        double first = ceil(lo / step - 1e-9) * step;
        count = (int)floor((hi - first) / step + 1e-9) + 1;
        if (count <= max_ticks) break;
    }
    double first = ceil(lo / step - 1e-9) * step;
    for (int i = 0; i < count; i++) {
        double v = first + i * step;
        if (fabs(v) < step * 1e-9) v = 0;  // no "-0"
        ticks[i] = v;
    }
    *step_out = step;
    return count;
}

// Decimals needed to write x (> 0) exactly enough: the smallest d <= 6 with x * 10^d (nearly) whole.
static int decimals_for(double x) {
    int d = 0;
    while (d < 6) {
        double scaled = x * pow(10.0, d);
        if (fabs(scaled - round(scaled)) < 1e-6 * fmax(1.0, scaled)) break;
        d++;
    }
    return d;
}

void format_tick(double value, double step, char *buf, int n) {
    if (value == 0) { snprintf(buf, (size_t)n, "0"); return; }
    double a = fabs(value);
    if (step < 1e-3 || a >= 1e5) {
        // Scientific, decided by the step alone so that one axis uses one style: "1.5e-3", "5e-4".
        int exponent = (int)floor(log10(a) + 1e-9);
        double mantissa = value / pow(10.0, exponent);
        int d = decimals_for(step / pow(10.0, exponent));
        if (d > 3) d = 3;
        snprintf(buf, (size_t)n, "%.*fe%d", d, mantissa, exponent);
        return;
    }
    snprintf(buf, (size_t)n, "%.*f", decimals_for(step), value);
}

void draw_colorbar(Canvas *c, int x, int y, int w, int h, Colormap map, double vmin, double vmax, const char *label) {
    if (!(vmax > vmin)) { double mid = vmin; vmin = mid - 0.5; vmax = mid + 0.5; }
    for (int py = 0; py < h; py++) {
        float t = h > 1 ? 1.0f - (float)py / (float)(h - 1) : 0.5f;  // top = vmax
        draw_rect(c, x, y + py, w, 1, colormap_rgb(map, t));
    }
    draw_rect_outline(c, x, y, w, h, 1, COLOR_TEXT);
    double ticks[16], step;
    int max_ticks = h / 40 < 2 ? 2 : h / 40 > 11 ? 11 : h / 40;
    int n = nice_ticks(vmin, vmax, max_ticks, ticks, &step);
    int label_width = 0;
    for (int i = 0; i < n; i++) {
        char text[32];
        format_tick(ticks[i], step, text, sizeof text);
        int ty = y + (int)lround((vmax - ticks[i]) / (vmax - vmin) * (h - 1));
        draw_rect(c, x + w, ty, 5, 1, COLOR_TEXT);
        int tw = draw_text(c, x + w + 8, ty, text, 1, 0, ALIGN_LEFT | ALIGN_MIDDLE, COLOR_TEXT);
        if (tw > label_width) label_width = tw;
    }
    if (label && *label) draw_text(c, x + w + 8 + label_width + 6, y + h / 2, label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT);
}

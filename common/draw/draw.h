// draw.h: a small raster canvas for the walkthrough's figures: rectangles, anti-aliased lines and circles, text
// (Unifont, any Unicode in the BMP, rotated 0/45/90 degrees), colour maps and a colour bar with tick values.
//
// A Canvas is RGB, row-major [height][width][3], top-left origin, y down. Every draw_* call clips to the canvas,
// so callers may draw partly outside. Typical use:
//     Canvas c; canvas_init(&c, 800, 600, COLOR_WHITE);
//     draw_text(&c, 400, 10, "scores", 2, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
//     canvas_write_png(&c, "OUT/07_scores/scores.png");  canvas_free(&c);
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct { uint8_t r, g, b; } Rgb;
#define RGB(r_, g_, b_) ((Rgb){(uint8_t)(r_), (uint8_t)(g_), (uint8_t)(b_)})
#define COLOR_WHITE RGB(255, 255, 255)
#define COLOR_BLACK RGB(0, 0, 0)
#define COLOR_TEXT RGB(30, 30, 30)
#define COLOR_GRID RGB(200, 200, 200)
// Masked cells (the causal mask's -inf) are hatched in two greys that no colour map below produces.
#define COLOR_MASK_FILL RGB(222, 222, 222)
#define COLOR_MASK_HATCH RGB(160, 160, 160)

typedef struct {
    int width, height;
    uint8_t *pixels;  // [height][width][3]
} Canvas;

void canvas_init(Canvas *c, int width, int height, Rgb background);
void canvas_free(Canvas *c);
void canvas_write_png(const Canvas *c, const char *path);  // atomic (see png.h)
Rgb canvas_get(const Canvas *c, int x, int y);             // black outside the canvas

void draw_pixel(Canvas *c, int x, int y, Rgb color);
void draw_blend(Canvas *c, int x, int y, Rgb color, int alpha);  // alpha 0..255 over what is there
void draw_rect(Canvas *c, int x, int y, int w, int h, Rgb color);  // filled
void draw_rect_outline(Canvas *c, int x, int y, int w, int h, int thickness, Rgb color);  // inside the rect
// The masked-cell pattern: COLOR_MASK_FILL with diagonal COLOR_MASK_HATCH lines every `spacing` pixels.
void draw_hatch(Canvas *c, int x, int y, int w, int h, int spacing);
// Anti-aliased lines of any thickness (pixel centres are at +0.5); dash > 0 draws dashes of that length.
void draw_line(Canvas *c, float x0, float y0, float x1, float y1, float thickness, Rgb color);
void draw_dashed_line(Canvas *c, float x0, float y0, float x1, float y1, float thickness, float dash, Rgb color);
void draw_circle(Canvas *c, float cx, float cy, float radius, float thickness, float dash, Rgb color);
void draw_disc(Canvas *c, float cx, float cy, float radius, Rgb color);
// A rectangle with corners rounded by `radius`, anti-aliased: filled with `fill` when `filled`, and outlined inside
// its edge by a stroke `thickness` px wide (none when thickness is 0). Coordinates are pixel edges, so a box drawn at
// (10, 10, 100, 40) covers pixels 10..109 and 10..49, exactly as draw_rect would.
void draw_round_rect(Canvas *c, float x, float y, float w, float h, float radius, bool filled, Rgb fill, float thickness,
                     Rgb stroke);
// A filled polygon of n points xy[2n] (even-odd rule), anti-aliased with 4x4 samples a pixel: arrow heads, markers.
void draw_polygon(Canvas *c, const float *xy, int n, Rgb color);

// Text. align picks the point of the (unrotated) text box that lands on (x, y): one of ALIGN_LEFT/CENTER/RIGHT
// or-ed with one of ALIGN_TOP/MIDDLE/BOTTOM. angle_deg turns the text counter-clockwise around that point, so an
// x-axis label drawn with angle 45 and ALIGN_RIGHT | ALIGN_MIDDLE ends at its tick and reads upwards to the right.
// Returns the unrotated width in pixels. Glyphs are 16*scale pixels tall.
enum { ALIGN_LEFT = 0, ALIGN_CENTER = 1, ALIGN_RIGHT = 2, ALIGN_TOP = 0, ALIGN_MIDDLE = 4, ALIGN_BOTTOM = 8 };
int draw_text(Canvas *c, int x, int y, const char *utf8, int scale, int angle_deg, int align, Rgb color);

// Colour maps: t in [0, 1] (clamped; NaN gives the low end). VIRIDIS is perceptually uniform (dark blue -> yellow),
// for values of one sign; DIVERGING goes blue -> white -> red, for signed values centred at 0; REDS goes white ->
// dark red, for errors (0 = white).
typedef enum { COLORMAP_VIRIDIS, COLORMAP_DIVERGING, COLORMAP_REDS } Colormap;
Rgb colormap_rgb(Colormap map, float t);

// "Nice" tick values (1, 2, 2.5 or 5 times a power of ten) inside [lo, hi]: at most max_ticks of them, written to
// ticks[]; returns the count and the step in *step. Used for colour bars and chart axes.
int nice_ticks(double lo, double hi, int max_ticks, double *ticks, double *step);
// A tick value as short text: as many decimals as the step needs, scientific notation for very small or large.
void format_tick(double value, double step, char *buf, int n);

// A vertical colour bar: the map from vmin (bottom) to vmax (top) in the rectangle (x, y, w, h), ticks and values
// on its right, and label (may be NULL) turned 90 degrees beside them. COLORBAR_WIDTH is the room it needs at w=20.
#define COLORBAR_WIDTH 130
void draw_colorbar(Canvas *c, int x, int y, int w, int h, Colormap map, double vmin, double vmax, const char *label);

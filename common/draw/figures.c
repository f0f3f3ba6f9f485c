// figures.c: layout and drawing of the walkthrough's figures. See figures.h for what each one shows.
//
// Layout is computed before anything is drawn: the size of every label is measured with font_text_width(), the
// canvas is made just big enough, then the parts are drawn at their places. Rules that keep labels readable:
// x-axis token labels are horizontal when they fit in a cell, else turned 45 degrees (cells >= 24 px: neighbours are
// then 0.71 * cell >= 17 px apart, more than a glyph's height), else 90 degrees, and when even 90 degrees would
// overlap (cells < 17 px) only every k-th label is drawn. Long labels are cut with '…'.
#include "draw/figures.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/font.h"
#include "util.h"

#define PAD 20                // outer margin
#define LABEL_GAP 8           // between a map and its labels
#define GLYPH_H FONT_HEIGHT   // 16 px: the label size
#define MIN_LABEL_SPACING 17  // two parallel labels closer than this would touch
#define MAX_LABEL_PX 176      // a label longer than this (22 narrow glyphs) is cut with '…'
#define COLOR_INVALID RGB(255, 0, 255)  // NaN or +inf in a heatmap: magenta, which no colour map has

// ---- labels ---------------------------------------------------------------------------------------------------------

void token_display(const char *piece, char *out, size_t out_size) {
    size_t len = 0;
    if (out_size == 0) return;
    out[0] = 0;
    if (!piece || !*piece) piece = "\xE2\x88\x85";  // U+2205 EMPTY SET
    for (const char *s = piece; *s;) {
        const char *start = s;
        uint32_t cp = font_utf8_next(&s);
        char buf[16];
        int n;
        if (cp & FONT_INVALID_BYTE) n = snprintf(buf, sizeof buf, "\\x%02X", cp & 0xFF);
        else if (cp == ' ') n = font_utf8_encode(0x2423, buf);
        else if (cp == '\n') n = font_utf8_encode(0x21B5, buf);
        else if (cp == '\t') n = font_utf8_encode(0x21E5, buf);
        else if (cp < 0x20) n = font_utf8_encode(0x2400 + cp, buf);
        else if (cp == 0x7F) n = font_utf8_encode(0x2421, buf);
        else { n = (int)(s - start); memcpy(buf, start, (size_t)n); }
        if (len + (size_t)n + 1 > out_size) break;  // never cut a character in half
        memcpy(out + len, buf, (size_t)n);
        len += (size_t)n;
        out[len] = 0;
    }
}

// Cuts text (in place, a buffer of `size` bytes) so that it is at most max_px wide at scale 1, ending with '…'.
static void fit_text(char *text, size_t size, int max_px) {
    if (size < 4 || font_text_width(text, 1) <= max_px) return;
    int ellipsis = font_text_width("\xE2\x80\xA6", 1);
    const char *s = text, *keep_end = text;
    int width = 0;
    while (*s) {
        const char *before = s;
        char one[8] = {0};
        font_utf8_next(&s);
        memcpy(one, before, (size_t)(s - before));
        width += font_text_width(one, 1);
        if (width + ellipsis > max_px) break;
        keep_end = s;
    }
    size_t at = (size_t)(keep_end - text);
    while (at > 0 && at + 4 > size) {  // '…' is 3 bytes: make room, backing up over whole characters
        at--;
        while (at > 0 && ((unsigned char)text[at] & 0xC0) == 0x80) at--;
    }
    memcpy(text + at, "\xE2\x80\xA6", 4);  // '…' and the NUL
}

typedef struct {
    int n;
    char **text;  // [n] display strings
    int *width;   // [n] pixels at scale 1
    int max_width;
} Labels;

// Display labels for n items: the given strings (through token_display unless raw) or, without them, the indices.
// With index_prefix each label starts with its index ("36 ␣the"): used when labels are thinned out, so that a
// reader still knows which row or column a label names. Label i names item i*stride (stride > 1: pooled blocks).
static void labels_make_strided(Labels *L, const char *const *src, int n, bool raw, bool index_prefix, int stride) {
    L->n = n;
    L->text = xcalloc((size_t)n, sizeof(char *));
    L->width = xcalloc((size_t)n, sizeof(int));
    L->max_width = 0;
    for (int i = 0; i < n; i++) {
        const char *text = src ? src[(size_t)i * (size_t)stride] : NULL;
        int index = i * stride;
        size_t cap = (text ? strlen(text) * 4 : 0) + 32;  // \xHH is 4 bytes per byte at most
        char *buf = xmalloc(cap);
        if (!text) snprintf(buf, cap, "%d", index);
        else if (raw) snprintf(buf, cap, "%s", text);
        else token_display(text, buf, cap);
        if (index_prefix && text) {
            char *with_index = xasprintf("%d %s", index, buf);
            snprintf(buf, cap, "%s", with_index);
            free(with_index);
        }
        fit_text(buf, cap, MAX_LABEL_PX);
        L->text[i] = buf;
        L->width[i] = font_text_width(buf, 1);
        if (L->width[i] > L->max_width) L->max_width = L->width[i];
    }
}

static void labels_make(Labels *L, const char *const *src, int n, bool raw, bool index_prefix) {
    labels_make_strided(L, src, n, raw, index_prefix, 1);
}

static void labels_free(Labels *L) {
    for (int i = 0; i < L->n; i++) free(L->text[i]);
    free(L->text);
    free(L->width);
    memset(L, 0, sizeof *L);
}

// How the x-axis labels of a map with cells of `cell` px are drawn, and the room they need.
typedef struct {
    int angle;     // 0, 45 or 90
    int step;      // draw every step-th label
    int below;     // pixels below the map bottom that the labels use
    int overhang;  // pixels left of the first tick that the labels use
} XLabelPlan;

static XLabelPlan plan_x_labels(const Labels *L, int cell) {
    XLabelPlan p = {0, 1, 0, 0};
    int w = L->max_width;
    const double s45 = 0.70710678;
    if (w + 4 <= cell) p.angle = 0;
    else if (cell * s45 >= MIN_LABEL_SPACING) p.angle = 45;
    else {
        p.angle = 90;
        p.step = cell >= MIN_LABEL_SPACING ? 1 : (MIN_LABEL_SPACING + cell - 1) / cell;
    }
    if (p.angle == 0) { p.below = LABEL_GAP + GLYPH_H; p.overhang = w / 2; }
    else if (p.angle == 45) { p.below = LABEL_GAP + 4 + (int)ceil((w + GLYPH_H / 2) * s45); p.overhang = (int)ceil((w + GLYPH_H / 2) * s45); }
    else { p.below = LABEL_GAP + w; p.overhang = GLYPH_H / 2; }
    return p;
}

static void draw_x_labels(Canvas *c, const Labels *L, const XLabelPlan *p, int map_x, int map_bottom, int cell) {
    for (int i = 0; i < L->n; i += p->step) {
        int tx = map_x + i * cell + cell / 2;
        draw_rect(c, tx, map_bottom, 1, 4, COLOR_TEXT);
        if (p->angle == 0) draw_text(c, tx, map_bottom + LABEL_GAP, L->text[i], 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT);
        else if (p->angle == 45) draw_text(c, tx + 3, map_bottom + LABEL_GAP + 4, L->text[i], 1, 45, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_TEXT);
        else draw_text(c, tx, map_bottom + LABEL_GAP, L->text[i], 1, 90, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_TEXT);
    }
}

static void draw_y_labels(Canvas *c, const Labels *L, int map_x, int map_y, int cell) {
    int step = cell >= MIN_LABEL_SPACING ? 1 : (MIN_LABEL_SPACING + cell - 1) / cell;
    for (int i = 0; i < L->n; i += step) {
        int ty = map_y + i * cell + cell / 2;
        draw_rect(c, map_x - 4, ty, 4, 1, COLOR_TEXT);
        draw_text(c, map_x - LABEL_GAP, ty, L->text[i], 1, 0, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_TEXT);
    }
}

// ---- heatmap cells --------------------------------------------------------------------------------------------------

static bool cell_masked(const float *data, const uint8_t *mask, size_t i) {
    return (mask && mask[i]) || (isinf(data[i]) && data[i] < 0);
}

// The colour range of the unmasked, finite cells, adjusted by the options.
static void value_range(const float *data, size_t n, const HeatmapOptions *opt, float *vmin, float *vmax) {
    if (opt->fixed_range) { *vmin = opt->vmin; *vmax = opt->vmax; return; }
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (cell_masked(data, opt->mask, i) || !isfinite(data[i])) continue;
        if (data[i] < lo) lo = data[i];
        if (data[i] > hi) hi = data[i];
    }
    if (lo > hi) { lo = 0; hi = 1; }  // nothing to show: any range will do
    if (opt->symmetric) {
        float m = fmaxf(fabsf(lo), fabsf(hi));
        if (m == 0) m = 1;
        lo = -m;
        hi = m;
    }
    *vmin = lo;
    *vmax = hi;
}

static float scale_position(float v, float vmin, float vmax) {
    if (!(vmax > vmin)) return 0.5f;
    return (v - vmin) / (vmax - vmin);
}

// Draws the cells of a [rows x cols] map with its top-left corner at (x, y), and a thin frame around it.
static void draw_cells(Canvas *c, int x, int y, int cell, const float *data, int rows, int cols, const uint8_t *mask,
                       Colormap map, float vmin, float vmax, bool show_values) {
    float max_abs = fmaxf(fabsf(vmin), fabsf(vmax));
    int decimals = max_abs < 10 ? 2 : max_abs < 100 ? 1 : 0;
    for (int r = 0; r < rows; r++)
        for (int col = 0; col < cols; col++) {
            size_t i = (size_t)r * (size_t)cols + (size_t)col;
            int cx = x + col * cell, cy = y + r * cell;
            float v = data[i];
            if (cell_masked(data, mask, i)) { draw_hatch(c, cx, cy, cell, cell, 6); continue; }
            if (!isfinite(v)) { draw_rect(c, cx, cy, cell, cell, COLOR_INVALID); continue; }
            Rgb color = colormap_rgb(map, scale_position(v, vmin, vmax));
            draw_rect(c, cx, cy, cell, cell, color);
            if (!show_values) continue;
            char text[32];
            snprintf(text, sizeof text, "%.*f", decimals, (double)v);
            if (strcmp(text, "-0.00") == 0 || strcmp(text, "-0.0") == 0 || strcmp(text, "-0") == 0) memmove(text, text + 1, strlen(text));
            if (font_text_width(text, 1) > cell - 4) continue;
            double luminance = 0.299 * color.r + 0.587 * color.g + 0.114 * color.b;
            draw_text(c, cx + cell / 2, cy + cell / 2, text, 1, 0, ALIGN_CENTER | ALIGN_MIDDLE, luminance > 140 ? COLOR_TEXT : COLOR_WHITE);
        }
    draw_rect_outline(c, x - 1, y - 1, cols * cell + 2, rows * cell + 2, 1, COLOR_TEXT);
}

static bool any_masked(const float *data, const uint8_t *mask, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (cell_masked(data, mask, i)) return true;
    return false;
}

// The legend entry for masked cells: a hatched swatch and its meaning.
static void draw_mask_legend(Canvas *c, int x, int y) {
    draw_hatch(c, x, y, 20, 20, 6);
    draw_rect_outline(c, x, y, 20, 20, 1, COLOR_TEXT);
    draw_text(c, x + 28, y + 10, "masked (-\xE2\x88\x9E)", 1, 0, ALIGN_LEFT | ALIGN_MIDDLE, COLOR_TEXT);
}
#define MASK_LEGEND_WIDTH 150

// Title (scale 2) and subtitle centred at cx from y; returns the height used.
static int draw_titles(Canvas *c, int cx, int y, const char *title, const char *subtitle) {
    int h = 0;
    if (title && *title) { draw_text(c, cx, y, title, 2, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK); h += 2 * GLYPH_H + 6; }
    if (subtitle && *subtitle) { draw_text(c, cx, y + h, subtitle, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT); h += GLYPH_H + 6; }
    return h;
}
static int titles_height(const char *title, const char *subtitle) {
    return (title && *title ? 2 * GLYPH_H + 6 : 0) + (subtitle && *subtitle ? GLYPH_H + 6 : 0);
}
static int titles_width(const char *title, const char *subtitle) {
    int a = title ? font_text_width(title, 2) : 0, b = subtitle ? font_text_width(subtitle, 1) : 0;
    return a > b ? a : b;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// ---- figure_heatmap -------------------------------------------------------------------------------------------------

// The drawing of figure_heatmap once labels are made (and a large matrix pooled): see figure_heatmap below.
static void heatmap_draw(const char *path, const float *data, const uint8_t *mask, int rows, int cols, int block,
                         Labels *rl_in, Labels *cl_in, const HeatmapOptions *opt, const char *subtitle, int cell) {
    Labels rl = *rl_in, cl = *cl_in;
    size_t n = (size_t)rows * (size_t)cols;
    XLabelPlan xp = plan_x_labels(&cl, cell);
    int y_title_w = opt->y_label ? GLYPH_H + 8 : 0;
    int x_title_h = opt->x_label ? GLYPH_H + 10 : 0;

    int map_w = cols * cell, map_h = rows * cell;
    int map_x = PAD + y_title_w + rl.max_width + LABEL_GAP + 4;
    int need = PAD + xp.overhang - cell / 2;  // the first x label must not leave the canvas
    if (map_x < need) map_x = need;
    int head = PAD + titles_height(opt->title, subtitle) + 10;
    int map_y = head;
    int cbar_x = map_x + map_w + 24;
    bool masked = any_masked(data, mask, n);
    int width = cbar_x + COLORBAR_WIDTH + PAD;
    int title_w = titles_width(opt->title, subtitle) + 2 * PAD;
    if (width < title_w) width = title_w;
    int below = xp.below + x_title_h;
    if (masked && below < 40) below = 40;  // room for the mask legend under the colour bar
    int height = map_y + map_h + below + PAD;
    int cbar_h = map_h < 160 ? 160 : map_h;
    if (map_y + cbar_h + (masked ? 40 : 0) + PAD > height) height = map_y + cbar_h + (masked ? 40 : 0) + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, opt->title, subtitle);
    float vmin, vmax;
    HeatmapOptions range_opt = *opt;
    range_opt.mask = mask;
    value_range(data, n, &range_opt, &vmin, &vmax);
    draw_cells(&c, map_x, map_y, cell, data, rows, cols, mask, opt->colormap, vmin, vmax, opt->show_values);
    draw_y_labels(&c, &rl, map_x, map_y, cell);
    draw_x_labels(&c, &cl, &xp, map_x, map_y + map_h, cell);
    if (opt->x_label) draw_text(&c, map_x + map_w / 2, map_y + map_h + xp.below + 6, opt->x_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    if (opt->y_label) draw_text(&c, PAD, map_y + map_h / 2, opt->y_label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    draw_colorbar(&c, cbar_x, map_y, 20, cbar_h, opt->colormap, vmin, vmax, opt->value_label);
    if (masked) draw_mask_legend(&c, cbar_x, map_y + cbar_h + 14);
    if (opt->layout) {
        int y_step = cell >= MIN_LABEL_SPACING ? 1 : (MIN_LABEL_SPACING + cell - 1) / cell;
        *opt->layout = (HeatmapLayout){width, height, map_x, map_y, cell, block, xp.angle, xp.step, y_step, cl.max_width, vmin, vmax,
                                       map_y + map_h, map_x};
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
}

// Beyond this many rows or columns a cell would be under 2 px: k x k blocks are averaged first.
#define MAX_HEATMAP_CELLS 380

void figure_heatmap(const char *path, const float *data, int rows, int cols, const char *const *row_labels,
                    const char *const *col_labels, const HeatmapOptions *opt_in) {
    HeatmapOptions defaults = {0};
    const HeatmapOptions *opt = opt_in ? opt_in : &defaults;
    if (rows <= 0 || cols <= 0) fatal("figure_heatmap %s: empty matrix %dx%d", path, rows, cols);
    int longest = rows > cols ? rows : cols;
    int block = (longest + MAX_HEATMAP_CELLS - 1) / MAX_HEATMAP_CELLS;
    int prow = (rows + block - 1) / block, pcol = (cols + block - 1) / block;
    // Cells: about 760 px for the whole map, between 4 and 48 px (labels are thinned out below 17 px).
    int plongest = prow > pcol ? prow : pcol;
    int cell = clamp_int(760 / plongest, 4, 48);
    Labels rl, cl;
    labels_make_strided(&rl, row_labels, prow, opt->raw_labels, cell < MIN_LABEL_SPACING || block > 1, block);
    labels_make_strided(&cl, col_labels, pcol, opt->raw_labels, cell < MIN_LABEL_SPACING || block > 1, block);
    if (block == 1) {
        heatmap_draw(path, data, opt->mask, rows, cols, 1, &rl, &cl, opt, opt->subtitle, cell);
    } else {
        // Mean of the unmasked finite cells of each block; a block with none is masked. Said in the subtitle.
        size_t pn = (size_t)prow * (size_t)pcol;
        float *pooled = xmalloc(pn * sizeof(float));
        uint8_t *pooled_mask = xcalloc(pn, 1);
        for (int br = 0; br < prow; br++)
            for (int bc = 0; bc < pcol; bc++) {
                double sum = 0;
                int count = 0;
                for (int r = br * block; r < rows && r < (br + 1) * block; r++)
                    for (int col = bc * block; col < cols && col < (bc + 1) * block; col++) {
                        size_t i = (size_t)r * (size_t)cols + (size_t)col;
                        if (cell_masked(data, opt->mask, i) || !isfinite(data[i])) continue;
                        sum += data[i];
                        count++;
                    }
                size_t p = (size_t)br * (size_t)pcol + (size_t)bc;
                pooled[p] = count ? (float)(sum / count) : 0.0f;
                pooled_mask[p] = count == 0;
            }
        char *subtitle = xasprintf("%s%s[%d, %d] shown as means of %dx%d blocks", opt->subtitle ? opt->subtitle : "",
                                   opt->subtitle ? "; " : "", rows, cols, block, block);
        heatmap_draw(path, pooled, pooled_mask, prow, pcol, block, &rl, &cl, opt, subtitle, cell);
        free(subtitle);
        free(pooled);
        free(pooled_mask);
    }
    labels_free(&rl);
    labels_free(&cl);
}

// ---- figure_heatmap_compare -----------------------------------------------------------------------------------------

void figure_heatmap_compare(const char *path, const float *a, const float *b, int rows, int cols,
                            const char *const *row_labels, const char *const *col_labels, const char *name_a,
                            const char *name_b, const HeatmapOptions *opt_in) {
    HeatmapOptions defaults = {0};
    const HeatmapOptions *opt = opt_in ? opt_in : &defaults;
    if (rows <= 0 || cols <= 0) fatal("figure_heatmap_compare %s: empty matrix %dx%d", path, rows, cols);
    size_t n = (size_t)rows * (size_t)cols;
    // |a - b|, with cells masked in both kept masked; the worst cell is reported under the third panel.
    float *diff = xmalloc(n * sizeof(float));
    uint8_t *diff_mask = xcalloc(n, 1);
    float max_diff = 0;
    size_t worst = 0;
    int mismatched_mask = 0;
    for (size_t i = 0; i < n; i++) {
        bool ma = cell_masked(a, opt->mask, i), mb = cell_masked(b, opt->mask, i);
        if (ma && mb) { diff[i] = 0; diff_mask[i] = 1; continue; }
        if (ma != mb || !isfinite(a[i]) || !isfinite(b[i])) { diff[i] = NAN; mismatched_mask++; continue; }  // magenta
        diff[i] = fabsf(a[i] - b[i]);
        if (diff[i] > max_diff) { max_diff = diff[i]; worst = i; }
    }
    // One colour range for both maps, so that equal values have equal colours.
    float vmin_a, vmax_a, vmin_b, vmax_b;
    value_range(a, n, opt, &vmin_a, &vmax_a);
    value_range(b, n, opt, &vmin_b, &vmax_b);
    float vmin = fminf(vmin_a, vmin_b), vmax = fmaxf(vmax_a, vmax_b);

    int longest = rows > cols ? rows : cols;
    int cell = clamp_int(420 / longest, 4, 32);
    Labels rl, cl;
    labels_make(&rl, row_labels, rows, opt->raw_labels, cell < MIN_LABEL_SPACING);
    labels_make(&cl, col_labels, cols, opt->raw_labels, cell < MIN_LABEL_SPACING);
    XLabelPlan xp = plan_x_labels(&cl, cell);
    int map_w = cols * cell, map_h = rows * cell;
    int gap = cell > 24 ? cell + 16 : 40;  // >= one cell: rotated x labels of neighbouring panels stay apart
    int y_title_w = opt->y_label ? GLYPH_H + 8 : 0;
    int x0 = PAD + y_title_w + rl.max_width + LABEL_GAP + 4;
    if (x0 < PAD + xp.overhang - cell / 2) x0 = PAD + xp.overhang - cell / 2;
    int x1 = x0 + map_w + gap;
    int cbar1 = x1 + map_w + 20;
    int x2 = cbar1 + COLORBAR_WIDTH + gap;
    int cbar2 = x2 + map_w + 20;
    int width = cbar2 + COLORBAR_WIDTH + PAD;
    int title_w = titles_width(opt->title, opt->subtitle) + 2 * PAD;
    if (width < title_w) width = title_w;
    int panel_title_h = GLYPH_H + 8;
    int map_y = PAD + titles_height(opt->title, opt->subtitle) + 10 + panel_title_h;
    int x_title_h = opt->x_label ? GLYPH_H + 10 : 0;
    int cbar_h = map_h < 160 ? 160 : map_h;
    int height = map_y + (map_h > cbar_h ? map_h : cbar_h) + xp.below + x_title_h + 2 * GLYPH_H + 20 + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, opt->title, opt->subtitle);
    const char *names[3] = {name_a ? name_a : "A", name_b ? name_b : "B", "|difference|"};
    int xs[3] = {x0, x1, x2};
    char diff_title[96];
    snprintf(diff_title, sizeof diff_title, "|%s - %s|", names[0], names[1]);
    names[2] = diff_title;
    for (int p = 0; p < 3; p++) {
        const float *d = p == 0 ? a : p == 1 ? b : diff;
        const uint8_t *m = p == 2 ? diff_mask : opt->mask;
        if (p < 2) draw_cells(&c, xs[p], map_y, cell, d, rows, cols, m, opt->colormap, vmin, vmax, opt->show_values && cell >= 36);
        else draw_cells(&c, xs[p], map_y, cell, d, rows, cols, m, COLORMAP_REDS, 0, max_diff > 0 ? max_diff : 1, false);
        draw_text(&c, xs[p] + map_w / 2, map_y - 6, names[p], 1, 0, ALIGN_CENTER | ALIGN_BOTTOM, COLOR_BLACK);
        draw_x_labels(&c, &cl, &xp, xs[p], map_y + map_h, cell);
        if (opt->x_label) draw_text(&c, xs[p] + map_w / 2, map_y + map_h + xp.below + 6, opt->x_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    }
    draw_y_labels(&c, &rl, x0, map_y, cell);
    if (opt->y_label) draw_text(&c, PAD, map_y + map_h / 2, opt->y_label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    draw_colorbar(&c, cbar1, map_y, 20, cbar_h, opt->colormap, vmin, vmax, opt->value_label);
    draw_colorbar(&c, cbar2, map_y, 20, cbar_h, COLORMAP_REDS, 0, max_diff > 0 ? max_diff : 1, "|difference|");
    // The numbers a reader wants: the largest difference and where it is.
    char line[160];
    int text_y = map_y + (map_h > cbar_h ? map_h : cbar_h) + xp.below + x_title_h + 10;
    snprintf(line, sizeof line, "max |difference| = %.3g at [%zu, %zu]", (double)max_diff, worst / (size_t)cols, worst % (size_t)cols);
    draw_text(&c, x2, text_y, line, 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
    if (mismatched_mask) {
        snprintf(line, sizeof line, "%d cells masked or non-finite in only one map (magenta)", mismatched_mask);
        draw_text(&c, x2, text_y + GLYPH_H + 4, line, 1, 0, ALIGN_LEFT | ALIGN_TOP, RGB(180, 0, 0));
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
    labels_free(&rl);
    labels_free(&cl);
    free(diff);
    free(diff_mask);
}

// ---- figure_heatmap_grid --------------------------------------------------------------------------------------------

void figure_heatmap_grid(const char *path, const float *maps, int n, int rows, int cols, int group_size,
                         const HeatmapOptions *opt_in) {
    HeatmapOptions defaults = {0};
    const HeatmapOptions *opt = opt_in ? opt_in : &defaults;
    if (n <= 0 || rows <= 0 || cols <= 0) fatal("figure_heatmap_grid %s: empty input", path);
    if (group_size < 1 || n % group_size != 0) fatal("figure_heatmap_grid %s: %d maps do not split into groups of %d", path, n, group_size);
    size_t per_map = (size_t)rows * (size_t)cols, total = per_map * (size_t)n;
    // Grid shape: about sqrt(2n) maps per row, rounded to whole groups so a group never wraps.
    int target = (int)ceil(sqrt(2.0 * n));
    int groups_per_row = (int)lround((double)target / group_size);
    if (groups_per_row < 1) groups_per_row = 1;
    int n_groups = n / group_size;
    if (groups_per_row > n_groups) groups_per_row = n_groups;
    int per_row = groups_per_row * group_size;
    int grid_rows = (n_groups + groups_per_row - 1) / groups_per_row;

    // Maps as large as about 1200 px of maps per grid row allow (32 heads of 17 tokens: 8 px cells; 4 heads: 17 px,
    // room for every token label), at most 24 px a cell; token labels on the first map of each grid row and under
    // the lowest map of each column.
    int map_gap = 8, group_pad = 8, group_gap = 18;
    int longest = rows > cols ? rows : cols;
    int cell = clamp_int((1200 / per_row - map_gap) / longest, 1, 24);
    Labels rl, cl;
    labels_make(&rl, opt->row_labels, rows, opt->raw_labels, cell < MIN_LABEL_SPACING);
    labels_make(&cl, opt->col_labels, cols, opt->raw_labels, cell < MIN_LABEL_SPACING);
    XLabelPlan xp = plan_x_labels(&cl, cell);
    int map_w = cols * cell, map_h = rows * cell;
    int head_label_h = GLYPH_H + 2;                        // "h12" above each map
    int group_label_h = group_size > 1 ? GLYPH_H + 4 : 0;  // "kv 3 (heads 12-15)" above each group frame
    int group_w = group_size * map_w + (group_size - 1) * map_gap + 2 * group_pad;
    int group_h = head_label_h + map_h + 2 * group_pad;
    int grid_w = groups_per_row * group_w + (groups_per_row - 1) * group_gap;
    // the maps of row r that are the lowest of their column carry x labels: room below that row
    int last_row_maps = n - (grid_rows - 1) * per_row;
    int y_title_w = opt->y_label ? GLYPH_H + 8 : 0;
    // labels sit outside a group's frame (frame = 0 without frames): ticks on the frame, text beyond them
    int frame = group_size > 1 ? group_pad : 0;
    int left = PAD + y_title_w + rl.max_width + LABEL_GAP + 4 + frame;  // x of the first map
    if (left < PAD + xp.overhang - cell / 2) left = PAD + xp.overhang - cell / 2;
    int top = PAD + titles_height(opt->title, opt->subtitle) + 10;
    int *row_y = xmalloc((size_t)grid_rows * sizeof(int));
    int y = top;
    for (int r = 0; r < grid_rows; r++) {
        row_y[r] = y;
        bool labels_below = r == grid_rows - 1 || (r == grid_rows - 2 && last_row_maps < per_row);
        y += group_label_h + group_h + (labels_below ? xp.below + frame - group_pad + 4 : 0) + group_gap;
    }
    int grid_bottom = y - group_gap;
    int x_title_h = opt->x_label ? GLYPH_H + 10 : 0;
    int cbar_x = left - group_pad + grid_w + 24;
    int cbar_y = top + group_label_h + group_pad + head_label_h;
    int cbar_h = clamp_int(grid_bottom - xp.below - cbar_y, 120, 600);
    bool masked = opt->mask != NULL || any_masked(maps, NULL, total);
    int width = cbar_x + COLORBAR_WIDTH + PAD;
    int title_w = titles_width(opt->title, opt->subtitle) + 2 * PAD;
    if (width < title_w) width = title_w;
    int height = grid_bottom + x_title_h + PAD;
    if (height < cbar_y + cbar_h + (masked ? 40 : 0) + PAD) height = cbar_y + cbar_h + (masked ? 40 : 0) + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, opt->title, opt->subtitle);
    float vmin, vmax;
    HeatmapOptions range_opt = *opt;
    range_opt.mask = NULL;  // a per-map mask does not apply to the whole stack
    value_range(maps, total, &range_opt, &vmin, &vmax);
    for (int g = 0; g < n_groups; g++) {
        int gr = g / groups_per_row;
        int gx = left - group_pad + (g % groups_per_row) * (group_w + group_gap);
        int gy = row_y[gr];
        if (group_size > 1) {
            char label[64];
            snprintf(label, sizeof label, "kv %d (heads %d-%d)", g, g * group_size, g * group_size + group_size - 1);
            draw_text(&c, gx + 2, gy, label, 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
            draw_rect_outline(&c, gx, gy + group_label_h, group_w, group_h, 1, RGB(120, 120, 120));
        }
        for (int k = 0; k < group_size; k++) {
            int h = g * group_size + k, column = h % per_row;
            int mx = gx + group_pad + k * (map_w + map_gap);
            int my = gy + group_label_h + group_pad + head_label_h;
            char label[32];
            snprintf(label, sizeof label, "h%d", h);
            draw_text(&c, mx + map_w / 2, my - 2, label, 1, 0, ALIGN_CENTER | ALIGN_BOTTOM, COLOR_TEXT);
            draw_cells(&c, mx, my, cell, maps + (size_t)h * per_map, rows, cols, opt->mask, opt->colormap, vmin, vmax, false);
            if (column == 0) draw_y_labels(&c, &rl, mx - frame, my, cell);
            bool lowest = gr == grid_rows - 1 || (gr == grid_rows - 2 && column >= last_row_maps);
            if (lowest) draw_x_labels(&c, &cl, &xp, mx, my + map_h + frame, cell);
        }
    }
    if (opt->x_label) draw_text(&c, left + grid_w / 2 - group_pad, grid_bottom + 6, opt->x_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    if (opt->y_label) draw_text(&c, PAD, top + (grid_bottom - top) / 2, opt->y_label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    draw_colorbar(&c, cbar_x, cbar_y, 20, cbar_h, opt->colormap, vmin, vmax, opt->value_label);
    if (masked) draw_mask_legend(&c, cbar_x, cbar_y + cbar_h + 14);
    if (opt->layout) {
        int lowest_row = grid_rows - 1;  // column 0 always has a map in the last grid row
        int my0 = top + group_label_h + group_pad + head_label_h;
        *opt->layout = (HeatmapLayout){width, height, left, my0, cell, 1, xp.angle, xp.step,
                                       cell >= MIN_LABEL_SPACING ? 1 : (MIN_LABEL_SPACING + cell - 1) / cell, cl.max_width,
                                       vmin, vmax, row_y[lowest_row] + group_label_h + group_pad + head_label_h + map_h + frame,
                                       left - frame};
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
    free(row_y);
    labels_free(&rl);
    labels_free(&cl);
}

// ---- figure_text_grid -----------------------------------------------------------------------------------------------

void figure_text_grid(const char *path, const float *values, const char *const *texts, int rows, int cols,
                      const char *const *row_labels, const char *const *col_labels, const HeatmapOptions *opt_in) {
    HeatmapOptions defaults = {0};
    const HeatmapOptions *opt = opt_in ? opt_in : &defaults;
    if (rows <= 0 || cols <= 0) fatal("figure_text_grid %s: empty grid %dx%d", path, rows, cols);
    size_t n = (size_t)rows * (size_t)cols;
    // The cell texts first: their width sets the cells' (wide enough for about 9 glyphs, cut with '…' beyond).
    char **cell_text = xcalloc(n, sizeof(char *));
    int text_w = 0;
    for (size_t i = 0; i < n; i++) {
        const char *src = texts && texts[i] ? texts[i] : "";
        size_t cap = strlen(src) * 4 + 32;
        cell_text[i] = xmalloc(cap);
        token_display(src, cell_text[i], cap);
        fit_text(cell_text[i], cap, 72);
        int w = font_text_width(cell_text[i], 1);
        if (w > text_w) text_w = w;
    }
    int cell_w = clamp_int(text_w + 10, 40, 82), cell_h = GLYPH_H + 10;
    Labels rl, cl;
    labels_make(&rl, row_labels, rows, true, false);
    labels_make(&cl, col_labels, cols, opt->raw_labels, false);
    XLabelPlan xp = plan_x_labels(&cl, cell_w);
    int y_title_w = opt->y_label ? GLYPH_H + 8 : 0;
    int x_title_h = opt->x_label ? GLYPH_H + 10 : 0;
    int map_w = cols * cell_w, map_h = rows * cell_h;
    int map_x = PAD + y_title_w + rl.max_width + LABEL_GAP + 4;
    if (map_x < PAD + xp.overhang - cell_w / 2) map_x = PAD + xp.overhang - cell_w / 2;
    int map_y = PAD + titles_height(opt->title, opt->subtitle) + 10;
    int cbar_x = map_x + map_w + 24;
    int width = cbar_x + COLORBAR_WIDTH + PAD;
    if (width < titles_width(opt->title, opt->subtitle) + 2 * PAD) width = titles_width(opt->title, opt->subtitle) + 2 * PAD;
    int cbar_h = map_h < 160 ? 160 : map_h;
    int height = map_y + (map_h + xp.below + x_title_h > cbar_h ? map_h + xp.below + x_title_h : cbar_h) + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, opt->title, opt->subtitle);
    float vmin, vmax;
    HeatmapOptions range_opt = *opt;
    range_opt.mask = NULL;
    value_range(values, n, &range_opt, &vmin, &vmax);
    for (int r = 0; r < rows; r++)
        for (int col = 0; col < cols; col++) {
            size_t i = (size_t)r * (size_t)cols + (size_t)col;
            int x = map_x + col * cell_w, y = map_y + r * cell_h;
            Rgb color = isfinite(values[i]) ? colormap_rgb(opt->colormap, scale_position(values[i], vmin, vmax)) : COLOR_INVALID;
            draw_rect(&c, x, y, cell_w, cell_h, color);
            draw_rect_outline(&c, x, y, cell_w, cell_h, 1, COLOR_WHITE);  // a thin gap between neighbours
            double luminance = 0.299 * color.r + 0.587 * color.g + 0.114 * color.b;
            draw_text(&c, x + cell_w / 2, y + cell_h / 2, cell_text[i], 1, 0, ALIGN_CENTER | ALIGN_MIDDLE,
                      luminance > 140 ? COLOR_TEXT : COLOR_WHITE);
        }
    draw_rect_outline(&c, map_x - 1, map_y - 1, map_w + 2, map_h + 2, 1, COLOR_TEXT);
    draw_y_labels(&c, &rl, map_x, map_y, cell_h);
    draw_x_labels(&c, &cl, &xp, map_x, map_y + map_h, cell_w);
    if (opt->x_label) draw_text(&c, map_x + map_w / 2, map_y + map_h + xp.below + 6, opt->x_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    if (opt->y_label) draw_text(&c, PAD, map_y + map_h / 2, opt->y_label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    draw_colorbar(&c, cbar_x, map_y, 20, cbar_h, opt->colormap, vmin, vmax, opt->value_label);
    canvas_write_png(&c, path);
    canvas_free(&c);
    for (size_t i = 0; i < n; i++) free(cell_text[i]);
    free(cell_text);
    labels_free(&rl);
    labels_free(&cl);
}

// ---- axes shared by the charts --------------------------------------------------------------------------------------

typedef struct {
    int x, y, w, h;        // plot area in pixels
    double x0, x1, y0, y1; // data range shown
    bool x_integer;        // x takes whole values (layers, positions): no tick between two of them
} PlotArea;

static double px_of(const PlotArea *p, double x) { return p->x + (x - p->x0) / (p->x1 - p->x0) * p->w; }
static double py_of(const PlotArea *p, double y) { return p->y + p->h - (y - p->y0) / (p->y1 - p->y0) * p->h; }

// Frame, light grid lines and tick values on the left and bottom.
static void draw_axes(Canvas *c, const PlotArea *p, bool x_ticks, bool y_ticks) {
    double ticks[16], step;
    char text[32];
    if (x_ticks) {
        int n = nice_ticks(p->x0, p->x1, clamp_int(p->w / 70, 2, 11), ticks, &step);
        if (p->x_integer && step < 1) {  // 0, 1, 2, ... rather than 0, 0.5, 1, ...
            n = 0;
            step = 1;
            for (double v = ceil(p->x0); v <= p->x1 && n < 16; v += 1) ticks[n++] = v;
        }
        for (int i = 0; i < n; i++) {
            int tx = (int)lround(px_of(p, ticks[i]));
            draw_rect(c, tx, p->y, 1, p->h, RGB(230, 230, 230));
            draw_rect(c, tx, p->y + p->h, 1, 5, COLOR_TEXT);
            format_tick(ticks[i], step, text, sizeof text);
            draw_text(c, tx, p->y + p->h + 8, text, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT);
        }
    }
    if (y_ticks) {
        int n = nice_ticks(p->y0, p->y1, clamp_int(p->h / 50, 2, 11), ticks, &step);
        for (int i = 0; i < n; i++) {
            int ty = (int)lround(py_of(p, ticks[i]));
            draw_rect(c, p->x, ty, p->w, 1, RGB(230, 230, 230));
            draw_rect(c, p->x - 5, ty, 5, 1, COLOR_TEXT);
            format_tick(ticks[i], step, text, sizeof text);
            draw_text(c, p->x - 8, ty, text, 1, 0, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_TEXT);
        }
    }
    draw_rect_outline(c, p->x - 1, p->y - 1, p->w + 2, p->h + 2, 1, COLOR_TEXT);
}

// Widest tick label of a nice-tick axis over [lo, hi] (to reserve room on the left).
static int tick_labels_width(double lo, double hi, int max_ticks) {
    double ticks[16], step;
    int n = nice_ticks(lo, hi, max_ticks, ticks, &step), w = 0;
    for (int i = 0; i < n; i++) {
        char text[32];
        format_tick(ticks[i], step, text, sizeof text);
        int tw = font_text_width(text, 1);
        if (tw > w) w = tw;
    }
    return w;
}

// ---- figure_complex_rays --------------------------------------------------------------------------------------------

typedef struct { int x0, y0, x1, y1; } Box;
static bool boxes_overlap(Box a, Box b) { return a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1; }

// "3, 5, 7-12" from a sorted list of indices.
static void format_index_list(const int *idx, int n, char *out, size_t size) {
    size_t len = 0;
    out[0] = 0;
    for (int i = 0; i < n && len + 16 < size;) {
        int j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1) j++;
        if (j > i) len += (size_t)snprintf(out + len, size - len, "%s%d-%d", len ? ", " : "", idx[i], idx[j]);
        else len += (size_t)snprintf(out + len, size - len, "%s%d", len ? ", " : "", idx[i]);
        i = j + 1;
    }
}

void figure_complex_rays(const char *path, const float *pairs, int n, const char *title, const char *subtitle,
                         bool unit_circle) {
    if (n <= 0) fatal("figure_complex_rays %s: no rays", path);
    double r_max = 0;
    for (int i = 0; i < n; i++) {
        double r = hypot(pairs[2 * i], pairs[2 * i + 1]);
        if (isfinite(r) && r > r_max) r_max = r;
    }
    if (r_max == 0) r_max = 1;
    double extent = 1.3 * (unit_circle && r_max < 1 ? 1.0 : r_max);  // room for labels outside the tips
    int plot = 640;
    int left = PAD + GLYPH_H + 10 + tick_labels_width(-extent, extent, 8) + 10;
    int top = PAD + titles_height(title, subtitle) + 10;
    int legend_w = 110;  // "pair index" and five swatches with their index
    int width = left + plot + 30 + legend_w + PAD;
    int title_w = titles_width(title, subtitle) + 2 * PAD;
    if (width < title_w) width = title_w;
    int height = top + plot + 8 + GLYPH_H + 6 + GLYPH_H + 10 + GLYPH_H + PAD;  // ticks, "real", the note
    PlotArea p = {left, top, plot, plot, -extent, extent, -extent, extent, false};

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, title, subtitle);
    draw_axes(&c, &p, true, true);
    double ox = px_of(&p, 0), oy = py_of(&p, 0), unit_px = p.w / (2 * extent);
    draw_line(&c, (float)p.x, (float)oy, (float)(p.x + p.w), (float)oy, 1, RGB(150, 150, 150));
    draw_line(&c, (float)ox, (float)p.y, (float)ox, (float)(p.y + p.h), 1, RGB(150, 150, 150));
    if (unit_circle) draw_circle(&c, (float)ox, (float)oy, (float)unit_px, 1.2f, 6, RGB(130, 130, 130));
    draw_text(&c, p.x + p.w / 2, p.y + p.h + 8 + GLYPH_H + 6, "real", 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    draw_text(&c, PAD, p.y + p.h / 2, "imag", 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);

    // Rays coloured by pair index (viridis up to 0.85: its last yellows are too pale on white).
    for (int i = 0; i < n; i++) {
        double re = pairs[2 * i], im = pairs[2 * i + 1];
        if (!isfinite(re) || !isfinite(im)) continue;
        Rgb color = colormap_rgb(COLORMAP_VIRIDIS, n > 1 ? 0.85f * (float)i / (float)(n - 1) : 0);
        float tx = (float)px_of(&p, re), ty = (float)py_of(&p, im);
        draw_line(&c, (float)ox, (float)oy, tx, ty, 1.6f, color);
        draw_disc(&c, tx, ty, 2.5f, color);
    }
    // Labels at the tips, pushed outwards along the ray a little until they touch no other label; lowest index
    // first, so the fast-turning pairs, which are spread out, are all labelled at their tips. From the first ray
    // right of the origin that finds no room on, the rays right of the origin are a crowd, labelled below.
    Box *placed = xmalloc((size_t)n * sizeof(Box));
    int n_placed = 0, *unlabelled = xmalloc((size_t)n * sizeof(int)), n_unlabelled = 0;
    int *crowded = xmalloc((size_t)n * sizeof(int)), n_crowded = 0;
    for (int i = 0; i < n; i++) {
        double re = pairs[2 * i], im = pairs[2 * i + 1], r = hypot(re, im);
        bool done = false;
        if (isfinite(r) && r > 0 && re > 0 && n_crowded > 0) { crowded[n_crowded++] = i; continue; }  // the crowd began
        if (isfinite(r) && r > 0) {
            char text[16];
            snprintf(text, sizeof text, "%d", i);
            int tw = font_text_width(text, 1);
            for (double push = 10; push <= 22 && !done; push += 4) {  // within a glyph's height of the tip
                double d = r * unit_px + push;
                int cx = (int)lround(ox + re / r * d), cy = (int)lround(oy - im / r * d);
                Box b = {cx - tw / 2 - 1, cy - GLYPH_H / 2, cx + tw / 2 + 1, cy + GLYPH_H / 2};
                if (b.x0 < p.x || b.x1 > p.x + p.w || b.y0 < p.y || b.y1 > p.y + p.h) break;
                bool free_spot = true;
                for (int k = 0; k < n_placed && free_spot; k++) free_spot = !boxes_overlap(b, placed[k]);
                if (!free_spot) continue;
                placed[n_placed++] = b;
                draw_text(&c, cx, cy, text, 1, 0, ALIGN_CENTER | ALIGN_MIDDLE, COLOR_TEXT);
                done = true;
            }
            if (!done && re > 0) { crowded[n_crowded++] = i; continue; }
        }
        if (!done) unlabelled[n_unlabelled++] = i;
    }
    // The crowd near angle 0 (right of the origin): labels in a column beside the circle, in the order of their tips
    // from top to bottom, each joined to its tip by a thin line. A tip less than 3 px from the last one labelled
    // there could not be told apart: those are listed under the plot.
    {
        double *tip_y = xmalloc((size_t)(n_crowded + 1) * sizeof(double));
        for (int a = 0; a < n_crowded; a++) tip_y[a] = py_of(&p, pairs[2 * crowded[a] + 1]);
        for (int a = 1; a < n_crowded; a++)  // by tip height (insertion sort: a few dozen rays)
            for (int b = a; b > 0 && tip_y[b] < tip_y[b - 1]; b--) {
                double t = tip_y[b]; tip_y[b] = tip_y[b - 1]; tip_y[b - 1] = t;
                int u = crowded[b]; crowded[b] = crowded[b - 1]; crowded[b - 1] = u;
            }
        int col_x = (int)lround(ox + unit_px) + 30, next_y = p.y, last_tip = -1000;
        for (int a = 0; a < n_crowded; a++) {
            int i = crowded[a];
            double re = pairs[2 * i], im = pairs[2 * i + 1];
            float tx = (float)px_of(&p, re), ty = (float)py_of(&p, im);
            char text[16];
            snprintf(text, sizeof text, "%d", i);
            int tw = font_text_width(text, 1), ly = (int)lround(ty) > next_y ? (int)lround(ty) : next_y;
            Box b = {col_x - 1, ly - GLYPH_H / 2, col_x + tw + 1, ly + GLYPH_H / 2};
            bool free_spot = (int)lround(ty) - last_tip >= 3 && b.x1 <= p.x + p.w && b.y1 <= p.y + p.h;
            for (int k = 0; k < n_placed && free_spot; k++) free_spot = !boxes_overlap(b, placed[k]);
            if (!free_spot) { unlabelled[n_unlabelled++] = i; continue; }
            placed[n_placed++] = b;
            draw_line(&c, tx + 3, ty, (float)(col_x - 3), (float)ly, 1, RGB(150, 150, 150));
            draw_text(&c, col_x, ly, text, 1, 0, ALIGN_LEFT | ALIGN_MIDDLE, COLOR_TEXT);
            next_y = ly + GLYPH_H + 1;
            last_tip = (int)lround(ty);
        }
        free(tip_y);
        for (int a = 1; a < n_unlabelled; a++)  // back in index order for the note
            for (int b = a; b > 0 && unlabelled[b] < unlabelled[b - 1]; b--) {
                int u = unlabelled[b]; unlabelled[b] = unlabelled[b - 1]; unlabelled[b - 1] = u;
            }
    }
    // Legend: the colour of index 0 and of the last index, and the rays that had no room for a label.
    int lx = p.x + p.w + 30, ly = p.y + 4;
    draw_text(&c, lx, ly, "pair index", 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
    for (int k = 0; k < 5; k++) {
        int i = n > 1 ? k * (n - 1) / 4 : 0;
        char text[32];
        snprintf(text, sizeof text, "%d", i);
        int y = ly + (k + 1) * (GLYPH_H + 6) + 4;
        draw_line(&c, (float)lx, (float)(y + 8), (float)(lx + 30), (float)(y + 8), 3, colormap_rgb(COLORMAP_VIRIDIS, n > 1 ? 0.85f * (float)i / (float)(n - 1) : 0));
        draw_text(&c, lx + 38, y, text, 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_TEXT);
    }
    if (n_unlabelled) {
        char list[400], line[520];
        format_index_list(unlabelled, n_unlabelled, list, sizeof list);
        double widest = 0;  // how far from the real axis the unlabelled rays reach, in degrees
        for (int k = 0; k < n_unlabelled; k++) {
            const float *z = pairs + 2 * unlabelled[k];
            double deg = fabs(atan2(z[1], z[0])) * 180.0 / M_PI;
            if (isfinite(deg) && deg > widest) widest = deg;
        }
        snprintf(line, sizeof line, "no room for the labels of pairs %s (all within %.2g\xC2\xB0 of the real axis)", list, widest);
        fit_text(line, sizeof line, width - 2 * PAD);
        draw_text(&c, PAD, p.y + p.h + 8 + 2 * GLYPH_H + 16, line, 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_TEXT);
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
    free(placed);
    free(unlabelled);
    free(crowded);
}

// ---- figure_line_chart ----------------------------------------------------------------------------------------------

// A categorical palette (distinct hues of similar weight) for chart series.
static Rgb series_color(int i) {
    static const uint8_t palette[8][3] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                          {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
    return RGB(palette[i % 8][0], palette[i % 8][1], palette[i % 8][2]);
}

void figure_line_chart(const char *path, const float *x, int n_points, const ChartSeries *series, int n_series,
                       const char *title, const char *x_label, const char *y_label) {
    if (n_points <= 0 || n_series <= 0) fatal("figure_line_chart %s: no data", path);
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < n_points; i++) {
        double xv = x ? x[i] : i;
        if (isfinite(xv)) { xmin = fmin(xmin, xv); xmax = fmax(xmax, xv); }
        for (int s = 0; s < n_series; s++) {
            double y = series[s].values[i];
            if (isfinite(y)) { ymin = fmin(ymin, y); ymax = fmax(ymax, y); }
        }
    }
    if (!(xmax >= xmin)) { xmin = 0; xmax = 1; }
    if (!(ymax >= ymin)) { ymin = 0; ymax = 1; }
    if (ymin >= 0 && ymin <= 0.5 * ymax) ymin = 0;  // sizes and times: from 0, so that heights compare honestly
    if (xmax == xmin) { xmin -= 0.5; xmax += 0.5; }
    if (ymax == ymin) { ymin -= 0.5; ymax += 0.5; }
    double ypad = 0.06 * (ymax - ymin), xpad = 0.02 * (xmax - xmin);
    PlotArea p = {0, 0, 760, 420, xmin - xpad, xmax + xpad, ymin - ypad, ymax + ypad, true};
    for (int i = 0; i < n_points && x; i++) p.x_integer &= !isfinite(x[i]) || x[i] == floor(x[i]);
    int y_title_w = y_label ? GLYPH_H + 10 : 0;
    p.x = PAD + y_title_w + tick_labels_width(p.y0, p.y1, clamp_int(p.h / 50, 2, 11)) + 12;
    p.y = PAD + titles_height(title, NULL) + 10;
    int legend_w = 0;
    for (int s = 0; s < n_series; s++) {
        int w = font_text_width(series[s].name ? series[s].name : "", 1);
        if (w > legend_w) legend_w = w;
    }
    legend_w = legend_w > 320 ? 320 : legend_w;
    int width = p.x + p.w + 24 + 40 + legend_w + PAD;
    int title_w = titles_width(title, NULL) + 2 * PAD;
    if (width < title_w) width = title_w;
    int height = p.y + p.h + 8 + GLYPH_H + (x_label ? GLYPH_H + 14 : 0) + PAD;
    int legend_h = n_series * (GLYPH_H + 8);
    if (p.y + legend_h + PAD > height) height = p.y + legend_h + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, title, NULL);
    draw_axes(&c, &p, true, true);
    for (int s = 0; s < n_series; s++) {
        Rgb color = series_color(s);
        for (int i = 0; i < n_points; i++) {
            double xv = x ? x[i] : i, yv = series[s].values[i];
            if (!isfinite(xv) || !isfinite(yv)) continue;
            float px = (float)px_of(&p, xv), py = (float)py_of(&p, yv);
            if (i + 1 < n_points) {
                double xn = x ? x[i + 1] : i + 1, yn = series[s].values[i + 1];
                if (isfinite(xn) && isfinite(yn)) draw_line(&c, px, py, (float)px_of(&p, xn), (float)py_of(&p, yn), 2, color);
            }
            if (n_points <= 64) draw_disc(&c, px, py, 3, color);
        }
        int ly = p.y + 4 + s * (GLYPH_H + 8);
        int lx = p.x + p.w + 24;
        draw_line(&c, (float)lx, (float)(ly + 8), (float)(lx + 30), (float)(ly + 8), 2.5f, color);
        draw_disc(&c, (float)(lx + 15), (float)(ly + 8), 3, color);
        char name[256];
        snprintf(name, sizeof name, "%s", series[s].name ? series[s].name : "");
        fit_text(name, sizeof name, 320);
        draw_text(&c, lx + 40, ly, name, 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_TEXT);
    }
    if (x_label) draw_text(&c, p.x + p.w / 2, p.y + p.h + 8 + GLYPH_H + 8, x_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    if (y_label) draw_text(&c, PAD, p.y + p.h / 2, y_label, 1, 90, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
    canvas_write_png(&c, path);
    canvas_free(&c);
}

// ---- figure_bar_chart_h ---------------------------------------------------------------------------------------------

// ref (optional): a dashed vertical line at *ref with ref_label under the axis (figure_bar_chart_h_ref).
static void bar_chart_h(const char *path, const float *values, const char *const *labels, int n, const char *title,
                        const char *value_label, bool labels_are_tokens, const float *ref, const char *ref_label) {
    if (n <= 0) fatal("figure_bar_chart_h %s: no bars", path);
    Labels L;
    labels_make(&L, labels, n, !labels_are_tokens, false);
    double lo = 0, hi = 0;  // bars start at 0, so the range always includes it
    for (int i = 0; i < n; i++)
        if (isfinite(values[i])) { lo = fmin(lo, values[i]); hi = fmax(hi, values[i]); }
    if (ref && isfinite(*ref)) { lo = fmin(lo, *ref); hi = fmax(hi, *ref); }
    if (hi == lo) hi = lo + 1;
    bool unit_range = lo >= 0 && hi <= 1;  // probabilities: four decimals
    char text[48];
    int value_w = 0;
    for (int i = 0; i < n; i++) {
        snprintf(text, sizeof text, unit_range ? "%.4f" : "%.4g", (double)values[i]);
        int w = font_text_width(text, 1);
        if (w > value_w) value_w = w;
    }
    int bar_h = 26, bar_gap = 8, plot_w = 560;
    // The data range is widened so that the value written after the longest bar stays inside the frame.
    double room = (double)(value_w + 14) / (plot_w - value_w - 14);
    PlotArea p = {0, 0, plot_w, n * (bar_h + bar_gap) + bar_gap, lo < 0 ? lo - (hi - lo) * room : lo, hi + (hi - lo) * room, 0, 1, false};
    p.x = PAD + L.max_width + LABEL_GAP + 4;
    p.y = PAD + titles_height(title, NULL) + 10;
    int width = p.x + p.w + PAD + 16;                   // the last tick value is centred on the frame's edge
    int title_w = titles_width(title, NULL) + 4 * PAD;  // a large title keeps clear of the edges
    if (width < title_w) width = title_w;
    int height = p.y + p.h + 8 + GLYPH_H + (value_label ? GLYPH_H + 14 : 0) + (ref ? GLYPH_H + 8 : 0) + PAD;

    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, title, NULL);
    draw_axes(&c, &p, true, false);
    int zero_x = (int)lround(px_of(&p, 0));
    for (int i = 0; i < n; i++) {
        int y = p.y + bar_gap + i * (bar_h + bar_gap);
        double v = isfinite(values[i]) ? values[i] : 0;
        int vx = (int)lround(px_of(&p, v));
        int x0 = vx < zero_x ? vx : zero_x, w = abs(vx - zero_x);
        // a bar under 3 px (p < 0.5% here) is drawn 3 px wide so that it shows; its value is written beside it
        if (w < 3 && v != 0) { w = 3; if (vx < zero_x) x0 = zero_x - 3; }
        // the first bar stands out (the top-1 token) unless the bars are compared with a reference
        draw_rect(&c, x0, y, w < 1 ? 1 : w, bar_h, i == 0 && !ref ? RGB(31, 119, 180) : RGB(110, 160, 205));
        draw_text(&c, p.x - LABEL_GAP, y + bar_h / 2, L.text[i], 1, 0, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_BLACK);
        snprintf(text, sizeof text, unit_range ? "%.4f" : "%.4g", (double)values[i]);
        if (v >= 0) draw_text(&c, vx + 6, y + bar_h / 2, text, 1, 0, ALIGN_LEFT | ALIGN_MIDDLE, COLOR_TEXT);
        else draw_text(&c, vx - 6, y + bar_h / 2, text, 1, 0, ALIGN_RIGHT | ALIGN_MIDDLE, COLOR_TEXT);
    }
    draw_rect(&c, zero_x, p.y, 1, p.h, COLOR_TEXT);
    int below = p.y + p.h + 8 + GLYPH_H + 8;
    if (value_label) draw_text(&c, p.x + p.w / 2, below, value_label, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK), below += GLYPH_H + 6;
    if (ref && isfinite(*ref)) {
        float rx = (float)px_of(&p, *ref);
        draw_dashed_line(&c, rx, (float)p.y, rx, (float)(p.y + p.h), 2.0f, 6.0f, RGB(214, 39, 40));
        if (ref_label) {
            snprintf(text, sizeof text, "%.4g", (double)*ref);
            char line[256];
            snprintf(line, sizeof line, "- - %s (%s)", ref_label, text);
            draw_text(&c, p.x + p.w / 2, below, line, 1, 0, ALIGN_CENTER | ALIGN_TOP, RGB(214, 39, 40));
        }
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
    labels_free(&L);
}

void figure_bar_chart_h(const char *path, const float *values, const char *const *labels, int n, const char *title,
                        const char *value_label, bool labels_are_tokens) {
    bar_chart_h(path, values, labels, n, title, value_label, labels_are_tokens, NULL, NULL);
}

void figure_bar_chart_h_ref(const char *path, const float *values, const char *const *labels, int n, const char *title,
                            const char *value_label, float ref, const char *ref_label) {
    bar_chart_h(path, values, labels, n, title, value_label, false, &ref, ref_label);
}

// ---- figure_banded_matrices -----------------------------------------------------------------------------------------

#define BANDED_BOX 200   // the longer side of a matrix's box, pixels
#define BANDED_COLS 4    // panels per row
#define BANDED_STRIPE 6  // width of one colour's stripe in a band of several colours

static Rgb band_color(int i) {  // series_color's eight, then two more for up to ten ranks
    static const uint8_t extra[2][3] = {{188, 189, 34}, {23, 190, 207}};
    i %= 10;
    return i < 8 ? series_color(i) : RGB(extra[i - 8][0], extra[i - 8][1], extra[i - 8][2]);
}

// The band's pixels [x, x+w) x [y, y+h), in its colours: stripes across the band when it has several.
static void draw_band(Canvas *c, int x, int y, int w, int h, unsigned colors, bool rows) {
    int idx[32], n = 0;
    for (int b = 0; b < 32; b++)
        if (colors & (1u << b)) idx[n++] = b;
    if (n == 0) { draw_rect(c, x, y, w, h, COLOR_GRID); return; }
    if (n == 1) { draw_rect(c, x, y, w, h, band_color(idx[0])); return; }
    // stripes run along the band, so that each holder's colour shows over the band's whole length
    int len = rows ? h : w;
    for (int s = 0, k = 0; s < len; s += BANDED_STRIPE, k++) {
        int t = len - s < BANDED_STRIPE ? len - s : BANDED_STRIPE;
        if (rows) draw_rect(c, x, y + s, w, t, band_color(idx[k % n]));
        else draw_rect(c, x + s, y, t, h, band_color(idx[k % n]));
    }
}

void figure_banded_matrices(const char *path, const FigureBandedMatrix *m, int n, const char *const *legend,
                            int n_legend, const char *const how[3], const char *title, const char *subtitle) {
    if (n <= 0) fatal("figure_banded_matrices %s: no matrices", path);
    const int panel_w = BANDED_BOX + 60, panel_h = BANDED_BOX + 3 * GLYPH_H + 24;
    const int cols = n < BANDED_COLS ? n : BANDED_COLS, rows_of_panels = (n + cols - 1) / cols;
    int legend_w = 0;
    for (int i = 0; i < n_legend; i++) legend_w += 22 + font_text_width(legend[i], 1) + 18;
    int legend_lines = 1 + legend_w / (cols * panel_w > 600 ? cols * panel_w : 600);
    int width = PAD * 2 + cols * panel_w;
    int tw = titles_width(title, subtitle) + 2 * PAD;
    if (width < tw) width = tw;
    int top = PAD + titles_height(title, subtitle) + 8;
    int height = top + rows_of_panels * panel_h + (n_legend ? legend_lines * (GLYPH_H + 10) + 10 : 0) + PAD;
    Canvas c;
    canvas_init(&c, width, height, COLOR_WHITE);
    draw_titles(&c, width / 2, PAD, title, subtitle);
    int x_origin = (width - cols * panel_w) / 2;
    for (int i = 0; i < n; i++) {
        const FigureBandedMatrix *mt = &m[i];
        int px = x_origin + (i % cols) * panel_w, py = top + (i / cols) * panel_h;
        // the box: aspect of [rows, cols], clamped to 1:4 .. 4:1
        double aspect = mt->cols > 0 ? (double)mt->rows / (double)mt->cols : 4.0;  // a vector: a tall box
        if (aspect > 4) aspect = 4;
        if (aspect < 0.25) aspect = 0.25;
        int bw = aspect >= 1 ? (int)lround(BANDED_BOX / aspect) : BANDED_BOX;
        int bh = aspect >= 1 ? BANDED_BOX : (int)lround(BANDED_BOX * aspect);
        int bx = px + (panel_w - bw) / 2, by = py + GLYPH_H + 8 + (BANDED_BOX - bh) / 2;
        char shape[96];
        if (mt->cols > 0) snprintf(shape, sizeof shape, "[%lld, %lld]", (long long)mt->rows, (long long)mt->cols);
        else snprintf(shape, sizeof shape, "[%lld]", (long long)mt->rows);
        draw_text(&c, px + panel_w / 2, py, mt->name, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_BLACK);
        draw_rect(&c, bx, by, bw, bh, COLOR_GRID);
        const bool along_rows = mt->dim == 0;
        const int64_t extent = along_rows ? mt->rows : mt->cols;
        const int span = along_rows ? bh : bw;
        for (int b = 0; b < mt->n_bands; b++) {
            const FigureBand *band = &mt->bands[b];
            int a0 = extent > 0 ? (int)lround((double)band->start / (double)extent * span) : 0;
            int a1 = extent > 0 ? (int)lround((double)(band->start + band->count) / (double)extent * span) : span;
            if (a1 <= a0) a1 = a0 + 1;
            if (along_rows) draw_band(&c, bx, by + a0, bw, a1 - a0, band->colors, true);
            else draw_band(&c, bx + a0, by, a1 - a0, bh, band->colors, false);
            if (b > 0) {  // a white line between two bands
                if (along_rows) draw_rect(&c, bx, by + a0, bw, 1, COLOR_WHITE);
                else draw_rect(&c, bx + a0, by, 1, bh, COLOR_WHITE);
            }
            if (band->label && *band->label) {
                int thick = a1 - a0, len = along_rows ? bw : bh, tw_px = font_text_width(band->label, 1);
                if (thick >= GLYPH_H + 2 && tw_px + 6 <= len) {
                    int cx = along_rows ? bx + bw / 2 : bx + (a0 + a1) / 2, cy = along_rows ? by + (a0 + a1) / 2 : by + bh / 2;
                    int angle = along_rows ? 0 : 90;
                    draw_rect(&c, along_rows ? cx - tw_px / 2 - 2 : cx - GLYPH_H / 2 - 1,
                              along_rows ? cy - GLYPH_H / 2 - 1 : cy - tw_px / 2 - 2, along_rows ? tw_px + 4 : GLYPH_H + 2,
                              along_rows ? GLYPH_H + 2 : tw_px + 4, COLOR_WHITE);
                    draw_text(&c, cx, cy, band->label, 1, angle, ALIGN_CENTER | ALIGN_MIDDLE, COLOR_BLACK);
                }
            }
        }
        draw_rect_outline(&c, bx - 1, by - 1, bw + 2, bh + 2, 1, COLOR_BLACK);
        draw_text(&c, px + panel_w / 2, py + GLYPH_H + 8 + BANDED_BOX + 6, shape, 1, 0, ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT);
        const bool whole = mt->n_bands <= 1 && mt->bands && __builtin_popcount(mt->bands[0].colors) > 1;
        draw_text(&c, px + panel_w / 2, py + GLYPH_H + 8 + BANDED_BOX + 6 + GLYPH_H + 2, how[whole ? 2 : along_rows ? 0 : 1], 1, 0,
                  ALIGN_CENTER | ALIGN_TOP, COLOR_TEXT);
    }
    // the legend: a swatch and a name per colour, wrapped
    int lx = PAD, ly = top + rows_of_panels * panel_h + 10;
    for (int i = 0; i < n_legend; i++) {
        int w = 22 + font_text_width(legend[i], 1) + 18;
        if (lx + w > width - PAD && lx > PAD) lx = PAD, ly += GLYPH_H + 10;
        draw_rect(&c, lx, ly + 1, 14, 14, band_color(i));
        draw_text(&c, lx + 20, ly, legend[i], 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
        lx += w;
    }
    canvas_write_png(&c, path);
    canvas_free(&c);
}

// figures.h: the walkthrough's pictures, each one call that takes float data, labels and a title and writes a PNG.
//
//   figure_heatmap          a [rows x cols] matrix (07_scores, 08_mask, 09_softmax): token strings on both axes
//                           (x labels turned 45 or 90 degrees, or thinned out, so that they never overlap), a colour
//                           bar with values, masked cells (-inf or flagged) hatched grey, values in small matrices
//   figure_heatmap_compare  three panels: the CUDA map, the CPU map (one shared colour bar) and |CUDA - CPU| with its
//                           own colour bar and its maximum stated
//   figure_complex_rays     F1 of 05_rope: one row of freqs_cis [n] as rays from the origin of the complex plane,
//                           each labelled with its pair index where there is room (the rest are listed)
//   figure_heatmap_grid     n small maps [n][rows][cols] (the 32 attention maps of a layer), grouped by the kv head
//                           that group_size consecutive query heads share, each with its head index
//   figure_text_grid        a [rows x cols] grid of wide cells, each coloured by its value and labelled with a text
//                           (19_logit_lens: rows = layers, columns = the prompt's tokens, the top-1 token in each cell)
//   figure_line_chart       series over an x axis (residual-norm growth across layers), with ticks and a legend
//   figure_bar_chart_h      horizontal bars with labels and values (the top-k next tokens and their probabilities);
//                           figure_bar_chart_h_ref adds a reference line (the experts' load against the balanced share)
//   figure_banded_matrices  matrices as boxes cut into coloured bands of rows or columns (17's packed weights, 18's
//                           which rank holds what)
//
// Sizes: glyphs are 16 px tall (titles 32 px); a heatmap cell is 18-48 px, so the 17-token figures are about
// 1100 x 1000 px and well under 200 KB. Strings are UTF-8 (Chinese titles and tokens render: Unifont has CJK).
// Token labels are shown with token_display(): spaces as '␣', newlines as '↵', bytes that are not UTF-8 as \xHH.
// Every function writes `path` atomically and exits 1 (fatal) only when the file cannot be written.
//
// Suggested options for the walkthrough: raw scores (07_scores, 08_mask) COLORMAP_DIVERGING + symmetric, value_label
// "score"; attention weights (09_softmax, the head grids) COLORMAP_VIRIDIS + fixed_range 0..1, value_label "weight",
// show_values for T <= 20; x_label "key token", y_label "query token". Token labels are the decoded pieces as they are
// (" answer"), not pre-quoted.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "draw/draw.h"

// A token piece made visible: ' ' -> U+2423 '␣', '\n' -> U+21B5 '↵', '\t' -> U+21E5 '⇥', other control characters
// -> their U+24xx pictures, an invalid UTF-8 byte -> the text \xHH, "" -> U+2205 '∅'. out always NUL-terminated.
void token_display(const char *piece, char *out, size_t out_size);

// Where figure_heatmap put things (for tests and for tools that annotate a figure).
typedef struct {
    int width, height;        // the PNG's size
    int map_x, map_y, cell;   // top-left pixel of cell [0][0]; cell [r][c] starts at (map_x + c*cell, map_y + r*cell)
    int block;                // 1, or k when more than 380 rows/cols were drawn as means of k x k blocks
    int x_label_angle;        // 0, 45 or 90
    int x_label_step;         // every step-th x label is drawn (1 unless cells are narrower than a glyph)
    int y_label_step;
    int x_label_max_width;    // widest x label, pixels (unrotated)
    float vmin, vmax;         // the colour bar's range
    int x_labels_y;           // top of the x labels' strip under the first column of maps (the map's bottom edge,
                              // or its group frame's in a grid)
    int y_labels_x;           // right end of the y labels' strip beside the first map (its left edge, or its frame's)
} HeatmapLayout;

typedef struct {
    const char *title;        // first line, large
    const char *subtitle;     // second line, normal size (shape, layer/head, tolerance ...); NULL for none
    const char *x_label;      // axis titles, e.g. "key token"; NULL for none
    const char *y_label;      // e.g. "query token"
    const char *value_label;  // beside the colour bar, e.g. "score"
    Colormap colormap;        // COLORMAP_VIRIDIS (the default, 0) for one-signed data, COLORMAP_DIVERGING for signed
    bool symmetric;           // colour range [-m, m] with m = max |value| (use with COLORMAP_DIVERGING)
    bool fixed_range;         // use vmin..vmax below instead of the data's range (attention weights: 0..1)
    float vmin, vmax;
    bool show_values;         // write each value in its cell when the cells are big enough for the text
    bool raw_labels;          // draw labels as given instead of through token_display()
    const uint8_t *mask;      // optional [rows*cols]; non-zero = masked. Cells equal to -inf are masked anyway.
    // figure_heatmap_grid only (figure_heatmap takes them as arguments): the token labels of each map's rows and
    // columns, shown on the first map of each grid row and under the lowest map of each column; NULL: indices.
    const char *const *row_labels, *const *col_labels;
    HeatmapLayout *layout;    // optional: receives the layout of the figure drawn (in a grid: of map 0)
} HeatmapOptions;

// data [rows][cols]; row_labels[rows] and col_labels[cols] may be NULL (then the indices are shown). A matrix of more
// than 380 rows or columns is drawn as means of k x k blocks (said in the subtitle), so any T gives a readable PNG.
void figure_heatmap(const char *path, const float *data, int rows, int cols, const char *const *row_labels,
                    const char *const *col_labels, const HeatmapOptions *opt);

// a, b [rows][cols] (e.g. a = CUDA, b = CPU reference), named name_a / name_b above their panels. The third panel
// is |a - b| on a white-to-red scale; non-finite pairs that agree (both -inf) count as 0 difference and stay masked.
void figure_heatmap_compare(const char *path, const float *a, const float *b, int rows, int cols,
                            const char *const *row_labels, const char *const *col_labels, const char *name_a,
                            const char *name_b, const HeatmapOptions *opt);

// pairs [n][2] = (real, imag) of n complex numbers (torch.view_as_real(freqs_cis[pos])).
void figure_complex_rays(const char *path, const float *pairs, int n, const char *title, const char *subtitle,
                         bool unit_circle);

// maps [n][rows][cols]; map i is labelled "h<i>"; groups of group_size consecutive maps are framed together and
// labelled "kv <g>" (group_size = n_heads / n_kv_heads; 1 for no grouping). opt: colours, range, mask (the same for
// every map), titles, the token labels (row_labels, col_labels) and the axis titles (x_label, y_label).
void figure_heatmap_grid(const char *path, const float *maps, int n, int rows, int cols, int group_size,
                         const HeatmapOptions *opt);

// values [rows][cols] give the colours (opt: colormap, fixed_range/vmin/vmax, titles, axis titles, value_label for
// the colour bar); texts [rows*cols] (may hold NULL) are written in the cells through token_display(), cut with '…'
// beyond about 9 glyphs. row_labels are drawn as given ("layer 3"); col_labels through token_display() unless
// opt->raw_labels. Cells are as wide as the longest text needs (40-82 px) and 26 px tall; NaN cells are magenta.
void figure_text_grid(const char *path, const float *values, const char *const *texts, int rows, int cols,
                      const char *const *row_labels, const char *const *col_labels, const HeatmapOptions *opt);

typedef struct {
    const char *name;     // legend text
    const float *values;  // [n_points]
} ChartSeries;
// x [n_points] (NULL: 0, 1, 2, ...); non-finite values leave a gap in their line.
void figure_line_chart(const char *path, const float *x, int n_points, const ChartSeries *series, int n_series,
                       const char *title, const char *x_label, const char *y_label);

// values[n] drawn top to bottom in the order given, labels[n] on the left (through token_display() when
// labels_are_tokens), each value written at the end of its bar.
void figure_bar_chart_h(const char *path, const float *values, const char *const *labels, int n, const char *title,
                        const char *value_label, bool labels_are_tokens);
// The same with every bar alike and a dashed red line at ref, named ref_label under the axis (the per-expert load
// of 20_moe against the balanced share). Labels are drawn as given.
void figure_bar_chart_h_ref(const char *path, const float *values, const char *const *labels, int n, const char *title,
                            const char *value_label, float ref, const char *ref_label);

// ---- which part of each weight: figure_banded_matrices ----------------------------------------------------------------
// A band of a matrix: rows (dim 0) or columns (dim 1) [start, start + count), in the palette colours whose bits are
// set (bit i = colour i of the legend; several bits draw stripes: a part that several holders share, e.g. a kv head
// replicated on 4 ranks), with a label written inside when it fits.
typedef struct {
    int64_t start, count;
    unsigned colors;
    const char *label;
} FigureBand;
typedef struct {
    const char *name;   // above the box, e.g. "layers.0.attention.wq.weight"
    int64_t rows, cols; // the whole matrix (written under the box); cols 0: a vector [rows]
    int dim;            // 0: the bands are rows, 1: columns
    int n_bands;
    const FigureBand *bands;
} FigureBandedMatrix;
// Chapters 17 and 18: the matrices side by side (4 per row), each a box whose aspect follows [rows, cols] clamped to
// 1:4 .. 4:1 (the vocabulary's [128256, 4096] stays a readable box; the real shape is written under it), its bands
// coloured, and a legend: legend[i] beside a swatch of colour i (the packed parts, or "rank i"). how: the words under
// a box cut into rows, into columns, or held whole by all (one band of several colours), e.g. {"(rows)", "(columns)",
// "(whole)"}, in the reader's language.
void figure_banded_matrices(const char *path, const FigureBandedMatrix *m, int n, const char *const *legend,
                            int n_legend, const char *const how[3], const char *title, const char *subtitle);

// test_png_draw.c: unit tests of png.h, font.h, draw.h and figures.h; with --render DIR it is instead the driver of
// tests/test_figures.sh, rendering every figure of the walkthrough from realistic data into DIR.
//
//   build/tests/test_png_draw                 unit tests, ends with "N passed, N failed"
//   build/tests/test_png_draw --render DIR    DIR/heatmap_scores.png, heatmap_masked.png, ... (names printed)
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "draw/draw.h"
#include "draw/figures.h"
#include "draw/font.h"
#include "draw/png.h"
#include "util.h"

// The tutorial's 17 tokens (01_tokenize).
static const char *const TOKENS[17] = {"<|begin_of_text|>", "the", " answer", " to", " the", " ultimate", " question",
                                       " of", " life", ",", " the", " universe", ",", " and", " everything", " is", " "};

// Deterministic pseudo-random numbers (xorshift), so every run draws the same figures.
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float rng_uniform(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * (1.0 / 9007199254740992.0));
}
static float rng_normal(void) {
    float u = rng_uniform() + 1e-7f, v = rng_uniform();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

// Scores that look like layer 0's: q.k/sqrt(128), with a strong column for <|begin_of_text|>.
static void make_scores(float *scores, int t) {
    for (int i = 0; i < t; i++)
        for (int j = 0; j < t; j++) scores[i * t + j] = 1.2f * rng_normal() + (j == 0 ? 5.0f : 0.0f) + (i == j ? 1.0f : 0.0f);
}
static void causal_mask(float *scores, int t) {
    for (int i = 0; i < t; i++)
        for (int j = i + 1; j < t; j++) scores[i * t + j] = -INFINITY;
}
static void softmax_rows(float *x, int t) {
    for (int i = 0; i < t; i++) {
        float m = -INFINITY, sum = 0;
        for (int j = 0; j < t; j++) m = fmaxf(m, x[i * t + j]);
        for (int j = 0; j < t; j++) sum += x[i * t + j] = expf(x[i * t + j] - m);
        for (int j = 0; j < t; j++) x[i * t + j] /= sum;
    }
}

// One line per heatmap-like figure into DIR/layout.txt, for tests/test_figures.sh's label checks:
// name rows cols map_x map_y cell y_step x_step y_labels_x x_labels_y
static void note_layout(const char *dir, const char *name, int rows, int cols, const HeatmapLayout *L) {
    char *path = path_join(dir, "layout.txt");
    FILE *f = fopen(path, "a");
    if (!f) fatal("%s: %s", path, strerror(errno));
    fprintf(f, "%s %d %d %d %d %d %d %d %d %d\n", name, rows, cols, L->map_x, L->map_y, L->cell, L->y_label_step,
            L->x_label_step, L->y_labels_x, L->x_labels_y);
    fclose(f);
    free(path);
}

static void render_all(const char *dir) {
    mkdir_p(dir);
    char *layout_path = path_join(dir, "layout.txt");
    remove(layout_path);
    free(layout_path);
    HeatmapLayout L;
    enum { T = 17 };
    float scores[T * T], masked[T * T], weights[T * T];
    make_scores(scores, T);
    memcpy(masked, scores, sizeof scores);
    causal_mask(masked, T);
    memcpy(weights, masked, sizeof masked);
    softmax_rows(weights, T);
    char *p;

    HeatmapOptions o = {.title = "07_scores: q\xC2\xB7k\xE1\xB5\x80 / \xE2\x88\x9A" "128", .subtitle = "layer 0, head 0, [17, 17]",
                        .x_label = "key token", .y_label = "query token", .value_label = "score",
                        .colormap = COLORMAP_DIVERGING, .symmetric = true};
    o.layout = &L;
    figure_heatmap(p = path_join(dir, "heatmap_scores.png"), scores, T, T, TOKENS, TOKENS, &o); puts(p); free(p);
    note_layout(dir, "heatmap_scores", T, T, &L);

    o.title = "08_mask: scores + causal mask";
    figure_heatmap(p = path_join(dir, "heatmap_masked.png"), masked, T, T, TOKENS, TOKENS, &o); puts(p); free(p);
    note_layout(dir, "heatmap_masked", T, T, &L);

    HeatmapOptions w = {.title = "09_softmax: attention weights", .subtitle = "rows sum to 1; layer 0, head 0",
                        .x_label = "key token", .y_label = "query token", .value_label = "weight",
                        .fixed_range = true, .vmin = 0, .vmax = 1, .show_values = true, .layout = &L};
    figure_heatmap(p = path_join(dir, "heatmap_softmax.png"), weights, T, T, TOKENS, TOKENS, &w); puts(p); free(p);
    note_layout(dir, "heatmap_softmax", T, T, &L);

    // CUDA vs CPU: the same weights with bf16-sized noise on the "CUDA" side.
    float cuda[T * T];
    for (int i = 0; i < T * T; i++) cuda[i] = weights[i] + (weights[i] > 0 ? 2e-3f * rng_normal() * weights[i] : 0);
    HeatmapOptions cmp = {.title = "09_softmax: CUDA against the CPU reference", .subtitle = "tolerance: 4 bf16 ulps",
                          .x_label = "key token", .y_label = "query token", .value_label = "weight",
                          .fixed_range = true, .vmin = 0, .vmax = 1};
    figure_heatmap_compare(p = path_join(dir, "heatmap_compare.png"), cuda, weights, T, T, TOKENS, TOKENS, "CUDA", "CPU", &cmp);
    puts(p); free(p);

    // F1: freqs_cis[3] of Llama-3 (theta 500000, 64 pairs).
    float rays[64][2];
    for (int i = 0; i < 64; i++) {
        double freq = 1.0 / pow(500000.0, i / 64.0);
        rays[i][0] = (float)cos(3 * freq);
        rays[i][1] = (float)sin(3 * freq);
    }
    figure_complex_rays(p = path_join(dir, "complex_rays.png"), &rays[0][0], 64, "05_rope: freqs_cis[3] in the complex plane",
                        "position 3, 64 pairs, \xCE\xB8 = 500000", true);
    puts(p); free(p);

    // The 32 attention maps of layer 0, 4 query heads per kv head.
    float *grid = xmalloc(32 * sizeof weights);
    for (int h = 0; h < 32; h++) {
        float *m = grid + h * T * T;
        make_scores(m, T);
        for (int i = 0; i < T * T; i++) m[i] *= 0.5f + 0.1f * (h % 8);
        causal_mask(m, T);
        softmax_rows(m, T);
    }
    uint8_t causal[T * T];
    for (int i = 0; i < T * T; i++) causal[i] = i % T > i / T;
    HeatmapOptions g = {.title = "11_multihead: the 32 heads of layer 0", .subtitle = "grouped by the kv head they share (GQA: 4 query heads per kv head)",
                        .x_label = "key token", .y_label = "query token", .value_label = "weight", .fixed_range = true, .vmin = 0, .vmax = 1,
                        .mask = causal, .row_labels = TOKENS, .col_labels = TOKENS, .layout = &L};
    figure_heatmap_grid(p = path_join(dir, "heatmap_grid.png"), grid, 32, T, T, 4, &g); puts(p); free(p);
    note_layout(dir, "heatmap_grid", T, T, &L);
    // the demo model's layout: 4 query heads sharing 1 kv head
    g.title = "11_multihead: the 4 heads of layer 0";
    figure_heatmap_grid(p = path_join(dir, "heatmap_grid4.png"), grid, 4, T, T, 4, &g); puts(p); free(p);
    note_layout(dir, "heatmap_grid4", T, T, &L);
    free(grid);

    // Residual-norm growth over 32 layers: two series.
    float layers[33], mean_norm[33], last_norm[33];
    for (int l = 0; l <= 32; l++) {
        layers[l] = (float)l;
        mean_norm[l] = 0.8f + 0.9f * l + 0.02f * l * l + 0.3f * rng_normal();
        last_norm[l] = 0.6f + 1.3f * l + (l > 28 ? 9.0f * (l - 28) : 0) + 0.3f * rng_normal();
    }
    ChartSeries series[2] = {{"mean over tokens", mean_norm}, {"last token (\" \")", last_norm}};
    figure_line_chart(p = path_join(dir, "line_chart.png"), layers, 33, series, 2, "14_layers: residual norm across layers",
                      "layer (0 = embeddings)", "\xE2\x80\x96x\xE2\x80\x96 (RMS)");
    puts(p); free(p);

    // Top-10 next tokens of 15_logits.
    const char *top[10] = {"42", " 42", "4", "the", " forty", "\n", "Forty", " ", "\xE4\xB8\x80", "\xE7\xAD"};
    float probs[10] = {0.8731f, 0.0412f, 0.0200f, 0.0131f, 0.0087f, 0.0062f, 0.0040f, 0.0021f, 0.0012f, 0.0005f};
    figure_bar_chart_h(p = path_join(dir, "bar_chart.png"), probs, top, 10, "15_logits: the 10 most likely next tokens",
                       "probability", true);
    puts(p); free(p);

    // A Chinese prompt and a --lang zh title.
    const char *zh[12] = {"<|begin_of_text|>", "生命", "、", "宇宙", "以及", "一切", "的", "终极", "答案", "是", "\xE7\xAD", "\x94"};
    enum { TZ = 12 };
    float zs[TZ * TZ];
    make_scores(zs, TZ);
    causal_mask(zs, TZ);
    softmax_rows(zs, TZ);
    HeatmapOptions z = {.title = "09_softmax：注意力权重", .subtitle = "第 0 层，第 0 个头", .x_label = "键 (key)",
                        .y_label = "查询 (query)", .value_label = "权重", .fixed_range = true, .vmin = 0, .vmax = 1, .show_values = true, .layout = &L};
    figure_heatmap(p = path_join(dir, "heatmap_zh.png"), zs, TZ, TZ, zh, zh, &z); puts(p); free(p);
    note_layout(dir, "heatmap_zh", TZ, TZ, &L);

    // Many tokens: labels must thin out rather than overlap.
    enum { TL = 120 };
    float *big = xmalloc(sizeof(float) * TL * TL);
    const char **many = xmalloc(sizeof(char *) * TL);
    for (int i = 0; i < TL; i++) many[i] = TOKENS[i % 17];
    make_scores(big, TL);
    causal_mask(big, TL);
    softmax_rows(big, TL);
    HeatmapOptions b = {.title = "09_softmax: 120 tokens", .x_label = "key token", .y_label = "query token",
                        .value_label = "weight", .fixed_range = true, .vmin = 0, .vmax = 1, .layout = &L};
    figure_heatmap(p = path_join(dir, "heatmap_120.png"), big, TL, TL, many, many, &b); puts(p); free(p);
    note_layout(dir, "heatmap_120", TL, TL, &L);
    free(big);
    free(many);
}

// ---- helpers for the unit tests --------------------------------------------------------------------------------------

static char *temp_dir;

static bool rgb_eq(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
static int rgb_dist(Rgb a, Rgb b) { return abs(a.r - b.r) + abs(a.g - b.g) + abs(a.b - b.b); }
static Rgb image_rgb(const Image *im, int x, int y) {
    const uint8_t *p = im->pixels + ((size_t)y * (size_t)im->width + (size_t)x) * (size_t)im->channels;
    return RGB(p[0], p[1], p[2]);
}
static bool dark(Rgb c) { return c.r + c.g + c.b < 3 * 128; }

// Exit status of fn(arg) run in a child process (stderr silenced).
static int exit_code_of(void (*fn)(const char *), const char *arg) {
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stderr)) _exit(99);
        fn(arg);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
static void read_and_discard(const char *path) {
    Image im;
    image_read_png(path, &im);
    image_free(&im);
}

// The bitmap of code point cp as unifont.hex has it (16 rows, bit 15 = left), read independently of the generator.
static bool hex_glyph(uint32_t cp, uint16_t rows[16], int *width) {
    FILE *f = fopen("/usr/share/unifont/unifont.hex", "r");
    if (!f) return false;
    char line[256], want[16];
    snprintf(want, sizeof want, "%04X:", cp);
    bool found = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, want, 5) != 0) continue;
        const char *hex = line + 5;
        size_t digits = strcspn(hex, "\r\n");
        *width = (int)(digits / 4);
        int per_row = (int)(digits / 16);
        for (int y = 0; y < 16; y++) {
            char part[5] = {0};
            memcpy(part, hex + y * per_row, (size_t)per_row);
            rows[y] = (uint16_t)(strtoul(part, NULL, 16) << (16 - *width));
        }
        found = true;
        break;
    }
    fclose(f);
    return found;
}

static void test_png(void) {
    enum { W = 37, H = 23 };
    uint8_t rgb[W * H * 3], rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        for (int k = 0; k < 3; k++) rgb[3 * i + k] = (uint8_t)(i * (k + 3) + k * 50);
        for (int k = 0; k < 4; k++) rgba[4 * i + k] = (uint8_t)(i * (k + 5) + 7);
    }
    char *path = path_join(temp_dir, "round.png");
    image_write_png(path, rgb, W, H, 3);
    char *partial = xasprintf("%s.partial", path);
    CHECK(!file_exists(partial), "no .partial left after writing");
    Image im;
    image_read_png(path, &im);
    CHECK_EQ_INT(im.width, W);
    CHECK_EQ_INT(im.height, H);
    CHECK_EQ_INT(im.channels, 3);
    CHECK(memcmp(im.pixels, rgb, sizeof rgb) == 0, "RGB pixels survive the round trip");
    image_free(&im);
    image_write_png(path, rgba, W, H, 4);
    image_read_png(path, &im);
    CHECK_EQ_INT(im.channels, 4);
    CHECK(memcmp(im.pixels, rgba, sizeof rgba) == 0, "RGBA pixels survive the round trip");
    image_free(&im);
    // Not a PNG, or no file: exit 2.
    char *bad = path_join(temp_dir, "bad.png");
    FILE *f = xfopen(bad, "wb");
    fputs("this is not a PNG file", f);
    xfclose(f, bad);
    CHECK_EQ_INT(exit_code_of(read_and_discard, bad), 2);
    char *missing = path_join(temp_dir, "missing.png");
    CHECK_EQ_INT(exit_code_of(read_and_discard, missing), 2);
    // A truncated PNG: its header is fine, its data is cut.
    image_write_png(path, rgb, W, H, 3);
    size_t len;
    char *bytes = read_whole_file(path, &len);
    f = xfopen(bad, "wb");
    xfwrite(bytes, len / 2, f, bad);
    xfclose(f, bad);
    CHECK_EQ_INT(exit_code_of(read_and_discard, bad), 2);
    free(bytes);
    free(missing);
    free(bad);
    free(partial);
    free(path);
}

static void test_font(void) {
    CHECK_EQ_INT(font_text_width("abc", 1), 24);
    CHECK_EQ_INT(font_text_width("abc", 2), 48);
    CHECK_EQ_INT(font_text_width("\xE4\xB8\xAD\xE6\x96\x87", 1), 32);  // 中文: two wide glyphs
    CHECK_EQ_INT(font_text_width("", 1), 0);
    CHECK_EQ_INT(font_text_width("\xFF", 1), 8);                        // a stray byte: one box
    CHECK_EQ_INT(font_text_width("e\xCC\x81", 1), 8);                   // e + combining acute: one cell
    CHECK_EQ_INT(font_text_width("\xF0\x9F\x98\x80", 1), 16);           // U+1F600 (outside the BMP): a wide box
    // Glyphs as unifont.hex has them (read here independently of tools/gen_unifont.sh).
    uint32_t samples[] = {0x41, 0x67, 0x5F, 0x4E2D, 0x751F, 0xAC00, 0x3042, 0xFFFD};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        uint16_t rows[16];
        int width = 0;
        Glyph g;
        bool found = font_glyph(samples[i], &g);
        if (!hex_glyph(samples[i], rows, &width)) { CHECK(0, "U+%04X not in unifont.hex", samples[i]); continue; }
        CHECK(found, "U+%04X found", samples[i]);
        CHECK(g.width == width && memcmp(g.rows, rows, sizeof rows) == 0, "U+%04X bitmap differs from unifont.hex", samples[i]);
    }
    Glyph g;
    // U+2423 '␣', the space marker of every token label, is drawn taller than Unifont's (2 rows, an '_' at label
    // size): 4 rows, and unlike '_' it has legs
    uint16_t underscore[16];
    int uw = 0, box_rows = 0;
    CHECK(font_glyph(0x2423, &g) && g.width == 8 && hex_glyph(0x5F, underscore, &uw), "U+2423 and '_'");
    for (int y = 0; y < 16; y++) box_rows += g.rows[y] != 0;
    CHECK(box_rows == 4 && memcmp(g.rows, underscore, sizeof underscore) != 0, "U+2423: %d rows drawn", box_rows);
    CHECK(!font_glyph(0xE000, &g) && g.width == 8, "private use: replacement box");
    CHECK(!font_glyph(0x1F600, &g) && g.width == 16, "outside the BMP: wide replacement box");
    int set = 0;
    for (int y = 0; y < 16; y++) set += __builtin_popcount(g.rows[y]);
    CHECK(set > 20, "the replacement box is drawn (%d pixels)", set);
    CHECK(font_glyph(0x301, &g) && g.advance == 0 && g.x_offset < 0, "combining acute draws over the previous glyph");

    const char *s = "\xC3\xA9";
    CHECK(font_utf8_next(&s) == 0xE9 && *s == 0, "é");
    s = "\xC0\xAF";  // overlong '/'
    CHECK(font_utf8_next(&s) == (FONT_INVALID_BYTE | 0xC0), "overlong form rejected");
    s = "\xED\xA0\x80";  // a surrogate
    CHECK(font_utf8_next(&s) == (FONT_INVALID_BYTE | 0xED), "surrogate rejected");
    s = "\xE4\xB8";  // truncated 中
    CHECK(font_utf8_next(&s) == (FONT_INVALID_BYTE | 0xE4) && font_utf8_next(&s) == (FONT_INVALID_BYTE | 0xB8) && *s == 0, "truncated");
    uint32_t cps[] = {0x24, 0xA2, 0x20AC, 0x10348, 0x4E2D};
    for (size_t i = 0; i < 5; i++) {
        char buf[8] = {0};
        font_utf8_encode(cps[i], buf);
        const char *p = buf;
        CHECK(font_utf8_next(&p) == cps[i] && *p == 0, "encode/decode U+%04X", cps[i]);
    }

    char out[64];
    token_display(" answer", out, sizeof out);
    CHECK_EQ_STR(out, "\xE2\x90\xA3" "answer");
    token_display("a\nb\tc", out, sizeof out);
    CHECK_EQ_STR(out, "a\xE2\x86\xB5" "b\xE2\x87\xA5" "c");
    token_display("\xE7\xAD", out, sizeof out);
    CHECK_EQ_STR(out, "\\xE7\\xAD");
    token_display("", out, sizeof out);
    CHECK_EQ_STR(out, "\xE2\x88\x85");
    token_display("生命", out, sizeof out);
    CHECK_EQ_STR(out, "生命");
    token_display("abcdef", out, 4);  // never more than the buffer
    CHECK_EQ_STR(out, "abc");
}

static void test_draw(void) {
    Canvas c;
    canvas_init(&c, 200, 200, COLOR_WHITE);
    // Text at scale 1 is the glyph, pixel for pixel: "中" at (10, 20).
    draw_text(&c, 10, 20, "\xE4\xB8\xAD", 1, 0, ALIGN_LEFT | ALIGN_TOP, COLOR_BLACK);
    Glyph g;
    font_glyph(0x4E2D, &g);
    int wrong = 0;
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++) wrong += dark(canvas_get(&c, 10 + x, 20 + y)) != ((g.rows[y] >> (15 - x)) & 1);
    CHECK_EQ_INT(wrong, 0);
    canvas_free(&c);

    // Rotated text: its extent turns with it. "Hello" is 40 x 16.
    int x0, x1, y0, y1;
    for (int angle = 0; angle <= 90; angle += 45) {
        canvas_init(&c, 200, 200, COLOR_WHITE);
        draw_text(&c, 100, 100, "Hello", 1, angle, ALIGN_LEFT | ALIGN_BOTTOM, COLOR_BLACK);
        x0 = y0 = 1000;
        x1 = y1 = -1;
        for (int y = 0; y < 200; y++)
            for (int x = 0; x < 200; x++)
                if (canvas_get(&c, x, y).r < 200) {
                    if (x < x0) x0 = x;
                    if (x > x1) x1 = x;
                    if (y < y0) y0 = y;
                    if (y > y1) y1 = y;
                }
        if (angle == 0) CHECK(x0 >= 100 && x1 < 140 && y0 >= 84 && y1 < 100, "0: [%d,%d]x[%d,%d]", x0, x1, y0, y1);
        if (angle == 90) CHECK(x0 >= 100 - 16 && x1 <= 100 && y0 >= 60 && y1 <= 100 && y1 - y0 >= 30, "90: [%d,%d]x[%d,%d]", x0, x1, y0, y1);
        if (angle == 45) CHECK(x1 - x0 >= 25 && x1 - x0 <= 44 && y1 - y0 >= 25 && y1 - y0 <= 44 && y1 <= 101 && x0 >= 88,
                               "45: [%d,%d]x[%d,%d]", x0, x1, y0, y1);
        canvas_free(&c);
    }

    canvas_init(&c, 60, 40, COLOR_WHITE);
    draw_line(&c, 5, 10.5f, 55, 10.5f, 2, COLOR_BLACK);
    CHECK(dark(canvas_get(&c, 30, 10)) && rgb_eq(canvas_get(&c, 30, 20), COLOR_WHITE), "a line where it should be");
    draw_rect(&c, 10, 25, 5, 5, RGB(1, 2, 3));
    CHECK(rgb_eq(canvas_get(&c, 14, 29), RGB(1, 2, 3)) && rgb_eq(canvas_get(&c, 15, 29), COLOR_WHITE), "rect bounds");
    draw_rect(&c, -10, -10, 1000, 15, COLOR_BLACK);  // clipped to rows 0..4, no crash
    CHECK(dark(canvas_get(&c, 0, 0)), "clipped rect");
    canvas_free(&c);

    // Colour maps: known endpoints, viridis gets lighter all the way, and the mask's greys are none of their colours.
    CHECK(rgb_eq(colormap_rgb(COLORMAP_VIRIDIS, 0), RGB(68, 1, 84)) && rgb_eq(colormap_rgb(COLORMAP_VIRIDIS, 1), RGB(253, 231, 37)), "viridis ends");
    CHECK(rgb_eq(colormap_rgb(COLORMAP_DIVERGING, 0.5f), RGB(247, 247, 247)), "diverging centre");
    CHECK(rgb_eq(colormap_rgb(COLORMAP_VIRIDIS, NAN), colormap_rgb(COLORMAP_VIRIDIS, 0)), "NaN gives the low end");
    double previous = -1;
    int not_increasing = 0;
    for (int i = 0; i <= 64; i++) {
        Rgb v = colormap_rgb(COLORMAP_VIRIDIS, i / 64.0f);
        double lum = 0.2126 * v.r + 0.7152 * v.g + 0.0722 * v.b;
        not_increasing += lum <= previous;
        previous = lum;
    }
    CHECK_EQ_INT(not_increasing, 0);
    int closest = 1000;
    for (int m = 0; m < 3; m++)
        for (int i = 0; i <= 1024; i++) {
            Rgb v = colormap_rgb((Colormap)m, i / 1024.0f);
            int d1 = rgb_dist(v, COLOR_MASK_FILL), d2 = rgb_dist(v, COLOR_MASK_HATCH);
            if (d1 < closest) closest = d1;
            if (d2 < closest) closest = d2;
        }
    CHECK(closest >= 20, "a mask grey is within %d of a colour-map colour", closest);

    double ticks[16], step;
    int n = nice_ticks(0, 1, 6, ticks, &step);
    CHECK(n == 6 && fabs(step - 0.2) < 1e-12 && ticks[0] == 0 && fabs(ticks[5] - 1) < 1e-12, "ticks of [0,1]: %d, step %g", n, step);
    n = nice_ticks(-3.7, 12.2, 8, ticks, &step);
    double mantissa = step / pow(10, floor(log10(step)));
    CHECK(n >= 2 && n <= 8 && ticks[0] >= -3.7 && ticks[n - 1] <= 12.2, "ticks in range");
    CHECK(fabs(mantissa - 1) < 1e-9 || fabs(mantissa - 2) < 1e-9 || fabs(mantissa - 2.5) < 1e-9 || fabs(mantissa - 5) < 1e-9, "nice step %g", step);
    char text[32];
    format_tick(0.25, 0.25, text, sizeof text);
    CHECK_EQ_STR(text, "0.25");
    format_tick(3, 1, text, sizeof text);
    CHECK_EQ_STR(text, "3");
    format_tick(0.0015, 0.0005, text, sizeof text);
    CHECK_EQ_STR(text, "1.5e-3");
    format_tick(0.0005, 0.0005, text, sizeof text);
    CHECK_EQ_STR(text, "5e-4");
    format_tick(200000, 100000, text, sizeof text);
    CHECK_EQ_STR(text, "2e5");
    format_tick(0, 0.1, text, sizeof text);
    CHECK_EQ_STR(text, "0");
}

// A heatmap of a known matrix, read back: size, colours of cells, masked cells.
static void test_heatmap(void) {
    enum { R = 5, C = 7 };
    float data[R * C];
    uint8_t mask[R * C] = {0};
    for (int i = 0; i < R * C; i++) data[i] = (float)i;
    mask[0 * C + 6] = mask[1 * C + 5] = 1;
    data[4 * C + 0] = -INFINITY;
    const char *labels[7] = {"a", "bb", "ccc", " d", "\xE4\xB8\xAD", "f", "g"};
    HeatmapLayout L;
    HeatmapOptions o = {.title = "test", .value_label = "v", .mask = mask, .layout = &L};
    char *path = path_join(temp_dir, "heatmap.png");
    figure_heatmap(path, data, R, C, labels, labels, &o);
    Image im;
    image_read_png(path, &im);
    CHECK(im.width == L.width && im.height == L.height, "size %dx%d, layout %dx%d", im.width, im.height, L.width, L.height);
    CHECK(L.cell >= 17 && L.map_x > 0 && L.map_y > 0 && L.map_x + C * L.cell < L.width && L.map_y + R * L.cell < L.height, "map inside the image");
    // Unmasked cells: exactly the colour map's colour of their value over [min, max] of the unmasked values.
    CHECK(L.vmin == 0 && L.vmax == 34, "range [%g, %g]", L.vmin, L.vmax);  // cell 28 is -inf, masked
    int bad_cells = 0, mask_cells_ok = 0, mask_cells = 0;
    for (int r = 0; r < R; r++)
        for (int col = 0; col < C; col++) {
            int i = r * C + col;
            bool masked = mask[i] || isinf(data[i]);
            bool saw_fill = false, saw_hatch = false, only_mask_colours = true, uniform = true;
            Rgb want = colormap_rgb(COLORMAP_VIRIDIS, data[i] / 34.0f);
            for (int y = 1; y < L.cell - 1; y++)
                for (int x = 1; x < L.cell - 1; x++) {
                    Rgb p = image_rgb(&im, L.map_x + col * L.cell + x, L.map_y + r * L.cell + y);
                    if (rgb_eq(p, COLOR_MASK_FILL)) saw_fill = true;
                    else if (rgb_eq(p, COLOR_MASK_HATCH)) saw_hatch = true;
                    else only_mask_colours = false;
                    if (!rgb_eq(p, want)) uniform = false;
                }
            if (masked) { mask_cells++; mask_cells_ok += only_mask_colours && saw_fill && saw_hatch; }
            else bad_cells += !uniform;
        }
    CHECK_EQ_INT(bad_cells, 0);
    CHECK_EQ_INT(mask_cells, 3);
    CHECK_EQ_INT(mask_cells_ok, 3);
    // Not a blank picture: many colours.
    int distinct = 0;
    Rgb seen[64];
    for (int y = 0; y < im.height && distinct < 64; y += 3)
        for (int x = 0; x < im.width && distinct < 64; x += 3) {
            Rgb p = image_rgb(&im, x, y);
            bool known = false;
            for (int k = 0; k < distinct && !known; k++) known = rgb_eq(seen[k], p);
            if (!known) seen[distinct++] = p;
        }
    CHECK(distinct >= 30, "only %d colours", distinct);
    image_free(&im);

    // Signed data, symmetric range.
    float signed_data[4] = {-2, 1, 0.5f, 0};
    HeatmapOptions d = {.colormap = COLORMAP_DIVERGING, .symmetric = true, .layout = &L, .show_values = true};
    figure_heatmap(path, signed_data, 2, 2, NULL, NULL, &d);
    CHECK(L.vmin == -2 && L.vmax == 2, "symmetric range [%g, %g]", L.vmin, L.vmax);

    // x labels never overlap, whatever the number of tokens: neighbours drawn are at least a glyph apart.
    const char *words[4] = {"<|begin_of_text|>", " everything", ",", " universe"};
    int counts[] = {2, 5, 17, 40, 64, 100, 200, 400, 1000};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int t = counts[k];
        float *m = xcalloc((size_t)t * (size_t)t, sizeof(float));
        const char **tl = xmalloc((size_t)t * sizeof(char *));
        for (int i = 0; i < t; i++) tl[i] = words[i % 4];
        HeatmapOptions h = {.layout = &L};
        figure_heatmap(path, m, t, t, tl, tl, &h);
        double spacing = L.x_label_angle == 0 ? L.x_label_step * L.cell - L.x_label_max_width
                         : L.x_label_angle == 45 ? L.x_label_step * L.cell * 0.70710678 : L.x_label_step * L.cell;
        double needed = L.x_label_angle == 0 ? 4 : 17;
        CHECK(spacing >= needed, "T=%d: labels %g px apart at %d degrees", t, spacing, L.x_label_angle);
        CHECK(L.y_label_step * L.cell >= 17, "T=%d: y labels overlap", t);
        CHECK(L.width < 2600 && L.height < 2600, "T=%d: %dx%d is too big", t, L.width, L.height);
        CHECK(L.block == (t > 380 ? (t + 379) / 380 : 1), "T=%d: blocks of %d", t, L.block);
        free(m);
        free(tl);
    }
    free(path);
}

// Every other figure: a readable PNG of a sensible size, not blank.
static void check_figure_file(const char *path, int min_w, int min_h) {
    Image im;
    image_read_png(path, &im);
    int dark_pixels = 0;
    for (int y = 0; y < im.height; y++)
        for (int x = 0; x < im.width; x++) dark_pixels += dark(image_rgb(&im, x, y));
    CHECK(im.width >= min_w && im.height >= min_h && im.width < 3000 && im.height < 3000, "%s: %dx%d", path, im.width, im.height);
    CHECK(dark_pixels > 500, "%s: only %d dark pixels", path, dark_pixels);
    image_free(&im);
}

static void test_other_figures(void) {
    char *path = path_join(temp_dir, "figure.png");
    float pairs[8][2];
    for (int i = 0; i < 8; i++) { pairs[i][0] = cosf(i * 0.7f); pairs[i][1] = sinf(i * 0.7f); }
    figure_complex_rays(path, &pairs[0][0], 8, "rays", NULL, true);
    check_figure_file(path, 600, 600);
    float maps[8][3][3];
    for (int i = 0; i < 72; i++) (&maps[0][0][0])[i] = (float)(i % 9) / 8.0f;
    HeatmapOptions g = {.title = "grid"};
    figure_heatmap_grid(path, &maps[0][0][0], 8, 3, 3, 2, &g);
    check_figure_file(path, 200, 100);
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3.5f, -INFINITY};
    figure_heatmap_compare(path, a, b, 2, 2, NULL, NULL, "CUDA", "CPU", NULL);
    check_figure_file(path, 400, 150);
    float y1[5] = {1, 2, 4, 8, 16}, y2[5] = {1, NAN, 3, 2, 1};
    ChartSeries s[2] = {{"one", y1}, {"two", y2}};
    figure_line_chart(path, NULL, 5, s, 2, "line", "x", "y");
    check_figure_file(path, 600, 300);
    {  // the logit lens grid: a coloured cell per (layer, position) with its token; a dark cell gets white text
        const char *texts[6] = {"And", " answer", " everything", "42", NULL, " "}, *rows[2] = {"layer 0", "layer 1"};
        const char *cols[3] = {"<|begin_of_text|>", "the", " answer"};
        float p[6] = {0.05f, 0.5f, 0.99f, 0.2f, NAN, 1.0f};
        HeatmapOptions o = {.title = "logit lens", .x_label = "position", .y_label = "layer", .fixed_range = true, .vmax = 1};
        figure_text_grid(path, p, texts, 2, 3, rows, cols, &o);
        check_figure_file(path, 300, 200);
        Image im;
        image_read_png(path, &im);
        int white_in_dark = 0, magenta = 0;
        for (int y = 0; y < im.height; y++)
            for (int x = 0; x < im.width; x++) {
                Rgb c = image_rgb(&im, x, y);
                magenta += c.r == 255 && c.g == 0 && c.b == 255;
                white_in_dark += c.r == 255 && c.g == 255 && c.b == 255;
            }
        CHECK(magenta > 100, "the NaN cell is drawn magenta (%d px)", magenta);
        CHECK(white_in_dark > 1000, "white background and text");
        image_free(&im);
    }
    const char *labels[3] = {"42", " 42", "\n"};
    float values[3] = {0.9f, 0.05f, -0.01f};
    figure_bar_chart_h(path, values, labels, 3, "bars", "p", true);
    check_figure_file(path, 500, 100);
    free(path);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: %s [--render DIR]\n  no argument: unit tests of png.h, font.h, draw.h, figures.h\n"
               "  --render DIR: every walkthrough figure from realistic data into DIR\n", argv[0]);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--render") == 0) { render_all(argv[2]); return 0; }
    if (argc > 1) { fprintf(stderr, "usage: %s [--render DIR]\n", argv[0]); return 2; }
    char tmpl[] = "/tmp/test_png_draw.XXXXXX";
    if (!mkdtemp(tmpl)) fatal("mkdtemp failed");
    temp_dir = tmpl;
    test_png();
    test_font();
    test_draw();
    test_heatmap();
    test_other_figures();
    char *cmd = xasprintf("rm -rf '%s'", temp_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", temp_dir);
    free(cmd);
    TEST_SUMMARY();
}

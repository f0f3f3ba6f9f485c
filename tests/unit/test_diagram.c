// test_diagram.c: unit tests of the map (common/draw/diagram.h); with --render DIR it is instead the driver of
// tests/test_diagram.sh, drawing the maps of a dense and a MoE model into DIR.
//
//   build/tests/test_diagram                 unit tests, ends with "N passed, N failed"
//   build/tests/test_diagram --render DIR    DIR/architecture_8b.png, architecture_8b_zh.png, architecture_moe.png,
//                                            architecture_symbols.png, where_NN.png (8B), where_moe_NN.png,
//                                            map_8b.svg (links to every chapter of the table), map_symbols.svg
//
// The unit tests: every chapter program in steps/, every entry of the chapter table (steps/chapters.c) and every
// chapter the map's table was written for (17-20 included) has boxes on a dense
// and on a MoE model; every box of a chapter's list exists; every box is covered by a chapter (itself or a group
// around it); the annotations of Llama-3-8B and of a MoE model are the shapes its config implies; the model facts
// survive JSON; the PNGs have the expected size and ink inside every box's label area; the SVG links every box.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "chapters.h"
#include "check.h"
#include "draw/diagram.h"
#include "draw/font.h"
#include "draw/png.h"
#include "util.h"

// Meta-Llama-3-8B's params.json (the values a Config holds after config_derive).
static Config config_8b(void) {
    Config c = {0};
    c.dim = 4096, c.n_layers = 32, c.n_heads = 32, c.n_kv_heads = 8, c.vocab_size = 128256, c.multiple_of = 1024;
    c.has_ffn_dim_multiplier = true, c.ffn_dim_multiplier = 1.3, c.norm_eps = 1e-5, c.rope_theta = 500000;
    c.head_dim = 128, c.n_rep = 4, c.ffn_hidden = 14336;
    return c;
}

static void model_8b(DiagramModel *m) {
    Config c = config_8b();
    diagram_model_from_config(m, &c, "/models/Meta-Llama-3-8B/", 17);
    const char *names[DIAGRAM_MAX_TENSORS];
    int n = diagram_tensors(m, names, DIAGRAM_MAX_TENSORS);
    for (int i = 0; i < n; i++) diagram_model_set_dtype(m, names[i], "bf16");
}

// MiniMind's MoE defaults: dim 512, 8 layers, 8 heads / 2 kv heads, FFN 1408, vocab 6400, 4 experts, top-2, 1 shared.
static void model_moe(DiagramModel *m, int shared) {
    Config c = {0};
    c.dim = 512, c.n_layers = 8, c.n_heads = 8, c.n_kv_heads = 2, c.vocab_size = 6400, c.multiple_of = 64;
    c.norm_eps = 1e-5, c.rope_theta = 1e6, c.head_dim = 64, c.n_rep = 4, c.ffn_hidden = 1408;
    diagram_model_from_config(m, &c, "minimind-moe", 17);
    m->n_routed_experts = 4, m->num_experts_per_tok = 2, m->n_shared_experts = shared;
    const char *names[DIAGRAM_MAX_TENSORS];
    int n = diagram_tensors(m, names, DIAGRAM_MAX_TENSORS);
    for (int i = 0; i < n; i++) diagram_model_set_dtype(m, names[i], "bf16");
}

static void render_all(const char *dir) {
    DiagramModel m8, moe, none = {0};
    model_8b(&m8);
    model_moe(&moe, 1);
    char *p;
#define OUT(name) (free(p), p = path_join(dir, name))
    p = NULL;
    diagram_png(OUT("architecture_8b.png"), &m8, 0);
    diagram_png(OUT("architecture_8b_zh.png"), &m8, 1);
    diagram_png(OUT("architecture_moe.png"), &moe, 0);
    diagram_png(OUT("architecture_symbols.png"), &none, 0);
    for (int i = 0; i < diagram_n_chapters(); i++) {
        const DiagramChapter *c = diagram_chapter_at(i);
        char name[64];
        snprintf(name, sizeof name, "where_%s.png", c->number);
        diagram_mini_png(OUT(name), &m8, c->id, 0);
        snprintf(name, sizeof name, "where_moe_%s.png", c->number);
        diagram_mini_png(OUT(name), &moe, c->id, 0);
        snprintf(name, sizeof name, "where_zh_%s.png", c->number);
        diagram_mini_png(OUT(name), &m8, c->id, 1);
    }
    const char *ids[64];
    for (int i = 0; i < diagram_n_chapters(); i++) ids[i] = diagram_chapter_at(i)->id;
    char *svg = diagram_svg(&m8, 0, ids, diagram_n_chapters());
    FILE *f = fopen(OUT("map_8b.svg"), "w");
    fputs(svg, f), fclose(f), free(svg);
    svg = diagram_svg(&none, 0, ids, diagram_n_chapters());
    f = fopen(OUT("map_symbols.svg"), "w");
    fputs(svg, f), fclose(f), free(svg);
    free(p);
#undef OUT
}

// ---- the chapter table covers every chapter ---------------------------------------------------------------------------

static bool has_box_id(const char *id) {
    int x, y, w, h;
    return diagram_box_rect(id, &x, &y, &w, &h);
}

// The chapter programs in steps/ (the test runs from the repository root).
static int chapter_programs(char ids[][64], int max) {
    DIR *d = opendir("steps");
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d)) && n < max;) {
        size_t len = strlen(e->d_name);
        if (len > 5 && len < 64 && e->d_name[0] >= '0' && e->d_name[0] <= '9' && e->d_name[1] >= '0' &&
            e->d_name[1] <= '9' && e->d_name[2] == '_' && strcmp(e->d_name + len - 2, ".c") == 0) {
            snprintf(ids[n], 64, "%.*s", (int)(len - 2), e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static void test_chapters(void) {
    DiagramModel dense, moe;
    model_8b(&dense);
    model_moe(&moe, 1);
    char ids[64][64];
    int n = chapter_programs(ids, 64);
    CHECK(n >= 17, "only %d chapter programs found in steps/ (run from the repository root)", n);
    // every chapter program, and the chapters 17-20 that are being written (DESIGN.md "Beyond the tutorial")
    static const char *const planned[] = {"17_packed", "18_tensor_parallel", "19_logit_lens", "20_moe"};
    for (int i = 0; i < 4; i++) snprintf(ids[n++], 64, "%s", planned[i]);
    for (int i = 0; i < n; i++) {
        const DiagramChapter *c = diagram_chapter(ids[i]);
        CHECK(c != NULL, "chapter %s has no entry in the map's chapter table (common/draw/diagram.c)", ids[i]);
        if (!c) continue;
        const char *boxes[16];
        CHECK(diagram_chapter_boxes(&dense, ids[i], boxes, 16) > 0, "%s: no box on a dense model", ids[i]);
        CHECK(diagram_chapter_boxes(&moe, ids[i], boxes, 16) > 0, "%s: no box on a MoE model", ids[i]);
        char *line = diagram_where_line(&dense, ids[i], 0);
        CHECK(line && strncmp(line, "where: ", 7) == 0 && strlen(line) > 9, "%s: where line %s", ids[i], line);
        free(line);
    }
    // the table itself: numbers unique and matching the ids, every box it names exists
    for (int i = 0; i < diagram_n_chapters(); i++) {
        const DiagramChapter *c = diagram_chapter_at(i);
        CHECK(strncmp(c->id, c->number, strlen(c->number)) == 0 && c->id[strlen(c->number)] == '_', "%s / %s", c->number, c->id);
        CHECK(diagram_chapter(c->id) == c, "%s is found as another entry", c->id);
        char list[256];
        snprintf(list, sizeof list, "%s", c->boxes);
        for (char *tok = strtok(list, " "); tok; tok = strtok(NULL, " ")) CHECK(has_box_id(tok), "%s names box %s", c->id, tok);
    }
    for (int i = 0; i < N_CHAPTERS; i++)  // and every entry of the chapter table (steps/chapters.c)
        CHECK(diagram_chapter(CHAPTERS[i].id) != NULL, "chapter %s has no entry in the map's chapter table", CHAPTERS[i].id);
    CHECK(diagram_chapter("19_lens") == diagram_chapter("19_logit_lens"), "a chapter is found by its number");
    CHECK(diagram_chapter("99_nothing") == NULL && diagram_chapter("config") == NULL);
    CHECK(diagram_where_line(&dense, "99_nothing", 0) == NULL);
    // every box of each model is shown by some chapter
    for (int i = 0; i < diagram_n_boxes(); i++) {
        const char *id = diagram_box_id(i);
        const DiagramModel *models[2] = {&dense, &moe};
        for (int k = 0; k < 2; k++) {
            if (!diagram_has_box(models[k], id)) continue;
            char *ch = diagram_box_chapters(models[k], id);  // SiLU and ⊙ through chapter 13's feed-forward
            CHECK(*ch, "box %s (%s model) is in no chapter", id, k ? "MoE" : "dense");
            free(ch);
        }
    }
}

// ---- the annotations are the config's shapes ---------------------------------------------------------------------------

static void check_weight(const DiagramModel *m, const char *box, const char *want) {
    char *got = diagram_box_weight(m, box);
    CHECK(got && strcmp(got, want) == 0, "%s: \"%s\", want \"%s\"", box, got ? got : "(none)", want);
    free(got);
}
static void check_note(const DiagramModel *m, const char *box, int lang, const char *want) {
    char *got = diagram_box_notes(m, box, lang);
    CHECK(got && strstr(got, want), "%s: notes \"%s\" lack \"%s\"", box, got ? got : "(none)", want);
    free(got);
}
static void check_label(const DiagramModel *m, const char *box, int lang, const char *want) {
    char *got = diagram_box_label(m, box, lang);
    CHECK(got && strcmp(got, want) == 0, "%s: label \"%s\", want \"%s\"", box, got ? got : "(none)", want);
    free(got);
}

static void test_annotations(void) {
    DiagramModel m;
    model_8b(&m);
    // docs/tutorial-map.md: wq wk wv wo [4096,4096] [1024,4096] [1024,4096] [4096,4096]; W1,W3 [14336,4096], W2
    // [4096,14336]; output.weight [128256,4096]
    check_weight(&m, "embed", "tok_embeddings.weight [128256, 4096] bf16");
    check_weight(&m, "attn_norm", "layers.0.attention_norm.weight [4096] bf16");
    check_weight(&m, "wq", "layers.0.attention.wq.weight [4096, 4096] bf16");
    check_weight(&m, "wk", "layers.0.attention.wk.weight [1024, 4096] bf16");
    check_weight(&m, "wv", "layers.0.attention.wv.weight [1024, 4096] bf16");
    check_weight(&m, "wo", "layers.0.attention.wo.weight [4096, 4096] bf16");
    check_weight(&m, "ffn_norm", "layers.0.ffn_norm.weight [4096] bf16");
    check_weight(&m, "w1", "layers.0.feed_forward.w1.weight [14336, 4096] bf16");
    check_weight(&m, "w3", "layers.0.feed_forward.w3.weight [14336, 4096] bf16");
    check_weight(&m, "w2", "layers.0.feed_forward.w2.weight [4096, 14336] bf16");
    check_weight(&m, "final_norm", "norm.weight [4096] bf16");
    check_weight(&m, "output", "output.weight [128256, 4096] bf16");
    char *gate = diagram_box_weight(&m, "gate");  // the description's, though this model has no gate
    CHECK(diagram_box_weight(&m, "scores") == NULL && gate != NULL);
    free(gate);
    CHECK(!diagram_has_box(&m, "gate") && diagram_has_box(&m, "w1") && diagram_has_box(&m, "ffn"));
    check_note(&m, "wq", 0, "wq [4096, 4096] bf16\n→ q [T, 32, 128]");
    check_note(&m, "wk", 0, "→ k [T, 8, 128]");
    check_note(&m, "attn", 0, "32 query heads, 8 kv heads, 4 queries each");
    check_note(&m, "tokens", 0, "(T = 17)");
    check_note(&m, "rope", 0, "[T, 64, 2]");
    check_note(&m, "attn_out", 0, "[T, 32 × 128] = [T, 4096]");
    check_note(&m, "params", 0, "vocab_size 128256");
    check_note(&m, "rope_freqs", 1, "θ = 500000");
    check_label(&m, "block", 0, "Transformer block × 32");
    check_label(&m, "block", 1, "Transformer 块 × 32");
    check_label(&m, "scores", 0, "scores = q · kᵀ / √128");
    const char *par[][2] = {{"wq", "ColumnPar"}, {"wk", "ColumnPar"}, {"wv", "ColumnPar"}, {"wo", "RowPar"},
                            {"w1", "ColumnPar"}, {"w3", "ColumnPar"}, {"w2", "RowPar"},  {"output", "ColumnPar"},
                            {"embed", "VocabPar"}};
    for (int i = 0; i < 9; i++) {
        const char *got = diagram_box_parallel(par[i][0]);
        CHECK(got && strcmp(got, par[i][1]) == 0, "%s: %s, want %s", par[i][0], got ? got : "none", par[i][1]);
    }
    CHECK(diagram_box_parallel("attn_norm") == NULL);
    char *ch = diagram_box_chapters(&m, "wq");
    CHECK_EQ_STR(ch, "04 11 17 18");
    free(ch);
    ch = diagram_box_chapters(&m, "w1");  // through the feed-forward group: 13 (and 20 on a dense model)
    CHECK_EQ_STR(ch, "13 17 18 20");
    free(ch);
    // where lines
    char *line = diagram_where_line(&m, "04_query", 0);
    CHECK_EQ_STR(line, "where: Transformer block × 32 › Multi-head attention (GQA) › Wq");
    free(line);
    line = diagram_where_line(&m, "17_packed", 0);
    CHECK(strstr(line, "› Wq, Wk, Wv;") && strstr(line, "› W1 (gate), W3 (up);"), "%s", line);
    free(line);
    line = diagram_where_line(&m, "20_moe", 1);
    CHECK(strstr(line, "前馈网络（SwiGLU）") != NULL, "%s", line);
    free(line);

    // MoE: the feed-forward box is the MoE block
    DiagramModel moe;
    model_moe(&moe, 1);
    CHECK(diagram_is_moe(&moe) && !diagram_is_moe(&m));
    CHECK(!diagram_has_box(&moe, "ffn") && !diagram_has_box(&moe, "w1") && diagram_has_box(&moe, "moe") &&
          diagram_has_box(&moe, "shared"));
    check_weight(&moe, "gate", "layers.0.feed_forward.gate.weight [4, 512] bf16");
    check_weight(&moe, "experts", "layers.0.feed_forward.experts.0.w1.weight [1408, 512] bf16");
    check_weight(&moe, "shared", "layers.0.feed_forward.shared_experts.0.w1.weight [1408, 512] bf16");
    check_note(&moe, "moe", 0, "4 experts, top-2, 1 shared; F = 1408");
    check_note(&moe, "topk", 0, "2 of 4 experts per token");
    line = diagram_where_line(&moe, "20_moe", 0);
    CHECK_EQ_STR(line, "where: Transformer block × 8 › Mixture of experts (MoE)");
    free(line);
    line = diagram_where_line(&moe, "13_ffn", 0);
    CHECK(strstr(line, "Mixture of experts (MoE)") != NULL, "%s", line);
    free(line);
    const char *names[DIAGRAM_MAX_TENSORS];
    int n = diagram_tensors(&moe, names, DIAGRAM_MAX_TENSORS);
    bool has_gate = false, has_w1 = false;
    for (int i = 0; i < n; i++) has_gate |= strstr(names[i], "gate.weight") != NULL, has_w1 |= strstr(names[i], ".w1.") && !strstr(names[i], "experts");
    CHECK(has_gate && !has_w1, "the MoE model's tensors");
    moe.tied_output = true;  // MiniMind's lm_head is its embedding
    check_weight(&moe, "output", "output.weight [6400, 512] bf16 (tied: tok_embeddings.weight)");
    DiagramModel mixtral;  // no shared experts
    model_moe(&mixtral, 0);
    CHECK(!diagram_has_box(&mixtral, "shared") && diagram_has_box(&mixtral, "combine"));

    // without model facts: the names of the dimensions
    DiagramModel none = {0};
    check_weight(&none, "wq", "layers.0.attention.wq.weight [H·Dh, D]");
    check_weight(&none, "wk", "layers.0.attention.wk.weight [Hkv·Dh, D]");
    char *notes = diagram_box_notes(&none, "tokens", 0);
    CHECK_EQ_STR(notes, "prompt → [T] token ids");
    free(notes);
    notes = diagram_box_notes(&none, "ffn", 0);
    CHECK_EQ_STR(notes, "hidden size F");
    free(notes);
}

static void test_json(void) {
    DiagramModel m, back;
    model_moe(&m, 1);
    m.tied_output = true;
    char *json = diagram_model_to_json(&m);
    char err[160] = "";
    CHECK(diagram_model_from_json(&back, json, err, sizeof err), "%s", err);
    CHECK(back.known && back.dim == 512 && back.n_layers == 8 && back.n_kv_heads == 2 && back.ffn_hidden == 1408 &&
          back.vocab_size == 6400 && back.n_routed_experts == 4 && back.num_experts_per_tok == 2 &&
          back.n_shared_experts == 1 && back.T == 17 && back.tied_output && back.rope_theta == 1e6 &&
          back.norm_eps == 1e-5 && strcmp(back.name, "minimind-moe") == 0 && back.n_dtypes == m.n_dtypes);
    char *again = diagram_model_to_json(&back);
    CHECK_EQ_STR(again, json);
    free(again), free(json);
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[1]", "object"},
        {"{\"dim\": 4096}", "name"},
        {"{\"name\": \"x\", \"dim\": 0}", "dim"},
        {"{\"name\": \"x\", \"dim\": 8, \"n_layers\": 1, \"n_heads\": 1, \"n_kv_heads\": 1, \"head_dim\": 8, "
         "\"ffn_hidden\": 8, \"vocab_size\": 8, \"n_routed_experts\": -1}", "n_routed_experts"},
        {"{\"name\": \"x\", \"dim\": 8, \"n_layers\": 1, \"n_heads\": 1, \"n_kv_heads\": 1, \"head_dim\": 8, "
         "\"ffn_hidden\": 8, \"vocab_size\": 8, \"n_routed_experts\": 0, \"num_experts_per_tok\": 0, "
         "\"n_shared_experts\": 0, \"tokens\": 3, \"rope_theta\": \"big\", \"norm_eps\": 1e-5}", "rope_theta"},
        {"{\"name\": \"x\", \"dim\": 8, \"n_layers\": 1, \"n_heads\": 1, \"n_kv_heads\": 1, \"head_dim\": 8, "
         "\"ffn_hidden\": 8, \"vocab_size\": 8, \"n_routed_experts\": 0, \"num_experts_per_tok\": 0, "
         "\"n_shared_experts\": 0, \"tokens\": 3, \"rope_theta\": 1, \"norm_eps\": 1e-5, \"dtypes\": [1]}", "dtypes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK(!diagram_model_from_json(&back, bad[i].json, err, sizeof err) && strstr(err, bad[i].field),
              "%s: %s", bad[i].json, err);
    }
}

// ---- the pictures ---------------------------------------------------------------------------------------------------------

// Pixels inside [x0, x1) x [y0, y1) darker than `below` (summed RGB), for "there is text here".
static int dark_pixels(const Image *im, int x0, int y0, int x1, int y1, int below) {
    int n = 0;
    for (int y = y0; y < y1 && y < im->height; y++)
        for (int x = x0; x < x1 && x < im->width; x++) {
            const uint8_t *p = im->pixels + ((size_t)y * im->width + x) * im->channels;
            n += p[0] + p[1] + p[2] < below;
        }
    return n;
}
static int orange_pixels(const Image *im, int x0, int y0, int x1, int y1) {
    int n = 0;
    for (int y = y0; y < y1 && y < im->height; y++)
        for (int x = x0; x < x1 && x < im->width; x++) {
            const uint8_t *p = im->pixels + ((size_t)y * im->width + x) * im->channels;
            n += p[0] > 200 && p[1] > 70 && p[1] < 110 && p[2] < 40;  // the highlight, RGB(234, 88, 12)
        }
    return n;
}

static bool is_group(const char *id) {
    return !strcmp(id, "block") || !strcmp(id, "attn") || !strcmp(id, "ffn") || !strcmp(id, "moe");
}
static bool is_add(const char *id) { return !strncmp(id, "res", 3); }

// Every line of text of every box fits inside the box on this model; the group headers end left of the main axis,
// where the arrows run down through them.
static void check_text_fits(const DiagramModel *m, int lang) {
    for (int i = 0; i < diagram_n_boxes(); i++) {
        const char *id = diagram_box_id(i);
        if (!diagram_has_box(m, id) || is_add(id)) continue;
        int x, y, w, h;
        diagram_box_rect(id, &x, &y, &w, &h);
        char *label = diagram_box_label(m, id, lang), *notes = diagram_box_notes(m, id, lang);
        int room = is_group(id) ? 470 - (x + 14) : w - 16;
        const char *par = diagram_box_parallel(id);
        int label_room = par ? w - 28 - (font_text_width(par, 1) + 12) : room;
        CHECK(font_text_width(label, 1) <= label_room, "%s (%s): label \"%s\" is %d px, the box has %d", id,
              lang ? "zh" : "en", label, font_text_width(label, 1), label_room);
        int lines = 0;
        for (char *line = strtok(notes, "\n"); line; line = strtok(NULL, "\n"), lines++)
            CHECK(font_text_width(line, 1) <= room, "%s (%s): \"%s\" is %d px, the box has %d", id, lang ? "zh" : "en",
                  line, font_text_width(line, 1), room);
        CHECK(is_group(id) || 30 + 18 * lines <= h, "%s: %d lines of notes in a box %d px high", id, lines, h);
        free(label), free(notes);
    }
}

static void test_pictures(void) {
    DiagramModel m8, moe;
    model_8b(&m8);
    model_moe(&moe, 1);
    for (int lang = 0; lang < 2; lang++) check_text_fits(&m8, lang), check_text_fits(&moe, lang);

    char dir[] = "/tmp/l3t_diagram_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char *path = path_join(dir, "architecture.png");
    diagram_png(path, &m8, 0);
    Image im;
    image_read_png(path, &im);
    CHECK(im.width == DIAGRAM_WIDTH && im.height == DIAGRAM_HEIGHT, "%dx%d", im.width, im.height);
    // ink in every box's label line (the label is drawn from y + 10 to y + 26)
    for (int i = 0; i < diagram_n_boxes(); i++) {
        const char *id = diagram_box_id(i);
        if (!diagram_has_box(&m8, id)) continue;
        int x, y, w, h;
        diagram_box_rect(id, &x, &y, &w, &h);
        int ink = is_add(id) ? dark_pixels(&im, x + w + 8, y, x + w + 300, y + h, 200)
                             : dark_pixels(&im, x + 4, y + 8, x + w - 4, y + 28, 200);
        CHECK(ink >= 30, "box %s: %d dark pixels in its label area", id, ink);
    }
    CHECK(dark_pixels(&im, 0, 0, 600, 60, 200) > 200, "the title");
    image_free(&im);

    // the small map: its size, the chapter's boxes in the highlight colour and only those, a title
    for (int i = 0; i < diagram_n_chapters(); i++) {
        const DiagramChapter *c = diagram_chapter_at(i);
        if (c->whole_map) continue;
        diagram_mini_png(path, &moe, c->id, 0);
        image_read_png(path, &im);
        CHECK(im.width == (int)(DIAGRAM_WIDTH * DIAGRAM_MINI_SCALE + 0.5f) &&
                  im.height == (int)(DIAGRAM_HEIGHT * DIAGRAM_MINI_SCALE + 0.5f), "%dx%d", im.width, im.height);
        const char *hl[16];
        int n = diagram_chapter_boxes(&moe, c->id, hl, 16);
        for (int b = 0; b < diagram_n_boxes(); b++) {
            const char *id = diagram_box_id(b);
            if (!diagram_has_box(&moe, id) || is_group(id)) continue;
            bool want = false;
            for (int k = 0; k < n; k++) want |= strcmp(hl[k], id) == 0;
            int x, y, w, h;
            diagram_box_rect(id, &x, &y, &w, &h);
            float s = DIAGRAM_MINI_SCALE;
            int x0 = (int)(x * s) + 3, y0 = (int)(y * s) + 3, x1 = (int)((x + w) * s) - 3, y1 = (int)((y + h) * s) - 3;
            int area = (x1 - x0) * (y1 - y0), orange = orange_pixels(&im, x0, y0, x1, y1);
            if (is_add(id)) {  // a circle of 11 px with a white plus
                orange = orange_pixels(&im, x0 - 3, y0 - 3, x1 + 3, y1 + 3);
                CHECK(want ? orange >= 20 : orange == 0, "%s: the adder %s has %d highlighted pixels", c->id, id, orange);
            } else if (want) CHECK(orange > area / 2, "%s: box %s has %d of %d pixels highlighted", c->id, id, orange, area);
            else CHECK(orange < area / 10, "%s: box %s is highlighted (%d of %d)", c->id, id, orange, area);
        }
        CHECK(orange_pixels(&im, 0, 0, im.width, 30) + dark_pixels(&im, 0, 0, im.width, 30, 400) > 40, "%s: title", c->id);
        image_free(&im);
    }
    remove(path);
    free(path);
    rmdir(dir);

    // the SVG: every box of a chapter the page has is a link to it, chapters it lacks are not linked
    const char *ids[] = {"00_config", "04_query", "19_lens"};
    char *svg = diagram_svg(&m8, 0, ids, 3);
    CHECK(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    CHECK(strstr(svg, "href=\"#ch-00_config\"") && strstr(svg, "href=\"#ch-04_query\"") && strstr(svg, "href=\"#ch-19_lens\""));
    CHECK(!strstr(svg, "href=\"#ch-05_rope\"") && !strstr(svg, "#ch-19_logit_lens"));
    int links = 0, closes = 0;
    for (const char *p = svg; (p = strstr(p, "<a ")); p++) links++;
    for (const char *p = svg; (p = strstr(p, "</a>")); p++) closes++;
    CHECK(links == closes && links >= 6, "%d links, %d closed", links, closes);
    free(svg);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--render") == 0) {
        render_all(argv[2]);
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--render DIR]\n", argv[0]);
        return 2;
    }
    test_chapters();
    test_annotations();
    test_json();
    test_pictures();
    TEST_SUMMARY();
}

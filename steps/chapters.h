// chapters.h: the one table of the walkthrough's chapters (steps/chapters.c). Every text a chapter has lives in its
// entry: the title and the short introduction its program prints (steps/NN_name.c, through step_init), and the
// explanation, the tutorial's PyTorch and the figure recipes of the notebook and the page (export-notebook). Both
// read the same entry, so a title is written once.
//
// Adding a chapter is one entry in CHAPTERS (steps/chapters.c) and its program:
//   1. write steps/NN_name.c; its main() starts with step_init(&s, argc, argv, "NN_name") (the Makefile builds
//      every steps/[0-9][0-9]_*.c, and build/bin/walkthrough runs them in the order of their names);
//   2. add its entry to CHAPTERS, in id order: .id "NN_name" (the program's name, its folder under OUT, its key in
//      trace.json), .title_en/.title_zh, .intro_en/.intro_zh (printed first: a short paragraph),
//      .notebook_en/.notebook_zh (markdown for a reader of the notebook: paragraphs split by "\n\n", `code`),
//      .tutorial_code (the PyTorch lines the chapter follows, shown as comments; NULL if there are none),
//      .usage_extra (more lines for --help, or NULL) and .figures (a recipe for each PNG the chapter draws that
//      the notebook can redraw from its .npy; a figure without a recipe is shown as the PNG).
//   3. add its line to the map's chapter table (common/draw/diagram.c, MAP_CHAPTERS: its number and the boxes it
//      covers), so that it starts by naming its box and draws where.png; tests/unit/test_diagram.c fails until then.
// A step whose id has no entry stops at step_init with a message naming this file.
#pragma once
#include <stdbool.h>

#define CHAPTER_MAX_FIGURES 4

// How the notebook redraws a figure of the trace with matplotlib (the helpers of its first cell,
// notebooks_export/notebook_text.h). image: the file name inside the chapter's folder; a '*' in it matches the digits of
// a layer number, which replaces "{N}" in python. needs: the tensor the call loads; when the trace lacks it, the
// notebook shows the PNG itself instead.
typedef struct {
    const char *image, *needs, *python;
} ChapterFigure;

typedef struct {
    const char *id;                        // "05_rope"
    const char *title_en, *title_zh;
    const char *intro_en, *intro_zh;       // printed by the program first: what it computes and why
    const char *notebook_en, *notebook_zh; // the notebook's and the page's explanation (markdown)
    const char *tutorial_code;             // the tutorial's PyTorch, several lines, or NULL
    const char *usage_extra;               // extra lines for the program's --help, or NULL
    bool takes_tp;                         // the program takes --tp N (the number of ranks: 18_tensor_parallel)
    ChapterFigure figures[CHAPTER_MAX_FIGURES];  // up to the first with image NULL
    bool needs_moe;                        // traces a mixture of experts: on a dense model, the MoE demo model
    bool needs_dense;                      // splits a dense SwiGLU FFN (17, 18): on a MoE model, the demo model
} Chapter;

extern const Chapter CHAPTERS[];
extern const int N_CHAPTERS;

// The entry of a chapter id, or NULL.
const Chapter *chapter_find(const char *id);

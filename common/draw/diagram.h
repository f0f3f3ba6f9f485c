// diagram.h: the map of the LLaMA-3 transformer (the box diagram of the sources), drawn with one model's shapes.
//
// One description (diagram.c: boxes, arrows, the config fields that annotate each box, the chapters that cover it)
// drives three pictures:
//   - the whole map as a PNG (00_config's architecture.png): every box with the loaded model's shapes and dtypes
//     (`wq [4096, 4096] bf16`, `[T, 4096]`, `× 32`), the tensor-parallel marks of the sources (ColumnPar, RowPar,
//     VocabPar), GQA's shared kv heads, and the numbers of the chapters that show each box;
//   - the same map as inline SVG for the page (each box a link to its chapter's section);
//   - a small map with one chapter's boxes highlighted (every chapter's where.png).
// On a mixture-of-experts model (n_routed_experts > 0) the feed-forward box is the MoE block (gate, top-k, routed and
// shared experts, weighted sum). Without model facts (DiagramModel.known false) the shapes are written with the
// names of their dimensions (`wq [H·Dh, D]`).
//
// A new chapter adds one line to the chapter table in diagram.c (its number and the boxes it covers).
// Sizes: the whole map is DIAGRAM_WIDTH x DIAGRAM_HEIGHT px, the small one DIAGRAM_MINI_SCALE of that.
#pragma once
#include <stdbool.h>

#include "config.h"
#include "util.h"

#define DIAGRAM_WIDTH 1280
#define DIAGRAM_HEIGHT 1976
#define DIAGRAM_MINI_SCALE 0.4f
#define DIAGRAM_MAX_TENSORS 24

// What the map says about a model: the config, the dtype of each tensor it names, the prompt's length.
typedef struct {
    bool known;                 // false: no model facts, shapes are written with dimension names
    char name[96];              // shown in the title: the model folder's name
    int dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_hidden, vocab_size;
    double rope_theta, norm_eps;
    int n_routed_experts;       // E: 0 for a dense model
    int num_experts_per_tok;    // k
    int n_shared_experts;       // S
    bool tied_output;           // output.weight is tok_embeddings.weight (HF tie_word_embeddings)
    int T;                      // tokens in the prompt (0: unknown)
    int n_dtypes;
    struct { char tensor[80], dtype[16]; } dtypes[DIAGRAM_MAX_TENSORS];  // the tensors the map names, as stored
} DiagramModel;

// The facts of cfg; dtypes are added with diagram_model_set_dtype (00_config and the steps read them from the
// checkpoint). name: a path whose last component is shown.
void diagram_model_from_config(DiagramModel *m, const Config *cfg, const char *name, int T);
void diagram_model_set_dtype(DiagramModel *m, const char *tensor, const char *dtype);
bool diagram_is_moe(const DiagramModel *m);
// The checkpoint tensors the map names on this model (layer 0's), in the order of the boxes: n returned, at most max.
int diagram_tensors(const DiagramModel *m, const char **names, int max);

// The model facts as a JSON object (trace.json's "config") and back. diagram_model_from_json returns false with a
// message naming the field when the object is not what diagram_model_to_json writes.
char *diagram_model_to_json(const DiagramModel *m);  // malloc'd JSON text
bool diagram_model_from_json(DiagramModel *m, const char *json_text, char *err, size_t err_size);

// ---- chapters -------------------------------------------------------------------------------------------------------
// The chapter table: a chapter is found by the number its id starts with ("05" of "05_rope"), so a chapter keeps its
// box when its name changes. NULL when the table has no entry for it.
typedef struct {
    const char *number;   // "05"
    const char *id;       // the chapter's id when the table was written: "05_rope"
    const char *boxes;    // box ids, space separated; the first one this model has is "the" box of the chapter
    bool whole_map;       // the chapter draws the whole map itself (00_config): no where.png
} DiagramChapter;
const DiagramChapter *diagram_chapter(const char *chapter_id);
int diagram_n_chapters(void);
const DiagramChapter *diagram_chapter_at(int i);
// The boxes a chapter covers on this model (those of its list the model has), the first one first: n returned.
int diagram_chapter_boxes(const DiagramModel *m, const char *chapter_id, const char **box_ids, int max);
// One line naming where a chapter sits on the map, in lang (0 en, 1 zh), e.g.
// "where: Transformer block × 4 › Multi-head attention (GQA) › Wq" (malloc'd). NULL when the chapter has no entry.
char *diagram_where_line(const DiagramModel *m, const char *chapter_id, int lang);

// ---- boxes (for tests and for 00_config's printed table) -------------------------------------------------------------
int diagram_n_boxes(void);
const char *diagram_box_id(int i);
bool diagram_has_box(const DiagramModel *m, const char *box_id);  // the box exists on this model (dense / MoE)
// The box's rectangle on the whole map, px: false when there is no such box.
bool diagram_box_rect(const char *box_id, int *x, int *y, int *w, int *h);
// The box's label (lang 0 en, 1 zh) and its annotation lines with this model's numbers, "\n" separated (malloc'd).
char *diagram_box_label(const DiagramModel *m, const char *box_id, int lang);
char *diagram_box_notes(const DiagramModel *m, const char *box_id, int lang);
// The box's weight as "layers.0.attention.wq.weight [4096, 4096] bf16" (malloc'd); NULL when it holds none. A tied
// output projection ends with " (tied: tok_embeddings.weight)": the checkpoint has no output.weight of its own.
// The shape comes from the config (the description's formula), the dtype from the checkpoint.
char *diagram_box_weight(const DiagramModel *m, const char *box_id);
// The shape of the box's weight by the description's formula, "[4096, 4096]" (malloc'd); NULL when it holds none.
char *diagram_box_shape(const DiagramModel *m, const char *box_id);
// "ColumnPar", "RowPar", "VocabPar" or NULL: how Meta's tensor parallelism splits the box's weight.
const char *diagram_box_parallel(const char *box_id);
// The numbers of the chapters that cover the box on this model, itself or through the attention or feed-forward group
// around it ("13 17 18" for W1: chapter 13 shows the whole feed-forward), "" when none (malloc'd).
char *diagram_box_chapters(const DiagramModel *m, const char *box_id);

// ---- pictures ---------------------------------------------------------------------------------------------------------
// The whole map, DIAGRAM_WIDTH x DIAGRAM_HEIGHT.
void diagram_png(const char *path, const DiagramModel *m, int lang);
// The small map with chapter_id's boxes highlighted and its number and box as the title.
void diagram_mini_png(const char *path, const DiagramModel *m, const char *chapter_id, int lang);
// The whole map as an <svg> element (malloc'd), for a page. Each box is a link to "#ch-ID" where ID is the one of
// page_ids[n_pages] (the page's chapters) with the box's chapter number; boxes of chapters the page lacks are not links.
char *diagram_svg(const DiagramModel *m, int lang, const char *const *page_ids, int n_pages);

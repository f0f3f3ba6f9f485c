// page_explorer.h: the interactive parts of the page export-notebook writes, in the same single HTML file.
//
//   - chapter 14: an attention explorer over every layer and head (14_layers/attn_weights_layers [L, H, T, T]):
//     layer and head picked by click or arrow keys, a tooltip per cell (query token, key token, weight), a click on
//     a row draws that query's attention as bars over the tokens;
//   - chapter 19: the logit-lens grid (19_logit_lens/logit_lens_top_ids, _top_probs [L, T, k]) with the top 5 tokens
//     of a cell in a tooltip.
// The data goes into the page as JSON (<script type="application/json">), the attention weights as base64 of bf16
// (2 bytes a weight: exact for a bf16 trace) or, for a trace too large for that, of 8-bit steps of 1/255; the page
// says which. The script is notebooks_export/page_explorer.js, compiled into the program. Nothing is fetched: the
// page still opens from file:// with no network. The static PNGs stay in the page for readers without scripts.
//
// Use (export-notebook.c): page_explorer_load() with the other checks of the input, before anything is written
// (exit 2 naming the file and the field on bad data; a trace without those chapters simply has no explorer), then
// while writing the page: page_explorer_css() in <head>, page_explorer_section() at the end of each chapter's
// section, page_explorer_script() before </body>; page_explorer_free() at the end.
#pragma once
#include <jansson.h>
#include <stdio.h>

// root: trace.json (already checked by export-notebook: steps, tensors whose .npy files exist with the shapes it
// lists); trace_dir: where the files are.
void page_explorer_load(json_t *root, const char *trace_dir);
void page_explorer_css(FILE *f);
// lang: 0 en, 1 zh. Writes nothing for a step without an explorer.
void page_explorer_section(FILE *f, const char *step_id, int lang);
void page_explorer_script(FILE *f);
void page_explorer_free(void);

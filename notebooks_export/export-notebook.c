// export-notebook: a trace directory -> a Jupyter notebook and a self-contained HTML page, in English or Chinese.
//
// Reads TRACE_DIR/trace.json (common/trace.h: steps with printed lines, tensors, images, timings, comparisons) and
// writes
//   - a notebook (nbformat 4.5): a setup cell with small numpy/matplotlib helpers, then per chapter in the order of
//     the trace (00_config ... 19_logit_lens): the explanation (the chapter's entry in steps/chapters.c), the
//     chapter's small map (where.png), the tutorial's PyTorch
//     as comments, a cell that prints what the C program printed, a cell that loads the chapter's .npy files and
//     describes them, one cell per figure that redraws it from the .npy, and the CUDA-vs-CPU verdicts. Every output
//     is filled in already (the figures are the PNGs of the trace, embedded); "Run All" in Jupyter recomputes them
//     from the files next to the notebook with numpy and matplotlib alone.
//   - a page: one HTML file, images embedded as data: URIs, no network: a chapter list, the map (the sources' block
//     diagram with the model's shapes, inline SVG drawn by draw/diagram.h from trace.json's "config", every box a
//     link to its chapter), and per chapter its small map, the explanation, the tutorial's code, the printed lines, a
//     table of tensors (name, shape, dtype, min/max/mean/std), the figures and the verdicts; chapters 14 and 19 also
//     get an interactive view of their data, inline script and JSON (notebooks_export/page_explorer.*).
// Everything in the trace is checked before anything is written (exit 2 naming the file and the field on bad
// input); the outputs are written to NAME.partial and renamed, so a failed run leaves no half-written file.
//
// Run: build/bin/export-notebook TRACE_DIR [-o FILE.ipynb] [--html FILE.html] [--lang en|zh]
//      (defaults: TRACE_DIR/walkthrough.ipynb and TRACE_DIR/index.html; walkthrough_zh.ipynb, index_zh.html for zh)
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "draw/diagram.h"
#include "trace.h"
#include "util.h"

#include "chapters.h"  // steps/: the one table of chapters
#include "notebook_text.h"
#include "page_explorer.h"

// ---- a growable string --------------------------------------------------------------------------------------------

typedef StrBuf Buf;  // util.h

static void buf_add_n(Buf *b, const char *s, size_t n) { strbuf_add(b, s, n); }
static void buf_add(Buf *b, const char *s) { buf_add_n(b, s, strlen(s)); }
#define buf_printf strbuf_addf
#define buf_take strbuf_take

// ---- the trace, checked (trace_read in common/trace.c), and the PNGs as base64 --------------------------------------
// Everything allocated is reachable from the global `G`, so that an exit through input_error() leaves nothing that
// LeakSanitizer would call a leak.

typedef TraceTensorEntry TensorInfo;
typedef TraceComparisonEntry CompareInfo;
typedef TraceStepEntry StepInfo;
typedef struct {
    const char *file, *caption;
    const char *base64;  // the PNG bytes, base64
} ImageInfo;

static struct {
    TraceIndex *ix;
    char ***base64;          // [step][image]
    unsigned char *scratch;  // the bytes of the image being encoded
} G;

static void load_trace(const char *trace_dir) {
    G.ix = trace_read(trace_dir);
    G.base64 = xcalloc((size_t)G.ix->n_steps + 1, sizeof(char **));
    for (int si = 0; si < G.ix->n_steps; si++) {
        const StepInfo *st = &G.ix->steps[si];
        G.base64[si] = xcalloc((size_t)st->n_images + 1, sizeof(char *));
        for (int i = 0; i < st->n_images; i++) {
            char *path = path_join(trace_dir, st->images[i].file);
            size_t n;
            G.scratch = (unsigned char *)read_whole_file(path, &n);
            free(path);
            G.base64[si][i] = base64_encode(G.scratch, n);
            free(G.scratch), G.scratch = NULL;
        }
    }
}

// Image i of step si with its bytes.
static ImageInfo step_image(const StepInfo *st, int i) {
    const TraceImageEntry *im = &st->images[i];
    return (ImageInfo){im->file, im->caption, G.base64[st - G.ix->steps][i]};
}

static void free_trace(void) {
    for (int si = 0; si < G.ix->n_steps; si++) {
        for (int i = 0; i < G.ix->steps[si].n_images; i++) free(G.base64[si][i]);
        free(G.base64[si]);
    }
    free(G.base64);
    trace_index_free(G.ix);
}

// ---- the map (draw/diagram.h) ------------------------------------------------------------------------------------------
// trace.json's "config" holds the model's facts that the steps recorded; the page draws the map from them (without
// them, with the names of the dimensions). Each chapter's where.png is its highlighted small map: shown at the top of
// the chapter, not among its figures.

static DiagramModel MAP;

static void load_map_model(void) {
    if (!G.ix->config_json) return;  // a trace from before the map: shapes by name
    char err[160];
    if (!diagram_model_from_json(&MAP, G.ix->config_json, err, sizeof err)) input_error(G.ix->index_path, "config.%s", err);
}

static bool is_where_image(const StepInfo *st, int i) {
    const char *file = st->images[i].file, *slash = strrchr(file, '/');
    return strcmp(slash ? slash + 1 : file, "where.png") == 0;
}
// The index of the step's where.png, or -1.
static int where_image(const StepInfo *st) {
    for (int i = 0; i < st->n_images; i++)
        if (is_where_image(st, i)) return i;
    return -1;
}

// ---- small text helpers ----------------------------------------------------------------------------------------------

static const char *step_title(const StepInfo *st, int lang) {
    const Chapter *c = chapter_find(st->id);
    if (c) return lang ? c->title_zh : c->title_en;
    return st->title ? st->title : st->id;
}
// "05" of "05_rope": the chapter number shown before the title (empty when the id does not start with digits)
static void step_number(const StepInfo *st, char *out, size_t n) {
    size_t k = strspn(st->id, "0123456789");
    if (k >= n) k = n - 1;
    memcpy(out, st->id, k);
    out[k] = 0;
}

// Python's str(tuple(shape)): "(17, 128)", "(64,)", "()".
static void python_tuple(const TensorInfo *t, char *out, size_t n) {
    size_t len = (size_t)snprintf(out, n, "(");
    for (int d = 0; d < t->ndim && len < n; d++)
        len += (size_t)snprintf(out + len, n - len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (len < n) snprintf(out + len, n - len, t->ndim == 1 ? ",)" : ")");
}
// "[17, 128]"
static void shape_list(const TensorInfo *t, char *out, size_t n) {
    size_t len = (size_t)snprintf(out, n, "[");
    for (int d = 0; d < t->ndim && len < n; d++)
        len += (size_t)snprintf(out + len, n - len, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    if (len < n) snprintf(out + len, n - len, "]");
}

// The line the notebook's describe(name, a) prints (NB_PRELUDE), from the statistics in the trace: the same format
// as Python's %-formatting, so the filled-in output is what running the cell prints.
static void describe_line(Buf *b, const TensorInfo *t) {
    char shape[160];
    python_tuple(t, shape, sizeof shape);
    buf_printf(b, "%-40s %-16s %-8s ", t->name, shape, t->npy_dtype);
    int64_t nonfinite = t->n_nan + t->n_inf;
    if (!isnan(t->min) && !isnan(t->max) && !isnan(t->mean))
        buf_printf(b, "min %.4g  max %.4g  mean %.4g", t->min, t->max, t->mean);
    else
        buf_add(b, "no finite values");
    if (nonfinite > 0) buf_printf(b, "  non-finite %lld", (long long)nonfinite);
    buf_add(b, "\n");
}

// A Python string literal (UTF-8 kept; quotes, backslashes and control characters escaped).
static void py_string(Buf *b, const char *s) {
    buf_add(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) buf_printf(b, "\\x%02x", *p);
        else buf_add_n(b, (const char *)p, 1);
    }
    buf_add(b, "\"");
}

static bool is_python_identifier(const char *s) {
    static const char *const keywords[] = {"False", "None", "True", "and", "as", "assert", "async", "await", "break",
        "class", "continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if",
        "import", "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with",
        "yield"};
    // also keep clear of the names the setup cell defines
    static const char *const taken[] = {"json", "os", "np", "plt", "TRACE", "trace", "steps", "TOKENS", "load",
        "printed", "describe", "KV_GROUP", "token_labels", "token_heatmap", "complex_rays", "head_grid",
        "residual_norms", "top_k", "vocab", "logit_lens", "per_layer", "show_png", "f"};
    if (!*s || !(isalpha((unsigned char)*s) || *s == '_')) return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_')) return false;
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strcmp(s, keywords[i]) == 0) return false;
    for (size_t i = 0; i < sizeof taken / sizeof *taken; i++)
        if (strcmp(s, taken[i]) == 0) return false;
    return true;
}

// The trace directory as seen from the folder of the notebook ("." when the notebook is inside it).
static char *relative_trace_dir(const char *notebook_path) {
    char *copy = xstrdup(notebook_path);
    char *slash = strrchr(copy, '/');
    const char *nb_dir = slash ? (slash == copy ? "/" : (*slash = 0, copy)) : ".";
    char from[PATH_MAX], to[PATH_MAX];
    if (!realpath(nb_dir, from)) {
        free(copy);
        input_error(notebook_path, "the folder of the notebook does not exist");
    }
    if (!realpath(G.ix->dir, to)) fatal("%s: realpath failed: %s", G.ix->dir, strerror(errno));
    free(copy);
    // strip the common leading folders, then one ".." per folder left in `from`
    size_t common = 0;
    for (size_t i = 0;; i++) {
        bool end_from = from[i] == 0 || from[i] == '/', end_to = to[i] == 0 || to[i] == '/';
        if (end_from && end_to) common = i;
        if (from[i] != to[i] || from[i] == 0) break;
    }
    if (strcmp(from, "/") == 0) common = 0;
    Buf b = {0};
    for (const char *p = from + common; *p; p++)
        if (*p == '/') buf_add(&b, b.len ? "/.." : "..");
    const char *rest = to + common;
    if (*rest == '/') rest++;
    if (*rest) {
        if (b.len) buf_add(&b, "/");
        buf_add(&b, rest);
    }
    if (!b.len) buf_add(&b, ".");
    return buf_take(&b);
}

// ---- the notebook ----------------------------------------------------------------------------------------------------

typedef struct {
    json_t *cells;
    int n_cells, execution_count;
} Notebook;

// nbformat stores multi-line text as a list of lines, each keeping its '\n'.
static json_t *nb_text(const char *text) {
    json_t *lines = json_array();
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        json_array_append_new(lines, json_stringn(p, n));
        p += n;
    }
    return lines;
}

static json_t *nb_cell(Notebook *nb, const char *type, const char *source) {
    json_t *cell = json_object();
    char id[32];
    snprintf(id, sizeof id, "cell-%03d", nb->n_cells++);
    json_object_set_new(cell, "cell_type", json_string(type));
    json_object_set_new(cell, "id", json_string(id));
    json_object_set_new(cell, "metadata", json_object());
    json_object_set_new(cell, "source", nb_text(source));
    json_array_append_new(nb->cells, cell);
    return cell;
}
static void nb_markdown(Notebook *nb, const char *source) { nb_cell(nb, "markdown", source); }
// A code cell; its outputs array is returned so the caller can fill it in. A cell without output is left unnumbered.
static json_t *nb_code(Notebook *nb, const char *source, bool has_output) {
    json_t *cell = nb_cell(nb, "code", source);
    json_object_set_new(cell, "execution_count", has_output ? json_integer(++nb->execution_count) : json_null());
    json_t *outputs = json_array();
    json_object_set_new(cell, "outputs", outputs);
    return outputs;
}
static void nb_stream(json_t *outputs, const char *text) {
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string("stdout"));
    json_object_set_new(o, "output_type", json_string("stream"));
    json_object_set_new(o, "text", nb_text(text));
    json_array_append_new(outputs, o);
}
static void nb_png(json_t *outputs, const char *base64, const char *alt) {
    json_t *o = json_object(), *data = json_object();
    json_object_set_new(data, "image/png", json_string(base64));
    json_object_set_new(data, "text/plain", nb_text(alt));
    json_object_set_new(o, "data", data);
    json_object_set_new(o, "metadata", json_object());
    json_object_set_new(o, "output_type", json_string("display_data"));
    json_array_append_new(outputs, o);
}

// Markdown-safe text: the characters that would start emphasis, links or HTML are escaped.
static void md_escape(Buf *b, const char *s) {
    for (const char *p = s; *p; p++) {
        if (strchr("\\`*_[]<>#|", *p)) buf_printf(b, "\\%c", *p);
        else buf_add_n(b, p, 1);
    }
}
static void md_number(Buf *b, double v) {
    if (isnan(v)) buf_add(b, "–");
    else buf_printf(b, "%.3g", v);
}

// Why a step has no comparison: it ran with --no-compare, or on the CPU alone, or it has none to make.
static const char *no_comparison_text(const StepInfo *st, const UiText *ui) {
    if (st->mode && (strcmp(st->mode, "cuda-only") == 0 || strcmp(st->mode, "cpu-only") == 0)) return ui->no_comparison_run;
    return G.ix->device && strcmp(G.ix->device, "cpu") == 0 ? ui->no_comparison_cpu : ui->no_comparison;
}

static void verdict_markdown(Buf *b, const StepInfo *st, const UiText *ui) {
    buf_printf(b, "**%s**\n\n", ui->verdict_heading);
    if (st->error) {
        buf_printf(b, "**%s** `", ui->sum_stopped);
        buf_add(b, st->error);  // one line written by the step: no backtick in it
        buf_add(b, "`\n\n");
    }
    if (st->n_comparisons == 0) {
        buf_add(b, no_comparison_text(st, ui));
        buf_add(b, "\n");
        return;
    }
    buf_printf(b, "| %s | %s | %s | %s | %s | %s | %s |\n|---|---:|---:|---|---:|---:|---|\n", ui->col_name,
               ui->col_max_abs, ui->col_max_rel, ui->col_tolerance, ui->col_tol_used, ui->col_mismatch, ui->col_verdict);
    for (int i = 0; i < st->n_comparisons; i++) {
        const CompareInfo *c = &st->comparisons[i];
        buf_add(b, "| ");
        md_escape(b, c->name);
        buf_add(b, " | ");
        md_number(b, c->max_abs);
        buf_add(b, " | ");
        md_number(b, c->max_rel);
        buf_add(b, " | atol ");
        md_number(b, c->atol);
        buf_add(b, ", rtol ");
        md_number(b, c->rtol);
        buf_add(b, " | ");
        if (isnan(c->tol_used)) buf_add(b, "–");
        else buf_printf(b, "%.0f%%", 100.0 * c->tol_used);
        buf_printf(b, " | %lld / %lld | %s |\n", (long long)c->n_mismatch, (long long)c->n,
                   strcmp(c->verdict, "OK") == 0 ? "✅ OK" : "❌ FAIL");
    }
}

// The figure recipe for an image of a step, or NULL; *layer gets the number a '*' matched.
static const ChapterFigure *figure_recipe(const StepInfo *st, const char *file, int *layer) {
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/", st->id);
    if (strncmp(file, prefix, strlen(prefix)) != 0) return NULL;  // an image outside the step's folder
    const Chapter *c = chapter_find(st->id);
    for (int i = 0; c && i < CHAPTER_MAX_FIGURES && c->figures[i].image; i++) {
        const ChapterFigure *r = &c->figures[i];
        if (fnmatch(r->image, base, 0) != 0) continue;
        bool has_tensor = false;
        for (int t = 0; t < st->n_tensors; t++) has_tensor |= strcmp(st->tensors[t].name, r->needs) == 0;
        if (!has_tensor) return NULL;
        *layer = -1;
        const char *star = strchr(r->image, '*');
        if (star) {
            const char *digits = base + (star - r->image);
            if (!isdigit((unsigned char)*digits)) return NULL;
            *layer = atoi(digits);
            // the layer must exist in the tensor: its first dimension
            for (int t = 0; t < st->n_tensors; t++)
                if (strcmp(st->tensors[t].name, r->needs) == 0 &&
                    (st->tensors[t].ndim == 0 || *layer >= st->tensors[t].shape[0]))
                    return NULL;
        }
        return r;
    }
    return NULL;
}

// recipe->python with "{N}" replaced by the layer number
static void figure_python(Buf *b, const ChapterFigure *r, int layer) {
    for (const char *p = r->python; *p;) {
        if (strncmp(p, "{N}", 3) == 0) buf_printf(b, "%d", layer), p += 3;
        else buf_add_n(b, p++, 1);
    }
}

// A code cell that shows an image of the trace: `comment` (may be ""), then the recipe's Python that redraws it, or
// show_png(file) without a recipe; the PNG itself is its output.
static void nb_image_cell(Notebook *nb, const ImageInfo *im, const char *comment, const ChapterFigure *r, int layer) {
    Buf b = {0};
    buf_add(&b, comment);
    if (r) figure_python(&b, r, layer);
    else {
        buf_add(&b, "show_png(");
        py_string(&b, im->file);
        buf_add(&b, ")");
    }
    json_t *out = nb_code(nb, b.data, true);
    free(buf_take(&b));
    nb_png(out, im->base64, im->caption ? im->caption : im->file);
}

// The notebook: the small map right under the chapter's explanation.
static void nb_where_cell(Notebook *nb, const StepInfo *st) {
    int i = where_image(st);
    if (i < 0) return;
    const ImageInfo im = step_image(st, i);
    nb_image_cell(nb, &im, "", NULL, 0);
}

static void add_chapter_cells(Notebook *nb, const StepInfo *st, int lang) {
    const UiText *ui = &NB_UI[lang];
    const Chapter *c = chapter_find(st->id);
    Buf b = {0};
    char num[16];
    step_number(st, num, sizeof num);

    // the explanation
    buf_printf(&b, "<a id=\"ch-%s\"></a>\n\n## %s%s", st->id, num, *num ? " · " : "");
    md_escape(&b, step_title(st, lang));
    buf_printf(&b, "\n\n`%s`\n\n", st->id);
    buf_add(&b, c ? (lang ? c->notebook_zh : c->notebook_en) : ui->missing_text);
    buf_add(&b, "\n");
    nb_markdown(nb, b.data);
    free(buf_take(&b));
    nb_where_cell(nb, st);

    // the tutorial's PyTorch, as comments
    if (c && c->tutorial_code) {
        buf_printf(&b, "%s\n", ui->tutorial_comment);
        for (const char *p = c->tutorial_code; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            buf_add(&b, "# ");
            buf_add_n(&b, p, n);
            if (nl) buf_add(&b, "\n");
            p += n + (nl ? 1 : 0);
        }
        nb_code(nb, b.data, false);
        free(buf_take(&b));
    }

    // what the program printed
    size_t n_lines = (size_t)st->n_lines;
    if (n_lines) {
        buf_add(&b, "printed(");
        py_string(&b, st->id);
        buf_add(&b, ")");
        json_t *out = nb_code(nb, b.data, true);
        free(buf_take(&b));
        for (size_t i = 0; i < n_lines; i++) {
            buf_add(&b, st->lines[i]);
            buf_add(&b, "\n");
        }
        nb_stream(out, b.data);
        free(buf_take(&b));
    }

    // the .npy files, loaded with numpy
    if (st->n_tensors) {
        Buf out_text = {0};
        buf_printf(&b, "%s\n", ui->npy_comment);
        for (int i = 0; i < st->n_tensors; i++) {
            const TensorInfo *t = &st->tensors[i];
            // two tensors may share a name across steps but not within one; a name that is no identifier is loaded
            // without a variable
            bool dup = false;
            for (int k = 0; k < i; k++) dup |= strcmp(st->tensors[k].name, t->name) == 0;
            if (is_python_identifier(t->name) && !dup) {
                buf_printf(&b, "%s = load(", t->name);
                py_string(&b, st->id);
                buf_add(&b, ", ");
                py_string(&b, t->name);
                buf_add(&b, ")\ndescribe(");
                py_string(&b, t->name);
                buf_printf(&b, ", %s)\n", t->name);
            } else {
                buf_add(&b, "describe(");
                py_string(&b, t->name);
                buf_add(&b, ", load(");
                py_string(&b, st->id);
                buf_add(&b, ", ");
                py_string(&b, t->name);
                buf_add(&b, "))\n");
            }
            describe_line(&out_text, t);
        }
        b.data[--b.len] = 0;  // no newline after the last line of the cell
        json_t *out = nb_code(nb, b.data, true);
        nb_stream(out, out_text.data);
        free(buf_take(&b)), free(buf_take(&out_text));
    }

    // the figures: redrawn from the .npy where we know how, else the PNG itself
    for (int i = 0; i < st->n_images; i++) {
        if (is_where_image(st, i)) continue;  // shown under the explanation
        const ImageInfo img = step_image(st, i), *im = &img;
        int layer = 0;
        const ChapterFigure *r = figure_recipe(st, im->file, &layer);
        buf_printf(&b, "%s\n", r ? ui->figure_comment : ui->figure_shown_comment);
        nb_image_cell(nb, im, b.data, r, layer);
        free(buf_take(&b));
    }

    // the verdicts
    verdict_markdown(&b, st, ui);
    nb_markdown(nb, b.data);
    free(buf_take(&b));
}

// A chapter's badge: "fail" when it stopped or a comparison failed, "ok" when all passed, NULL when none was made.
static const char *step_status(const StepInfo *st) {
    if (st->error) return "fail";
    if (!st->n_comparisons) return NULL;
    for (int i = 0; i < st->n_comparisons; i++)
        if (strcmp(st->comparisons[i].verdict, "OK") != 0) return "fail";
    return "ok";
}

// ---- the summary: what was compared, what was not, what failed or is missing ----------------------------------------
// "14 compared with CUDA and passed · 3 not compared · 1 FAILED (15_logits) · 1 missing (16_generate)" (counts of
// chapters; a count of 0 is left out, except the first). A chapter fails when it stopped or a comparison failed; it
// is compared when the CUDA path ran beside the CPU reference and it recorded comparisons, self-checked when only the
// CPU reference ran and it checked itself; missing: in the table of chapters but not in the trace. *cls: "ok" (green)
// only when nothing failed or is missing and most chapters were compared with CUDA, "fail", else "na".
static char *summary_text(const UiText *ui, const char **cls) {
    int compared = 0, self_checked = 0, not_compared = 0, failed = 0, missing = 0;
    Buf failed_ids = {0}, missing_ids = {0};
    for (int si = 0; si < G.ix->n_steps; si++) {
        const StepInfo *st = &G.ix->steps[si];
        const char *status = step_status(st);
        if (status && strcmp(status, "fail") == 0) {
            buf_printf(&failed_ids, "%s%s", failed++ ? ", " : "", st->id);
        } else if (status && st->mode && strcmp(st->mode, "cuda+cpu") == 0) compared++;
        else if (status && st->mode && strcmp(st->mode, "cpu") == 0) self_checked++;
        else not_compared++;
    }
    for (int c = 0; c < N_CHAPTERS; c++) {
        bool present = false;
        for (int si = 0; si < G.ix->n_steps && !present; si++) present = strcmp(G.ix->steps[si].id, CHAPTERS[c].id) == 0;
        if (!present) buf_printf(&missing_ids, "%s%s", missing++ ? ", " : "", CHAPTERS[c].id);
    }
    Buf b = {0};
    buf_printf(&b, "%d %s", compared, ui->sum_compared);
    if (self_checked) buf_printf(&b, " · %d %s", self_checked, ui->sum_self_checked);
    if (not_compared) buf_printf(&b, " · %d %s", not_compared, ui->sum_not_compared);
    if (failed) buf_printf(&b, " · %d %s (%s)", failed, ui->sum_failed, failed_ids.data);
    if (missing) buf_printf(&b, " · %d %s (%s)", missing, ui->sum_missing, missing_ids.data);
    free(buf_take(&failed_ids)), free(buf_take(&missing_ids));
    *cls = failed ? "fail" : !missing && compared > self_checked + not_compared ? "ok" : "na";
    return buf_take(&b);
}

static json_t *build_notebook(const char *notebook_path, int lang) {
    const UiText *ui = &NB_UI[lang];
    Notebook nb = {.cells = json_array()};
    Buf b = {0};

    // title, the run, the chapter list
    buf_printf(&b, "# %s\n\n%s\n\n", ui->doc_title, ui->intro);
    if (G.ix->mixed) buf_printf(&b, "> **⚠ %s** %s\n\n", ui->mixed, G.ix->mixed);
    const char *cls;
    char *summary = summary_text(ui, &cls);
    buf_printf(&b, "**%s**\n\n", summary);
    free(summary);
    buf_printf(&b, "| | |\n|---|---|\n");
    const char *fields[4][2] = {{ui->model, G.ix->model}, {ui->prompt, G.ix->prompt},
                                {ui->device, G.ix->device}, {ui->precision, G.ix->precision}};
    for (int i = 0; i < 4; i++) {
        if (!fields[i][1]) continue;
        // in a table cell of markdown, a '|' would end the cell and a '`' the code span
        buf_printf(&b, "| %s | `", fields[i][0]);
        for (const char *p = fields[i][1]; *p; p++) {
            if (*p == '|') buf_add(&b, "¦");
            else if (*p == '`') buf_add(&b, "'");
            else if (*p == '\n') buf_add(&b, " ");
            else buf_add_n(&b, p, 1);
        }
        buf_add(&b, "` |\n");
    }
    if (G.ix->n_token_ids) buf_printf(&b, "| %s | %d |\n", ui->tokens, G.ix->n_token_ids);
    buf_printf(&b, "\n**%s**\n\n", ui->chapters);
    for (int si = 0; si < G.ix->n_steps; si++) {
        const StepInfo *st = &G.ix->steps[si];
        char num[16];
        step_number(st, num, sizeof num);
        buf_printf(&b, "%d. [%s%s", si + 1, num, *num ? " · " : "");
        md_escape(&b, step_title(st, lang));
        buf_printf(&b, "](#ch-%s)\n", st->id);
    }
    nb_markdown(&nb, b.data);
    free(buf_take(&b));

    // the helpers
    nb_markdown(&nb, ui->setup_md);
    char *rel = relative_trace_dir(notebook_path);
    Buf lit = {0};
    py_string(&lit, rel);
    free(rel);
    const char *at = strstr(NB_PRELUDE, "@TRACE@");
    buf_add_n(&b, NB_PRELUDE, (size_t)(at - NB_PRELUDE));
    buf_add(&b, lit.data);
    buf_add(&b, at + strlen("@TRACE@"));
    free(buf_take(&lit));
    while (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = 0;
    nb_code(&nb, b.data, false);
    free(buf_take(&b));

    for (int si = 0; si < G.ix->n_steps; si++) add_chapter_cells(&nb, &G.ix->steps[si], lang);

    json_t *doc = json_object(), *meta = json_object(), *kernel = json_object(), *langinfo = json_object();
    json_object_set_new(kernel, "display_name", json_string("Python 3"));
    json_object_set_new(kernel, "language", json_string("python"));
    json_object_set_new(kernel, "name", json_string("python3"));
    json_object_set_new(langinfo, "name", json_string("python"));
    json_object_set_new(meta, "kernelspec", kernel);
    json_object_set_new(meta, "language_info", langinfo);
    json_t *ours = json_object();
    json_object_set_new(ours, "lang", json_string(lang ? "zh" : "en"));
    json_object_set_new(ours, "trace_format", json_string("llama3-trace/1"));
    json_object_set_new(ours, "steps", json_integer(G.ix->n_steps));
    json_object_set_new(meta, "llama3_trace", ours);
    json_object_set_new(doc, "cells", nb.cells);
    json_object_set_new(doc, "metadata", meta);
    json_object_set_new(doc, "nbformat", json_integer(4));
    json_object_set_new(doc, "nbformat_minor", json_integer(5));
    return doc;
}

static void write_notebook(const char *path, int lang) {
    json_t *doc = build_notebook(path, lang);
    char *text = json_dumps(doc, JSON_INDENT(1));
    if (!text) fatal("%s: cannot serialise the notebook", path);
    AtomicFile af;
    atomic_open(&af, path);
    xfwrite(text, strlen(text), af.f, af.tmp_path);
    xfwrite("\n", 1, af.f, af.tmp_path);
    atomic_commit(&af);
    free(text);
    json_decref(doc);
}

// ---- the page --------------------------------------------------------------------------------------------------------

static void html_escape(FILE *f, const char *s) {
    for (const char *p = s; *p; p++) {
        switch (*p) {
            case '&': fputs("&amp;", f); break;
            case '<': fputs("&lt;", f); break;
            case '>': fputs("&gt;", f); break;
            case '"': fputs("&quot;", f); break;
            case '\'': fputs("&#39;", f); break;
            default: fputc(*p, f);
        }
    }
}
static void html_escape_n(FILE *f, const char *s, size_t n) {
    char *copy = xmalloc(n + 1);
    memcpy(copy, s, n);
    copy[n] = 0;
    html_escape(f, copy);
    free(copy);
}
// Text with `code` spans, escaped.
static void html_inline_n(FILE *f, const char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        const char *tick = memchr(p + i, '`', n - i);
        const char *close = tick ? memchr(tick + 1, '`', (size_t)(p + n - tick - 1)) : NULL;
        if (!tick || !close) {
            html_escape_n(f, p + i, n - i);
            return;
        }
        html_escape_n(f, p + i, (size_t)(tick - (p + i)));
        fputs("<code>", f);
        html_escape_n(f, tick + 1, (size_t)(close - tick - 1));
        fputs("</code>", f);
        i = (size_t)(close + 1 - p);
    }
}
static void html_inline(FILE *f, const char *text) { html_inline_n(f, text, strlen(text)); }
// The chapters' markdown, the little of it they use: paragraphs split by a blank line, `code` spans.
static void html_markdown(FILE *f, const char *text) {
    for (const char *p = text; *p;) {
        const char *end = strstr(p, "\n\n");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        fputs("<p>", f);
        html_inline_n(f, p, n);
        fputs("</p>\n", f);
        p += n + (end ? 2 : 0);
    }
}
static void html_number(FILE *f, double v) {
    if (isnan(v)) fputs("<span class=\"na\">–</span>", f);
    else fprintf(f, "%.4g", v);
}

static const char PAGE_CSS[] =
    ":root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--accent:#0969da;--ok:#1a7f37;--bad:#cf222e}\n"
    "*{box-sizing:border-box}\n"
    "body{margin:0;color:var(--ink);background:#fff;font:16px/1.55 system-ui,-apple-system,'Segoe UI','Noto Sans',"
    "'Noto Sans CJK SC','WenQuanYi Micro Hei','DejaVu Sans',Unifont,sans-serif}\n"
    "nav{position:fixed;top:0;left:0;bottom:0;width:270px;overflow-y:auto;padding:20px 14px;background:var(--soft);"
    "border-right:1px solid var(--line)}\n"
    "nav .brand{font-weight:700;font-size:18px;margin:0 6px 12px}\n"
    "nav ol{list-style:none;margin:0;padding:0}\n"
    "nav li a{display:flex;gap:8px;align-items:baseline;padding:4px 6px;border-radius:6px;color:var(--ink);"
    "text-decoration:none;font-size:14px;line-height:1.35}\n"
    "nav li a:hover{background:#e7ecf0}\n"
    "nav .num,h2 .num{font-variant-numeric:tabular-nums;color:var(--muted);font-weight:600}\n"
    "nav .badge{margin-left:auto;font-size:12px}\n"
    ".ok{color:var(--ok)}.fail{color:var(--bad);font-weight:700}.na{color:var(--muted)}\n"
    "main{margin-left:270px;padding:28px 40px 60px;max-width:1220px;min-width:0}\n"
    ".scroll{overflow-x:auto;max-width:100%}\n"
    "h1{font-size:30px;margin:0 0 8px}\n"
    "h2{font-size:23px;margin:0 0 10px;padding-bottom:6px;border-bottom:1px solid var(--line)}\n"
    "h3{font-size:15px;margin:18px 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}\n"
    "section.chapter{margin:34px 0;padding-top:6px}\n"
    ".explain p{margin:0 0 10px;max-width:62em}\n"
    "code{font:13.5px/1.4 ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,monospace;background:var(--soft);"
    "padding:1px 4px;border-radius:4px}\n"
    "pre{font:13px/1.45 ui-monospace,'DejaVu Sans Mono',Menlo,Consolas,'Noto Sans Mono CJK SC',Unifont,monospace;"
    "background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:10px 12px;overflow:auto;margin:0}\n"
    "pre.code{border-left:4px solid var(--accent)}\n"
    "pre.out{max-height:24em}\n"
    "table{border-collapse:collapse;font-size:13.5px;margin:4px 0}\n"
    "th,td{border:1px solid var(--line);padding:4px 9px;text-align:left;vertical-align:top}\n"
    "th{background:var(--soft);font-weight:600}\n"
    "td.n{white-space:nowrap;text-align:right;font-variant-numeric:tabular-nums;font-family:ui-monospace,'DejaVu Sans Mono',monospace}\n"
    "table.run th{width:8em}\n"
    ".tokens{display:flex;flex-wrap:wrap;gap:5px;margin:10px 0}\n"
    ".tok{display:inline-flex;flex-direction:column;align-items:center;border:1px solid var(--line);border-radius:6px;"
    "padding:2px 7px;background:#fff}\n"
    ".tok b{font:600 14px ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre}\n"
    ".tok small{color:var(--muted);font-size:11px}\n"
    ".summary{font-weight:600;margin:10px 0 0}\n"
    ".figs{display:flex;flex-wrap:wrap;gap:6px 18px;align-items:flex-start}\n"
    "figure{margin:10px 0 12px;max-width:100%}\n"
    "figure img{max-width:min(100%,900px);height:auto;border:1px solid var(--line);border-radius:6px;display:block}\n"
    "figcaption{color:var(--muted);font-size:13.5px;margin-top:4px}\n"
    ".timings{color:var(--muted);font-size:13px;margin-top:10px}\n"
    "section.map{margin:30px 0 10px}\n.map-intro{color:var(--muted);max-width:62em}\n"
    ".map-svg svg{display:block;width:100%;max-width:1280px;height:auto;border:1px solid var(--line);border-radius:6px}\n"
    "figure.where{float:right;width:240px;margin:0 0 12px 22px}\n"
    "figure.where img{width:100%;height:auto;border:1px solid var(--line);border-radius:6px;display:block}\n"
    "section.chapter{clear:both}\n"
    "footer{margin-top:50px;color:var(--muted);font-size:13px;border-top:1px solid var(--line);padding-top:10px}\n"
    "@media (max-width:900px){nav{position:static;width:auto;border-right:0}main{margin-left:0;padding:16px}}\n";

// The page: the whole map at the top, each box a link to its chapter's section.
static void html_map(FILE *f, int lang) {
    const char **ids = xcalloc((size_t)G.ix->n_steps + 1, sizeof(char *));
    for (int i = 0; i < G.ix->n_steps; i++) ids[i] = G.ix->steps[i].id;
    char *svg = diagram_svg(&MAP, lang, ids, G.ix->n_steps);
    fprintf(f, "<section class=\"map\" id=\"map\">\n<h2>%s</h2>\n<p class=\"map-intro\">%s</p>\n<div class=\"map-svg\">\n%s</div>\n"
               "</section>\n",
            lang ? "结构图" : "The map",
            lang ? "来源文档中 LLaMA 的框图，标上本次运行的模型的形状。点击一个框或一个黑色的章节号，跳到讲解它的章节；每一章开头的小图标出它在图中的位置。"
                 : "The LLaMA block diagram of the sources, with the shapes of this run's model. Click a box or a black "
                   "chapter number to go to the chapter that shows it; the small map at the top of each chapter marks "
                   "where it sits.",
            svg);
    free(svg), free(ids);
}

// The page: the chapter's small map, floated beside its explanation.
static void html_where(FILE *f, const StepInfo *st) {
    int i = where_image(st);
    if (i < 0) return;
    const ImageInfo img = step_image(st, i), *im = &img;
    fputs("<figure class=\"where\"><a href=\"#map\"><img alt=\"", f);  // to the whole map at the top
    html_escape(f, im->caption ? im->caption : im->file);
    fputs("\" data-file=\"", f);
    html_escape(f, im->file);
    fprintf(f, "\" src=\"data:image/png;base64,%s\"></a></figure>\n", im->base64);
}

// "ok" when every comparison of the step passed, "fail" when one failed, NULL when it has none.

static void html_chapter(FILE *f, const StepInfo *st, int lang) {
    const UiText *ui = &NB_UI[lang];
    const Chapter *c = chapter_find(st->id);
    char num[16];
    step_number(st, num, sizeof num);
    fprintf(f, "<section class=\"chapter\" id=\"ch-%s\" data-step=\"%s\">\n<h2>", st->id, st->id);
    if (*num) fprintf(f, "<span class=\"num\">%s</span> ", num);
    html_escape(f, step_title(st, lang));
    fprintf(f, " <code>%s</code></h2>\n", st->id);
    html_where(f, st);
    fputs("<div class=\"explain\">\n", f);
    if (c) html_markdown(f, lang ? c->notebook_zh : c->notebook_en);
    else {
        fputs("<p>", f);
        html_escape(f, ui->missing_text);
        fputs("</p>\n", f);
    }
    fputs("</div>\n", f);

    if (c && c->tutorial_code) {
        fputs("<h3>", f);
        html_escape(f, ui->tutorial_heading);
        fputs("</h3>\n<pre class=\"code\">", f);
        html_escape(f, c->tutorial_code);
        fputs("</pre>\n", f);
    }
    size_t n_lines = (size_t)st->n_lines;
    if (n_lines) {
        fputs("<h3>", f);
        html_escape(f, ui->printed_heading);
        fputs("</h3>\n<pre class=\"out\">", f);
        for (size_t i = 0; i < n_lines; i++) {
            html_escape(f, st->lines[i]);
            fputc('\n', f);
        }
        fputs("</pre>\n", f);
    }

    fputs("<h3>", f);
    html_escape(f, ui->tensors_heading);
    fputs("</h3>\n", f);
    if (!st->n_tensors) {
        fputs("<p class=\"na\">", f);
        html_escape(f, ui->no_tensors);
        fputs("</p>\n", f);
    } else {
        fprintf(f, "<div class=\"scroll\"><table class=\"tensors\"><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>min</th><th>max</th>"
                   "<th>mean</th><th>std</th><th>%s</th></tr></thead><tbody>\n",
                ui->col_name, ui->col_shape, ui->col_dtype, ui->col_nonfinite);
        for (int i = 0; i < st->n_tensors; i++) {
            const TensorInfo *t = &st->tensors[i];
            char shape[160];
            shape_list(t, shape, sizeof shape);
            // the file is OUT/<step>/<name>.npy: shown on hover, and kept in data-file
            fputs("<tr data-file=\"", f);
            html_escape(f, t->file);
            fputs("\"><td title=\"", f);
            html_escape(f, t->file);
            fputs("\"><code>", f);
            html_escape(f, t->name);
            fprintf(f, "</code></td><td class=\"n\">%s</td><td>", shape);
            html_escape(f, t->dtype ? t->dtype : t->npy_dtype);
            fputs("</td><td class=\"n\">", f);
            html_number(f, t->min);
            fputs("</td><td class=\"n\">", f);
            html_number(f, t->max);
            fputs("</td><td class=\"n\">", f);
            html_number(f, t->mean);
            fputs("</td><td class=\"n\">", f);
            html_number(f, t->std);
            fprintf(f, "</td><td class=\"n\">%lld</td></tr>\n", (long long)(t->n_nan + t->n_inf));
        }
        fputs("</tbody></table></div>\n", f);
    }

    if (st->n_images > (where_image(st) >= 0 ? 1 : 0)) {
        fputs("<h3>", f);
        html_escape(f, ui->figures_heading);
        fputs("</h3>\n<div class=\"figs\">\n", f);
        for (int i = 0; i < st->n_images; i++) {
            if (is_where_image(st, i)) continue;  // at the top of the section
            const ImageInfo img = step_image(st, i), *im = &img;
            const char *caption = im->caption ? im->caption : im->file;
            fputs("<figure><img alt=\"", f);
            html_escape(f, caption);
            fputs("\" data-file=\"", f);
            html_escape(f, im->file);
            fprintf(f, "\" src=\"data:image/png;base64,%s\"><figcaption>", im->base64);
            html_escape(f, caption);
            fputs(" — <code>", f);
            html_escape(f, im->file);
            fputs("</code></figcaption></figure>\n", f);
        }
        fputs("</div>\n", f);
    }

    page_explorer_section(f, st->id, lang);  // the interactive view of the chapter's data, if it has one

    fputs("<h3>", f);
    html_escape(f, ui->verdict_heading);
    fputs("</h3>\n", f);
    if (st->error) {
        fputs("<p class=\"fail stopped\">", f);
        html_escape(f, ui->sum_stopped);
        fputs(" <code>", f);
        html_escape(f, st->error);
        fputs("</code></p>\n", f);
    }
    if (!st->n_comparisons) {
        fputs("<p class=\"na verdict-none\">", f);
        html_inline(f, no_comparison_text(st, ui));
        fputs("</p>\n", f);
    } else {
        fprintf(f, "<div class=\"scroll\"><table class=\"verdicts\"><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
                   "<th>%s</th><th>%s</th></tr></thead><tbody>\n",
                ui->col_name, ui->col_max_abs, ui->col_max_rel, ui->col_tolerance, ui->col_tol_used, ui->col_mismatch,
                ui->col_verdict);
        for (int i = 0; i < st->n_comparisons; i++) {
            const CompareInfo *cmp = &st->comparisons[i];
            bool ok = strcmp(cmp->verdict, "OK") == 0;
            fputs("<tr><td>", f);
            html_escape(f, cmp->name);
            fputs("</td><td class=\"n\">", f);
            html_number(f, cmp->max_abs);
            fputs("</td><td class=\"n\">", f);
            html_number(f, cmp->max_rel);
            fputs("</td><td class=\"n\">atol ", f);
            html_number(f, cmp->atol);
            fputs(", rtol ", f);
            html_number(f, cmp->rtol);
            fputs("</td><td class=\"n\">", f);
            if (isnan(cmp->tol_used)) html_number(f, NAN);
            else fprintf(f, "%.0f%%", 100.0 * cmp->tol_used);
            fprintf(f, "</td><td class=\"n\">%lld / %lld</td><td class=\"verdict %s\">%s</td></tr>\n",
                    (long long)cmp->n_mismatch, (long long)cmp->n, ok ? "ok" : "fail", ok ? "✓ OK" : "✗ FAIL");
        }
        fputs("</tbody></table></div>\n", f);
    }
    if (st->n_timings) {
        fprintf(f, "<p class=\"timings\">%s:", ui->timings);
        for (int i = 0; i < st->n_timings; i++) {
            if (isnan(st->timings[i].ms)) continue;
            fputs(" ", f);
            html_escape(f, st->timings[i].name);
            fprintf(f, " %.1f;", st->timings[i].ms);
        }
        fputs("</p>\n", f);
    }
    fputs("</section>\n", f);
}

static void write_page(const char *path, int lang) {
    const UiText *ui = &NB_UI[lang];
    AtomicFile af;
    atomic_open(&af, path);
    FILE *f = af.f;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"%s\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
            ui->html_lang);
    html_escape(f, ui->doc_title);
    fprintf(f, "</title>\n<style>\n%s", PAGE_CSS);
    page_explorer_css(f);
    fputs("</style>\n</head>\n<body>\n", f);

    // the chapter list
    fputs("<nav id=\"toc\"><div class=\"brand\">llama3-trace</div><ol>\n", f);
    for (int si = 0; si < G.ix->n_steps; si++) {
        const StepInfo *st = &G.ix->steps[si];
        char num[16];
        step_number(st, num, sizeof num);
        fprintf(f, "<li><a href=\"#ch-%s\"><span class=\"num\">%s</span><span>", st->id, num);
        html_escape(f, step_title(st, lang));
        fputs("</span>", f);
        const char *status = step_status(st);
        if (status) fprintf(f, "<span class=\"badge %s\">%s</span>", status, strcmp(status, "ok") == 0 ? "✓" : "✗");
        fputs("</a></li>\n", f);
    }
    fputs("</ol></nav>\n<main>\n<header>\n<h1>", f);
    html_escape(f, ui->doc_title);
    fputs("</h1>\n<p class=\"intro\">", f);
    html_escape(f, ui->intro);
    fputs("</p>\n<table class=\"run\">\n", f);
    const char *fields[4][2] = {{ui->model, G.ix->model}, {ui->prompt, G.ix->prompt},
                                {ui->device, G.ix->device}, {ui->precision, G.ix->precision}};
    for (int i = 0; i < 4; i++) {
        if (!fields[i][1]) continue;
        fprintf(f, "<tr><th>%s</th><td><code>", fields[i][0]);
        html_escape(f, fields[i][1]);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</table>\n", f);
    size_t n_ids = (size_t)G.ix->n_token_ids;
    if (n_ids) {
        fprintf(f, "<h3>%s (T = %zu)</h3>\n<div class=\"tokens\">", ui->tokens, n_ids);
        for (size_t i = 0; i < n_ids; i++) {
            const char *piece = i < (size_t)G.ix->n_token_pieces ? G.ix->token_pieces[i] : NULL;
            fputs("<span class=\"tok\"><b>", f);
            if (piece) {
                // a space is drawn as ␣ so that " answer" and "answer" look different
                for (const char *p = piece; *p; p++) {
                    if (*p == ' ') fputs("␣", f);
                    else if (*p == '\n') fputs("\\n", f);
                    else html_escape_n(f, p, 1);
                }
            }
            fprintf(f, "</b><small>%lld</small></span>", (long long)G.ix->token_ids[i]);
        }
        fputs("</div>\n", f);
    }
    const char *cls;
    char *summary = summary_text(ui, &cls);
    fprintf(f, "<p class=\"summary %s\">", cls);
    html_escape(f, summary);
    fputs("</p>\n", f);
    free(summary);
    if (G.ix->mixed) {
        fputs("<p class=\"fail mixed\">⚠ ", f);
        html_escape(f, ui->mixed);
        fputs(" ", f);
        html_escape(f, G.ix->mixed);
        fputs("</p>\n", f);
    }
    fputs("</header>\n", f);
    html_map(f, lang);

    for (int si = 0; si < G.ix->n_steps; si++) html_chapter(f, &G.ix->steps[si], lang);
    fputs("<footer>", f);
    html_escape(f, ui->footer);
    fputs("</footer>\n</main>\n", f);
    page_explorer_script(f);
    fputs("</body>\n</html>\n", f);
    if (ferror(f)) fatal("%s: write failed", af.tmp_path);
    atomic_commit(&af);
}

// ---- the command line ------------------------------------------------------------------------------------------------

static void print_help(void) {
    printf("usage: export-notebook TRACE_DIR [-o FILE.ipynb] [--html FILE.html] [--lang en|zh] [--allow-mixed]\n"
           "\n"
           "Turns a trace directory (what the walkthrough's steps wrote with --out) into\n"
           "  - a Jupyter notebook: per chapter the explanation, the tutorial's PyTorch, what the program printed,\n"
           "    the .npy files loaded with numpy, the figures (redrawn with matplotlib when run) and the CUDA-vs-CPU\n"
           "    verdicts; the outputs are filled in, and Run All recomputes them with numpy and matplotlib alone;\n"
           "  - one self-contained HTML page (images embedded, no network needed) with the same chapters and the map\n"
           "    of the model at the top (every box a link to the chapter that shows it), and two interactive views\n"
           "    written into it (inline script and data): every layer and head of chapter 14's attention maps\n"
           "    (tooltips with the tokens and the weight, a row's attention as bars) and chapter 19's logit-lens grid\n"
           "    (the five most likely tokens of a cell on hover).\n"
           "\n"
           "  -o FILE.ipynb      the notebook (default TRACE_DIR/walkthrough.ipynb; walkthrough_zh.ipynb for zh)\n"
           "  --html FILE.html   the page (default TRACE_DIR/index.html; index_zh.html for zh)\n"
           "  --lang en|zh       the language of the texts (default en)\n"
           "  --allow-mixed      export a trace whose chapters were computed for different runs (another model,\n"
           "                     prompt, layer, head, precision or device), marked as mixed at the top; refused\n"
           "                     without it (exit 2)\n"
           "  -h, --help         this text\n"
           "\n"
           "The summary at the top counts the chapters compared with CUDA, self-checked on the CPU alone, not compared,\n"
           "failed (a comparison failed, or the chapter stopped at a value that is not finite) and missing.\n"
           "\n"
           "Exit status: 0 written; 2 bad input (the message names the file and the field; a mixed trace without\n"
           "--allow-mixed); 1 internal failure.\n");
}

static void check_output_path(const char *path, const char *what) {
    if (!*path) usage_error("export-notebook", "%s: expected a file name", what);
    if (dir_exists(path)) input_error(path, "%s: is a directory, expected a file name", what);
    char *copy = xstrdup(path);
    char *slash = strrchr(copy, '/');
    bool ok = true;
    if (slash && slash != copy) {
        *slash = 0;
        ok = dir_exists(copy);
    }
    free(copy);
    if (!ok) input_error(path, "%s: the folder does not exist", what);
}

int main(int argc, char **argv) {
    const char *notebook_path = NULL, *page_path = NULL, *lang_name = "en";
    bool allow_mixed = false;
    static const struct option options[] = {
        {"output", required_argument, 0, 'o'}, {"html", required_argument, 0, 'H'},
        {"lang", required_argument, 0, 'l'},   {"help", no_argument, 0, 'h'},
        {"allow-mixed", no_argument, 0, 'M'},  {0, 0, 0, 0},
    };
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":o:h", options, NULL)) != -1) {
        switch (ch) {
            case 'o': notebook_path = optarg; break;
            case 'H': page_path = optarg; break;
            case 'l': lang_name = optarg; break;
            case 'h': print_help(); return 0;
            case 'M': allow_mixed = true; break;
            case ':': usage_error("export-notebook", "%s needs a value", argv[optind - 1]);
            default: usage_error("export-notebook", "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind != argc - 1)
        usage_error("export-notebook", optind == argc ? "expected TRACE_DIR" : "expected one TRACE_DIR, got more");
    int lang;
    if (strcmp(lang_name, "en") == 0) lang = 0;
    else if (strcmp(lang_name, "zh") == 0) lang = 1;
    else usage_error("export-notebook", "--lang: expected en or zh, got \"%s\"", lang_name);
    const char *trace_dir = argv[optind];

    char *default_notebook = path_join(trace_dir, lang ? "walkthrough_zh.ipynb" : "walkthrough.ipynb");
    char *default_page = path_join(trace_dir, lang ? "index_zh.html" : "index.html");
    if (!notebook_path) notebook_path = default_notebook;
    if (!page_path) page_path = default_page;
    load_trace(trace_dir);  // every check of the input happens here, before anything is written
    if (G.ix->mixed && !allow_mixed)
        input_error(G.ix->index_path, "%s: this trace mixes runs; run the walkthrough into a fresh --out, or pass "
                                      "--allow-mixed to export it marked as mixed", G.ix->mixed);
    load_map_model();
    page_explorer_load(G.ix->document, trace_dir);
    check_output_path(notebook_path, "-o");
    check_output_path(page_path, "--html");
    if (strcmp(notebook_path, page_path) == 0) usage_error("export-notebook", "-o and --html name the same file");
    write_notebook(notebook_path, lang);
    write_page(page_path, lang);
    int n_images = 0, n_tensors = 0;
    for (int si = 0; si < G.ix->n_steps; si++) n_images += G.ix->steps[si].n_images, n_tensors += G.ix->steps[si].n_tensors;
    printf("notebook: %s\npage:     %s\n(%d chapter%s, %d tensor%s, %d figure%s, %s)\n", notebook_path, page_path,
           G.ix->n_steps, plural(G.ix->n_steps), n_tensors, plural(n_tensors), n_images, plural(n_images), lang ? "zh" : "en");
    page_explorer_free();
    free_trace();
    free(default_notebook), free(default_page);
    return 0;
}

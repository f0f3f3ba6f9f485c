// page_explorer.c: the data, the markup and the style of the page's interactive parts; see page_explorer.h.
//
// Attention weights [L, H, T, T] (32 x 32 x 17 x 17 = 295936 for Llama-3-8B on the tutorial's prompt) go into the
// page as the bf16 bits of each weight, base64: 2 bytes a weight, 0.8 MB for the 8B trace, and exact, because the
// trace's weights are bf16 values (an fp32 trace's are rounded to bf16: the page says so). Beyond 4M weights (a long
// prompt) they are stored as 8-bit steps of 1/255 instead (the page says +-0.002), beyond 16M not at all (the page
// points to the PNGs and the notebook). The logit lens keeps 5 tokens a cell, their probabilities to 6 digits.
#include "page_explorer.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "formats/npy.h"
#include "tensor.h"
#include "util.h"

#include "page_explorer_js.h"  // PAGE_EXPLORER_JS: notebooks_export/page_explorer.js, made by the Makefile

#define BF16_MAX_WEIGHTS ((size_t)4 << 20)
#define U8_MAX_WEIGHTS ((size_t)16 << 20)
#define LENS_SHOWN 5  // tokens per cell in the tooltip

// Everything allocated is reachable from here, so that an exit through input_error() leaves no leak behind.
static struct {
    json_t *attention, *lens;  // the JSON data of each explorer, or NULL when the trace has none
    char *path;                // the file being read
    NpyArray array, array2;
    bool wrote;                // a section was written: the script follows
} E;

// ---- reading the trace -------------------------------------------------------------------------------------------

static json_t *find_by(json_t *array, const char *key, const char *value) {
    size_t i;
    json_t *item;
    json_array_foreach(array, i, item) {
        json_t *v = json_object_get(item, key);
        if (json_is_string(v) && strcmp(json_string_value(v), value) == 0) return item;
    }
    return NULL;
}

// The .npy of tensor `name` of `step`, loaded into *a (NULL when the step does not list it).
static bool load_tensor(json_t *step, const char *name, const char *dir, NpyArray *a) {
    json_t *t = find_by(json_object_get(step, "tensors"), "name", name);
    if (!t) return false;
    free(E.path);
    E.path = path_join(dir, json_string_value(json_object_get(t, "file")));
    npy_read(E.path, a);
    return true;
}

static json_t *token_pieces(json_t *root) {
    json_t *tokens = json_object_get(root, "tokens");
    return tokens ? json_object_get(tokens, "pieces") : NULL;
}

// The prompt's pieces, checked against the T of a tensor.
static json_t *pieces_for(json_t *root, const char *trace_dir, int64_t T, const char *tensor) {
    json_t *pieces = token_pieces(root);
    if (!json_is_array(pieces) || (int64_t)json_array_size(pieces) != T) {
        free(E.path);
        E.path = path_join(trace_dir, "trace.json");
        input_error(E.path, "tokens.pieces: %zu pieces, but %s has T = %lld",
                    json_is_array(pieces) ? json_array_size(pieces) : 0, tensor, (long long)T);
    }
    return pieces;
}

static void load_attention(json_t *root, json_t *step, const char *dir) {
    NpyArray *a = &E.array;
    if (!load_tensor(step, "attn_weights_layers", dir, a)) return;
    if (a->dtype != DT_F32 || a->ndim != 4 || a->shape[2] != a->shape[3] || a->shape[0] < 1 || a->shape[1] < 1 ||
        a->shape[2] < 1)
        input_error(E.path, "shape: expected float32 attention weights [layers, heads, T, T]");
    const int64_t L = a->shape[0], H = a->shape[1], T = a->shape[2];
    json_t *pieces = pieces_for(root, dir, T, "14_layers/attn_weights_layers");
    const size_t n = (size_t)(L * H * T * T);
    const float *w = a->data;
    for (size_t i = 0; i < n; i++)
        if (!(w[i] >= 0.0f && w[i] <= 1.0f))  // a row of softmax: NaN and values outside [0, 1] are not weights
            input_error(E.path, "values: expected attention weights in [0, 1], element %zu is %g", i, (double)w[i]);
    json_t *d = json_object();
    json_object_set_new(d, "layers", json_integer(L));
    json_object_set_new(d, "heads", json_integer(H));
    json_object_set_new(d, "T", json_integer(T));
    json_object_set(d, "tokens", pieces);
    if (n > U8_MAX_WEIGHTS) {
        json_object_set_new(d, "encoding", json_string("none"));
    } else if (n > BF16_MAX_WEIGHTS) {
        unsigned char *q = xmalloc(n);
        for (size_t i = 0; i < n; i++) q[i] = (unsigned char)lrintf(w[i] * 255.0f);
        char *b64 = base64_encode(q, n);
        free(q);
        json_object_set_new(d, "encoding", json_string("u8"));
        json_object_set_new(d, "data", json_string(b64));
        free(b64);
    } else {
        unsigned char *q = xmalloc(2 * n);
        bool exact = true;
        for (size_t i = 0; i < n; i++) {
            uint16_t h = f32_to_bf16(w[i]);
            exact &= bf16_to_f32(h) == w[i];
            q[2 * i] = (unsigned char)(h & 0xff), q[2 * i + 1] = (unsigned char)(h >> 8);  // little-endian
        }
        char *b64 = base64_encode(q, 2 * n);
        free(q);
        json_object_set_new(d, "encoding", json_string("bf16"));
        json_object_set_new(d, "exact", json_boolean(exact));
        json_object_set_new(d, "data", json_string(b64));
        free(b64);
    }
    E.attention = d;
    npy_free(a);
}

// How many query heads share a kv head: wq's and wk's head counts from chapters 04 and 06; 0 when the trace does
// not hold them (the page then names no kv head).
static int64_t kv_group(json_t *root) {
    int64_t h = 0, hkv = 0;
    size_t i;
    json_t *step;
    json_array_foreach(json_object_get(root, "steps"), i, step) {
        const char *id = json_string_value(json_object_get(step, "id"));
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(step, "tensors"), k, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            json_t *shape = json_object_get(t, "shape");
            if (!name || !json_is_array(shape) || json_array_size(shape) != 3) continue;
            int64_t first = json_integer_value(json_array_get(shape, 0));
            if (strcmp(id, "04_query") == 0 && strncmp(name, "q_layer", 7) == 0 && !strstr(name, "_head")) h = first;
            if (strcmp(id, "06_key") == 0 && strncmp(name, "k_layer", 7) == 0 && !strstr(name, "_head")) hkv = first;
        }
    }
    return h > 0 && hkv > 0 && h % hkv == 0 ? h / hkv : 0;
}

static void load_lens(json_t *root, json_t *step, const char *dir) {
    NpyArray *ids = &E.array, *probs = &E.array2;
    if (!load_tensor(step, "logit_lens_top_ids", dir, ids)) return;
    if (ids->dtype != DT_I64 || ids->ndim != 3 || ids->shape[2] < 1)
        input_error(E.path, "shape: expected int64 token ids [layers, T, k]");
    if (!load_tensor(step, "logit_lens_top_probs", dir, probs))
        input_error(E.path, "19_logit_lens lists logit_lens_top_ids but not logit_lens_top_probs");
    if (probs->dtype != DT_F32 || probs->ndim != 3 || memcmp(probs->shape, ids->shape, 3 * sizeof(int64_t)) != 0)
        input_error(E.path, "shape: expected float32 probabilities of the shape of logit_lens_top_ids");
    const int64_t L = ids->shape[0], T = ids->shape[1], K = ids->shape[2], shown = K < LENS_SHOWN ? K : LENS_SHOWN;
    json_t *pieces = pieces_for(root, dir, T, "19_logit_lens/logit_lens_top_ids");
    json_t *d = json_object(), *id_list = json_array(), *p_list = json_array(), *vocab = json_object();
    json_t *v = json_object_get(step, "vocab");
    json_t *v_ids = v ? json_object_get(v, "ids") : NULL, *v_pieces = v ? json_object_get(v, "pieces") : NULL;
    const int64_t *idv = ids->data;
    const float *pv = probs->data;
    for (int64_t c = 0; c < L * T; c++)
        for (int64_t j = 0; j < shown; j++) {
            int64_t id = idv[c * K + j];
            double p = pv[c * K + j];
            if (!(p >= 0 && p <= 1)) input_error(E.path, "values: expected probabilities in [0, 1], cell %lld has %g", (long long)c, p);
            json_array_append_new(id_list, json_integer(id));
            json_array_append_new(p_list, json_real(round(p * 1e6) / 1e6));
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)id);
            if (json_object_get(vocab, key)) continue;
            size_t i;
            json_t *x;
            if (json_is_array(v_ids))
                json_array_foreach(v_ids, i, x) if (json_integer_value(x) == id && json_is_string(json_array_get(v_pieces, i))) {
                    json_object_set(vocab, key, json_array_get(v_pieces, i));
                    break;
                }
        }
    json_object_set_new(d, "layers", json_integer(L));
    json_object_set_new(d, "T", json_integer(T));
    json_object_set_new(d, "k", json_integer(shown));
    json_object_set(d, "tokens", pieces);
    json_object_set_new(d, "ids", id_list);
    json_object_set_new(d, "probs", p_list);
    json_object_set_new(d, "vocab", vocab);  // id -> its text; an id without one is shown as its number
    E.lens = d;
    npy_free(ids), npy_free(probs);
}

void page_explorer_load(json_t *root, const char *trace_dir) {
    json_t *steps = json_object_get(root, "steps");
    json_t *s14 = find_by(steps, "id", "14_layers"), *s19 = find_by(steps, "id", "19_logit_lens");
    if (s14) load_attention(root, s14, trace_dir);
    if (E.attention) json_object_set_new(E.attention, "group", json_integer(kv_group(root)));
    if (s19) load_lens(root, s19, trace_dir);
    free(E.path), E.path = NULL;
}

void page_explorer_free(void) {
    json_decref(E.attention), json_decref(E.lens);
    free(E.path);
    memset(&E, 0, sizeof E);
}

// ---- writing the page ----------------------------------------------------------------------------------------------

typedef struct {
    const char *attention_heading, *attention_help, *lens_heading, *lens_help;
    const char *precision_bf16_exact, *precision_bf16_rounded, *precision_u8, *too_large, *no_script;
    const char *layer, *head, *kv_head, *query, *key, *weight, *masked, *attends_to, *click_row, *position,
        *next_token, *in_prompt, *after_layer;
} ExplorerText;

static const ExplorerText TEXT[2] = {
    {
        .attention_heading = "Explore every layer and head",
        .attention_help = "Pick a layer and a head with the buttons, or click the map and use the arrow keys (left/right: "
                          "head, up/down: layer). Hover a cell to read its query token, key token and weight; click a "
                          "row to see that query's attention as bars over the tokens.",
        .lens_heading = "Explore the logit lens",
        .lens_help = "Each cell: the most likely next token after that layer at that position, coloured by its "
                     "probability. Hover a cell for its five most likely tokens.",
        .precision_bf16_exact = "The weights are kept in this page as bf16, 2 bytes each: the exact values of this trace "
                                "(they are bf16); shown to 4 decimals.",
        .precision_bf16_rounded = "The weights are kept in this page rounded to bf16 (3 significant digits, this trace "
                                  "holds fp32); shown to 4 decimals.",
        .precision_u8 = "This trace has many weights: they are kept in this page in 255 steps (within 0.002 of the "
                        "trace's values); shown to 3 decimals.",
        .too_large = "This trace's attention maps are too many for the page; the figures above and the notebook show them.",
        .no_script = "The interactive view needs JavaScript; the figures above show the same data.",
        .layer = "layer", .head = "head", .kv_head = "kv head", .query = "query", .key = "key", .weight = "weight",
        .masked = "masked (-inf before the softmax): weight 0", .attends_to = "attends to",
        .click_row = "Click a row of the map to see its attention as bars.", .position = "position",
        .next_token = "the next token", .in_prompt = "next in the prompt", .after_layer = "after layer",
    },
    {
        .attention_heading = "逐层逐头查看注意力",
        .attention_help = "用按钮选择层和头，或者点击热力图后用方向键（左/右：头，上/下：层）。把鼠标移到格子上可以看到它的 query "
                          "token、key token 和权重；点击一行，可以用柱状图看这个 query 对各个 token 的注意力。",
        .lens_heading = "查看 logit lens",
        .lens_help = "每个格子：该层之后、该位置上最可能的下一个 token，颜色表示它的概率。把鼠标移到格子上可以看到最可能的 5 个 token。",
        .precision_bf16_exact = "页面中的权重以 bf16 保存，每个 2 字节：就是这次记录的精确值（它们本来就是 bf16）；显示 4 位小数。",
        .precision_bf16_rounded = "页面中的权重舍入为 bf16 保存（3 位有效数字，这次记录是 fp32）；显示 4 位小数。",
        .precision_u8 = "这次记录的权重很多：页面中以 255 级保存（与记录中的值相差不超过 0.002）；显示 3 位小数。",
        .too_large = "这次记录的注意力图太多，页面放不下；上面的图和笔记本里有它们。",
        .no_script = "交互视图需要 JavaScript；上面的图显示的是同样的数据。",
        .layer = "层", .head = "头", .kv_head = "kv 头", .query = "query", .key = "key", .weight = "权重",
        .masked = "被掩码（softmax 之前为 -inf）：权重 0", .attends_to = "的注意力分布", .click_row = "点击热力图的一行，用柱状图查看它的注意力。",
        .position = "位置", .next_token = "下一个 token", .in_prompt = "提示词中的下一个", .after_layer = "经过的层",
    },
};

static const char EXPLORER_CSS[] =
    ".explorer{border:1px solid var(--line);border-radius:8px;padding:12px 14px;margin:14px 0;background:#fff;outline:none}\n"
    ".explorer:focus-within{border-color:var(--accent)}\n"
    ".ex-help{color:var(--muted);font-size:13.5px;margin:0 0 8px;max-width:62em}\n"
    ".ex-row{display:flex;flex-wrap:wrap;gap:4px;align-items:center;margin:4px 0}\n"
    ".ex-row .ex-label{width:4.5em;color:var(--muted);font-size:13px}\n"
    ".ex-row button{font:13px ui-monospace,'DejaVu Sans Mono',monospace;min-width:2.4em;padding:2px 6px;border:1px solid "
    "var(--line);border-radius:5px;background:var(--soft);cursor:pointer}\n"
    ".ex-row button.on{background:var(--accent);color:#fff;border-color:var(--accent)}\n"
    ".ex-row button.gap{margin-left:10px}\n"
    ".ex-title{font-weight:600;margin:8px 0 4px}\n"
    ".ex-map{display:inline-grid;gap:1px;user-select:none}\n"
    ".ex-map .lab{font:11px ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre;color:var(--ink);overflow:hidden}\n"
    ".ex-map .col{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;align-self:end;max-height:9em}\n"
    ".ex-map .row{text-align:right;padding-right:4px;align-self:center;cursor:pointer;max-width:12em}\n"
    ".ex-map .row.sel{font-weight:700;color:var(--accent)}\n"
    ".ex-cell{width:22px;height:22px;cursor:pointer}\n"
    ".ex-cell.sel{outline:2px solid #d1242f;outline-offset:-2px}\n"
    ".ex-cell.masked{background:repeating-linear-gradient(45deg,#dedede 0 4px,#a0a0a0 4px 5px)}\n"
    ".ex-lens td.ex-cell{width:auto;height:auto;min-width:4.2em;padding:3px 5px;font:12px ui-monospace,'DejaVu Sans Mono',"
    "monospace;white-space:pre;text-align:center;border:1px solid #fff}\n"
    ".ex-lens th{font:11px ui-monospace,'DejaVu Sans Mono',monospace;white-space:pre;font-weight:400}\n"
    ".ex-tip{position:fixed;z-index:10;pointer-events:none;background:#1f2328;color:#fff;font:12.5px/1.45 ui-monospace,"
    "'DejaVu Sans Mono',monospace;padding:6px 9px;border-radius:6px;max-width:32em;white-space:pre-wrap}\n"
    ".ex-bars{margin-top:10px;font:12px ui-monospace,'DejaVu Sans Mono',monospace}\n"
    ".ex-bar{display:grid;grid-template-columns:12em 1fr 5em;gap:6px;align-items:center;margin:1px 0}\n"
    ".ex-bar .ex-tok{text-align:right;white-space:pre;overflow:hidden}\n"
    ".ex-bar .track{background:var(--soft);height:14px;border-radius:3px}\n"
    ".ex-bar .fill{background:var(--accent);height:14px;border-radius:3px}\n"
    ".ex-note{color:var(--muted);font-size:12.5px;margin:8px 0 0}\n";

void page_explorer_css(FILE *f) {
    if (E.attention || E.lens) fputs(EXPLORER_CSS, f);
}

static void escape_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '&') fputs("&amp;", f);
        else if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else fputc(*s, f);
    }
}

// The data as JSON inside <script type="application/json">: "</" never appears (slashes are escaped).
static void write_data(FILE *f, json_t *data, const ExplorerText *t, const char *kind) {
    json_t *ui = json_object();
    const char *keys[] = {"layer", "head", "kv_head", "query", "key", "weight", "masked", "attends_to", "click_row",
                          "position", "next_token", "in_prompt", "after_layer"};
    const char *values[] = {t->layer, t->head, t->kv_head, t->query, t->key, t->weight, t->masked, t->attends_to,
                            t->click_row, t->position, t->next_token, t->in_prompt, t->after_layer};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) json_object_set_new(ui, keys[i], json_string(values[i]));
    json_object_set_new(data, "ui", ui);
    json_object_set_new(data, "kind", json_string(kind));
    char *text = json_dumps(data, JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_SORT_KEYS);
    if (!text) fatal("page_explorer: cannot serialise the %s data", kind);
    fputs("<script type=\"application/json\" class=\"explorer-data\">", f);
    fputs(text, f);
    fputs("</script>\n", f);
    free(text);
}

void page_explorer_section(FILE *f, const char *step_id, int lang) {
    const ExplorerText *t = &TEXT[lang ? 1 : 0];
    json_t *data = NULL;
    const char *kind = NULL, *heading = NULL, *help = NULL, *note = NULL;
    if (strcmp(step_id, "14_layers") == 0 && E.attention) {
        data = E.attention, kind = "attention", heading = t->attention_heading, help = t->attention_help;
        const char *enc = json_string_value(json_object_get(E.attention, "encoding"));
        if (strcmp(enc, "none") == 0) note = t->too_large;
        else if (strcmp(enc, "u8") == 0) note = t->precision_u8;
        else note = json_is_true(json_object_get(E.attention, "exact")) ? t->precision_bf16_exact : t->precision_bf16_rounded;
    } else if (strcmp(step_id, "19_logit_lens") == 0 && E.lens) {
        data = E.lens, kind = "lens", heading = t->lens_heading, help = t->lens_help;
    }
    if (!data) return;
    fprintf(f, "<h3>");
    escape_text(f, heading);
    fprintf(f, "</h3>\n<div class=\"explorer\" data-kind=\"%s\" tabindex=\"0\">\n<p class=\"ex-help\">", kind);
    escape_text(f, help);
    fputs("</p>\n<noscript><p class=\"ex-note\">", f);
    escape_text(f, t->no_script);
    fputs("</p></noscript>\n", f);
    write_data(f, data, t, kind);
    if (note) {
        fputs("<p class=\"ex-note ex-precision\">", f);
        escape_text(f, note);
        fputs("</p>\n", f);
    }
    fputs("</div>\n", f);
    E.wrote = true;
}

void page_explorer_script(FILE *f) {
    if (!E.wrote) return;
    fputs("<script>\n", f);
    fputs((const char *)PAGE_EXPLORER_JS, f);
    fputs("</script>\n", f);
}

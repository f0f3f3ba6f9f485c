// verify: a learner's own tensors against the trace, in the walkthrough's order; the first divergence, diagnosed.
//
// Someone who writes Llama-3 herself, following the tutorial, saves her tensors with np.save under the names the
// trace uses (tokens.npy, q_per_token.npy, qk_per_token_after_masking.npy, ...: the list is in --help and README), in
// MY_DIR (MY_DIR/NAME.npy, or MY_DIR/NN_chapter/NAME.npy as a trace has them). verify reads the trace of the same
// model and prompt (--trace TRACE_DIR), or makes one first (chapters 01-15, through build/bin/walkthrough), and
// prints, in the walkthrough's order, for each name: found or missing, the shape (or the shape expected), and whether
// the values agree. It stops at the first tensor that does not agree and names the cause when it recognises it.
//
// Agreement. The trace holds the CPU reference, which rounds to bf16 where Meta's code does; a learner may compute in
// float32, or in bf16 in another order, and then differs by rounding that grows along the way. So the values agree
// when the normalised error ||mine - trace|| / ||trace|| (over the finite values; NaN and +-inf must sit in the same
// places) is at most 2^-6 for the tensors of one layer (chapters 02-13; the bound of tests/reference's chain check),
// 2^-4 after all the layers (chapters 14-15); tokens, the mask and the weights viewed per head must be equal (1e-6
// relative), the RoPE tables within 1e-4. A tensor inside the bound but not within a few bf16 ulps element by element
// is said to be so: "float32 vs bf16 rounding, not a failure".
//
// Diagnosis. At a divergence, verify recomputes the tensor from the trace's own inputs with each mistake it knows
// and names the one that matches within the same bound: q/k rows in HF's order (weights not un-permuted), RoPE in
// HF's rotate-half pairing, RoPE positions from 1, RoPE not applied or conjugated, rope_theta 10000, no 1/sqrt(head_dim),
// division by head_dim, the mask missing / on the wrong side / covering the diagonal, softmax over dim 0, the kv head
// as head % n_kv_heads, RMSNorm without eps / without its weight / with mean(x) for mean(x^2), SiLU on w3 (or none),
// a residual forgotten, missing <|begin_of_text|>; then generic ones: transposed, off by a constant factor, another
// tensor of the trace. Weights that the trace does not hold (norms, FFN) come from the model (the trace's "model",
// or --model); without it those causes are not tried, and verify says so.
//
// Run:  build/bin/verify MY_DIR [--trace TRACE_DIR] [--model DIR] [--prompt TEXT] [--layer L] [--head H]
//                        [--device auto|cuda|cpu] [--lang en|zh]
// Exit: 0 every tensor found agrees; 1 at a divergence (or when making the trace failed); 2 bad input.
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "formats/checkpoint.h"
#include "formats/npy.h"
#include "util.h"

#define BOUND_LAYER 0.015625  // 2^-6: one layer's tensors (chapters 02-13)
#define BOUND_MODEL 0.0625    // 2^-4: after all the layers (chapters 14-15)
#define BOUND_TABLE 1e-4      // RoPE's tables (fp32 or fp64 arithmetic on exact inputs)
#define BOUND_EXACT 1e-6      // read, not computed: tokens, the mask, weights viewed per head

// ---- the names, as --help lists them (the order of the walkthrough; {L} layer, {h} head, {kv} its kv head, {half}
// head_dim / 2). The program itself takes the names from the trace; tests/test_verify.sh checks the two agree. ------
static const char *const NAMES_HELP[][2] = {
    {"01_tokenize", "tokens"},
    {"02_embed", "token_embeddings_unnormalized"},
    {"03_rmsnorm", "rms token_embeddings"},
    {"04_query", "q_layer{L} q_layer{L}_head{h} q_per_token"},
    {"05_rope", "q_per_token_split_into_pairs zero_to_one_split_into_{half}_parts freqs freqs_for_each_token freqs_cis "
                "q_per_token_as_complex_numbers q_per_token_as_complex_numbers_rotated "
                "q_per_token_split_into_pairs_rotated q_per_token_rotated"},
    {"06_key", "k_layer{L} k_layer{L}_head{kv} k_per_token k_per_token_split_into_pairs k_per_token_as_complex_numbers "
               "k_per_token_split_into_pairs_rotated k_per_token_rotated"},
    {"07_scores", "qk_per_token"},
    {"08_mask", "mask qk_per_token_after_masking"},
    {"09_softmax", "qk_per_token_after_masking_after_softmax"},
    {"10_value", "v_layer{L} v_layer{L}_head{kv} v_per_token qkv_attention"},
    {"11_multihead", "attn_weights_all stacked_qkv_attention"},
    {"12_output", "embedding_delta embedding_after_edit"},
    {"13_ffn", "embedding_after_edit_normalized output_after_feedforward layer_{L}_embedding"},
    {"14_layers", "final_embedding layer_outputs attn_weights_layers residual_norms"},
    {"15_logits", "final_embedding_normalized logits next_token top_k_probs"},
};

static void usage(void) {
    printf("usage: verify MY_DIR [--trace TRACE_DIR] [--model DIR] [--prompt TEXT] [--layer L] [--head H]\n"
           "              [--device auto|cuda|cpu] [--lang en|zh]\n\n"
           "Checks your own implementation of the walkthrough: save your tensors with np.save under the names below\n"
           "into MY_DIR (MY_DIR/NAME.npy, or MY_DIR/NN_chapter/NAME.npy); any subset will do, complex tensors as they\n"
           "are (complex64), bf16 ones as .float(). verify compares them, in this order, with the trace of the same\n"
           "model and prompt, and stops at the first one that differs, naming the cause when it recognises it (HF\n"
           "q/k order, rotate-half RoPE, RoPE positions from 1, no 1/sqrt(head_dim), the mask missing or on the wrong\n"
           "side, softmax over the wrong dimension, kv head h %% n_kv_heads, RMSNorm without eps or weight or with\n"
           "mean(x), SiLU on w3, a forgotten residual, ...). float32 where the trace rounds to bf16 is not a failure:\n"
           "it is said so.\n\n"
           "  --trace DIR     the trace to compare with: read when DIR/trace.json exists, else made there (chapters\n"
           "                  01-15 through build/bin/walkthrough) and kept. Without --trace one is made in a\n"
           "                  temporary folder and removed at the end.\n"
           "  --model DIR     the model (default: the trace's, else the one `make demo` prepares); it also gives the\n"
           "                  weights some diagnoses need (the norms, the feed-forward)\n"
           "  --prompt TEXT   the prompt of a trace to make (default: the tutorial's)\n"
           "  --layer L, --head H   the layer and head your single-head tensors follow (default 0, 0)\n"
           "  --device D      for making the trace: auto (default), cuda or cpu\n"
           "  --lang L        en (default) or zh\n\n"
           "The names (the trace's; {L} the layer, {h} the head, {kv} = h / (n_heads / n_kv_heads), {half} =\n"
           "head_dim / 2; final_embedding is the stream after the last layer, before the final norm):\n");
    for (size_t i = 0; i < sizeof NAMES_HELP / sizeof *NAMES_HELP; i++)
        printf("  %-13s %s\n", NAMES_HELP[i][0], NAMES_HELP[i][1]);
    printf("\nExit status: 0 every tensor found agrees; 1 at the first divergence (or when making the trace failed);\n"
           "2 bad input (MY_DIR missing or with none of the names, a file that is not a .npy, a bad trace).\n");
}

// ---- arrays of doubles ------------------------------------------------------------------------------------------

typedef struct {
    int ndim;
    int64_t shape[MAX_DIMS];
    size_t n;
    double *v;
} Arr;

static Arr arr_new(int ndim, const int64_t *shape) {
    Arr a = {.ndim = ndim, .n = 1};
    for (int d = 0; d < ndim; d++) a.shape[d] = shape[d], a.n *= (size_t)shape[d];
    a.v = xcalloc(a.n ? a.n : 1, sizeof(double));
    return a;
}
static Arr arr_like(const Arr *b) { return arr_new(b->ndim, b->shape); }
static Arr arr_none(void) { return (Arr){0}; }
static void arr_free(Arr *a) { free(a->v), a->v = NULL, a->n = 0; }
static bool arr_same_shape(const Arr *a, const Arr *b) {
    if (a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d]) return false;
    return true;
}
static void shape_text(const Arr *a, char *out, size_t n) {
    size_t k = (size_t)snprintf(out, n, "[");
    for (int d = 0; d < a->ndim && k < n; d++) k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", (long long)a->shape[d]);
    if (k < n) snprintf(out + k, n - k, "]");
}

// Any numeric .npy as doubles (npy_read exits 2 naming the file when it is not one).
static Arr arr_load(const char *path) {
    NpyArray np;
    npy_read(path, &np);
    Arr a = arr_new(np.ndim, np.shape);
    for (size_t i = 0; i < a.n; i++) {
        double x;
        switch (np.dtype) {
            case DT_F32: x = ((const float *)np.data)[i]; break;
            case DT_F64: x = ((const double *)np.data)[i]; break;
            case DT_F16: x = f16_to_f32(((const uint16_t *)np.data)[i]); break;
            case DT_I64: x = (double)((const int64_t *)np.data)[i]; break;
            case DT_I32: x = ((const int32_t *)np.data)[i]; break;
            case DT_I16: x = ((const int16_t *)np.data)[i]; break;
            case DT_I8: x = ((const int8_t *)np.data)[i]; break;
            case DT_U8: case DT_BOOL: x = ((const uint8_t *)np.data)[i]; break;
            default: npy_free(&np); input_error(path, "descr: expected a numeric array");
        }
        a.v[i] = x;
    }
    npy_free(&np);
    return a;
}

// ---- comparing -----------------------------------------------------------------------------------------------------

typedef struct {
    bool pattern_ok;     // NaN and +-inf in the same places
    double nerr;         // ||m - r|| / ||r|| over the finite pairs (||m - r|| when r is all zero)
    double max_abs;
    size_t worst;        // index of the largest |m - r|
    bool within_f32;     // every element within 1e-5 relative (+ 1e-5 x RMS)
    bool within_bf16;    // every element within 2^-7 relative (+ 2^-8 x RMS): a few bf16 ulps
    bool mine_bf16;      // 99% of mine's finite values are bf16 values (she rounds as the trace does)
    bool ref_bf16;       // the same for the trace's
} Cmp;

static bool is_bf16_value(double x) {
    float f = (float)x;
    uint32_t u;
    memcpy(&u, &f, 4);
    return (double)f == x && (u & 0xFFFF) == 0;
}

static Cmp compare(const Arr *m, const Arr *r) {
    Cmp c = {.pattern_ok = true, .within_f32 = true, .within_bf16 = true};
    double num = 0, den = 0, ss = 0;
    size_t n_fin = 0, n_bf16 = 0, n_ref_bf16 = 0;
    for (size_t i = 0; i < r->n; i++)
        if (isfinite(r->v[i])) ss += r->v[i] * r->v[i], n_fin++;
    double rms = n_fin ? sqrt(ss / (double)n_fin) : 0;
    for (size_t i = 0; i < r->n; i++) {
        double a = m->v[i], b = r->v[i];
        if (!isfinite(a) || !isfinite(b)) {
            bool same = (isnan(a) && isnan(b)) || a == b;
            if (!same) c.pattern_ok = false;
            continue;
        }
        double d = fabs(a - b);
        num += d * d, den += b * b;
        if (d > c.max_abs) c.max_abs = d, c.worst = i;
        if (d > 1e-5 * rms + 1e-5 * fabs(b)) c.within_f32 = false;
        if (d > rms / 256 + fabs(b) / 128) c.within_bf16 = false;
        n_bf16 += is_bf16_value(a), n_ref_bf16 += is_bf16_value(b);
    }
    c.nerr = den > 0 ? sqrt(num / den) : sqrt(num);
    c.mine_bf16 = n_fin == 0 || (double)n_bf16 >= 0.99 * (double)n_fin;
    c.ref_bf16 = n_fin == 0 || (double)n_ref_bf16 >= 0.99 * (double)n_fin;
    if (!c.pattern_ok) c.within_f32 = c.within_bf16 = false;
    return c;
}

// ---- the run ---------------------------------------------------------------------------------------------------

typedef struct {
    const char *step, *name, *file;
    int ndim;
    int64_t shape[MAX_DIMS];
    Arr ref;  // loaded when first needed
    bool loaded;
} Entry;

static struct {
    const char *my_dir;
    char *trace_dir;
    bool lang_zh;
    json_t *root;
    Entry *e;
    int n;
    int layer, head, kv, H, Hkv, Dh, D, T;
    double eps, theta;
    bool have_model;
    Checkpoint ck;
    char *temp_trace;  // a trace made in a temporary folder (removed at the end)
    char **pass;       // the flags passed on to the walkthrough
    StrBuf missing;    // names not found since the last line printed, said on one line
} V;

static const char *tr(const char *en, const char *zh) { return V.lang_zh ? zh : en; }

static Entry *entry(const char *name) {
    for (int i = 0; i < V.n; i++)
        if (strcmp(V.e[i].name, name) == 0) return &V.e[i];
    return NULL;
}
// The trace's tensor `name` (NULL when the trace does not hold it).
static const Arr *R(const char *name) {
    Entry *e = entry(name);
    if (!e) return NULL;
    if (!e->loaded) {
        char *path = path_join(V.trace_dir, e->file);
        e->ref = arr_load(path);
        e->loaded = true;
        free(path);
    }
    return &e->ref;
}
static const Arr *Rf(const char *fmt, int x) {
    char name[128];
    snprintf(name, sizeof name, fmt, x);
    return R(name);
}

// A weight of the model, read in place (NULL when the model is not at hand or the tensor is not a contiguous float):
// the 8B's output.weight is 1 GB of bf16, never copied.
static const Tensor *wt(const char *fmt, int layer) {
    if (!V.have_model) return NULL;
    char name[128];
    snprintf(name, sizeof name, fmt, layer);
    const Tensor *t = checkpoint_find(&V.ck, name);
    bool ok = t && tensor_is_contiguous(t) && (t->dtype == DT_BF16 || t->dtype == DT_F32 || t->dtype == DT_F16);
    return ok ? t : NULL;
}
static double wget(const Tensor *t, size_t i) {
    if (t->dtype == DT_BF16) return bf16_to_f32(((const uint16_t *)t->data)[i]);
    if (t->dtype == DT_F16) return f16_to_f32(((const uint16_t *)t->data)[i]);
    return ((const float *)t->data)[i];
}
// A vector weight (a norm's) as doubles; empty when not at hand.
static Arr weight(const char *fmt, int layer) {
    const Tensor *t = wt(fmt, layer);
    if (!t || t->ndim != 1) return arr_none();
    Arr a = arr_new(1, t->shape);
    for (size_t i = 0; i < a.n; i++) a.v[i] = wget(t, i);
    return a;
}

// ---- the mistakes, as tensors computed from the trace's own inputs ----------------------------------------------------

// out [m, n] = x [m, k] · w[n, k]ᵀ
static Arr matmul_nt(const double *x, const double *w, int64_t m, int64_t k, int64_t n) {
    int64_t shape[2] = {m, n};
    Arr o = arr_new(2, shape);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double s = 0;
            for (int64_t c = 0; c < k; c++) s += x[i * k + c] * w[j * k + c];
            o.v[i * n + j] = s;
        }
    return o;
}
// out [m, n] = x [m, k] · Wᵀ for a weight W [n, k] of the model, read in place; empty when W is not at hand
static Arr matmul_wt(const double *x, int64_t m, int64_t k, const Tensor *w) {
    if (!w || w->ndim != 2 || w->shape[1] != k) return arr_none();
    int64_t n = w->shape[0], shape[2] = {m, n};
    Arr o = arr_new(2, shape);
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            double acc = 0;
            for (int64_t c = 0; c < k; c++) acc += x[i * k + c] * wget(w, (size_t)(j * k + c));
            o.v[i * n + j] = acc;
        }
    return o;
}

typedef enum { NORM_RIGHT, NORM_NO_EPS, NORM_NO_WEIGHT, NORM_MEAN, NORM_RMS_VALUES, NORM_RMS_NO_EPS, NORM_RMS_MEAN, NORM_RMS_INVERTED } NormMistake;
// RMSNorm of the rows of x [T, D] with one mistake (w: the norm's weight [D]); the NORM_RMS_* give the [T] divisors.
static Arr rmsnorm_variant(const Arr *x, const Arr *w, NormMistake how) {
    const int64_t T = x->shape[0], D = x->shape[x->ndim - 1];
    bool rms_only = how >= NORM_RMS_VALUES;
    if (!rms_only && how != NORM_NO_WEIGHT && (!w || !w->n)) return arr_none();
    Arr o = rms_only ? arr_new(1, &T) : arr_like(x);
    for (int64_t t = 0; t < T; t++) {
        double ms = 0, mean = 0;
        for (int64_t i = 0; i < D; i++) ms += x->v[t * D + i] * x->v[t * D + i], mean += x->v[t * D + i];
        ms /= D, mean /= D;
        double eps = (how == NORM_NO_EPS || how == NORM_RMS_NO_EPS) ? 0 : V.eps;
        double denom = sqrt(((how == NORM_MEAN || how == NORM_RMS_MEAN) ? mean : ms) + eps);
        if (rms_only) {
            o.v[t] = how == NORM_RMS_INVERTED ? 1 / denom : denom;
            continue;
        }
        for (int64_t i = 0; i < D; i++) o.v[t * D + i] = x->v[t * D + i] / denom * (how == NORM_NO_WEIGHT ? 1 : w->v[i]);
    }
    return o;
}

// Meta -> HF order of the rows of each head (HF's permute): row j < Dh/2 holds Meta's row 2j, row Dh/2 + j Meta's 2j+1.
static int hf_row(int j, int Dh) { return j < Dh / 2 ? 2 * j : 2 * (j - Dh / 2) + 1; }
// rows of every head of w [heads * Dh, cols] (any leading shape) reordered as HF stores them
static Arr hf_rows(const Arr *w, int64_t cols) {
    Arr o = arr_like(w);
    int64_t rows = (int64_t)(w->n / (size_t)cols);
    for (int64_t r = 0; r < rows; r++) {
        int64_t head = r / V.Dh, j = r % V.Dh, src = head * V.Dh + hf_row((int)j, V.Dh);
        memcpy(o.v + r * cols, w->v + src * cols, (size_t)cols * sizeof(double));
    }
    return o;
}
// columns of x [T, Dh] reordered as HF's q/k come out
static Arr hf_cols(const Arr *x) {
    Arr o = arr_like(x);
    int64_t T = x->shape[0];
    for (int64_t t = 0; t < T; t++)
        for (int j = 0; j < V.Dh; j++) o.v[t * V.Dh + j] = x->v[t * V.Dh + hf_row(j, V.Dh)];
    return o;
}

// RoPE of one head x [T, Dh] with a mistake: halves pairs (i, i + Dh/2) instead of (2i, 2i+1); positions from pos0;
// sign -1 turns the other way (the conjugate); theta. Returns the rotated pairs [T, Dh/2, 2] (as the learner holds
// them: for halves, pair i is (i, i + Dh/2)) when as_pairs, else [T, Dh] in the order the pairs came from.
static Arr rope_variant(const Arr *x, bool halves, int pos0, int sign, double theta, bool rotate, bool as_pairs) {
    const int64_t T = x->shape[0], half = V.Dh / 2;
    int64_t shape_p[3] = {T, half, 2};
    Arr o = as_pairs ? arr_new(3, shape_p) : arr_like(x);
    for (int64_t t = 0; t < T; t++)
        for (int64_t i = 0; i < half; i++) {
            int64_t ia = halves ? i : 2 * i, ib = halves ? i + half : 2 * i + 1;
            double a = x->v[t * V.Dh + ia], b = x->v[t * V.Dh + ib];
            double angle = (double)(t + pos0) * pow(theta, -(double)i / (double)half), c = cos(angle), s = sign * sin(angle);
            double ra = rotate ? a * c - b * s : a, rb = rotate ? a * s + b * c : b;
            if (as_pairs) o.v[(t * half + i) * 2] = ra, o.v[(t * half + i) * 2 + 1] = rb;
            else o.v[t * V.Dh + ia] = ra, o.v[t * V.Dh + ib] = rb;
        }
    return o;
}

// q [T, Dh] · k [T, Dh]ᵀ scaled by `scale`
static Arr scores_of(const Arr *q, const Arr *k, double scale) {
    Arr s = matmul_nt(q->v, k->v, q->shape[0], V.Dh, k->shape[0]);
    for (size_t i = 0; i < s.n; i++) s.v[i] *= scale;
    return s;
}
typedef enum { MASK_RIGHT, MASK_NONE, MASK_WRONG_SIDE, MASK_DIAGONAL } MaskKind;
static bool masked(MaskKind m, int64_t q, int64_t k) {
    return m == MASK_RIGHT ? k > q : m == MASK_WRONG_SIDE ? k < q : m == MASK_DIAGONAL ? k >= q : false;
}
static Arr mask_of(MaskKind m, int64_t T) {
    int64_t shape[2] = {T, T};
    Arr o = arr_new(2, shape);
    for (int64_t q = 0; q < T; q++)
        for (int64_t k = 0; k < T; k++) o.v[q * T + k] = masked(m, q, k) ? -INFINITY : 0;
    return o;
}
static Arr add_mask(const Arr *s, MaskKind m) {
    Arr o = arr_like(s);
    int64_t T = s->shape[0];
    for (size_t i = 0; i < s->n; i++) o.v[i] = masked(m, (int64_t)i / T, (int64_t)i % T) ? -INFINITY : s->v[i];
    return o;
}
// softmax of x [R, C] along dim 1 (rows) or dim 0 (columns)
static Arr softmax_dim(const Arr *x, int dim) {
    Arr o = arr_like(x);
    int64_t R_ = x->shape[0], C = x->shape[1];
    int64_t outer = dim == 1 ? R_ : C, inner = dim == 1 ? C : R_;
    for (int64_t a = 0; a < outer; a++) {
        double mx = -INFINITY, z = 0;
        for (int64_t b = 0; b < inner; b++) mx = fmax(mx, x->v[dim == 1 ? a * C + b : b * C + a]);
        for (int64_t b = 0; b < inner; b++) z += exp(x->v[dim == 1 ? a * C + b : b * C + a] - mx);
        for (int64_t b = 0; b < inner; b++) {
            size_t i = (size_t)(dim == 1 ? a * C + b : b * C + a);
            o.v[i] = exp(x->v[i] - mx) / z;
        }
    }
    return o;
}
static Arr scaled(const Arr *x, double f) {
    Arr o = arr_like(x);
    for (size_t i = 0; i < x->n; i++) o.v[i] = x->v[i] * f;
    return o;
}
static Arr copy_of(const Arr *x) { return scaled(x, 1.0); }
// slice i of the first dimension of x
static Arr slice0(const Arr *x, int64_t i) {
    Arr o = arr_new(x->ndim - 1, x->shape + 1);
    memcpy(o.v, x->v + (size_t)i * o.n, o.n * sizeof(double));
    return o;
}
static double silu(double g) { return g / (1 + exp(-g)); }

// Every head's attention weights [H, T, T] of layer L from the trace's token_embeddings and weight views, with one
// mistake (kv head h % Hkv, the mask, the softmax's dimension, the scale, the pairing).
typedef struct { bool kv_modulo, halves, no_scale; MaskKind mask; int softmax_dim; } AttnMistake;
static Arr attention_all(AttnMistake mk) {
    const Arr *xn = R("token_embeddings"), *wq = Rf("q_layer%d", V.layer), *wk = Rf("k_layer%d", V.layer);
    if (!xn || !wq || !wk) return arr_none();
    int64_t T = xn->shape[0], shape[3] = {V.H, T, T};
    Arr out = arr_new(3, shape);
    for (int h = 0; h < V.H; h++) {
        int kvh = mk.kv_modulo ? h % V.Hkv : h / (V.H / V.Hkv);
        Arr q = matmul_nt(xn->v, wq->v + (size_t)h * V.Dh * V.D, T, V.D, V.Dh);
        Arr k = matmul_nt(xn->v, wk->v + (size_t)kvh * V.Dh * V.D, T, V.D, V.Dh);
        Arr qr = rope_variant(&q, mk.halves, 0, 1, V.theta, true, false), kr = rope_variant(&k, mk.halves, 0, 1, V.theta, true, false);
        Arr s = scores_of(&qr, &kr, mk.no_scale ? 1 : 1 / sqrt((double)V.Dh)), m = add_mask(&s, mk.mask), p = softmax_dim(&m, mk.softmax_dim);
        memcpy(out.v + (size_t)h * T * T, p.v, (size_t)(T * T) * sizeof(double));
        arr_free(&q), arr_free(&k), arr_free(&qr), arr_free(&kr), arr_free(&s), arr_free(&m), arr_free(&p);
    }
    return out;
}

// ---- the causes ------------------------------------------------------------------------------------------------------

typedef struct {
    const char *tag, *en, *zh;
} Cause;
static const Cause CAUSES[] = {
    {"hf-permuted", "the q/k rows are in HF's order: the weights come from an HF checkpoint and were not un-permuted. Within "
                    "each head HF keeps the pair (2i, 2i+1) of Meta's RoPE as rows (i, i + head_dim/2); Meta's RoPE and "
                    "the tutorial pair neighbours. Un-permute wq and wk (formats.md section 5), or use HF's rotate-half RoPE "
                    "with HF weights.",
     "q/k 的行是 HF 的顺序：权重来自 HF 检查点，却没有还原排列。HF 在每个头里把 Meta 的 RoPE 配对 (2i, 2i+1) 存成第 "
     "i 行和第 i + head_dim/2 行；Meta 的 RoPE 和教程配对的是相邻的两维。请还原 wq 和 wk 的排列（formats.md 第 5 节），"
     "或者对 HF 权重使用 HF 的 rotate-half RoPE。"},
    {"rotate-half", "RoPE pairs dimension i with i + head_dim/2 (HF's rotate_half); with Meta's weights, as in the tutorial, "
                    "the pairs are neighbours (2i, 2i+1): q.float().view(T, -1, 2).",
     "RoPE 把第 i 维和第 i + head_dim/2 维配成一对（HF 的 rotate_half）；对 Meta 的权重（和教程一样）应当配对相邻的两维 "
     "(2i, 2i+1)：q.float().view(T, -1, 2)。"},
    {"rope-positions-from-1", "RoPE positions start at 1; they start at 0: torch.outer(torch.arange(T), freqs). (The scores "
                              "do not change, RoPE being relative; the rotated q and k do.)",
     "RoPE 的位置从 1 开始；应当从 0 开始：torch.outer(torch.arange(T), freqs)。（因为 RoPE 是相对的，分数不变；旋转后的 "
     "q 和 k 会变。）"},
    {"rope-not-applied", "RoPE is not applied: the rotated tensor equals the one before the rotation.",
     "没有应用 RoPE：旋转后的张量与旋转前相同。"},
    {"rope-conjugate", "RoPE turns the wrong way: the pairs are multiplied by the conjugate of freqs_cis (a negative angle).",
     "RoPE 转错了方向：配对乘上的是 freqs_cis 的共轭（负角度）。"},
    {"rope-theta", "rope_theta is 10000 (Llama 2's); Llama 3's params.json says 500000.",
     "rope_theta 用了 10000（Llama 2 的值）；Llama 3 的 params.json 是 500000。"},
    {"no-sqrt-head-dim", "the scores are not divided by sqrt(head_dim): qk_per_token = q · kᵀ / (head_dim)**0.5.",
     "分数没有除以 sqrt(head_dim)：qk_per_token = q · kᵀ / (head_dim)**0.5。"},
    {"divided-by-head-dim", "the scores are divided by head_dim; they are divided by its square root.",
     "分数除以了 head_dim；应当除以它的平方根。"},
    {"mask-missing", "the causal mask is missing: every token attends to the tokens after it too.",
     "缺少因果掩码：每个 token 也关注了它后面的 token。"},
    {"mask-wrong-side", "the mask is on the wrong side of the diagonal: torch.triu(full(-inf), diagonal=1) masks the future "
                        "(above the diagonal); this masks the past.",
     "掩码放在了对角线的另一侧：torch.triu(full(-inf), diagonal=1) 掩盖的是未来（对角线上方）；这里掩盖的是过去。"},
    {"mask-diagonal", "the mask covers the diagonal too (diagonal=0 instead of 1): a token cannot attend to itself.",
     "掩码把对角线也盖住了（diagonal=0 而不是 1）：token 不能关注自己。"},
    {"softmax-wrong-dim", "softmax over the wrong dimension: each row (one query) must sum to 1, softmax(..., dim=1); this is "
                          "dim=0 (each column sums to 1).",
     "softmax 的维度错了：每一行（一个 query）之和应为 1，即 softmax(..., dim=1)；这里用的是 dim=0（每一列之和为 1）。"},
    {"kv-head-modulo", "the kv head is chosen as head % n_kv_heads; query heads share a kv head in consecutive groups: "
                       "head // (n_heads / n_kv_heads) (the tutorial's head//4).",
     "kv 头按 head % n_kv_heads 选取；query 头是按连续分组共享 kv 头的：head // (n_heads / n_kv_heads)（教程中的 head//4）。"},
    {"kv-head-other", "these are the k/v of another kv head than head // (n_heads / n_kv_heads).",
     "这是另一个 kv 头的 k/v，不是 head // (n_heads / n_kv_heads)。"},
    {"rmsnorm-no-eps", "RMSNorm without eps: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps).",
     "RMSNorm 少了 eps：x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + norm_eps)。"},
    {"rmsnorm-no-weight", "RMSNorm without its weight: the normalised rows are multiplied by the norm's weight.",
     "RMSNorm 少了权重：归一化后的行还要乘以该 norm 的权重。"},
    {"rmsnorm-mean", "RMSNorm with the mean of x where it needs the mean of the squares: x.pow(2).mean(-1).",
     "RMSNorm 用了 x 的平均值，应当用平方的平均值：x.pow(2).mean(-1)。"},
    {"rms-inverted", "this is 1/rms (the rsqrt the norm multiplies by); the trace's rms is the divisor (x.pow(2).mean(-1) + eps)**0.5.",
     "这是 1/rms（norm 乘上的 rsqrt）；记录中的 rms 是除数 (x.pow(2).mean(-1) + eps)**0.5。"},
    {"silu-on-w3", "SiLU on w3 instead of w1: w2(F.silu(w1(x)) * w3(x)).",
     "SiLU 用在了 w3 上而不是 w1 上：w2(F.silu(w1(x)) * w3(x))。"},
    {"silu-missing", "no SiLU: w2(F.silu(w1(x)) * w3(x)).", "少了 SiLU：w2(F.silu(w1(x)) * w3(x))。"},
    {"residual-forgotten", "the residual was forgotten: the attention's output is added to its input, embedding_after_edit = "
                           "token_embeddings_unnormalized + embedding_delta.",
     "忘了残差连接：注意力的输出要加到它的输入上，embedding_after_edit = token_embeddings_unnormalized + embedding_delta。"},
    {"residual-forgotten-ffn", "the residual was forgotten: the feed-forward's output is added to its input, layer_N_embedding = "
                               "embedding_after_edit + output_after_feedforward.",
     "忘了残差连接：前馈层的输出要加到它的输入上，layer_N_embedding = embedding_after_edit + output_after_feedforward。"},
    {"final-norm-skipped", "the final norm was skipped: logits = rms_norm(final_embedding, norm.weight)[-1] · output.weightᵀ.",
     "跳过了最终的 norm：logits = rms_norm(final_embedding, norm.weight)[-1] · output.weightᵀ。"},
    {"no-bos", "the tokens lack <|begin_of_text|> (128000) in front: tokens = [128000] + tokenizer.encode(prompt).",
     "token 前面少了 <|begin_of_text|>（128000）：tokens = [128000] + tokenizer.encode(prompt)。"},
    {"other-tokens", "other tokens than the trace's: another prompt or tokenizer. Make the trace with your prompt (--prompt).",
     "token 与记录中的不同：提示词或分词器不同。请用你的提示词生成记录（--prompt）。"},
};
static const Cause *cause(const char *tag) {
    for (size_t i = 0; i < sizeof CAUSES / sizeof *CAUSES; i++)
        if (strcmp(CAUSES[i].tag, tag) == 0) return &CAUSES[i];
    fatal("verify: no cause '%s'", tag);
}

static double g_bound;  // the bound of the tensor being diagnosed
static bool g_found;
static int g_untried;   // causes not tried: a weight they need is not at hand

// Does mine match the mistaken tensor cand (taken, freed)? Prints the diagnosis when it does.
static bool try_cause(const Arr *mine, Arr cand, const char *tag) {
    if (g_found) { arr_free(&cand); return true; }
    if (!cand.n) { g_untried++; return false; }
    bool match = false;
    if (arr_same_shape(mine, &cand)) {
        Cmp c = compare(mine, &cand);
        match = c.pattern_ok && c.nerr <= g_bound;
    }
    arr_free(&cand);
    if (match) {
        const Cause *k = cause(tag);
        printf("%s [%s]: %s\n", tr("diagnosis", "诊断"), tag, tr(k->en, k->zh));
        g_found = true;
    }
    return match;
}

static bool name_is(const char *name, const char *fmt, int x) {
    char want[128];
    snprintf(want, sizeof want, fmt, x);
    return strcmp(name, want) == 0;
}

// The known mistakes for tensor `name`, most specific first.
static void diagnose_known(const char *name, const Arr *mine) {
    const int L = V.layer, h = V.head;
    const bool is_q = strncmp(name, "q_", 2) == 0, is_k = strncmp(name, "k_", 2) == 0;
    const Arr *x_head = (is_q || is_k) ? R(is_q ? "q_per_token" : "k_per_token") : NULL;  // this head's q or k

    if (!strcmp(name, "tokens")) {
        const Arr *r = R("tokens");
        if (r && mine->n + 1 == r->n) {
            Arr c = arr_new(1, (int64_t[]){(int64_t)mine->n});
            memcpy(c.v, r->v + 1, mine->n * sizeof(double));
            if (try_cause(mine, c, "no-bos")) return;
        }
        printf("%s [other-tokens]: %s\n", tr("diagnosis", "诊断"), tr(cause("other-tokens")->en, cause("other-tokens")->zh));
        g_found = true;
        return;
    }
    if (!strcmp(name, "rms")) {
        const Arr *x = L == 0 ? R("token_embeddings_unnormalized") : NULL;
        Arr xl = arr_none();
        if (!x && R("layer_outputs")) xl = slice0(R("layer_outputs"), L - 1), x = &xl;
        if (x) {
            try_cause(mine, rmsnorm_variant(x, NULL, NORM_RMS_NO_EPS), "rmsnorm-no-eps");
            try_cause(mine, rmsnorm_variant(x, NULL, NORM_RMS_MEAN), "rmsnorm-mean");
            try_cause(mine, rmsnorm_variant(x, NULL, NORM_RMS_INVERTED), "rms-inverted");
        }
        arr_free(&xl);
        return;
    }
    // the RMSNorms: token_embeddings (attention_norm of layer L), embedding_after_edit_normalized (ffn_norm),
    // final_embedding_normalized (norm)
    const char *norm_in = NULL, *norm_w = NULL;
    Arr xl = arr_none();
    if (!strcmp(name, "token_embeddings")) norm_in = L == 0 ? "token_embeddings_unnormalized" : "layer_outputs", norm_w = "layers.%d.attention_norm.weight";
    if (!strcmp(name, "embedding_after_edit_normalized")) norm_in = "embedding_after_edit", norm_w = "layers.%d.ffn_norm.weight";
    if (!strcmp(name, "final_embedding_normalized")) norm_in = "final_embedding", norm_w = "norm.weight";
    if (norm_in && R(norm_in)) {
        const Arr *x = R(norm_in);
        if (!strcmp(norm_in, "layer_outputs")) xl = slice0(x, L - 1), x = &xl;
        Arr w = weight(norm_w, L);
        try_cause(mine, rmsnorm_variant(x, &w, NORM_NO_WEIGHT), "rmsnorm-no-weight");
        try_cause(mine, rmsnorm_variant(x, &w, NORM_NO_EPS), "rmsnorm-no-eps");
        try_cause(mine, rmsnorm_variant(x, &w, NORM_MEAN), "rmsnorm-mean");
        // a residual forgotten before the norm shows after it (the input itself may differ by rounding only, when
        // the stream is small next to what the attention adds: embeddings of Llama-3's size)
        if (!strcmp(norm_in, "embedding_after_edit") && R("embedding_delta"))
            try_cause(mine, rmsnorm_variant(R("embedding_delta"), &w, NORM_RIGHT), "residual-forgotten");
        arr_free(&w), arr_free(&xl);
        return;
    }
    // the weights viewed per head
    if (name_is(name, "q_layer%d", L) || name_is(name, "k_layer%d", L)) {
        try_cause(mine, hf_rows(R(name), V.D), "hf-permuted");
        return;
    }
    if (strstr(name, "_head")) {  // q_layerL_headH, k_layerL_headKV, v_layerL_headKV
        const Arr *all = is_q ? Rf("q_layer%d", L) : is_k ? Rf("k_layer%d", L) : Rf("v_layer%d", L);
        if (is_q || is_k) try_cause(mine, hf_rows(R(name), V.D), "hf-permuted");
        if (!is_q && all) {
            try_cause(mine, slice0(all, h % V.Hkv), "kv-head-modulo");
            for (int j = 0; j < V.Hkv; j++)
                if (j != V.kv) try_cause(mine, slice0(all, j), "kv-head-other");
        }
        return;
    }
    // one head's q, k, v
    if (!strcmp(name, "q_per_token") || !strcmp(name, "k_per_token") || !strcmp(name, "v_per_token")) {
        if (strcmp(name, "v_per_token") != 0) try_cause(mine, hf_cols(R(name)), "hf-permuted");  // HF permutes q, k only
        const Arr *xn = R("token_embeddings"), *all = name[0] == 'k' ? Rf("k_layer%d", L) : name[0] == 'v' ? Rf("v_layer%d", L) : NULL;
        if (xn && all) {
            try_cause(mine, matmul_nt(xn->v, all->v + (size_t)(h % V.Hkv) * V.Dh * V.D, xn->shape[0], V.D, V.Dh), "kv-head-modulo");
            for (int j = 0; j < V.Hkv; j++)
                if (j != V.kv) try_cause(mine, matmul_nt(xn->v, all->v + (size_t)j * V.Dh * V.D, xn->shape[0], V.D, V.Dh), "kv-head-other");
        }
        return;
    }
    // RoPE's tables
    if (!strcmp(name, "freqs") || !strcmp(name, "freqs_for_each_token") || !strcmp(name, "freqs_cis")) {
        const Arr *r = R(name);
        int64_t T = V.T, half = V.Dh / 2;
        for (int variant = 0; variant < 2; variant++) {  // 0: positions from 1, 1: theta 10000
            Arr c = arr_like(r);
            double theta = variant ? 10000.0 : V.theta;
            for (int64_t t = 0; t < (!strcmp(name, "freqs") ? 1 : T); t++)
                for (int64_t i = 0; i < half; i++) {
                    double f = pow(theta, -(double)i / (double)half), a = (double)(t + (variant ? 0 : 1)) * f;
                    if (!strcmp(name, "freqs")) c.v[i] = f;
                    else if (!strcmp(name, "freqs_for_each_token")) c.v[t * half + i] = a;
                    else c.v[(t * half + i) * 2] = cos(a), c.v[(t * half + i) * 2 + 1] = sin(a);
                }
            if (!strcmp(name, "freqs") && !variant) { arr_free(&c); continue; }
            try_cause(mine, c, variant ? "rope-theta" : "rope-positions-from-1");
        }
        return;
    }
    // q or k before the rotation, as pairs
    if (x_head && (strstr(name, "_split_into_pairs") || strstr(name, "_as_complex_numbers")) && !strstr(name, "rotated")) {
        try_cause(mine, rope_variant(x_head, true, 0, 1, V.theta, false, true), "rotate-half");
        Arr p = hf_cols(x_head);
        try_cause(mine, rope_variant(&p, false, 0, 1, V.theta, false, true), "hf-permuted");
        arr_free(&p);
        return;
    }
    // q or k after the rotation (pairs [T, Dh/2, 2] or [T, Dh])
    if (x_head && strstr(name, "rotated")) {
        bool pairs = mine->ndim == 3;
        Arr p = hf_cols(x_head);
        try_cause(mine, rope_variant(x_head, true, 0, 1, V.theta, true, pairs), "rotate-half");
        try_cause(mine, rope_variant(x_head, false, 1, 1, V.theta, true, pairs), "rope-positions-from-1");
        try_cause(mine, rope_variant(x_head, false, 0, 1, V.theta, false, pairs), "rope-not-applied");
        try_cause(mine, rope_variant(x_head, false, 0, -1, V.theta, true, pairs), "rope-conjugate");
        try_cause(mine, rope_variant(x_head, false, 0, 1, 10000.0, true, pairs), "rope-theta");
        try_cause(mine, rope_variant(&p, false, 0, 1, V.theta, true, pairs), "hf-permuted");
        arr_free(&p);
        return;
    }
    if (!strcmp(name, "qk_per_token")) {
        const Arr *r = R(name), *q = R("q_per_token"), *k = R("k_per_token");
        try_cause(mine, scaled(r, sqrt((double)V.Dh)), "no-sqrt-head-dim");
        try_cause(mine, scaled(r, 1 / sqrt((double)V.Dh)), "divided-by-head-dim");
        if (q && k) {
            for (int variant = 0; variant < 2; variant++) {  // 0: rotate-half pairing, 1: HF rows with Meta's RoPE
                Arr qa = variant ? hf_cols(q) : copy_of(q), ka = variant ? hf_cols(k) : copy_of(k);
                Arr qr = rope_variant(&qa, !variant, 0, 1, V.theta, true, false), kr = rope_variant(&ka, !variant, 0, 1, V.theta, true, false);
                try_cause(mine, scores_of(&qr, &kr, 1 / sqrt((double)V.Dh)), variant ? "hf-permuted" : "rotate-half");
                arr_free(&qa), arr_free(&ka), arr_free(&qr), arr_free(&kr);
            }
        }
        return;
    }
    if (!strcmp(name, "mask")) {
        try_cause(mine, mask_of(MASK_NONE, V.T), "mask-missing");
        try_cause(mine, mask_of(MASK_WRONG_SIDE, V.T), "mask-wrong-side");
        try_cause(mine, mask_of(MASK_DIAGONAL, V.T), "mask-diagonal");
        return;
    }
    if (!strcmp(name, "qk_per_token_after_masking") && R("qk_per_token")) {
        const Arr *s = R("qk_per_token");
        try_cause(mine, add_mask(s, MASK_NONE), "mask-missing");
        try_cause(mine, add_mask(s, MASK_WRONG_SIDE), "mask-wrong-side");
        try_cause(mine, add_mask(s, MASK_DIAGONAL), "mask-diagonal");
        Arr s2 = scaled(s, sqrt((double)V.Dh));
        try_cause(mine, add_mask(&s2, MASK_RIGHT), "no-sqrt-head-dim");
        arr_free(&s2);
        return;
    }
    if (!strcmp(name, "qk_per_token_after_masking_after_softmax") || !strcmp(name, "qkv_attention")) {
        const Arr *m = R("qk_per_token_after_masking"), *s = R("qk_per_token"), *v = R("v_per_token");
        bool values = !strcmp(name, "qkv_attention");
        if (values && !v) return;
        struct { Arr p; const char *tag; } c[5] = {{arr_none(), "softmax-wrong-dim"}, {arr_none(), "mask-missing"},
                                                  {arr_none(), "mask-wrong-side"}, {arr_none(), "no-sqrt-head-dim"},
                                                  {arr_none(), "mask-diagonal"}};
        if (m) {
            c[0].p = softmax_dim(m, 0);
            Arr m2 = scaled(m, sqrt((double)V.Dh));
            c[3].p = softmax_dim(&m2, 1);
            arr_free(&m2);
        }
        if (s) {
            for (int i = 0; i < 3; i++) {
                MaskKind mk = i == 0 ? MASK_NONE : i == 1 ? MASK_WRONG_SIDE : MASK_DIAGONAL;
                Arr ms = add_mask(s, mk);
                c[i == 0 ? 1 : i == 1 ? 2 : 4].p = softmax_dim(&ms, 1);
                arr_free(&ms);
            }
        }
        for (int i = 0; i < 5; i++) {
            if (!c[i].p.n) continue;
            if (values) {  // p · v
                Arr vt = arr_new(2, (int64_t[]){V.Dh, V.T});
                for (int t = 0; t < V.T; t++)
                    for (int d = 0; d < V.Dh; d++) vt.v[d * V.T + t] = v->v[t * V.Dh + d];
                Arr pv = matmul_nt(c[i].p.v, vt.v, V.T, V.T, V.Dh);
                arr_free(&vt), arr_free(&c[i].p);
                c[i].p = pv;
            }
            try_cause(mine, c[i].p, c[i].tag);
        }
        if (values && R("qk_per_token_after_masking_after_softmax") && R("token_embeddings") && Rf("v_layer%d", L)) {
            const Arr *p = R("qk_per_token_after_masking_after_softmax"), *xn = R("token_embeddings"), *wv = Rf("v_layer%d", L);
            Arr vm = matmul_nt(xn->v, wv->v + (size_t)(h % V.Hkv) * V.Dh * V.D, V.T, V.D, V.Dh);
            Arr vt = arr_new(2, (int64_t[]){V.Dh, V.T});
            for (int t = 0; t < V.T; t++)
                for (int d = 0; d < V.Dh; d++) vt.v[d * V.T + t] = vm.v[t * V.Dh + d];
            try_cause(mine, matmul_nt(p->v, vt.v, V.T, V.T, V.Dh), "kv-head-modulo");
            arr_free(&vm), arr_free(&vt);
        }
        return;
    }
    if (!strcmp(name, "attn_weights_all")) {
        try_cause(mine, attention_all((AttnMistake){.kv_modulo = true, .softmax_dim = 1}), "kv-head-modulo");
        try_cause(mine, attention_all((AttnMistake){.softmax_dim = 0}), "softmax-wrong-dim");
        try_cause(mine, attention_all((AttnMistake){.mask = MASK_NONE, .softmax_dim = 1}), "mask-missing");
        try_cause(mine, attention_all((AttnMistake){.mask = MASK_WRONG_SIDE, .softmax_dim = 1}), "mask-wrong-side");
        try_cause(mine, attention_all((AttnMistake){.no_scale = true, .softmax_dim = 1}), "no-sqrt-head-dim");
        try_cause(mine, attention_all((AttnMistake){.halves = true, .softmax_dim = 1}), "rotate-half");
        return;
    }
    if (!strcmp(name, "stacked_qkv_attention") && R("token_embeddings") && Rf("v_layer%d", L)) {
        // every head's weights · the v of head % Hkv (the weights themselves recomputed with the same mistake)
        Arr p = attention_all((AttnMistake){.kv_modulo = true, .softmax_dim = 1});
        const Arr *xn = R("token_embeddings"), *wv = Rf("v_layer%d", L);
        if (p.n) {
            Arr out = arr_new(2, (int64_t[]){V.T, (int64_t)V.H * V.Dh});
            for (int hh = 0; hh < V.H; hh++) {
                Arr vm = matmul_nt(xn->v, wv->v + (size_t)(hh % V.Hkv) * V.Dh * V.D, V.T, V.D, V.Dh);
                for (int q = 0; q < V.T; q++)
                    for (int d = 0; d < V.Dh; d++) {
                        double acc = 0;
                        for (int k = 0; k < V.T; k++) acc += p.v[((size_t)hh * V.T + q) * V.T + k] * vm.v[k * V.Dh + d];
                        out.v[(size_t)q * V.H * V.Dh + (size_t)hh * V.Dh + d] = acc;
                    }
                arr_free(&vm);
            }
            try_cause(mine, out, "kv-head-modulo");
        }
        arr_free(&p);
        return;
    }
    if (!strcmp(name, "embedding_after_edit") && R("embedding_delta")) {
        try_cause(mine, copy_of(R("embedding_delta")), "residual-forgotten");
        return;
    }
    if (!strcmp(name, "output_after_feedforward") && R("embedding_after_edit_normalized")) {
        const Arr *x = R("embedding_after_edit_normalized");
        const Tensor *w1 = wt("layers.%d.feed_forward.w1.weight", L), *w2 = wt("layers.%d.feed_forward.w2.weight", L);
        const Tensor *w3 = wt("layers.%d.feed_forward.w3.weight", L);
        if (w1 && w2 && w3) {
            int64_t T = x->shape[0], F = w1->shape[0];
            Arr a = matmul_wt(x->v, T, V.D, w1), b = matmul_wt(x->v, T, V.D, w3);
            Arr g1 = arr_like(&a), g2 = arr_like(&a);
            for (size_t i = 0; i < a.n; i++) g1.v[i] = a.v[i] * silu(b.v[i]), g2.v[i] = a.v[i] * b.v[i];
            try_cause(mine, matmul_wt(g1.v, T, F, w2), "silu-on-w3");
            try_cause(mine, matmul_wt(g2.v, T, F, w2), "silu-missing");
            arr_free(&a), arr_free(&b), arr_free(&g1), arr_free(&g2);
        } else {
            g_untried += 2;
        }
        return;
    }
    if (name_is(name, "layer_%d_embedding", L) && R("output_after_feedforward")) {
        try_cause(mine, copy_of(R("output_after_feedforward")), "residual-forgotten-ffn");
        return;
    }
    if (!strcmp(name, "logits") && R("final_embedding")) {
        const Tensor *w = wt("output.weight", 0);
        const Arr *x = R("final_embedding");
        if (w) {
            Arr c = matmul_wt(x->v + (size_t)(x->shape[0] - 1) * V.D, 1, V.D, w);
            c.ndim = 1, c.shape[0] = c.shape[1];  // [1, V] -> [V]
            try_cause(mine, c, "final-norm-skipped");
        } else {
            g_untried++;
        }
    }
}

// After the known mistakes: a constant factor, another tensor of the trace, or nothing recognised.
static void diagnose_generic(const char *name, const Arr *mine, const Arr *ref) {
    double mr = 0, rr = 0;
    for (size_t i = 0; i < ref->n; i++)
        if (isfinite(mine->v[i]) && isfinite(ref->v[i])) mr += mine->v[i] * ref->v[i], rr += ref->v[i] * ref->v[i];
    double f = rr > 0 ? mr / rr : 0;
    if (fabs(f - 1) > 0.01 && f != 0) {
        Arr c = scaled(ref, f);
        Cmp k = compare(mine, &c);
        arr_free(&c);
        if (k.pattern_ok && k.nerr <= g_bound) {
            printf(tr("diagnosis [scaled]: your values are the trace's times %.6g (sqrt(head_dim) = %.6g)\n",
                      "诊断 [scaled]：你的值是记录中的值乘以 %.6g（sqrt(head_dim) = %.6g）\n"), f, sqrt((double)V.Dh));
            g_found = true;
            return;
        }
    }
    for (int i = 0; i < V.n; i++) {
        if (!strcmp(V.e[i].name, name)) continue;
        Arr other = arr_new(V.e[i].ndim, V.e[i].shape);
        bool same = arr_same_shape(&other, mine);
        arr_free(&other);
        if (!same) continue;
        const Arr *r = R(V.e[i].name);
        Cmp k = compare(mine, r);
        if (k.pattern_ok && k.nerr <= g_bound) {
            printf(tr("diagnosis [other-tensor]: your %s holds the trace's %s (%s): the wrong variable saved, or a step "
                      "between them left out\n",
                      "诊断 [other-tensor]：你的 %s 存的是记录中的 %s（%s）：存错了变量，或者漏掉了它们之间的一步\n"),
                   name, V.e[i].name, V.e[i].step);
            g_found = true;
            return;
        }
    }
}

// ---- making or reading the trace ------------------------------------------------------------------------------------

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}
static void cleanup(void) {
    if (V.temp_trace) nftw(V.temp_trace, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_trace(const char *dir, char **pass, int n_pass) {
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) fatal("verify: cannot find my own executable");
    exe[len] = 0;
    char *walkthrough = path_join(dirname(exe), "walkthrough");
    char *log = path_join(dir, "walkthrough.log");
    mkdir_p(dir);
    fprintf(stderr, "%s %s ...\n", tr("verify: making the trace (chapters 01-15) in", "verify：正在生成记录（第 01-15 章），目录"), dir);
    const char *fixed[] = {walkthrough, "--only", "01,02,03,04,05,06,07,08,09,10,11,12,13,14,15", "--out", dir, "--quiet"};
    char **args = xcalloc(6 + (size_t)n_pass + 1, sizeof(char *));
    for (int i = 0; i < 6; i++) args[i] = (char *)fixed[i];
    for (int i = 0; i < n_pass; i++) args[6 + i] = pass[i];
    double t0 = now_seconds();
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) fatal("verify: fork failed");
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        if (!f || dup2(fileno(stdout), 2) < 0) _exit(126);
        execv(walkthrough, args);
        perror(walkthrough);
        _exit(127);
    }
    int ws;
    waitpid(pid, &ws, 0);
    int rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
    free(args);
    if (rc == 2) {  // the walkthrough rejected the model or the flags: the last line before it stopped says why
        size_t n;                                   // (the lines before: progress "[i/n] ..." and the no-GPU line)
        char *text = read_whole_file(log, &n), *why = NULL;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            if (line[0] != '[' && !strstr(line, "rejected its input (exit 2); stopping")) why = line;
        fprintf(stderr, "%s\n", why ? why : "error: the walkthrough rejected its input (exit 2)");
        free(text);
        exit(2);
    }
    if (rc != 0) {
        fprintf(stderr, tr("verify: making the trace failed (exit %d); see %s\n", "verify：生成记录失败（退出码 %d）；见 %s\n"), rc, log);
        exit(1);
    }
    fprintf(stderr, tr("verify: trace made in %.1f s\n", "verify：记录已生成，用时 %.1f 秒\n"), now_seconds() - t0);
    free(walkthrough), free(log);
}

static int step_number(const char *id) { return (id[0] >= '0' && id[0] <= '9' && id[1] >= '0' && id[1] <= '9') ? (id[0] - '0') * 10 + id[1] - '0' : -1; }

static void read_trace(void) {
    char *index = path_join(V.trace_dir, "trace.json");
    json_error_t err;
    V.root = json_load_file(index, 0, &err);
    if (!V.root) input_error(index, "not valid JSON: line %d: %s", err.line, err.text);
    json_t *steps = json_object_get(V.root, "steps");
    if (!json_is_array(steps)) input_error(index, "steps: expected an array (a trace made by the walkthrough)");
    size_t i, n_all = 0;
    json_t *st;
    json_array_foreach(steps, i, st) n_all += json_array_size(json_object_get(st, "tensors"));
    V.e = xcalloc(n_all + 1, sizeof(Entry));
    json_array_foreach(steps, i, st) {
        const char *id = json_string_value(json_object_get(st, "id"));
        int num = id ? step_number(id) : -1;
        if (num < 1 || num > 15) continue;  // chapters 01-15: the tutorial's
        size_t k;
        json_t *t;
        json_array_foreach(json_object_get(st, "tensors"), k, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            const char *file = json_string_value(json_object_get(t, "file"));
            json_t *shape = json_object_get(t, "shape");
            if (!name || !file || !json_is_array(shape) || json_array_size(shape) > MAX_DIMS)
                input_error(index, "steps[%zu].tensors[%zu]: expected name, file and shape", i, k);
            if (entry(name)) continue;  // the first chapter that writes a name owns it (final_embedding: 14's)
            Entry *e = &V.e[V.n++];
            e->step = id, e->name = name, e->file = file, e->ndim = (int)json_array_size(shape);
            for (int d = 0; d < e->ndim; d++) e->shape[d] = json_integer_value(json_array_get(shape, (size_t)d));
        }
    }
    if (!V.n) input_error(index, "no tensor of chapters 01-15 in this trace");
    // the layer and head the single-head chapters followed: 04_query's q_layerL_headH
    for (int k = 0; k < V.n; k++)
        if (sscanf(V.e[k].name, "q_layer%d_head%d", &V.layer, &V.head) == 2) break;
    const Arr *q = Rf("q_layer%d", V.layer), *kk = Rf("k_layer%d", V.layer);
    const Arr *tok = R("tokens");
    V.T = tok ? (int)tok->n : 0;
    V.H = q ? (int)q->shape[0] : 0, V.Dh = q ? (int)q->shape[1] : 0, V.D = q ? (int)q->shape[2] : 0;
    V.Hkv = kk ? (int)kk->shape[0] : 0;
    free(index);
}

static void open_model(const char *model_arg) {
    const char *model = model_arg ? model_arg : json_string_value(json_object_get(V.root, "model"));
    V.eps = 1e-5, V.theta = 500000.0;
    if (model_arg && !file_exists(model_arg) && !dir_exists(model_arg))
        input_error(model_arg, "--model: no such model directory (params.json + consolidated.00.pth, or an HF folder)");
    if (model && (file_exists(model) || dir_exists(model))) {
        checkpoint_open(&V.ck, model);
        V.have_model = true;
        if (V.ck.has_config) {
            const Config *c = &V.ck.cfg;
            V.eps = c->norm_eps, V.theta = c->rope_theta;
            if (!V.H) V.H = c->n_heads, V.Dh = c->head_dim, V.D = c->dim;
            if (!V.Hkv) V.Hkv = c->n_kv_heads;
        }
    }
    const Arr *fr = R("freqs");  // the trace's own theta when it holds the frequencies
    if (fr && fr->n > 1 && fr->v[1] > 0) V.theta = pow(fr->v[1], -(double)fr->n);
    if (!V.H || !V.Hkv || !V.Dh)
        input_error(V.trace_dir, "the trace holds neither q_layerL/k_layerL nor a model with its config: cannot tell the heads");
    V.kv = V.head / (V.H / V.Hkv);
}

// MY_DIR/NAME.npy or MY_DIR/STEP/NAME.npy, malloc'd; NULL when neither exists.
static char *find_mine(const Entry *e) {
    char *file = xasprintf("%s.npy", e->name);
    char *a = path_join(V.my_dir, file), *sub = path_join(V.my_dir, e->step), *b = path_join(sub, file);
    free(file), free(sub);
    if (file_exists(a)) { free(b); return a; }
    free(a);
    if (file_exists(b)) return b;
    free(b);
    return NULL;
}

static void flush_missing(StrBuf *missing) {
    if (!missing->len) return;
    printf("  %s %s\n", tr("missing:", "缺失："), missing->data);
    free(strbuf_take(missing));
}

// ---- main ----------------------------------------------------------------------------------------------------------

int main(int argc, char **argv) {
    const char *trace_arg = NULL, *model_arg = NULL;
    int want_layer = -1, want_head = -1;
    char **pass = V.pass = xcalloc((size_t)argc * 2 + 1, sizeof(char *));  // reachable from V: no leak at an exit
    int n_pass = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { usage(); return 0; }
        if (a[0] != '-') {
            if (V.my_dir) usage_error("verify", "expected one MY_DIR, got '%s' and '%s'", V.my_dir, a);
            V.my_dir = a;
            continue;
        }
        static const char *const with_value[] = {"--trace", "--model", "--prompt", "--layer", "--head", "--device", "--lang"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++) known |= !strcmp(a, with_value[k]);
        if (!known) usage_error("verify", "unknown option '%s'", a);
        if (i + 1 >= argc) usage_error("verify", "%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--trace")) trace_arg = v;
        else if (!strcmp(a, "--lang")) {
            if (strcmp(v, "en") && strcmp(v, "zh")) usage_error("verify", "--lang: expected en or zh, got '%s'", v);
            V.lang_zh = !strcmp(v, "zh");
        } else {
            if (!strcmp(a, "--model")) model_arg = v;
            char *end;
            if (!strcmp(a, "--layer") || !strcmp(a, "--head")) {
                long x = strtol(v, &end, 10);
                if (*end || end == v || x < 0) usage_error("verify", "%s: expected an index >= 0, got '%s'", a, v);
                if (!strcmp(a, "--layer")) want_layer = (int)x;
                else want_head = (int)x;
            }
            pass[n_pass++] = (char *)a, pass[n_pass++] = (char *)v;
        }
    }
    if (!V.my_dir) usage_error("verify", "expected MY_DIR, the folder of your .npy files");
    if (!dir_exists(V.my_dir)) input_error(V.my_dir, "expected a folder of .npy files (your tensors, named as in --help)");

    // the trace: read, or made
    if (trace_arg && file_exists(trace_arg) && !dir_exists(trace_arg))
        input_error(trace_arg, "--trace: expected a trace directory");
    if (trace_arg) {
        V.trace_dir = xstrdup(trace_arg);
        char *index = path_join(trace_arg, "trace.json");
        bool have = file_exists(index);
        free(index);
        if (!have) make_trace(V.trace_dir, pass, n_pass);
    } else {
        char tmpl[] = "/tmp/verify-trace-XXXXXX";
        if (!mkdtemp(tmpl)) fatal("verify: mkdtemp failed: %s", strerror(errno));
        V.temp_trace = xstrdup(tmpl);
        V.trace_dir = xstrdup(tmpl);
        atexit(cleanup);
        make_trace(V.trace_dir, pass, n_pass);
    }
    read_trace();
    if ((want_layer >= 0 && want_layer != V.layer) || (want_head >= 0 && want_head != V.head))
        input_error(V.trace_dir, "the trace follows layer %d, head %d: make it with --layer %d --head %d (or pass those)",
                    V.layer, V.head, want_layer >= 0 ? want_layer : V.layer, want_head >= 0 ? want_head : V.head);
    open_model(model_arg);

    // which of MY_DIR's .npy files are not names of the walkthrough (said, then ignored)
    int n_found = 0, n_missing = 0, n_rounding = 0;
    {
        DIR *d = opendir(V.my_dir);
        struct dirent *de;
        while (d && (de = readdir(d))) {
            size_t len = strlen(de->d_name);
            if (len < 5 || strcmp(de->d_name + len - 4, ".npy")) continue;
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(len - 4), de->d_name);
            if (!entry(name))
                printf(tr("note: %s.npy is not a name of the walkthrough's chapters 01-15 (see --help): ignored\n",
                          "注意：%s.npy 不是演练第 01-15 章中的名字（见 --help）：已忽略\n"), name);
        }
        if (d) closedir(d);
    }
    // every file found is read once before anything is compared: a broken one stops verify (exit 2) before its table
    for (int i = 0; i < V.n; i++) {
        char *path = find_mine(&V.e[i]);
        if (!path) continue;
        Arr a = arr_load(path);
        arr_free(&a), free(path);
    }
    const char *prompt = json_string_value(json_object_get(V.root, "prompt"));
    printf(tr("verify %s against the trace %s\n  model %s, prompt \"%s\", layer %d, head %d (kv head %d)\n",
              "verify：用记录 %2$s 检查 %1$s\n  模型 %3$s，提示词 \"%4$s\"，第 %5$d 层，第 %6$d 个头（kv 头 %7$d）\n"),
           V.my_dir, V.trace_dir, json_string_value(json_object_get(V.root, "model")) ?: "?", prompt ?: "?", V.layer, V.head, V.kv);

    const char *last_step = "";
    bool seen_fp32 = false;  // a tensor so far was float32 where the trace's is bf16
    for (int i = 0; i < V.n; i++) {
        Entry *e = &V.e[i];
        if (strcmp(e->step, last_step)) {
            flush_missing(&V.missing);
            printf("%s\n", e->step), last_step = e->step;
        }
        char *path = find_mine(e);
        if (!path) {
            strbuf_addf(&V.missing, "%s%s", V.missing.len ? ", " : "", e->name);
            n_missing++;
            continue;
        }
        flush_missing(&V.missing);
        Arr mine = arr_load(path);
        free(path);
        n_found++;
        const Arr *ref = R(e->name);
        char want[96], got[96];
        shape_text(ref, want, sizeof want);
        // a leading batch dimension of 1 (torch's [1, 17, 128]) is fine
        while (mine.ndim > ref->ndim && mine.shape[0] == 1) {
            memmove(mine.shape, mine.shape + 1, (size_t)(mine.ndim - 1) * sizeof(int64_t));
            mine.ndim--;
        }
        shape_text(&mine, got, sizeof got);
        bool is_exact = !strcmp(e->name, "tokens") || !strcmp(e->name, "mask") || !strcmp(e->name, "next_token") ||
                        !strcmp(e->name, "token_embeddings_unnormalized") || strstr(e->name, "_layer") == e->name + 1;
        bool is_table = !strncmp(e->name, "zero_to_one_split_into_", 23) || !strcmp(e->name, "freqs") ||
                        !strcmp(e->name, "freqs_for_each_token") || !strcmp(e->name, "freqs_cis");
        int num = step_number(e->step);
        g_bound = is_exact ? BOUND_EXACT : is_table ? BOUND_TABLE : num >= 14 ? BOUND_MODEL : BOUND_LAYER;
        if (!arr_same_shape(&mine, ref)) {
            printf("  %-44s %s  %-16s %s %s\n", e->name, tr("found", "找到"), got, tr("DIFFERS: expected shape", "不同：期望形状"), want);
            printf(tr("first divergence: %s %s\n", "第一个分歧：%s %s\n"), e->step, e->name);
            bool transposed = mine.ndim == 2 && ref->ndim == 2 && mine.shape[0] == ref->shape[1] && mine.shape[1] == ref->shape[0];
            if (!strcmp(e->name, "tokens")) {
                g_bound = BOUND_EXACT;
                diagnose_known(e->name, &mine);
            } else if (transposed) {
                Arr t = arr_like(ref);
                for (int64_t r = 0; r < ref->shape[0]; r++)
                    for (int64_t c = 0; c < ref->shape[1]; c++) t.v[r * ref->shape[1] + c] = mine.v[c * ref->shape[0] + r];
                Cmp k = compare(&t, ref);
                arr_free(&t);
                printf(tr("diagnosis [transposed]: yours is the transpose of the trace's %s%s\n",
                          "诊断 [transposed]：你的张量是记录中张量的转置%s%s\n"),
                       k.pattern_ok && k.nerr <= g_bound ? tr("(and its values agree once transposed)", "（转置后数值一致）") : "",
                       "");
            } else {
                printf(tr("no known cause recognised: the shape the trace has is %s (see --help for what each name holds)\n",
                          "没有识别出已知原因：记录中的形状是 %s（各名字的含义见 --help）\n"), want);
            }
            arr_free(&mine);
            return 1;
        }
        Cmp c = compare(&mine, ref);
        bool ok = c.pattern_ok && c.nerr <= g_bound;
        if (ok && is_exact && !strcmp(e->name, "next_token")) ok = c.max_abs == 0;
        if (ok) {
            char what[256];
            if (c.max_abs == 0) snprintf(what, sizeof what, "%s", tr("ok, exact", "一致，完全相同"));
            else if (c.within_f32 || is_exact || is_table) snprintf(what, sizeof what, tr("ok (max abs %.1e)", "一致（最大绝对误差 %.1e）"), c.max_abs);
            else if (c.within_bf16) snprintf(what, sizeof what, tr("ok, within a few bf16 ulps (max abs %.1e)", "一致，相差几个 bf16 ulp 以内（最大绝对误差 %.1e）"), c.max_abs);
            else {  // inside the bound, not element by element: rounding, said as such
                n_rounding++;
                bool here = !c.mine_bf16 && c.ref_bf16;  // float32 where the trace holds bf16 values
                seen_fp32 |= here;
                const char *why = here ? tr("float32 vs bf16 rounding: your values are float32, the trace rounds to bf16 as "
                                            "Meta's reference does",
                                            "float32 与 bf16 的舍入差异：你的值是 float32，而记录像 Meta 的参考实现那样舍入到 bf16")
                                  : seen_fp32 ? tr("float32 vs bf16 rounding in the tensors it comes from",
                                                   "它所依赖的张量中 float32 与 bf16 的舍入差异")
                                              : tr("bf16 rounding and summation order in the steps before it",
                                                   "之前各步中 bf16 舍入和求和顺序的差异");
                snprintf(what, sizeof what, tr("ok within bf16 tolerance (nerr %.1e) [%s]: %s, not a failure",
                                               "在 bf16 容差内一致（nerr %.1e）[%s]：%s，不算错误"),
                         c.nerr, here || seen_fp32 ? "fp32-vs-bf16" : "rounding", why);
            }
            printf("  %-44s %s  %-16s %s\n", e->name, tr("found", "找到"), got, what);
            arr_free(&mine);
            continue;
        }
        // the first divergence
        char where[96] = "";
        if (c.max_abs > 0 && ref->n) {
            size_t w = c.worst, k = w;
            int64_t idx[MAX_DIMS];
            for (int d = ref->ndim - 1; d >= 0; d--) idx[d] = (int64_t)(k % (size_t)ref->shape[d]), k /= (size_t)ref->shape[d];
            size_t o = (size_t)snprintf(where, sizeof where, "[");
            for (int d = 0; d < ref->ndim && o < sizeof where; d++) o += (size_t)snprintf(where + o, sizeof where - o, "%s%lld", d ? ", " : "", (long long)idx[d]);
            snprintf(where + o, sizeof where - o, "]: %s %.6g, %s %.6g", tr("yours", "你的"), mine.v[w], tr("trace", "记录"), ref->v[w]);
        }
        printf("  %-44s %s  %-16s %s", e->name, tr("found", "找到"), got, tr("DIFFERS", "不同"));
        if (!c.pattern_ok) printf(tr(": NaN or inf where the trace has none (or the other way round)", "：NaN 或 inf 的位置与记录不同"));
        else printf(tr(": nerr %.2e > %.2g, largest difference at %s", "：nerr %.2e > %.2g，最大差异在 %s"), c.nerr, g_bound, where);
        printf("\n");
        printf(tr("first divergence: %s %s\n", "第一个分歧：%s %s\n"), e->step, e->name);
        g_found = false, g_untried = 0;
        diagnose_known(e->name, &mine);
        if (!g_found) diagnose_generic(e->name, &mine, ref);
        if (!g_found) {
            printf(tr("no known cause recognised", "没有识别出已知原因"));
            if (g_untried && !V.have_model)
                printf(tr(" (%d causes not tried: they need the model's weights; pass --model DIR)",
                          "（有 %d 个原因没有尝试：它们需要模型权重；请传入 --model DIR）"), g_untried);
            printf("\n");
        }
        arr_free(&mine);
        return 1;
    }
    flush_missing(&V.missing);
    if (!n_found)
        input_error(V.my_dir, "none of the walkthrough's names found (NAME.npy or NN_chapter/NAME.npy; the names: verify --help)");
    printf(tr("%d found, %d missing: every tensor found agrees with the trace", "找到 %d 个，缺失 %d 个：找到的张量都与记录一致"),
           n_found, n_missing);
    if (n_rounding) printf(tr(" (%d within bf16 tolerance only: rounding, not a failure)", "（其中 %d 个仅在 bf16 容差内一致：舍入造成，不算错误）"), n_rounding);
    printf("\n");
    return 0;
}

// wt-make-model: writes a synthetic Llama-3 model in Meta's exact on-disk layout, so every program can be run and
// tested without downloading the real 16 GB checkpoint:
//
//     OUT/consolidated.00.pth  torch.save format (pth_write.h), every tensor bf16, Meta's names, shapes and order
//     OUT/tokenizer.model      copied from --tokenizer (default build/models/tokenizer.model)
//     OUT/params.json          Meta's keys (formats.md §1); written last, so it exists only beside complete weights
//
// Presets (D = dim, L = n_layers, H = n_heads, Hkv = n_kv_heads, Dh = D/H, F = FFN hidden size, V = vocab):
//     tiny       D 512, L 4, H 4, Hkv 1 (Dh 128, GQA group 4), V 128256, multiple_of 256 -> F 1536   (~290 MB)
//     llama3-8b  exactly Meta-Llama-3-8B's params.json: D 4096, L 32, H 32, Hkv 8, V 128256, F 14336  (16.06 GB)
// --layers N changes L only. Tensors, in Meta's order, with stream index s = their position in this list:
//     tok_embeddings.weight [V, D]; per layer L: attention.wq [H*Dh, D], wk [Hkv*Dh, D], wv [Hkv*Dh, D],
//     wo [D, H*Dh], feed_forward.w1 [F, D], w3 [F, D], w2 [D, F] (the order of Meta's own file), attention_norm [D], ffn_norm [D]; norm [D];
//     output.weight [V, D]
//
// Values. Element i (row-major) of the tensor with stream index s is
//     bf16( float( mean + std * rng_normal(rng_key(seed, s), i) ) )       (rng.h; round to nearest even twice)
// with (mean, std) per kind, chosen so a forward pass behaves like a trained model's in the ways the tutorial shows:
//     tok_embeddings      0, 0.5              the first RMSNorm rescales rows anyway; 0.5 keeps the token's own signal
//                                             comparable to what the layers add to the residual stream
//     wq, wk              0, sqrt(3)/sqrt(D)  a normalised x (rms 1) gives q, k entries of variance 3, so the scores
//                                             q.k/sqrt(Dh) have a standard deviation of about 3: softmax rows are
//                                             clearly peaked, not uniform (1/sqrt(D) alone would give a spread of 1)
//     wv, w1, w3          0, 1/sqrt(D)        variance-preserving (fan_in D)
//     wo                  0, 1/sqrt(D) / sqrt(2L)   the two residual branches of each layer are scaled down by
//     w2                  0, 1/sqrt(F) / sqrt(2L)   sqrt(2L) (as GPT-2 does), so the residual stream stays O(1)
//                                             through all L layers instead of growing like sqrt(L)
//     attention_norm, ffn_norm, norm   1, 0.05   near 1, but not exactly 1, so a missing norm weight shows
//     output              0, 3/sqrt(D)        logits with a spread of about 3: a peaked next-token distribution rather
//                                             than a flat one over 128256 tokens
// tests/reference/check_torch_load.py recomputes these values with numpy and runs a forward pass in float32 on the
// tutorial's 17 tokens. Measured with `--preset tiny --seed 7`: score std 2.9-3.0 in layers 0-3, the largest weight of
// an attention row ~7x the uniform 1/(t+1), residual rms 0.61 -> 0.85 over the 4 layers, logit std 3.0 (the top-1
// margin on that prompt is 0.35 with seed 7 but 0.06 with seed 1: random weights give no guarantee there).
// The generator is counter-based, so chunks are filled in parallel (OpenMP) and the bytes do not depend on the thread
// count; tensors are streamed in chunks of CHUNK_ELEMENTS, so memory stays at ~64 MB whatever the preset.
//
// Build: make build/bin/wt-make-model
// Run:   build/bin/wt-make-model --preset tiny --seed 1 --tokenizer build/models/tokenizer.model --out build/models/tiny
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "formats/pth_write.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

static const char *PROG = "wt-make-model";
#define CHUNK_ELEMENTS ((int64_t)32 << 20)  // 32 Mi bf16 values = 64 MiB per chunk
#define DEFAULT_TOKENIZER "build/models/tokenizer.model"

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s --preset tiny|llama3-8b --out DIR [--layers N] [--seed S] [--tokenizer FILE] [--quiet]\n"
            "\n"
            "Writes a synthetic Llama-3 model in Meta's layout: DIR/params.json, DIR/consolidated.00.pth (bf16,\n"
            "Meta's tensor names, shapes and order) and DIR/tokenizer.model.\n"
            "\n"
            "  --preset NAME     tiny (dim 512, 4 layers, 4 heads, 1 kv head, vocab 128256, ~290 MB) or\n"
            "                    llama3-8b (Meta-Llama-3-8B's params.json, 32 layers, 16.06 GB)\n"
            "  --out DIR         output folder (created if missing; files in it are replaced)\n"
            "  --layers N        number of layers instead of the preset's\n"
            "  --seed S          random seed, an unsigned integer (default 1); the same seed gives the same bytes\n"
            "  --tokenizer FILE  tokenizer.model to copy (default %s)\n"
            "  --quiet           no progress lines on stderr\n"
            "  --help            this text\n",
            PROG, DEFAULT_TOKENIZER);
}

// ---- the model --------------------------------------------------------------------------------------------------

static void preset_config(Config *c, const char *preset) {
    memset(c, 0, sizeof *c);
    c->vocab_size = 128256;
    c->norm_eps = 1e-5;
    c->rope_theta = 500000.0;
    if (strcmp(preset, "tiny") == 0) {
        c->dim = 512, c->n_layers = 4, c->n_heads = 4, c->n_kv_heads = 1, c->multiple_of = 256;
    } else if (strcmp(preset, "llama3-8b") == 0) {
        c->dim = 4096, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 8, c->multiple_of = 1024;
        c->has_ffn_dim_multiplier = true, c->ffn_dim_multiplier = 1.3;
    } else {
        usage_error(PROG, "--preset: expected tiny or llama3-8b, got '%s'", preset);
    }
}

typedef struct {
    char name[64];
    int ndim;
    int64_t shape[2];
    double mean, std;
} WeightPlan;

// Every tensor of the model in Meta's order, with the distribution of its values (see the header comment).
static WeightPlan *plan_weights(const Config *c, int *n_out) {
    int n = 1 + 9 * c->n_layers + 2;
    WeightPlan *p = xcalloc((size_t)n, sizeof *p);
    const int64_t D = c->dim, F = c->ffn_hidden, V = c->vocab_size, Dh = c->head_dim;
    const int64_t Hq = (int64_t)c->n_heads * Dh, Hkv = (int64_t)c->n_kv_heads * Dh;
    const double branch = sqrt(2.0 * c->n_layers);  // residual-branch scale-down
    int k = 0;
#define MATRIX(rows, cols, mu, sigma, ...)                                                \
    do {                                                                                  \
        snprintf(p[k].name, sizeof p[k].name, __VA_ARGS__);                               \
        p[k].ndim = 2, p[k].shape[0] = (rows), p[k].shape[1] = (cols);                    \
        p[k].mean = (mu), p[k].std = (sigma);                                             \
        k++;                                                                              \
    } while (0)
#define VECTOR(len, mu, sigma, ...)                                                       \
    do {                                                                                  \
        snprintf(p[k].name, sizeof p[k].name, __VA_ARGS__);                               \
        p[k].ndim = 1, p[k].shape[0] = (len);                                             \
        p[k].mean = (mu), p[k].std = (sigma);                                             \
        k++;                                                                              \
    } while (0)
    MATRIX(V, D, 0.0, 0.5, "tok_embeddings.weight");
    for (int l = 0; l < c->n_layers; l++) {
        MATRIX(Hq, D, 0.0, sqrt(3.0) / sqrt((double)D), "layers.%d.attention.wq.weight", l);
        MATRIX(Hkv, D, 0.0, sqrt(3.0) / sqrt((double)D), "layers.%d.attention.wk.weight", l);
        MATRIX(Hkv, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.attention.wv.weight", l);
        MATRIX(D, Hq, 0.0, 1.0 / sqrt((double)Hq) / branch, "layers.%d.attention.wo.weight", l);
        MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.w1.weight", l);
        MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.w3.weight", l);
        MATRIX(D, F, 0.0, 1.0 / sqrt((double)F) / branch, "layers.%d.feed_forward.w2.weight", l);
        VECTOR(D, 1.0, 0.05, "layers.%d.attention_norm.weight", l);
        VECTOR(D, 1.0, 0.05, "layers.%d.ffn_norm.weight", l);
    }
    VECTOR(D, 1.0, 0.05, "norm.weight");
    MATRIX(V, D, 0.0, 3.0 / sqrt((double)D), "output.weight");
#undef MATRIX
#undef VECTOR
    if (k != n) fatal("plan_weights: %d tensors planned, %d expected", k, n);
    *n_out = n;
    return p;
}

static int64_t plan_numel(const WeightPlan *p) { return p->ndim == 1 ? p->shape[0] : p->shape[0] * p->shape[1]; }

// ---- progress -----------------------------------------------------------------------------------------------------

typedef struct {
    bool quiet, tty;
    double t0, last_print;
    uint64_t total_bytes;
} Progress;

static void progress_report(Progress *pr, int tensor, int n_tensors, const char *name, uint64_t bytes, bool final) {
    if (pr->quiet) return;
    double now = now_seconds();
    if (!final && now - pr->last_print < (pr->tty ? 0.2 : 2.0)) return;
    pr->last_print = now;
    double secs = now - pr->t0;
    fprintf(stderr, "%s[%3d/%d] %-40s %6.2f / %.2f GB  %6.0f MB/s%s", pr->tty ? "\r" : "", tensor, n_tensors, name,
            bytes / 1e9, pr->total_bytes / 1e9, secs > 0 ? bytes / 1e6 / secs : 0.0, pr->tty && !final ? "" : "\n");
}

// ---- tokenizer ----------------------------------------------------------------------------------------------------

// A tiktoken file is lines "BASE64 RANK": check the first line so that a wrong file is caught before 16 GB are written.
static void check_tokenizer_file(const char *path) {
    FILE *f = xfopen(path, "rb");
    char line[1024];
    if (!fgets(line, sizeof line, f)) input_error(path, "empty file; expected tiktoken lines \"BASE64 RANK\"");
    fclose(f);
    size_t b64 = strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");
    size_t digits = line[b64] == ' ' ? strspn(line + b64 + 1, "0123456789") : 0;
    if (b64 == 0 || digits == 0 || (line[b64 + 1 + digits] != '\n' && line[b64 + 1 + digits] != 0))
        input_error(path, "line 1: expected a tiktoken line \"BASE64 RANK\" (is this a tokenizer.model?)");
}

static void copy_file_atomically(const char *from, const char *to) {
    FILE *in = xfopen(from, "rb");
    AtomicFile out;
    atomic_open(&out, to);
    char *buf = xmalloc(1 << 20);
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, in)) > 0) xfwrite(buf, n, out.f, out.tmp_path);
    if (ferror(in)) input_error(from, "read failed");
    fclose(in);
    free(buf);
    atomic_commit(&out);
}

// ---- main ---------------------------------------------------------------------------------------------------------

static int parse_int_arg(const char *flag, const char *s, int lo, int hi) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) usage_error(PROG, "%s: expected an integer in %d..%d, got '%s'", flag, lo, hi, s);
    return (int)v;
}

int main(int argc, char **argv) {
    const char *preset = NULL, *out_dir = NULL, *tokenizer = NULL;
    int layers = 0;
    uint64_t seed = 1;
    bool quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--preset") == 0 || strcmp(a, "--out") == 0 || strcmp(a, "--layers") == 0 ||
                   strcmp(a, "--seed") == 0 || strcmp(a, "--tokenizer") == 0) {
            if (!has_value) usage_error(PROG, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--preset") == 0) preset = v;
            else if (strcmp(a, "--out") == 0) out_dir = v;
            else if (strcmp(a, "--tokenizer") == 0) tokenizer = v;
            else if (strcmp(a, "--layers") == 0) layers = parse_int_arg(a, v, 1, 1024);
            else {
                char *end;
                errno = 0;
                seed = strtoull(v, &end, 10);
                if (*v == 0 || *v == '-' || *end != 0 || errno) usage_error(PROG, "--seed: expected an unsigned integer, got '%s'", v);
            }
        } else {
            usage_error(PROG, "unknown argument '%s'", a);
        }
    }
    if (!preset) usage_error(PROG, "--preset is required");
    if (!out_dir) usage_error(PROG, "--out is required");

    Config cfg;
    preset_config(&cfg, preset);
    if (layers) cfg.n_layers = layers;
    config_derive(&cfg, preset);

    // The tokenizer is checked first: a missing one should not cost a 16 GB write.
    if (!tokenizer) {
        if (!file_exists(DEFAULT_TOKENIZER))
            input_error(NULL, "no tokenizer: pass --tokenizer FILE, or run `make models` to create %s", DEFAULT_TOKENIZER);
        tokenizer = DEFAULT_TOKENIZER;
    }
    if (!file_exists(tokenizer)) input_error(tokenizer, "--tokenizer: no such file");
    check_tokenizer_file(tokenizer);

    int n_tensors;
    WeightPlan *plan = plan_weights(&cfg, &n_tensors);
    PthTensorSpec *specs = xcalloc((size_t)n_tensors, sizeof *specs);
    Progress pr = {.quiet = quiet, .tty = isatty(2), .t0 = now_seconds()};
    for (int i = 0; i < n_tensors; i++) {
        specs[i] = (PthTensorSpec){.name = plan[i].name, .dtype = DT_BF16, .ndim = plan[i].ndim};
        for (int d = 0; d < plan[i].ndim; d++) specs[i].shape[d] = plan[i].shape[d];
        pr.total_bytes += (uint64_t)plan_numel(&plan[i]) * sizeof(uint16_t);
    }

    // params.json is removed first and written last: a run that fails half-way leaves no params.json, so an older
    // model's params.json never sits beside new weights, and `make` (whose target is params.json) retries.
    mkdir_p(out_dir);
    char *params_path = path_join(out_dir, "params.json");
    char *pth_path = path_join(out_dir, "consolidated.00.pth");
    char *tok_path = path_join(out_dir, "tokenizer.model");
    if (unlink(params_path) != 0 && errno != ENOENT) fatal("%s: cannot remove: %s", params_path, strerror(errno));

    PthWriter *w = pth_writer_open(pth_path, specs, n_tensors);
    uint16_t *chunk = xmalloc((size_t)CHUNK_ELEMENTS * sizeof(uint16_t));  // bf16 bits
    uint64_t data_bytes = 0;
    for (int t = 0; t < n_tensors; t++) {
        const WeightPlan *p = &plan[t];
        const int64_t numel = plan_numel(p);
        const uint64_t key = rng_key(seed, (uint64_t)t);
        const double mean = p->mean, std = p->std;
        for (int64_t start = 0; start < numel; start += CHUNK_ELEMENTS) {
            const int64_t count = numel - start < CHUNK_ELEMENTS ? numel - start : CHUNK_ELEMENTS;
            // Each element depends only on (seed, t, start + i): any split among threads gives the same bytes.
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < count; i++)
                chunk[i] = f32_to_bf16((float)(mean + std * rng_normal(key, (uint64_t)(start + i))));
            pth_writer_append(w, chunk, (size_t)count * sizeof(uint16_t));
            data_bytes += (uint64_t)count * sizeof(uint16_t);
            progress_report(&pr, t + 1, n_tensors, p->name, data_bytes, false);
        }
    }
    free(chunk);
    pth_writer_close(w);
    progress_report(&pr, n_tensors, n_tensors, "done", data_bytes, true);

    copy_file_atomically(tokenizer, tok_path);
    config_write_params_json(&cfg, params_path);
    double secs = now_seconds() - pr.t0;
    printf("wrote %s: %s preset, %d layers, seed %llu, %d tensors, %.2f GB of bf16 in %.1f s (%.0f MB/s)\n", out_dir, preset,
           cfg.n_layers, (unsigned long long)seed, n_tensors, data_bytes / 1e9, secs, secs > 0 ? data_bytes / 1e6 / secs : 0.0);
    free(params_path), free(pth_path), free(tok_path);
    free(specs), free(plan);
    return 0;
}

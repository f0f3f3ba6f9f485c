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
//     gqa        D 256, L 2, H 8, Hkv 2 (Dh 32, GQA group 4), V 128256, F 768   (~135 MB), for build/bin/verify's
//                tests: its query heads read two different kv heads (tiny's all share one), so a kv-head mistake
//                shows, and its embeddings are small (std 0.002, the size of the values the tutorial prints for
//                Meta-Llama-3-8B's token_embeddings_unnormalized), so RMSNorm's eps (1e-5) matters as it does there
// and two mixture-of-experts models (ref/ref_moe.h), each in its own project's layout unless --format meta:
//     minimind-moe   MiniMind2's MoE defaults: D 512, L 8, H 8, Hkv 2, V 6400, F 1408, rope_theta 1e6, E 4 routed
//                    experts, top 2, 1 shared, tied embeddings. MiniMind's files: config.json (model_type "minimind",
//                    use_moe, its MoE keys, intermediate_size null) and full_sft_512_moe.pth, a torch.save state dict
//                    of fp16 tensors under its names (model.layers.L.mlp.gate.weight, mlp.experts.E.gate_proj ...,
//                    mlp.shared_experts.S.*, lm_head.weight equal to model.embed_tokens.weight)       (~77 MB)
//     mixtral-tiny   Mixtral's layout at a small shape: D 256, L 2, H 8, Hkv 2, V 32000, F 768, rope_theta 1e6,
//                    8 experts, top 2, no shared expert: config.json (model_type "mixtral", num_local_experts) and
//                    model.safetensors (bf16; block_sparse_moe.gate.weight, block_sparse_moe.experts.E.w1/w2/w3)
//                    (~43 MB). Neither writes a tokenizer (MiniMind's and Mixtral's are their own): use --tokens.
// --format meta writes any preset in our Meta-style layout (params.json with the MoE keys, consolidated.00.pth with
// layers.L.feed_forward.gate.weight, feed_forward.experts.E.w1 ..., feed_forward.shared_experts.S.*).
// --layers N changes L only. Tensors, in Meta's order, with stream index s = their position in this list:
//     tok_embeddings.weight [V, D]; per layer L: attention.wq [H*Dh, D], wk [Hkv*Dh, D], wv [Hkv*Dh, D],
//     wo [D, H*Dh], feed_forward.w1 [F, D], w3 [F, D], w2 [D, F] (the order of Meta's own file), attention_norm [D], ffn_norm [D]; norm [D];
//     output.weight [V, D]
//
// Values. Element i (row-major) of the tensor with stream index s is
//     bf16( float( mean + std * rng_normal(rng_key(seed, s), i) ) )       (rng.h; round to nearest even twice)
// with (mean, std) per kind, chosen so a forward pass behaves like a trained model's in the ways the tutorial shows:
//     tok_embeddings      0, 0.5              the first RMSNorm rescales rows anyway; 0.5 keeps the token's own signal
//                                             comparable to what the layers add to the residual stream (gqa: 0.002)
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
//     gate (MoE)          0, 1.5/sqrt(D)      gate logits with a spread of about 1.5: tokens prefer different experts
//     experts' w1 w3 w2   as w1 w3 w2         every expert (routed or shared) is a SwiGLU FFN like the dense one
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
#include <jansson.h>

#include "formats/pth_write.h"
#include "formats/safetensors.h"
#include "rng.h"
#include "tensor.h"
#include "util.h"

static const char *PROG = "wt-make-model";
#define CHUNK_ELEMENTS ((int64_t)32 << 20)  // 32 Mi bf16 values = 64 MiB per chunk
#define DEFAULT_TOKENIZER "build/models/tokenizer.model"

static void usage(FILE *f) {
    fprintf(f,
            "usage: %s --preset tiny|gqa|llama3-8b|minimind-moe|mixtral-tiny --out DIR [--layers N] [--seed S]\n"
            "                     [--tokenizer FILE] [--format native|meta] [--quiet]\n"
            "\n"
            "Writes a synthetic Llama-3 model in Meta's layout: DIR/params.json, DIR/consolidated.00.pth (bf16,\n"
            "Meta's tensor names, shapes and order) and DIR/tokenizer.model.\n"
            "\n"
            "  --preset NAME     tiny (dim 512, 4 layers, 4 heads, 1 kv head, vocab 128256, ~290 MB),\n"
            "                    gqa (dim 256, 2 layers, 8 heads, 2 kv heads, vocab 128256, ~135 MB) or\n"
            "                    llama3-8b (Meta-Llama-3-8B's params.json, 32 layers, 16.06 GB); mixtures of experts:\n"
            "                    minimind-moe (MiniMind2-MoE's shape in MiniMind's own files: config.json and\n"
            "                    full_sft_512_moe.pth, fp16, its tensor names; ~77 MB) or mixtral-tiny (a 2-layer\n"
            "                    Mixtral in HF's layout: config.json, model.safetensors; ~43 MB). These two write no\n"
            "                    tokenizer: run the chapters with --tokens ID,ID,...\n"
            "  --format F        native (default: the preset's own layout) or meta (params.json with MiniMind's MoE\n"
            "                    keys, consolidated.00.pth with our Meta-style names)\n"
            "  --out DIR         output folder (created if missing; files in it are replaced)\n"
            "  --layers N        number of layers instead of the preset's\n"
            "  --seed S          random seed, an unsigned integer (default 1); the same seed gives the same bytes\n"
            "  --tokenizer FILE  tokenizer.model to copy (default %s)\n"
            "  --quiet           no progress lines on stderr\n"
            "  --help            this text\n",
            PROG, DEFAULT_TOKENIZER);
}

// ---- the model --------------------------------------------------------------------------------------------------

// The on-disk layout of a preset: Meta's (params.json + consolidated.00.pth), MiniMind's, or Mixtral's HF one.
typedef enum { LAYOUT_META, LAYOUT_MINIMIND, LAYOUT_MIXTRAL } Layout;

static Layout preset_config(Config *c, double *embed_std, const char *preset) {
    memset(c, 0, sizeof *c);
    *embed_std = 0.5;
    c->vocab_size = 128256;
    c->norm_eps = 1e-5;
    c->rope_theta = 500000.0;
    if (strcmp(preset, "tiny") == 0) {
        c->dim = 512, c->n_layers = 4, c->n_heads = 4, c->n_kv_heads = 1, c->multiple_of = 256;
    } else if (strcmp(preset, "llama3-8b") == 0) {
        c->dim = 4096, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 8, c->multiple_of = 1024;
        c->has_ffn_dim_multiplier = true, c->ffn_dim_multiplier = 1.3;
    } else if (strcmp(preset, "gqa") == 0) {
        c->dim = 256, c->n_layers = 2, c->n_heads = 8, c->n_kv_heads = 2, c->multiple_of = 256;
        *embed_std = 0.002;  // see the header comment
    } else if (strcmp(preset, "minimind-moe") == 0) {
        // MiniMindConfig(use_moe=True): F = 64 * ceil(int(512 * 8/3) / 64) = 1408, which Meta's rule gives too
        c->dim = 512, c->n_layers = 8, c->n_heads = 8, c->n_kv_heads = 2, c->vocab_size = 6400, c->multiple_of = 64;
        c->rope_theta = 1e6;
        config_moe_defaults(c);
        c->n_routed_experts = 4;
        return LAYOUT_MINIMIND;
    } else if (strcmp(preset, "mixtral-tiny") == 0) {
        c->dim = 256, c->n_layers = 2, c->n_heads = 8, c->n_kv_heads = 2, c->vocab_size = 32000, c->multiple_of = 256;
        c->rope_theta = 1e6;
        config_moe_defaults(c);
        c->n_routed_experts = 8, c->num_experts_per_tok = 2, c->n_shared_experts = 0;
        c->aux_loss_alpha = 0.02, c->seq_aux = false;  // Mixtral's router_aux_loss_coef, a batch-level loss
        return LAYOUT_MIXTRAL;
    } else {
        usage_error(PROG, "--preset: expected tiny, gqa, llama3-8b, minimind-moe or mixtral-tiny, got '%s'", preset);
    }
    return LAYOUT_META;
}

typedef struct {
    char name[96];      // our Meta-style name
    int ndim;
    int64_t shape[2];
    double mean, std;
    int stream;         // the random stream of its values: its own index, or the tensor it repeats (tied lm_head)
} WeightPlan;

// Every tensor of the model in Meta's order, with the distribution of its values (see the header comment).
static WeightPlan *plan_weights(const Config *c, double embed_std, int *n_out) {
    const int per_layer = config_is_moe(c) ? 6 + 1 + 3 * (c->n_routed_experts + c->n_shared_experts) : 9;
    int n = 1 + per_layer * c->n_layers + 2;
    WeightPlan *p = xcalloc((size_t)n, sizeof *p);
    const int64_t D = c->dim, F = c->ffn_hidden, V = c->vocab_size, Dh = c->head_dim;
    const int64_t Hq = (int64_t)c->n_heads * Dh, Hkv = (int64_t)c->n_kv_heads * Dh;
    const double branch = sqrt(2.0 * c->n_layers);  // residual-branch scale-down
    int k = 0;
#define MATRIX(rows, cols, mu, sigma, ...)                                                \
    do {                                                                                  \
        snprintf(p[k].name, sizeof p[k].name, __VA_ARGS__);                               \
        p[k].ndim = 2, p[k].shape[0] = (rows), p[k].shape[1] = (cols);                    \
        p[k].mean = (mu), p[k].std = (sigma), p[k].stream = k;                           \
        k++;                                                                              \
    } while (0)
#define VECTOR(len, mu, sigma, ...)                                                       \
    do {                                                                                  \
        snprintf(p[k].name, sizeof p[k].name, __VA_ARGS__);                               \
        p[k].ndim = 1, p[k].shape[0] = (len);                                             \
        p[k].mean = (mu), p[k].std = (sigma), p[k].stream = k;                           \
        k++;                                                                              \
    } while (0)
    MATRIX(V, D, 0.0, embed_std, "tok_embeddings.weight");
    for (int l = 0; l < c->n_layers; l++) {
        MATRIX(Hq, D, 0.0, sqrt(3.0) / sqrt((double)D), "layers.%d.attention.wq.weight", l);
        MATRIX(Hkv, D, 0.0, sqrt(3.0) / sqrt((double)D), "layers.%d.attention.wk.weight", l);
        MATRIX(Hkv, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.attention.wv.weight", l);
        MATRIX(D, Hq, 0.0, 1.0 / sqrt((double)Hq) / branch, "layers.%d.attention.wo.weight", l);
        if (config_is_moe(c)) {
            MATRIX(c->n_routed_experts, D, 0.0, 1.5 / sqrt((double)D), "layers.%d.feed_forward.gate.weight", l);
            for (int sh = 0; sh < 2; sh++)
                for (int e = 0; e < (sh ? c->n_shared_experts : c->n_routed_experts); e++) {
                    const char *g = sh ? "shared_experts" : "experts";
                    MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.%s.%d.w1.weight", l, g, e);
                    MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.%s.%d.w3.weight", l, g, e);
                    MATRIX(D, F, 0.0, 1.0 / sqrt((double)F) / branch, "layers.%d.feed_forward.%s.%d.w2.weight", l, g, e);
                }
        } else {
            MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.w1.weight", l);
            MATRIX(F, D, 0.0, 1.0 / sqrt((double)D), "layers.%d.feed_forward.w3.weight", l);
            MATRIX(D, F, 0.0, 1.0 / sqrt((double)F) / branch, "layers.%d.feed_forward.w2.weight", l);
        }
        VECTOR(D, 1.0, 0.05, "layers.%d.attention_norm.weight", l);
        VECTOR(D, 1.0, 0.05, "layers.%d.ffn_norm.weight", l);
    }
    VECTOR(D, 1.0, 0.05, "norm.weight");
    MATRIX(V, D, 0.0, 3.0 / sqrt((double)D), "output.weight");
    if (c->tie_word_embeddings) p[k - 1].mean = p[0].mean, p[k - 1].std = p[0].std, p[k - 1].stream = 0;  // = embedding
#undef MATRIX
#undef VECTOR
    if (k != n) fatal("plan_weights: %d tensors planned, %d expected", k, n);
    *n_out = n;
    return p;
}

static int64_t plan_numel(const WeightPlan *p) { return p->ndim == 1 ? p->shape[0] : p->shape[0] * p->shape[1]; }

// Our Meta-style name -> the name in MiniMind's state dict or Mixtral's safetensors (the HF Llama names plus their
// MoE names; formats.md §5 and §7). The q/k rows keep the values drawn for them: in an HF layout they are read as
// HF's rotate_half order (the loaders un-permute them), which for random values is just another random matrix.
static void layout_name(const char *meta, Layout lay, char *out, size_t n) {
    static const struct {
        const char *meta, *hf;
    } fixed[] = {{"tok_embeddings.weight", "model.embed_tokens.weight"}, {"norm.weight", "model.norm.weight"},
                 {"output.weight", "lm_head.weight"}};
    static const struct {
        const char *meta, *hf;
    } per_layer[] = {{"attention.wq.weight", "self_attn.q_proj.weight"},    {"attention.wk.weight", "self_attn.k_proj.weight"},
                     {"attention.wv.weight", "self_attn.v_proj.weight"},    {"attention.wo.weight", "self_attn.o_proj.weight"},
                     {"attention_norm.weight", "input_layernorm.weight"}, {"ffn_norm.weight", "post_attention_layernorm.weight"}};
    if (lay == LAYOUT_META) {
        snprintf(out, n, "%s", meta);
        return;
    }
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(meta, fixed[i].meta) == 0) {
            snprintf(out, n, "%s", fixed[i].hf);
            return;
        }
    int l, used = 0;
    if (sscanf(meta, "layers.%d.%n", &l, &used) != 1 || used == 0) fatal("layout_name: %s", meta);
    const char *rest = meta + used;
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++)
        if (strcmp(rest, per_layer[i].meta) == 0) {
            snprintf(out, n, "model.layers.%d.%s", l, per_layer[i].hf);
            return;
        }
    const char *block = lay == LAYOUT_MIXTRAL ? "block_sparse_moe" : "mlp";
    if (strcmp(rest, "feed_forward.gate.weight") == 0) {
        snprintf(out, n, "model.layers.%d.%s.gate.weight", l, block);
        return;
    }
    int e;
    char g[32], w[4];
    if (sscanf(rest, "feed_forward.%31[a-z_].%d.%3[w123].weight", g, &e, w) != 3) fatal("layout_name: %s", meta);
    const char *proj = w[1] == '1' ? "gate_proj" : w[1] == '2' ? "down_proj" : "up_proj";
    if (lay == LAYOUT_MIXTRAL) snprintf(out, n, "model.layers.%d.%s.%s.%d.%s.weight", l, block, g, e, w);  // w1 w2 w3
    else snprintf(out, n, "model.layers.%d.%s.%s.%d.%s.weight", l, block, g, e, proj);
}

// config.json as MiniMind's MiniMindConfig.save_pretrained or Mixtral's MixtralConfig write it (the keys our
// reader and transformers use; formats.md §7).
static void write_layout_config(const Config *c, Layout lay, const char *path) {
    json_t *o = json_object();
    if (lay == LAYOUT_MINIMIND) {
        json_object_set_new(o, "architectures", json_pack("[s]", "MiniMindForCausalLM"));
        json_object_set_new(o, "model_type", json_string("minimind"));
        json_object_set_new(o, "bos_token_id", json_integer(1));
        json_object_set_new(o, "eos_token_id", json_integer(2));
        json_object_set_new(o, "dropout", json_real(0.0));
        json_object_set_new(o, "flash_attn", json_true());
        json_object_set_new(o, "hidden_act", json_string("silu"));
        json_object_set_new(o, "hidden_size", json_integer(c->dim));
        json_object_set_new(o, "intermediate_size", json_null());  // MiniMind computes 64 * ceil(int(8D/3) / 64)
        json_object_set_new(o, "max_position_embeddings", json_integer(32768));
        json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
        json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
        json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
        json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
        json_object_set_new(o, "rms_norm_eps", json_real(c->norm_eps));
        json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
        json_object_set_new(o, "inference_rope_scaling", json_false());
        json_object_set_new(o, "rope_scaling", json_null());
        json_object_set_new(o, "use_moe", json_true());
        json_object_set_new(o, "num_experts_per_tok", json_integer(c->num_experts_per_tok));
        json_object_set_new(o, "n_routed_experts", json_integer(c->n_routed_experts));
        json_object_set_new(o, "n_shared_experts", json_integer(c->n_shared_experts));
        json_object_set_new(o, "scoring_func", json_string("softmax"));
        json_object_set_new(o, "aux_loss_alpha", json_real(c->aux_loss_alpha));
        json_object_set_new(o, "seq_aux", json_boolean(c->seq_aux));
        json_object_set_new(o, "norm_topk_prob", json_boolean(c->norm_topk_prob));
        json_object_set_new(o, "torch_dtype", json_string("float16"));
    } else {
        json_object_set_new(o, "architectures", json_pack("[s]", "MixtralForCausalLM"));
        json_object_set_new(o, "model_type", json_string("mixtral"));
        json_object_set_new(o, "attention_dropout", json_real(0.0));
        json_object_set_new(o, "bos_token_id", json_integer(1));
        json_object_set_new(o, "eos_token_id", json_integer(2));
        json_object_set_new(o, "hidden_act", json_string("silu"));
        json_object_set_new(o, "hidden_size", json_integer(c->dim));
        json_object_set_new(o, "initializer_range", json_real(0.02));
        json_object_set_new(o, "intermediate_size", json_integer(c->ffn_hidden));
        json_object_set_new(o, "max_position_embeddings", json_integer(32768));
        json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
        json_object_set_new(o, "num_experts_per_tok", json_integer(c->num_experts_per_tok));
        json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
        json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
        json_object_set_new(o, "num_local_experts", json_integer(c->n_routed_experts));
        json_object_set_new(o, "output_router_logits", json_false());
        json_object_set_new(o, "rms_norm_eps", json_real(c->norm_eps));
        json_object_set_new(o, "rope_theta", json_real(c->rope_theta));
        json_object_set_new(o, "router_aux_loss_coef", json_real(c->aux_loss_alpha));
        json_object_set_new(o, "sliding_window", json_null());
        json_object_set_new(o, "tie_word_embeddings", json_false());
        json_object_set_new(o, "torch_dtype", json_string("bfloat16"));
        json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    }
    json_dump_to_file(o, JSON_INDENT(2) | JSON_REAL_PRECISION(10), path);
}

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
    const char *preset = NULL, *out_dir = NULL, *tokenizer = NULL, *format = "native";
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
                   strcmp(a, "--seed") == 0 || strcmp(a, "--tokenizer") == 0 || strcmp(a, "--format") == 0) {
            if (!has_value) usage_error(PROG, "%s needs a value", a);
            const char *v = argv[++i];
            if (strcmp(a, "--preset") == 0) preset = v;
            else if (strcmp(a, "--out") == 0) out_dir = v;
            else if (strcmp(a, "--tokenizer") == 0) tokenizer = v;
            else if (strcmp(a, "--format") == 0) format = v;
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
    double embed_std;
    Layout lay = preset_config(&cfg, &embed_std, preset);
    if (strcmp(format, "meta") == 0) lay = LAYOUT_META;
    else if (strcmp(format, "native") != 0) usage_error(PROG, "--format: expected native or meta, got '%s'", format);
    cfg.tie_word_embeddings = strcmp(preset, "minimind-moe") == 0;  // MiniMind's lm_head is its embedding
    if (layers) cfg.n_layers = layers;
    config_derive(&cfg, preset);
    const bool moe = config_is_moe(&cfg);

    // The tokenizer is checked first: a missing one should not cost a 16 GB write. The MoE presets have none of
    // their own (their vocabularies are not Llama-3's): they copy one only when asked.
    if (!tokenizer && !moe) {
        if (!file_exists(DEFAULT_TOKENIZER))
            input_error(NULL, "no tokenizer: pass --tokenizer FILE, or run `make models` to create %s", DEFAULT_TOKENIZER);
        tokenizer = DEFAULT_TOKENIZER;
    }
    if (tokenizer && !file_exists(tokenizer)) input_error(tokenizer, "--tokenizer: no such file");
    if (tokenizer) check_tokenizer_file(tokenizer);

    int n_tensors;
    WeightPlan *plan = plan_weights(&cfg, embed_std, &n_tensors);
    // MiniMind saves fp16 (`v.half()`); Meta's and Mixtral's files are bf16
    const DType dtype = lay == LAYOUT_MINIMIND ? DT_F16 : DT_BF16;
    PthTensorSpec *specs = xcalloc((size_t)n_tensors, sizeof *specs);
    SafetensorsSpec *st_specs = xcalloc((size_t)n_tensors, sizeof *st_specs);
    char (*names)[128] = xcalloc((size_t)n_tensors, sizeof *names);
    Progress pr = {.quiet = quiet, .tty = isatty(2), .t0 = now_seconds()};
    for (int i = 0; i < n_tensors; i++) {
        layout_name(plan[i].name, lay, names[i], sizeof names[i]);
        specs[i] = (PthTensorSpec){.name = names[i], .dtype = dtype, .ndim = plan[i].ndim};
        st_specs[i] = (SafetensorsSpec){.name = names[i], .dtype = dtype, .ndim = plan[i].ndim};
        for (int d = 0; d < plan[i].ndim; d++) specs[i].shape[d] = st_specs[i].shape[d] = plan[i].shape[d];
        pr.total_bytes += (uint64_t)plan_numel(&plan[i]) * sizeof(uint16_t);
    }

    // The config (params.json or config.json) is removed first and written last: a run that fails half-way leaves
    // none, so an older model's config never sits beside new weights, and `make` (whose target is it) retries.
    mkdir_p(out_dir);
    char *params_path = path_join(out_dir, lay == LAYOUT_META ? "params.json" : "config.json");
    char weights_name[64];
    if (lay == LAYOUT_META) snprintf(weights_name, sizeof weights_name, "consolidated.00.pth");
    else if (lay == LAYOUT_MINIMIND) snprintf(weights_name, sizeof weights_name, "full_sft_%d_moe.pth", cfg.dim);
    else snprintf(weights_name, sizeof weights_name, "model.safetensors");
    char *pth_path = path_join(out_dir, weights_name);
    char *tok_path = path_join(out_dir, "tokenizer.model");
    if (unlink(params_path) != 0 && errno != ENOENT) fatal("%s: cannot remove: %s", params_path, strerror(errno));

    // safetensors takes whole tensors (the MoE presets are small); the .pth is streamed in chunks
    PthWriter *w = lay == LAYOUT_MIXTRAL ? NULL : pth_writer_open(pth_path, specs, n_tensors);
    SafetensorsWriter *sw = lay == LAYOUT_MIXTRAL ? safetensors_writer_open(pth_path, st_specs, n_tensors) : NULL;
    int64_t largest = 0;
    for (int t = 0; t < n_tensors; t++) largest = plan_numel(&plan[t]) > largest ? plan_numel(&plan[t]) : largest;
    const int64_t chunk_elems = sw ? largest : CHUNK_ELEMENTS;
    uint16_t *chunk = xmalloc((size_t)chunk_elems * sizeof(uint16_t));  // bf16 or f16 bits
    uint64_t data_bytes = 0;
    for (int t = 0; t < n_tensors; t++) {
        const WeightPlan *p = &plan[t];
        const int64_t numel = plan_numel(p);
        const uint64_t key = rng_key(seed, (uint64_t)p->stream);
        const double mean = p->mean, std = p->std;
        for (int64_t start = 0; start < numel; start += chunk_elems) {
            const int64_t count = numel - start < chunk_elems ? numel - start : chunk_elems;
            // Each element depends only on (seed, stream, start + i): any split among threads gives the same bytes.
#pragma omp parallel for schedule(static)
            for (int64_t i = 0; i < count; i++) {
                float v = (float)(mean + std * rng_normal(key, (uint64_t)(start + i)));
                chunk[i] = dtype == DT_F16 ? f32_to_f16(v) : f32_to_bf16(v);
            }
            if (sw) safetensors_writer_write(sw, t, chunk);
            else pth_writer_append(w, chunk, (size_t)count * sizeof(uint16_t));
            data_bytes += (uint64_t)count * sizeof(uint16_t);
            progress_report(&pr, t + 1, n_tensors, names[t], data_bytes, false);
        }
    }
    free(chunk);
    if (sw) safetensors_writer_close(sw);
    else pth_writer_close(w);
    progress_report(&pr, n_tensors, n_tensors, "done", data_bytes, true);

    if (tokenizer) copy_file_atomically(tokenizer, tok_path);
    if (lay == LAYOUT_META) config_write_params_json(&cfg, params_path);
    else write_layout_config(&cfg, lay, params_path);
    double secs = now_seconds() - pr.t0;
    printf("wrote %s: %s preset, %d layers, seed %llu, %d tensors, %.2f GB of %s in %.1f s (%.0f MB/s)\n", out_dir, preset,
           cfg.n_layers, (unsigned long long)seed, n_tensors, data_bytes / 1e9, dtype_name(dtype), secs,
           secs > 0 ? data_bytes / 1e6 / secs : 0.0);
    free(params_path), free(pth_path), free(tok_path);
    free(specs), free(st_specs), free(names), free(plan);
    return 0;
}

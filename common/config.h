// config.h: the model's hyper-parameters (params.json or HF config.json) and the values derived from them.
//
//   D = dim, H = n_heads, Hkv = n_kv_heads, Dh = head_dim = D/H, n_rep = H/Hkv (GQA group),
//   F = ffn_hidden (Meta's FeedForward rule, formats.md §1), V = vocab_size, L = n_layers.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Llama 3.1's RoPE frequency scaling (Meta's apply_scaling, formats.md §6): wavelengths longer than
// original_max_position_embeddings / low_freq_factor are slowed down `factor` times, those shorter than
// original_max_position_embeddings / high_freq_factor are kept, and the band between is blended.
typedef struct {
    double factor;                            // 8 for Llama 3.1, 32 for Llama 3.2 1B/3B
    double low_freq_factor, high_freq_factor; // 1, 4
    double original_max_position_embeddings;  // 8192: Llama 3's context before the scaling
} RopeScaling;
// Meta's values, the ones its apply_scaling hard-codes (Llama 3.1): what use_scaled_rope means in a params.json that
// does not say otherwise.
extern const RopeScaling ROPE_SCALING_LLAMA31;

typedef struct {
    int dim, n_layers, n_heads, n_kv_heads, vocab_size;
    int multiple_of;
    bool has_ffn_dim_multiplier;
    double ffn_dim_multiplier;
    double norm_eps;
    double rope_theta;
    bool use_scaled_rope;   // RoPE frequency scaling (formats.md §6), with the constants of rope_scaling
    RopeScaling rope_scaling;  // Meta's (ROPE_SCALING_LLAMA31) unless the config gives others; all 0: Meta's too
    // HF-only facts (Meta checkpoints: false / 0)
    bool tie_word_embeddings;
    int intermediate_size;  // as given by config.json; 0 when absent (then the Meta rule applies)
    // A mixture of experts in place of the SwiGLU FFN (MiniMind's MoEGate/MOEFeedForward; Mixtral's sparse MoE
    // block): params.json / config.json keys under MiniMind's names (ref/ref_moe.h has the math). Every expert,
    // routed or shared, is a SwiGLU FFN of hidden size ffn_hidden. n_routed_experts == 0: the dense FFN.
    int n_routed_experts;   // E
    int num_experts_per_tok;// k, 1..E
    int n_shared_experts;   // S, experts every token goes through, unweighted (0 in Mixtral)
    bool norm_topk_prob;    // the k weights renormalised to sum 1 (when k > 1)
    double aux_loss_alpha;  // α of the auxiliary load-balancing loss (training only; the chapter prints it)
    bool seq_aux;           // the per-sequence form of that loss
    // derived
    int head_dim;           // D / H
    int n_rep;              // H / Hkv
    int ffn_hidden;         // F
} Config;

// Bounds on what a config may say: far above any real model (Llama-3.1-405B: dim 16384, 126 layers, vocab 128256,
// F 53248), low enough that a product of two sizes fits in 64 bits and every derived size in an int.
#define CONFIG_MAX_EXPERTS 4096    // n_routed_experts, n_shared_experts
#define CONFIG_MAX_DIM (1 << 20)      // dim, hidden_size
#define CONFIG_MAX_LAYERS (1 << 16)
#define CONFIG_MAX_HEADS (1 << 16)    // n_heads, n_kv_heads
#define CONFIG_MAX_VOCAB (1 << 24)
#define CONFIG_MAX_FFN (1 << 24)      // ffn_hidden, intermediate_size, multiple_of
#define CONFIG_MULT_MIN 0.01          // ffn_dim_multiplier (Meta's files: 1.3, 1.2)
#define CONFIG_MULT_MAX 100.0
#define CONFIG_EPS_MIN 1e-30          // norm_eps, rms_norm_eps
#define CONFIG_EPS_MAX 1.0
#define CONFIG_THETA_MIN 1.0          // rope_theta (Llama 3: 500000; MiniMind: 1e6)
#define CONFIG_THETA_MAX 1e15

// params.json: Meta's ModelArgs defaults for absent keys (n_kv_heads = n_heads, multiple_of = 256, norm_eps = 1e-5,
// rope_theta = 500000, no ffn_dim_multiplier, use_scaled_rope = false). Meta's files carry no scaling constants (its
// apply_scaling hard-codes Llama 3.1's); a params.json may give them as HF's config.json does, in "rope_scaling":
// {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
// (each key optional, Meta's value when absent), which also turns the scaling on. A mistyped or impossible value
// exits 2 naming the file and the key.
void config_from_params_json(Config *c, const char *path);
// The scaling the RoPE frequencies of this config get: NULL without use_scaled_rope, else its rope_scaling (Meta's
// when a Config made in code left it zero).
const RopeScaling *config_rope_scaling(const Config *c);
// HF config.json (hidden_size, num_attention_heads, ...).
void config_from_hf_json(Config *c, const char *path);
// The same on the text of the file: false with a one-line message ("KEY: expected ...") in err on bad input.
bool config_from_params_json_try(Config *c, const char *text, size_t len, char *err, size_t errlen);
bool config_from_hf_json_try(Config *c, const char *text, size_t len, char *err, size_t errlen);
// Fills head_dim, n_rep, ffn_hidden from the base fields and checks divisibility; path names the file in errors.
void config_derive(Config *c, const char *path);
bool config_derive_try(Config *c, char *err, size_t errlen);
// Meta's FeedForward hidden size: int(2*4D/3), times the multiplier, rounded up to multiple_of; -1 when the result
// would pass CONFIG_MAX_FFN (or the inputs are out of range), so that no double is converted out of the int range.
int ffn_hidden_size(int dim, int multiple_of, bool has_mult, double mult);

// Reading one key of a JSON object (params.json, config.json and whatever keys a model family adds), checked before
// any conversion (a double outside the int range is undefined behaviour in C). Each returns 1 when the key holds a
// value in [lo, hi], 0 when it is absent or null (the caller keeps its default or reports it missing), and -1 after
// writing one line "KEY: expected ..., found ..." into err. hi <= INT_MAX for config_key_int.
struct json_t;
int config_key_int(const struct json_t *obj, const char *key, int64_t lo, int64_t hi, int *out, char *err, size_t errlen);
int config_key_number(const struct json_t *obj, const char *key, double lo, double hi, double *out, char *err, size_t errlen);
int config_key_bool(const struct json_t *obj, const char *key, bool *out, char *err, size_t errlen);
// A rope_scaling object's four constants into *s (keys absent: the value already in *s); false with a message naming
// the field ("rope_scaling.factor: ...") on a value that is not a positive number, or low >= high freq factor. For
// params.json (config.c) and config.json (hf.c).
bool rope_scaling_read_try(RopeScaling *s, const struct json_t *obj, const char *field, char *err, size_t errlen);

// Writes params.json text exactly as Meta's files spell the keys (used by wt-make-model and wt-convert).
void config_write_params_json(const Config *c, const char *path);
// Writes obj as JSON text (json_dumps flags) and a newline to path, atomically, and releases obj (json_decref).
void json_dump_to_file(struct json_t *obj, size_t flags, const char *path);
// Prints the config and the derived values, one per line, indented by `indent` spaces.
void config_print(const Config *c, int indent);
// A mixture-of-experts model (n_routed_experts > 0).
static inline bool config_is_moe(const Config *c) { return c->n_routed_experts > 0; }
// MiniMind's MoE defaults (k 2, 1 shared expert, norm_topk_prob, α 0.01, seq_aux) for keys absent from a file.
void config_moe_defaults(Config *c);
// Reads MiniMind's MoE keys from obj (experts_key is "n_routed_experts", or Mixtral's "num_local_experts"): absent
// means a dense model (returns true); otherwise n_routed_experts and the rest, MiniMind's defaults for what is absent.
// false with one line "KEY: expected ..." in err on a bad value.
bool config_read_moe_keys(Config *c, const struct json_t *obj, const char *experts_key, char *err, size_t errlen);

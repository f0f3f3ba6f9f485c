// config.h: the model's hyper-parameters (params.json or HF config.json) and the values derived from them.
//
//   D = dim, H = n_heads, Hkv = n_kv_heads, Dh = head_dim = D/H, n_rep = H/Hkv (GQA group),
//   F = ffn_hidden (Meta's FeedForward rule, formats.md §1), V = vocab_size, L = n_layers.
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int dim, n_layers, n_heads, n_kv_heads, vocab_size;
    int multiple_of;
    bool has_ffn_dim_multiplier;
    double ffn_dim_multiplier;
    double norm_eps;
    double rope_theta;
    bool use_scaled_rope;   // Llama 3.1 frequency scaling (formats.md §6)
    // HF-only facts (Meta checkpoints: false / 0)
    bool tie_word_embeddings;
    int intermediate_size;  // as given by config.json; 0 when absent (then the Meta rule applies)
    // derived
    int head_dim;           // D / H
    int n_rep;              // H / Hkv
    int ffn_hidden;         // F
} Config;

// params.json: Meta's ModelArgs defaults for absent keys (n_kv_heads = n_heads, multiple_of = 256, norm_eps = 1e-5,
// rope_theta = 500000, no ffn_dim_multiplier, use_scaled_rope = false). A mistyped or impossible value exits 2
// naming the file and the key.
void config_from_params_json(Config *c, const char *path);
// HF config.json (hidden_size, num_attention_heads, ...).
void config_from_hf_json(Config *c, const char *path);
// Fills head_dim, n_rep, ffn_hidden from the base fields and checks divisibility; path names the file in errors.
void config_derive(Config *c, const char *path);
// Meta's FeedForward hidden size: int(2*4D/3), times the multiplier, rounded up to multiple_of.
int ffn_hidden_size(int dim, int multiple_of, bool has_mult, double mult);
// Writes params.json text exactly as Meta's files spell the keys (used by wt-make-model and wt-convert).
void config_write_params_json(const Config *c, const char *path);
// Prints the config and the derived values, one per line, indented by `indent` spaces.
void config_print(const Config *c, int indent);

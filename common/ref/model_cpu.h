// model_cpu.h: the whole Llama-3 model on the CPU with a KV cache: the verifier of the GPU engine (kernels/engine.h)
// and the backend of `generate --device cpu` and chapter 16 without a GPU.
//
// It is Meta's Transformer.forward(tokens, start_pos) (llama/model.py) built from the reference ops of ref_ops.h (and,
// in a mixture-of-experts model, MiniMind's MoE feed-forward of ref_moe.h in place of the SwiGLU FFN), so
// it rounds at exactly their points (bf16 activations, fp32 RMSNorm/RoPE/softmax, double accumulation, fp32 logits).
// Weights are used in place from the checkpoint's memory map (bf16, contiguous); only the KV cache and the
// activations are allocated.
//
// Shapes: T tokens in a call, S = max_seq_len, L layers, D dim, H heads, Hkv kv heads, Dh head dim, F ffn hidden,
// V vocab. The cache is Meta's cache_k / cache_v for batch 1: [L][S][Hkv][Dh] floats (bf16 values with PREC_BF16).
//
// Use:
//   CpuModel m;  model_cpu_init(&m, &ck, 256, PREC_BF16);
//   model_cpu_forward(&m, prompt, T, 0, logits, false);        // prefill: logits [V] of the last prompt token
//   model_cpu_forward(&m, &next, 1, T, logits, false);         // decode one token at position T (reads cache 0..T-1)
//   model_cpu_free(&m);
// A full recompute is the same call with all tokens and start_pos 0: the logits are bit-identical to the cached ones
// (every row is computed alone, and masked keys add exact zeros), which test_model_cpu and chapter 16 check.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "formats/checkpoint.h"
#include "ref/ref_moe.h"
#include "ref/ref_ops.h"

typedef struct {
    const uint16_t *attention_norm;  // [D]
    const uint16_t *wq, *wk, *wv;    // [H*Dh, D], [Hkv*Dh, D], [Hkv*Dh, D]
    const uint16_t *wo;              // [D, H*Dh]
    const uint16_t *ffn_norm;        // [D]
    const uint16_t *w1, *w3;         // [F, D] gate, up
    const uint16_t *w2;              // [D, F] down
    MoeWeights moe;                  // a MoE model (config_is_moe): the gate and the experts instead of w1, w2, w3
} CpuLayerWeights;

typedef struct {
    Config cfg;
    int max_seq_len;                 // S
    Precision prec;
    const uint16_t *tok_embeddings;  // [V, D]
    const uint16_t *norm;            // [D]
    const uint16_t *output;          // [V, D] (tok_embeddings when tied)
    CpuLayerWeights *layers;         // [L]
    float *cache_k, *cache_v;        // [L][S][Hkv*Dh]
    float *freqs_cis;                // [S, Dh/2, 2] (cos, sin) from rope_freqs_cis_cpu
    int n_owned;
    void **owned;                    // weights converted to bf16 (a checkpoint stored in another dtype)
} CpuModel;

// Exits 2 if a tensor is missing or has the wrong shape; max_seq_len >= 1.
void model_cpu_init(CpuModel *m, const Checkpoint *ck, int max_seq_len, Precision p);
void model_cpu_free(CpuModel *m);

// Runs tokens[0..T) at positions start_pos..start_pos+T-1: writes their K/V into the cache and reads cache rows
// 0..start_pos-1 for the keys before them (written by earlier calls). logits: [V] for the last token, or [T, V]
// with all_logits. Requires start_pos + T <= max_seq_len (fatal otherwise: callers check user input first).
void model_cpu_forward(CpuModel *m, const int32_t *tokens, int T, int start_pos, float *logits, bool all_logits);

// Bytes of the KV cache rows that hold n positions (K and V of every layer) as the GPU stores them: bf16 values take
// 2 bytes with PREC_BF16, fp32 ones 4. What chapter 16 prints.
size_t kv_cache_bytes(const Config *c, int n_positions, Precision p);

// engine.h: the Llama-3 inference engine on one GPU: weights loaded once, prefill and decode through all layers with
// a KV cache, fused kernels, decode in one CUDA graph. A plain C API without CUDA types; a build without nvcc links
// kernels/engine_nocuda.c, where engine_available() is false and every other call exits saying so. The kernels and
// their launchers are kernels-internal (kernels/engine_ops.h).
//
// Shapes (names of ref_ops.h): T tokens of a call, S = max_seq_len, L layers, D dim, H heads, Hkv kv heads, Dh head
// dim, F ffn hidden, V vocab, QKV = (H + 2*Hkv)*Dh.
//
// Device memory: exactly two allocations.
//   weights  (bf16)   per layer: attention_norm [D], wqkv [QKV, D] (wq, wk, wv rows packed: one product for all
//                     three), wo [D, H*Dh], ffn_norm [D], w13 [2F, D] (w1 and w3 rows INTERLEAVED: row 2i = gate i,
//                     row 2i+1 = up i, so one product yields the (gate, up) pairs that SiLU·up consumes), w2 [D, F];
//                     then tok_embeddings [V, D], norm [D], output [V, D] (shared with tok_embeddings when tied).
//   state             the KV cache [L][S][Hkv][Dh] bf16 (K and V), the activations sized for max_prefill tokens,
//                     the attention scratch, fp32 logits [V], the cuBLAS workspace.
// Tensor parallelism (tp_size N > 1; one process per GPU, started by kernels/engine_ranks.h): rank r holds its share
// of every weight (kernels/engine_plan.h: whole heads of wq/wk/wv and the matching columns of wo, FFN rows of w1/w3
// and the matching columns of w2, vocabulary rows of tok_embeddings and output, as Meta's fairscale layers split
// them; kv heads replicated when N > Hkv) and the cache of its kv heads; the ranks all-reduce the embedding and
// the wo and w2 products and all-gather the logits over NCCL (kernels/engine_model.cu). Every rank makes the same
// calls in the same order; rank 0 gets the logits.
//
// Numerics: the rounding points of common/ref/ref_ops.h (bf16 activations, fp32 accumulation, RMSNorm with a double
// sum of squares, RoPE/softmax in fp32, bf16 attention weights, fp32 logits), so greedy tokens agree with
// common/ref/model_cpu.c; only accumulation order differs.
//
// Use:
//   EngineOptions o; engine_options_default(&o); o.max_seq_len = 2048;
//   Engine *e = engine_create(&ck, &o);                 // loads the weights (pinned staging, threads, overlap)
//   const float *logits = engine_forward(e, prompt, T, 0);    // prefill: logits [V] of the last token (host)
//   logits = engine_decode(e, next, T);                 // one token at position T through the CUDA graph
//   engine_free(e);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#ifndef _Noreturn
#define _Noreturn __attribute__((noreturn))  // util.h is C11; the CUDA files include it through this header
#endif
#endif
#include "formats/checkpoint.h"

typedef enum {
    ENGINE_GEMV_OURS = 0,  // decode products through engine_gemv.cu (16-byte streaming loads, fused prologue/epilogue)
    ENGINE_GEMV_CUBLAS = 1 // decode through the prefill path with T = 1 (cublasGemmEx), for comparison
} EngineGemv;

typedef struct {
    int device;            // CUDA device (default 0)
    int max_seq_len;       // S: positions the KV cache holds (default 2048)
    int max_prefill;       // tokens per forward call; longer prompts are prefilled in chunks (default min(S, 512))
    bool use_graphs;       // decode through one CUDA graph per step (default true)
    EngineGemv gemv;       // default ENGINE_GEMV_OURS
    int load_threads;      // host threads that stage weights (default 8)
    bool quiet;            // no progress line while loading
    // Tuning switches, each measured in bench/NOTES.md; bench sets them from its command line and records them.
    int gemv_batch;        // 16-byte loads per row per lane in one GEMV step: 2, 4 or 8; 0 (default): chosen per
                           // product shape (engine_gemv.cu)
    bool pdl;              // programmatic dependent launch on sm_90 and later (default true; no effect below sm_90)
    int l2_fill_per_sm;    // decode reads each layer's wo into L2 beside attention with this many blocks per SM
                           // (default 4; 0 turns it off)
    bool attn_kernels;     // long prefills' attention through the split kernels too (default false: from
                           // ATTN_GEMM_MIN_T tokens, its two products through cuBLAS, engine_attention_gemm)
    // Tensor parallelism: this process is rank tp_rank of tp_size (default 1: the whole model, no NCCL) on GPU
    // `device`; nccl_id points to the NCCL_ID_BYTES (kernels.h) of the id the coordinator made (nccl_unique_id).
    int tp_size, tp_rank;
    const void *nccl_id;
} EngineOptions;

typedef struct {
    char device_name[192];
    double load_s;              // mmap -> GPU, the whole upload
    size_t weight_bytes;        // the weights allocation
    size_t state_bytes;         // the cache + activations allocation
    size_t cache_bytes;         // of which the KV cache
    size_t bytes_per_token;     // weight bytes one decode step reads (every layer, final norm, output)
    size_t gpu_total_bytes;
    size_t gpu_used_bytes;      // total - free after creation (whole process)
    bool pdl;                   // programmatic dependent launch in effect (EngineOptions.pdl on an sm_90+ GPU)
    int tp_size, tp_rank;       // tensor parallelism (1, 0 without); the sizes above are this rank's
} EngineInfo;

typedef struct Engine Engine;

void engine_options_default(EngineOptions *o);
// true when this build has CUDA and a device is there.
bool engine_available(void);
// Checks the model (bf16 or converted), measures what it needs and exits 1 with "the GPU has X GiB free, this model
// needs Y GiB (weights A, KV cache B for --max-seq-len S, activations C)" when the GPU is too small.
Engine *engine_create(const Checkpoint *ck, const EngineOptions *o);
void engine_free(Engine *e);
const EngineInfo *engine_info(const Engine *e);

// Runs tokens[0..T) at positions start_pos..start_pos+T-1 (chunked by max_prefill), writing their K/V into the
// cache; returns the fp32 logits [V] of the last token in pinned host memory, valid until the next call (rank 0 of
// tensor parallelism; the other ranks get NULL). Token ids outside [0, V) or positions past S are fatal (callers
// check user input first).
const float *engine_forward(Engine *e, const int32_t *tokens, int T, int start_pos);
// One token at position pos (cache rows 0..pos-1 must hold the tokens before it): the CUDA graph (or the plain
// launches without use_graphs). Returns the logits as engine_forward does.
const float *engine_decode(Engine *e, int32_t token, int pos);
// Tensor parallelism: rank 0's value on every rank (generate: the token rank 0 sampled, or -1 to stop); with one
// rank, value itself.
int32_t engine_tp_broadcast(Engine *e, int32_t value);

// Switches the decode products (the graph is captured again at the next decode).
void engine_set_gemv(Engine *e, EngineGemv gemv);

// Peak device memory in use by the process (total - free), sampled after creation, after each graph capture and
// at this call; bytes. The engine allocates nothing after creation but what CUDA and cuBLAS add (graphs, modules).
size_t engine_peak_gpu_bytes(Engine *e);

#ifdef __cplusplus
}
#endif

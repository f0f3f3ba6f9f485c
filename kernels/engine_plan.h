// engine_plan.h: the engine's weights allocation for one rank of tensor parallelism: where each weight goes and the
// copy jobs that put it there from the checkpoint. Kernels-internal (engine_model.cu uploads with it;
// tests/unit/test_engine_plan.c checks it on the CPU). Rank r of N holds what common/tp.h says; with N = 1 that is
// the whole model, so one function lays out both the single-GPU engine and every rank of `--tp N`.
//
// Per layer, in this order (each start aligned to 256 bytes; bf16):
//   attention_norm [D]        replicated
//   wqkv [QKV, D]             the rank's rows of wq (its H query heads), wk and wv (its Hkv kv heads), stacked:
//                             QKV = (H + 2*Hkv)*Dh
//   wo [D, H*Dh]              the columns of its heads (row-parallel: the product is a partial sum)
//   ffn_norm [D]              replicated
//   w13 [2F, D]               its F rows of w1 and of w3, interleaved (row 2i = w1 row i, 2i+1 = w3 row i)
//   w2 [D, F]                 the columns of its F rows (row-parallel)
// then tok_embeddings [V, D] (its vocabulary rows), norm [D], output [V, D] (its rows; absent when tied).
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "engine_ops.h"  // first: engine.h gives the C headers C linkage

#ifdef __cplusplus
extern "C" {
#endif
#include "tp.h"

typedef struct {
    size_t attention_norm, wqkv, wo, ffn_norm, w13, w2;  // byte offsets in the weights allocation
} EngineLayerOffsets;

typedef struct {
    TpSlice slice;              // this rank's share (common/tp.h)
    int L, D, Dh;               // layers, dim, head dim (never split)
    int H, Hkv, F, V;           // this rank's query heads, kv heads, FFN rows, vocabulary rows
    int QKV;                    // rows of its wqkv
    bool tied;                  // output shares tok_embeddings (the checkpoint has no output.weight)
    EngineLayerOffsets *layer;  // [L]
    size_t tok_embeddings, norm, output;  // byte offsets (output == tok_embeddings when tied)
    size_t bytes;               // the whole allocation
    size_t bytes_per_token;     // what one decode step reads: every layer, the final norm, the output rows
    UploadJob *jobs;            // the copies, src in the checkpoint's memory (or in owned)
    int n_jobs;
    void **owned;               // host copies of tensors that were not contiguous bf16 (converted once)
    int n_owned;
} EnginePlan;

// The plan of rank `rank` of n_ranks. Bad input (a tensor missing, n_ranks not splitting the model: tp_check's
// reason) exits 2 naming the checkpoint.
void engine_plan_weights(EnginePlan *p, const Checkpoint *ck, int n_ranks, int rank);
void engine_plan_free(EnginePlan *p);

#ifdef __cplusplus
}
#endif

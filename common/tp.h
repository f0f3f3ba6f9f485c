// tp.h: tensor parallelism's arithmetic in one place: which rows or columns of every weight rank r of N holds.
//
// Meta's llama3 model.py builds the model from fairscale's layers; with N = model_parallel_size (the number of
// consolidated.NN.pth files) rank r holds:
//   weight                        shape          fairscale layer          rank r holds
//   tok_embeddings.weight         [V, D]         VocabParallelEmbedding   rows vocab0 .. vocab0 + V/N         (dim 0)
//   layers.L.attention.wq.weight  [H*Dh, D]      ColumnParallelLinear     the rows of its H/N whole heads     (dim 0)
//   layers.L.attention.wk.weight  [Hkv*Dh, D]    ColumnParallelLinear     the rows of its Hkv/N kv heads      (dim 0)
//   layers.L.attention.wv.weight  [Hkv*Dh, D]      (N > Hkv: one kv head, the one its query heads read, held by
//                                                   N/Hkv ranks each: replicated, as vLLM and resharders do)
//   layers.L.attention.wo.weight  [D, H*Dh]      RowParallelLinear        the columns of its heads            (dim 1)
//   layers.L.feed_forward.w1/w3   [F, D]         ColumnParallelLinear     rows ffn0 .. ffn0 + F/N             (dim 0)
//   layers.L.feed_forward.w2      [D, F]         RowParallelLinear        columns ffn0 .. ffn0 + F/N          (dim 1)
//   output.weight                 [V, D]         ColumnParallelLinear     rows vocab0 .. vocab0 + V/N         (dim 0)
//   the norms                     [D]            (RMSNorm, not split)     all of it (replicated)
// Column-parallel products give each rank whole output columns (heads, FFN rows, vocabulary entries) with no
// communication; row-parallel products (wo, w2) give each rank a partial [T, D] sum that an all-reduce adds up
// (2 per layer); the vocabulary-parallel embedding gives each rank the rows of the ids in its range and zeros for
// the others, also summed by an all-reduce.
//
// N is valid when it splits everything into whole pieces: H, F and V multiples of N, and the kv heads either split
// (Hkv a multiple of N) or replicated (N a multiple of Hkv, so that every rank's query heads read one kv head).
// This file is the only place that knows these rules: the chapters, the engine, the resharder and the checkpoint
// loader all call it.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

// What rank `rank` of `n_ranks` holds, in heads and rows (multiply heads by head_dim for rows of wq/wk/wv).
typedef struct {
    int n_ranks, rank;
    int head0, heads;        // query heads [head0, head0 + heads): rows of wq and columns of wo, times Dh
    int kv_head0, kv_heads;  // kv heads [kv_head0, kv_head0 + kv_heads): rows of wk and wv, times Dh
    int kv_replicas;         // how many ranks hold each kv head: 1 when N <= Hkv, else N / Hkv
    int ffn0, ffn;           // FFN rows [ffn0, ffn0 + ffn) of w1 and w3, the same columns of w2
    int vocab0, vocab;       // vocabulary rows [vocab0, vocab0 + vocab) of tok_embeddings and output
} TpSlice;

// Is n_ranks a valid split of this model? If not, one sentence saying why (without a trailing period) goes to
// why[n], e.g. "the 4 query heads (n_heads) cannot be split into 8 ranks of whole heads".
bool tp_check(const Config *c, int n_ranks, char *why, size_t n);
// The slice of rank `rank` (0 <= rank < n_ranks). n_ranks must pass tp_check (a bug otherwise: fatal).
TpSlice tp_slice(const Config *c, int n_ranks, int rank);

// One checkpoint tensor's part on one rank: elements [start, start + count) along dimension dim (0: rows,
// 1: columns) of the whole tensor, whose extent along dim is `full`. dim = -1: the whole tensor (replicated).
typedef struct {
    int dim;
    int64_t start, count, full;
} TpPart;

// The dimension along which tensor `name` (Meta's names) is split: 0, 1, or -1 (replicated, or not a weight
// model parallelism splits). Needs no config: the name decides.
int tp_split_dim(const char *name);
// Is `name` a kv projection (wk or wv), whose parts are replicated when N > Hkv?
bool tp_is_kv_weight(const char *name);
// The part of tensor `name` (shape as the unsplit checkpoint holds it) that rank `rank` of n_ranks holds.
TpPart tp_part(const Config *c, const char *name, int n_ranks, int rank);

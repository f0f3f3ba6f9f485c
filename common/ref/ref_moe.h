// ref_moe.h: the CPU reference of MiniMind's mixture-of-experts feed-forward (MoEGate + MOEFeedForward, the layout
// before its 2026 rewrite; formats.md §7), which replaces the SwiGLU FFN of a layer in a MoE model. Mixtral's sparse
// MoE block is the same computation with no shared experts (and top-2, always renormalised).
//
// Shapes: T tokens, D dim, E routed experts, k experts per token, S shared experts, F the hidden size of every
// expert (the model's ffn_hidden). x [T, D] is the layer's ffn_norm output.
//
//   gate_logits = x · Wgᵀ                      [T, E]   Wg = feed_forward.gate.weight [E, D], no bias
//   gate_scores = softmax(gate_logits, dim=-1) [T, E]   (scoring_func "softmax")
//   topk_w, topk_idx = topk(gate_scores, k)    [T, k]   largest first; equal scores in torch.topk's order (below)
//   if k > 1 and norm_topk_prob: topk_w /= (Σ_j topk_w + 1e-20)
//   expert_e(x) = w2_e(silu(w1_e x) * w3_e x)           feed_forward.experts.e.{w1,w2,w3}.weight, a SwiGLU FFN
//   routed_out[t] = Σ_j topk_w[t,j] · expert_{topk_idx[t,j]}(x[t])
//   moe_out = routed_out + Σ_s shared_s(x)               feed_forward.shared_experts.s.*, unweighted, every token
//   aux (seq_aux, per sequence b of T tokens): ce[b,e] = #picks of e in b / (T k / E);
//        aux = α · mean_b Σ_e ce[b,e] · mean_t gate_scores[b,t,e]
//   aux (otherwise, over all N tokens): f_e = E · #picks of e / (N k);  aux = α · Σ_e f_e · mean_t gate_scores[t,e]
//   (for one sequence the two forms are the same number: ce[0,e] = f_e).
//
// Rounding points (bf16 runs; fp32 runs round nothing): the gate's logits are a bf16 product like any nn.Linear
// output; the softmax, the scores, the top-k weights and their renormalisation stay fp32, as torch's autocast keeps
// a softmax (and Mixtral's router computes it with dtype=torch.float). Each expert rounds as the dense SwiGLU FFN does
// (swiglu_forward_cpu, matmul_forward_cpu). routed_out is Σ_j w_j · e_j summed in double in the order of the expert
// ids and rounded once; each shared expert's output is then added with one rounding (residual_forward_cpu), as
// `y = y + expert(identity)` does.
//
// Ties in the top-k: torch.topk documents no order among equal scores. Ours is the one torch.topk returns on the CPU
// (ref/topk_torch.h redoes its nth_element/sort steps): torch.topk([0.25, 0.25, 0.25, 0.25], 2) picks experts 2
// and 3, not 0 and 1. Exact ties need degenerate weights (identical gate rows, a zero input); the CUDA router uses
// the same code, so both paths and PyTorch pick the same experts (tests/test_moe.sh checks a gate of zeros).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ref/ref_ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// The weights of one MoE feed-forward: bf16, nn.Linear layout, views into the checkpoint (or device pointers for
// the CUDA path). The arrays of expert pointers are host arrays of E (or S) entries.
typedef struct {
    int E, k, S;                   // routed experts, experts per token, shared experts
    bool norm_topk_prob;
    const uint16_t *gate;          // [E, D]
    const uint16_t **w1, **w2, **w3;            // [E]: [F, D] gate_proj, [D, F] down_proj, [F, D] up_proj
    const uint16_t **shared_w1, **shared_w2, **shared_w3;  // [S]: the same shapes
} MoeWeights;

// Everything the MoE computes for T tokens, kept for the chapter and the comparisons.
typedef struct {
    int T, D, F, E, k, S;
    float *gate_logits;      // [T, E]  rounded like an activation
    float *gate_scores;      // [T, E]  fp32
    int32_t *topk_idx;       // [T, k]  largest score first
    float *topk_w;           // [T, k]  fp32, renormalised when norm_topk_prob (and k > 1)
    // tokens grouped by expert, as MiniMind's moe_infer and the CUDA path do: the T*k picks a = t*k + j sorted by
    // expert id (stable: by token within an expert). Expert e's picks are sorted[offsets[e] .. offsets[e+1]).
    int32_t *sorted;         // [T*k]   the pick a (token a / k) at each sorted position
    int32_t *pos;            // [T*k]   the inverse: the sorted position of pick a
    int32_t *offsets;        // [E + 1]
    float *expert_out;       // [T*k, D] expert_{e}(x[token]) at each sorted position (unweighted)
    float *routed_out;       // [T, D]  Σ_j w_j · expert_j(x)
    float *shared_out;       // [S, T, D] each shared expert's output
    float *moe_out;          // [T, D]  routed_out + the shared experts
} MoeTrace;

// The MoE settings of a config as MoeWeights fields (weights left NULL), for callers that fill the pointers.
MoeWeights moe_weights_empty(const Config *c);
// Allocates the arrays (expert pointer tables and trace buffers).
void moe_weights_alloc_tables(MoeWeights *w);
// Fills w (tables allocated here) with layer L's weights under our Meta-style names,
//   layers.L.feed_forward.gate.weight, layers.L.feed_forward.experts.e.{w1,w2,w3}.weight,
//   layers.L.feed_forward.shared_experts.s.{w1,w2,w3}.weight,
// each returned by get(ctx, name) (a host view of the checkpoint, or a device copy).
void moe_weights_bind(MoeWeights *w, const Config *c, int layer, const uint16_t *(*get)(void *ctx, const char *name),
                      void *ctx);
// The name of one of them: which = "gate", or "w1"/"w2"/"w3" of routed expert e (shared = false) or shared expert e.
void moe_weight_name(char *out, size_t n, int layer, const char *which, int e, bool shared);
void moe_weights_free_tables(MoeWeights *w);
void moe_trace_alloc(MoeTrace *tr, int T, int D, int F, int E, int k, int S);
void moe_trace_free(MoeTrace *tr);

// gate_logits [T, E] = x · Wgᵀ (rounded as an activation); gate_scores [T, E] = their softmax in fp32.
void moe_gate_forward_cpu(float *gate_logits, float *gate_scores, const float *x, const uint16_t *gate, int T, int D,
                          int E, Precision p);
// topk_idx, topk_w [T, k] from gate_scores [T, E]: the k largest (ties: torch's order), renormalised to sum 1 (plus
// 1e-20) when norm_topk_prob and k > 1. 1 <= k <= E.
void moe_topk_cpu(int32_t *topk_idx, float *topk_w, const float *gate_scores, int T, int E, int k, bool norm_topk_prob);
// The picks grouped by expert: sorted [T*k], pos [T*k], offsets [E+1] (see MoeTrace). Stable counting sort.
void moe_sort_cpu(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k, int E);
// One SwiGLU expert on n rows: out [n, D] = w2(silu(w1 x) * w3 x), rounded as the dense FFN.
void moe_expert_forward_cpu(float *out, const float *x, int n, const uint16_t *w1, const uint16_t *w2,
                            const uint16_t *w3, int D, int F, Precision p);
// routed_out [T, D] = Σ_j w_j · expert_out[pos[t k + j]], summed in double in expert-id order, rounded once.
void moe_combine_cpu(float *routed_out, const float *expert_out, const int32_t *pos, const int32_t *topk_idx,
                     const float *topk_w, int T, int k, int D, Precision p);
// The whole MoE feed-forward: fills every field of tr (allocated for these sizes) from x [T, D].
void moe_forward_cpu(MoeTrace *tr, const float *x, const MoeWeights *w, int T, int D, int F, Precision p);
// MiniMind's auxiliary load-balancing loss over B sequences of T tokens (rows b*T .. b*T+T-1 of scores [B*T, E] and
// topk_idx [B*T, k]); seq_aux picks the form (see above). Computed in double.
double moe_aux_loss_cpu(const float *gate_scores, const int32_t *topk_idx, int B, int T, int E, int k, double alpha,
                        bool seq_aux);
// The same result evaluated densely: every expert on every token, weighted by the [T, E] matrix that holds topk_w
// where an expert was picked and 0 elsewhere, summed in expert-id order; routed_out [T, D]. Equal to moe_combine's
// result bit for bit (the zero weights add exact zeros): the chapter's proof that routing only skips work.
void moe_dense_routed_cpu(float *routed_out, const float *x, const MoeWeights *w, const int32_t *topk_idx,
                          const float *topk_w, int T, int D, int F, Precision p);

#ifdef __cplusplus
}
#endif

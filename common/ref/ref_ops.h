// ref_ops.h: the CPU reference of one Llama-3 layer, op by op: the ground truth the CUDA path is compared against.
//
// Names: T tokens in this call, Tk = start_pos + T keys (the cache holds positions 0..Tk-1), D model dim,
// H query heads, Hkv key/value heads, Dh head dim (= D/H), n_rep = H/Hkv, F FFN hidden, V vocab.
//
// Conventions shared by every op here and by its CUDA twin in kernels/kernels.h (same name with `_cuda` instead
// of `_cpu`, same argument order):
//   - Weights are bf16 (uint16_t) in nn.Linear layout W[out][in], row-major, as the checkpoint stores them. A row
//     slice (one head: rows h*Dh .. h*Dh+Dh-1 of wq) is just `wq + (size_t)h*Dh*D` with out = Dh.
//   - Activations on the CPU are float arrays. With PREC_BF16 every op rounds its output to the nearest bf16 value
//     at exactly the points Meta's reference does (see each op), so every activation holds a bf16 value stored
//     exactly in a float; with PREC_FP32 nothing is rounded (the "how much does bf16 cost" ground truth: fp32
//     activations, weights still their bf16 values upcast). On the GPU the same activations are bf16 or f32 buffers.
//   - Every op takes the Precision as its last argument. Reductions accumulate in double (products of two bf16
//     values, or of a float and a bf16, are exact in double), then round once.
//   - Row-major everywhere; [T, H, Dh] is the same memory as [T, H*Dh] (the output of x·Wqᵀ).
//   - Loops over rows/outputs are parallel with OpenMP; the result never depends on the thread count.
//
// A layer, in Meta's words (llama/model.py), and the call that does each line:
//   h = embedding(tokens)                              embedding_forward_cpu
//   n = attention_norm(h)                              rmsnorm_forward_cpu
//   q, k, v = wq(n), wk(n), wv(n)                      matmul_forward_cpu (x3)
//   q, k = apply_rotary_emb(q, k, freqs_cis)           rope_forward_cpu (or rope_forward_complex_cpu, identical)
//   out = softmax(q·kᵀ/sqrt(Dh) + mask)·v per head     attention_forward_cpu (all heads, GQA), or one head step by
//                                                      step: attention_scores_cpu, attention_mask_cpu,
//                                                      softmax_forward_cpu, attention_values_cpu
//   h = x + wo(out)                                    matmul_forward_cpu, residual_forward_cpu
//   out = h + w2(silu(w1(ffn_norm(h))) * w3(...))      rmsnorm, matmul x2, swiglu_forward_cpu, matmul, residual
//   logits = output(norm(h)).float()  (last token)     rmsnorm_forward_cpu, logits_forward_cpu; argmax_cpu, topk_cpu
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"  // RopeScaling
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

// The activation precision of a run (`--precision bf16|fp32`).
typedef enum { PREC_BF16 = 0, PREC_FP32 = 1 } Precision;
const char *precision_name(Precision p);                   // "bf16" / "fp32"
bool precision_from_name(const char *s, Precision *out);   // accepts "bf16", "fp32"
// Bytes of n activations of this precision (2 per element for bf16, 4 for fp32): the size of a GPU buffer.
static inline size_t act_bytes(size_t n, Precision p) { return n * (p == PREC_BF16 ? 2 : 4); }
// The rounding point: to the nearest bf16 (ties to even) with PREC_BF16, unchanged with PREC_FP32.
static inline float act_round(float x, Precision p) { return p == PREC_BF16 ? round_bf16(x) : x; }

// ---- embedding ------------------------------------------------------------------------------------------------------
// out[T, D] = table[tokens[t]] (bf16 rows, exact in either precision). Token ids outside [0, V) are an input error.
void embedding_forward_cpu(float *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V, Precision p);

// ---- RMSNorm --------------------------------------------------------------------------------------------------------
// Meta: `self._norm(x.float()).type_as(x) * self.weight`, _norm(x) = x * rsqrt(mean(x²) + eps).
// out[t] = round(round(inp[t] * r_t) * weight), r_t = 1/sqrtf((float)mean(inp[t]²) + eps) (mean in double).
// out may equal inp. rstd (optional, [T]) receives r_t for printing.
void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const uint16_t *weight, int T, int D, float eps,
                         Precision p);

// The serving engines' fused residual + RMSNorm (vLLM's RMSNorm(x, residual), the engine's engine_add_rmsnorm):
// h[t] = round(x[t] + delta[t]), then out[t] = rmsnorm(h[t]) * weight, in one pass over each row. Bit-identical to
// residual_forward_cpu followed by rmsnorm_forward_cpu (the same roundings in the same order). h may equal x.
void residual_rmsnorm_forward_cpu(float *h, float *out, const float *x, const float *delta, const uint16_t *weight,
                                  int T, int D, float eps, Precision p);

// ---- products with weights ------------------------------------------------------------------------------------------
// out[T, OC] = inp[T, C] · W[OC, C]ᵀ: bf16 weights, accumulation in double, result rounded (bf16 in PREC_BF16).
void matmul_forward_cpu(float *out, const float *inp, const uint16_t *weight, int T, int C, int OC, Precision p);
// The same product with an fp32 result in either precision (`self.output(h).float()`): logits[T, V].
// For the next-token prediction pass the last row only: inp + (size_t)(T-1)*C with T = 1.
void logits_forward_cpu(float *logits, const float *inp, const uint16_t *weight, int T, int C, int V, Precision p);

// ---- RoPE -----------------------------------------------------------------------------------------------------------
// freqs[i] = 1 / theta^(2i/Dh) for i in [0, Dh/2), in float32 as torch computes it (`theta ** (arange(0,Dh,2)/Dh)`).
// With a scaling (config_rope_scaling(cfg): the model's use_scaled_rope), Meta's apply_scaling is applied afterwards
// (rope_apply_scaling_cpu); NULL: none.
void rope_freqs_cpu(float *freqs, int head_dim, double theta, const RopeScaling *scaling);
// Meta's `apply_scaling` with the constants of s (Llama 3.1: factor 8, low_freq_factor 1, high_freq_factor 4,
// original context 8192; Llama 3.2 1B/3B: factor 32), in place on n frequencies: long wavelengths divided by the
// factor, short ones unchanged, a smooth blend between (formats.md §6).
void rope_apply_scaling_cpu(float *freqs, int n, const RopeScaling *s);
// freqs_cis = polar(1, outer(pos, freqs)) for positions 0..n_pos-1, stored as view_as_real: [n_pos, Dh/2, 2] floats
// (cos(a), sin(a)) with a = (float)pos * freqs[i] in float32.
void rope_freqs_cis_cpu(float *freqs_cis, const float *freqs, int head_dim, int n_pos);
// x[T, n_heads, Dh] rotated pair by pair: (x[2i], x[2i+1]) is a complex number times freqs_cis[start_pos + t][i].
// Computed in fp32 from the (bf16) input, result rounded. freqs_cis must cover positions up to start_pos + T - 1.
// Two spellings of the same arithmetic, bit-identical (test_ref_ops checks it):
//   rope_forward_cpu:          cos/sin on even/odd elements as MiniMind-style code writes RoPE: y0 = x0*c - x1*s,
//                              y1 = x0*s + x1*c
//   rope_forward_complex_cpu:  the tutorial's view_as_complex(x) * freqs_cis, view_as_real
// out may equal inp.
void rope_forward_cpu(float *out, const float *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                      int start_pos, Precision p);
void rope_forward_complex_cpu(float *out, const float *inp, const float *freqs_cis, int T, int n_heads,
                              int head_dim, int start_pos, Precision p);

// ---- attention, one head (the tutorial's chapters 07-10) ------------------------------------------------------------
// scores[T, Tk] = q[T, Dh] · k[Tk, Dh]ᵀ / sqrt(Dh), in fp32 (never rounded to bf16), no mask.
void attention_scores_cpu(float *scores, const float *q, const float *k, int T, int Tk, int head_dim, Precision p);
// The causal mask as a matrix: mask[t][j] = -inf when key j lies after query position start_pos + t, else 0.
void causal_mask_cpu(float *mask, int T, int Tk, int start_pos);
// scores + mask, in place: entries above the (start_pos-shifted) diagonal become -inf, the rest are unchanged.
void attention_mask_cpu(float *scores, int T, int Tk, int start_pos, Precision p);
// probs[r] = softmax(scores[r]) over each of n_rows rows of length n_cols, in fp32 (sums in double), then rounded.
// -inf entries give exactly 0. probs may equal scores.
void softmax_forward_cpu(float *probs, const float *scores, int n_rows, int n_cols, Precision p);
// out[T, Dh] = probs[T, Tk] · v[Tk, Dh]; accumulation in double, result rounded.
void attention_values_cpu(float *out, const float *probs, const float *v, int T, int Tk, int head_dim, Precision p);
// One head end to end: scores, mask, softmax (kept in att[T, Tk]), weights·v. q [T, Dh], k and v [Tk, Dh].
void attention_head_forward_cpu(float *out, float *att, const float *q, const float *k, const float *v, int T, int Tk,
                                int head_dim, int start_pos, Precision p);

// ---- attention, all heads with GQA (chapter 11 and the real forward pass) -------------------------------------------
// q [T, H, Dh]; k_cache and v_cache [Tk, Hkv, Dh] (Meta's cache_k/cache_v rows 0..Tk-1 of one sequence);
// query head h reads kv head h / (H/Hkv) in place (repeat_kv without a copy).
// out [T, H, Dh] (= [T, H*Dh], the input of wo); att [H, T, Tk] receives the attention weights (after softmax).
void attention_forward_cpu(float *out, float *att, const float *q, const float *k_cache, const float *v_cache, int T,
                           int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos, Precision p);
// The kv head that query head h uses: h / (n_heads / n_kv_heads) (repeat_kv = repeat_interleave).
static inline int gqa_kv_head(int h, int n_heads, int n_kv_heads) { return h / (n_heads / n_kv_heads); }

// ---- elementwise ----------------------------------------------------------------------------------------------------
// out[i] = round(a[i] + b[i]) (`h = x + delta`). out may equal a or b.
void residual_forward_cpu(float *out, const float *a, const float *b, size_t n, Precision p);
// out[i] = round(round(silu(gate[i])) * up[i]), silu(g) = g / (1 + exp(-g)) in fp32, gate = w1(x), up = w3(x):
// F.silu on a bf16 tensor returns bf16, and the product is rounded again. out may equal gate or up.
void swiglu_forward_cpu(float *out, const float *gate, const float *up, size_t n, Precision p);

// ---- prediction -----------------------------------------------------------------------------------------------------
// Index of the largest value (the first one on ties, as torch.argmax); NaN never wins.
int64_t argmax_cpu(const float *x, int64_t n);
// The k largest values, largest first (ties: smaller index first). idx[k], val[k]. Returns how many were written
// (min(k, n)).
int topk_cpu(int64_t *idx, float *val, const float *x, int64_t n, int k);

#ifdef __cplusplus
}
#endif

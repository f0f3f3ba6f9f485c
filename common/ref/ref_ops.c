// ref_ops.c: the CPU reference for the non-attention ops of a Llama-3 layer: embedding lookup, RMSNorm, products with
// bf16 weights (x·Wᵀ and the fp32 logits), the residual add, SwiGLU, argmax and top-k. See ref_ops.h for shapes,
// rounding points and the matching CUDA launchers; RoPE is in ref_rope.c and attention in ref_attention.c.
#include "ref/ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

const char *precision_name(Precision p) { return p == PREC_BF16 ? "bf16" : "fp32"; }

bool precision_from_name(const char *s, Precision *out) {
    if (strcmp(s, "bf16") == 0) *out = PREC_BF16;
    else if (strcmp(s, "fp32") == 0) *out = PREC_FP32;
    else return false;
    return true;
}

void embedding_forward_cpu(float *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V, Precision p) {
    (void)p;  // a bf16 row is exact in both precisions
    for (int t = 0; t < T; t++) {
        if (tokens[t] < 0 || tokens[t] >= V)
            input_error(NULL, "tokens[%d]: id %d is outside the vocabulary [0, %d)", t, tokens[t], V);
        const uint16_t *row = table + (size_t)tokens[t] * (size_t)D;
        float *o = out + (size_t)t * (size_t)D;
        for (int i = 0; i < D; i++) o[i] = bf16_to_f32(row[i]);
    }
}

void rmsnorm_forward_cpu(float *out, float *rstd, const float *inp, const uint16_t *weight, int T, int D, float eps,
                         Precision p) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = inp + (size_t)t * (size_t)D;
        float *o = out + (size_t)t * (size_t)D;
        double sum_sq = 0.0;
        for (int i = 0; i < D; i++) sum_sq += (double)x[i] * (double)x[i];
        // torch: x.pow(2).mean(-1) is a float32 tensor; + eps and rsqrt happen in float32 too.
        float mean_sq = (float)(sum_sq / (double)D);
        float r = 1.0f / sqrtf(mean_sq + eps);
        if (rstd) rstd[t] = r;
        for (int i = 0; i < D; i++) {
            float normed = act_round(x[i] * r, p);                // `.type_as(x)`
            o[i] = act_round(normed * bf16_to_f32(weight[i]), p); // `* self.weight` (bf16 times bf16 -> bf16)
        }
    }
}

void residual_rmsnorm_forward_cpu(float *h, float *out, const float *x, const float *delta, const uint16_t *weight,
                                  int T, int D, float eps, Precision p) {
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        const float *xr = x + (size_t)t * (size_t)D, *dr = delta + (size_t)t * (size_t)D;
        float *hr = h + (size_t)t * (size_t)D, *o = out + (size_t)t * (size_t)D;
        double sum_sq = 0.0;
        for (int i = 0; i < D; i++) {  // h = x + delta, and its sum of squares while the value is at hand
            hr[i] = act_round(xr[i] + dr[i], p);
            sum_sq += (double)hr[i] * (double)hr[i];
        }
        float r = 1.0f / sqrtf((float)(sum_sq / (double)D) + eps);
        for (int i = 0; i < D; i++) o[i] = act_round(act_round(hr[i] * r, p) * bf16_to_f32(weight[i]), p);
    }
}

// out[t, o] = sum_c inp[t, c] * W[o, c]: each output one sum in double, in the order c = 0, 1, ..., C-1. A product of
// two floats is exact in double, so an output's bits depend on that order only. The loop keeps eight such sums going
// at once (two rows t by four output features o; four for the last row of an odd T), so that one add need not wait
// for the one before it; each is still the plain loop's sum, bit for bit (test_ref_ops checks it). Parallel over
// blocks of four output features (T is often 1 or 17, OC is thousands); a thread converts its four weight rows to
// double once and reuses them for all T rows. round_out: bf16 rounding or not.
enum { MM_O = 4 };  // output features per block
// row t, features o0 .. o0 + n_o - 1 of out from the block's sums
static void mm_store(float *out, const double *s, int t, int o0, int n_o, int OC, bool round_out) {
    for (int j = 0; j < n_o; j++) {
        const float y = (float)s[j];
        out[(size_t)t * (size_t)OC + (size_t)(o0 + j)] = round_out ? round_bf16(y) : y;
    }
}
static void matmul_double_acc(float *out, const float *inp, const uint16_t *weight, int T, int C, int OC,
                              bool round_out) {
    const int blocks = (OC + MM_O - 1) / MM_O;
#pragma omp parallel
    {
        double *w_rows = xmalloc((size_t)MM_O * (size_t)C * sizeof(double));
#pragma omp for schedule(static)
        for (int b = 0; b < blocks; b++) {
            const int o0 = b * MM_O, n_o = OC - o0 < MM_O ? OC - o0 : MM_O;
            for (int j = 0; j < MM_O; j++) {  // past the last feature: row o0 again, its sums not stored
                const uint16_t *w = weight + (size_t)(o0 + (j < n_o ? j : 0)) * (size_t)C;
                for (int c = 0; c < C; c++) w_rows[(size_t)j * C + c] = bf16_to_f32(w[c]);
            }
            const double *w0 = w_rows, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;
            int t = 0;
            for (; t + 1 < T; t += 2) {  // two rows at a time
                const float *x0 = inp + (size_t)t * (size_t)C, *x1 = x0 + C;
                double s[2][MM_O] = {{0}};
                for (int c = 0; c < C; c++) {
                    const double a = x0[c], e = x1[c];
                    s[0][0] += a * w0[c], s[0][1] += a * w1[c], s[0][2] += a * w2[c], s[0][3] += a * w3[c];
                    s[1][0] += e * w0[c], s[1][1] += e * w1[c], s[1][2] += e * w2[c], s[1][3] += e * w3[c];
                }
                for (int i = 0; i < 2; i++) mm_store(out, s[i], t + i, o0, n_o, OC, round_out);
            }
            if (t < T) {  // the last row of an odd T (T = 1: every decode step)
                const float *x0 = inp + (size_t)t * (size_t)C;
                double s[MM_O] = {0};
                for (int c = 0; c < C; c++) {
                    const double a = x0[c];
                    s[0] += a * w0[c], s[1] += a * w1[c], s[2] += a * w2[c], s[3] += a * w3[c];
                }
                mm_store(out, s, t, o0, n_o, OC, round_out);
            }
        }
        free(w_rows);
    }
}

void matmul_forward_cpu(float *out, const float *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    // nn.Linear on bf16 tensors: fp32 accumulation, bf16 result; in fp32 mode the result stays fp32.
    matmul_double_acc(out, inp, weight, T, C, OC, p == PREC_BF16);
}

void logits_forward_cpu(float *logits, const float *inp, const uint16_t *weight, int T, int C, int V, Precision p) {
    (void)p;  // the logits are fp32 in both precisions
    matmul_double_acc(logits, inp, weight, T, C, V, false);
}

void residual_forward_cpu(float *out, const float *a, const float *b, size_t n, Precision p) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = act_round(a[i] + b[i], p);
}

void swiglu_forward_cpu(float *out, const float *gate, const float *up, size_t n, Precision p) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        float silu = act_round(g / (1.0f + expf(-g)), p);  // F.silu(w1(x)) is a bf16 tensor
        out[i] = act_round(silu * up[i], p);               // ... * w3(x) is rounded again
    }
}

int64_t argmax_cpu(const float *x, int64_t n) {
    int64_t best = -1;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(x[i])) continue;
        if (best < 0 || x[i] > x[best]) best = i;
    }
    return best < 0 ? 0 : best;
}

int topk_cpu(int64_t *idx, float *val, const float *x, int64_t n, int k) {
    if (k > n) k = (int)n;
    int have = 0;  // idx/val[0..have) sorted: larger first, equal values by smaller index first
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) continue;
        if (have == k && !(v > val[k - 1])) continue;  // not better than the current k-th (ties keep the earlier)
        int pos = have < k ? have : k - 1;
        while (pos > 0 && v > val[pos - 1]) {
            if (pos < k) { idx[pos] = idx[pos - 1]; val[pos] = val[pos - 1]; }
            pos--;
        }
        idx[pos] = i;
        val[pos] = v;
        if (have < k) have++;
    }
    return have;
}

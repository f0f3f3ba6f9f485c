// ref_attention.c: causal self-attention on the CPU, one head at a time (the tutorial's chapters 07-10) and all heads
// with grouped-query attention (chapter 11, the forward pass).
//
//   scores[T, Tk] = q[T, Dh] · k[Tk, Dh]ᵀ / sqrt(Dh)          fp32
//   scores += mask                                             -inf where key j > query position start_pos + t
//   att = softmax(scores) per row                              fp32, then rounded (bf16 in PREC_BF16)
//   out[T, Dh] = att · v[Tk, Dh]                               accumulation in double, then rounded
//
// All heads: q [T, H, Dh], the caches [Tk, Hkv, Dh]; query head h reads kv head h / n_rep through strides, so K and
// V are never copied (Meta's repeat_kv makes n_rep copies; the result is the same).
#include <math.h>
#include <stdlib.h>

#include "ref/ref_ops.h"
#include "util.h"

#define MAX_HEAD_DIM 1024  // the accumulators below live on the stack

// Strided building blocks: row r of a matrix X starts at X + r * x_stride (elements).
static void scores_strided(float *scores, const float *q, size_t q_stride, const float *k, size_t k_stride, int T,
                           int Tk, int head_dim) {
    double inv_sqrt_dh = 1.0 / sqrt((double)head_dim);
    for (int t = 0; t < T; t++) {
        const float *qt = q + (size_t)t * q_stride;
        for (int j = 0; j < Tk; j++) {
            const float *kj = k + (size_t)j * k_stride;
            double dot = 0.0;
            for (int d = 0; d < head_dim; d++) dot += (double)qt[d] * (double)kj[d];
            scores[(size_t)t * (size_t)Tk + (size_t)j] = (float)(dot * inv_sqrt_dh);
        }
    }
}

static void mask_in_place(float *scores, int T, int Tk, int start_pos) {
    for (int t = 0; t < T; t++)
        for (int j = start_pos + t + 1; j < Tk; j++) scores[(size_t)t * (size_t)Tk + (size_t)j] = -INFINITY;
}

static void softmax_rows(float *probs, const float *scores, int n_rows, int n_cols, Precision p) {
    for (int r = 0; r < n_rows; r++) {
        const float *s = scores + (size_t)r * (size_t)n_cols;
        float *o = probs + (size_t)r * (size_t)n_cols;
        float max = -INFINITY;
        for (int j = 0; j < n_cols; j++)
            if (s[j] > max) max = s[j];
        // Subtracting the max keeps exp() in range; a row that is all -inf gives NaN (exp(nan)), as torch does.
        double sum = 0.0;
        for (int j = 0; j < n_cols; j++) sum += exp((double)s[j] - (double)max);
        for (int j = 0; j < n_cols; j++) {
            double e = exp((double)s[j] - (double)max);  // exactly 0 for a masked (-inf) entry
            o[j] = act_round((float)(e / sum), p);        // F.softmax(scores.float()).type_as(xq)
        }
    }
}

static void values_strided(float *out, size_t out_stride, const float *probs, const float *v, size_t v_stride, int T,
                           int Tk, int head_dim, Precision p) {
    double acc[MAX_HEAD_DIM];
    for (int t = 0; t < T; t++) {
        for (int d = 0; d < head_dim; d++) acc[d] = 0.0;
        const float *pt = probs + (size_t)t * (size_t)Tk;
        for (int j = 0; j < Tk; j++) {
            if (pt[j] == 0.0f) continue;  // masked keys add nothing (and their V rows may not exist yet)
            const float *vj = v + (size_t)j * v_stride;
            for (int d = 0; d < head_dim; d++) acc[d] += (double)pt[j] * (double)vj[d];
        }
        float *o = out + (size_t)t * out_stride;
        for (int d = 0; d < head_dim; d++) o[d] = act_round((float)acc[d], p);
    }
}

static void attention_check(const char *who, int T, int Tk, int head_dim, int start_pos) {
    if (T < 0 || head_dim <= 0 || head_dim > MAX_HEAD_DIM || start_pos < 0 || Tk < start_pos + T)
        fatal("%s: bad shape T=%d Tk=%d head_dim=%d start_pos=%d (need Tk >= start_pos + T, head_dim <= %d)", who, T,
              Tk, head_dim, start_pos, MAX_HEAD_DIM);
}

void attention_scores_cpu(float *scores, const float *q, const float *k, int T, int Tk, int head_dim, Precision p) {
    (void)p;  // scores are fp32 in both precisions
    attention_check("attention_scores_cpu", T, Tk, head_dim, 0);
    scores_strided(scores, q, (size_t)head_dim, k, (size_t)head_dim, T, Tk, head_dim);
}

void causal_mask_cpu(float *mask, int T, int Tk, int start_pos) {
    for (size_t i = 0; i < (size_t)T * (size_t)Tk; i++) mask[i] = 0.0f;
    mask_in_place(mask, T, Tk, start_pos);
}

void attention_mask_cpu(float *scores, int T, int Tk, int start_pos, Precision p) {
    (void)p;
    attention_check("attention_mask_cpu", T, Tk, 1, start_pos);
    mask_in_place(scores, T, Tk, start_pos);
}

void softmax_forward_cpu(float *probs, const float *scores, int n_rows, int n_cols, Precision p) {
#pragma omp parallel for schedule(static)
    for (int r = 0; r < n_rows; r++)
        softmax_rows(probs + (size_t)r * (size_t)n_cols, scores + (size_t)r * (size_t)n_cols, 1, n_cols, p);
}

void attention_values_cpu(float *out, const float *probs, const float *v, int T, int Tk, int head_dim, Precision p) {
    attention_check("attention_values_cpu", T, Tk, head_dim, 0);
    values_strided(out, (size_t)head_dim, probs, v, (size_t)head_dim, T, Tk, head_dim, p);
}

void attention_head_forward_cpu(float *out, float *att, const float *q, const float *k, const float *v, int T, int Tk,
                                int head_dim, int start_pos, Precision p) {
    attention_check("attention_head_forward_cpu", T, Tk, head_dim, start_pos);
    scores_strided(att, q, (size_t)head_dim, k, (size_t)head_dim, T, Tk, head_dim);
    mask_in_place(att, T, Tk, start_pos);
    softmax_rows(att, att, T, Tk, p);
    values_strided(out, (size_t)head_dim, att, v, (size_t)head_dim, T, Tk, head_dim, p);
}

void attention_forward_cpu(float *out, float *att, const float *q, const float *k_cache, const float *v_cache, int T,
                           int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos, Precision p) {
    attention_check("attention_forward_cpu", T, Tk, head_dim, start_pos);
    if (n_heads <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads)
        fatal("attention_forward_cpu: n_heads %d is not a multiple of n_kv_heads %d", n_heads, n_kv_heads);
    size_t q_stride = (size_t)n_heads * (size_t)head_dim;      // one token's row of q and of out
    size_t kv_stride = (size_t)n_kv_heads * (size_t)head_dim;  // one position's row of the caches
#pragma omp parallel for schedule(dynamic)
    for (int h = 0; h < n_heads; h++) {
        int kv = gqa_kv_head(h, n_heads, n_kv_heads);
        float *att_h = att + (size_t)h * (size_t)T * (size_t)Tk;
        scores_strided(att_h, q + (size_t)h * head_dim, q_stride, k_cache + (size_t)kv * head_dim, kv_stride, T, Tk,
                       head_dim);
        mask_in_place(att_h, T, Tk, start_pos);
        softmax_rows(att_h, att_h, T, Tk, p);
        values_strided(out + (size_t)h * head_dim, q_stride, att_h, v_cache + (size_t)kv * head_dim, kv_stride, T, Tk,
                       head_dim, p);
    }
}

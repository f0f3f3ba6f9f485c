// test_kernels_gpu.c: every CUDA launcher of kernels/kernels.h against its CPU twin in common/ref/ref_ops.h, on random
// inputs, in both precisions, at a small shape and at Llama-3-8B's shape (T=17, D=4096, H=32, Hkv=8, Dh=128, F=14336,
// V=128256). Each GPU op gets the CPU reference's own input (uploaded), so a difference belongs to that op.
// Output buffers are poisoned (0xFF bytes = NaN) before each launch and every element is checked to be written.
//
//   build/tests/test_kernels_gpu            without a GPU: a skip notice and "0 passed, 0 failed", exit 0
//   REQUIRE_GPU=1 build/tests/test_kernels_gpu   without a GPU: a failure (the GPU test script sets this)
//   build/tests/test_kernels_gpu --small    only the small shape
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compare.h"
#include "gpu_check.h"
#include "kernels.h"
#include "ref/ref_ops.h"
#include "util.h"

typedef struct {
    const char *label;
    int T, D, H, Hkv, Dh, F, V, far_pos;
} Shape;

// ---- random data: a hash of (seed, index), so generation is parallel and repeatable ---------------------------------
static uint64_t hash64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t g_seed = 1;
// Uniform with standard deviation `scale` (uniform in ±scale*sqrt(3)).
static float *rand_f32(size_t n, float scale, bool bf16_exact) {
    float *a = xmalloc(n * sizeof(float));
    uint64_t seed = hash64(g_seed++);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        double u = (double)(hash64(seed ^ (i * 0x2545f4914f6cdd1dull)) >> 11) / 9007199254740992.0;
        float v = (float)((2.0 * u - 1.0) * 1.7320508 * scale);
        a[i] = bf16_exact ? round_bf16(v) : v;
    }
    return a;
}
static uint16_t *rand_bf16(size_t n, float scale) {
    float *f = rand_f32(n, scale, false);
    uint16_t *w = xmalloc(n * sizeof(uint16_t));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) w[i] = f32_to_bf16(f[i]);
    free(f);
    return w;
}
static float max_abs_of(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

// ---- one comparison: every element written (no poison left), then the validator ------------------------------------
static char g_step[64];
// dev holds n elements: activations of precision p, or floats when is_float.
static void check_op(const char *name, const float *ref, const void *dev, bool is_float, Precision p, int64_t d0,
                     int64_t d1, int64_t d2, double atol, double rtol) {
    int64_t shape[3] = {d0, d1, d2};
    int ndim = d2 > 0 ? 3 : d1 > 0 ? 2 : 1;
    size_t n = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1) * (size_t)(d2 > 0 ? d2 : 1);
    Precision pd = is_float ? PREC_FP32 : p;
    size_t elem = pd == PREC_BF16 ? 2 : 4;
    uint8_t *raw = xmalloc(n * elem);
    cuda_memcpy_d2h(raw, dev, n * elem);
    size_t unwritten = 0;
    for (size_t i = 0; i < n; i++) {
        bool poison = true;
        for (size_t b = 0; b < elem; b++) poison = poison && raw[i * elem + b] == 0xFF;
        unwritten += poison;
    }
    free(raw);
    CHECK(unwritten == 0, "%s %s: %zu of %zu elements never written", g_step, name, unwritten, n);
    float *out = xmalloc(n * sizeof(float));
    cuda_download_act(out, dev, n, pd);
    CompareResult r = compare_f32(g_step, name, ref, out, shape, ndim, atol, rtol, 0);
    CHECK(r.ok, "%s %s", g_step, name);
    free(out);
}
static void *new_out(size_t n, Precision p) {  // a poisoned activation buffer
    void *d = cuda_malloc(act_bytes(n, p));
    cuda_poison(d, act_bytes(n, p));
    return d;
}
static float *new_out_f32(size_t n) {
    float *d = cuda_malloc(n * sizeof(float));
    cuda_poison(d, n * sizeof(float));
    return d;
}

// ---- tolerances (why) -----------------------------------------------------------------------------------------------
// bf16 outputs of a reduction (products, norms): the GPU sums in fp32 in its own order, the CPU in double; a value
// next to a bf16 rounding boundary may round the other way: one bf16 ulp = at most 2^-7 of the value. atol covers
// results so close to zero that the fp32 sum's own error is larger than their ulp: that error is the one of the fp32
// outputs below (up to ~1e-5 for K = 14336 terms and outputs of order 1; seen on an H200: 5.1e-6 on a result of
// -2.4e-5 in matmul_w1), so the same 1e-5.
#define BF16_RED_ATOL 1e-5
#define BF16_RED_RTOL (1.0 / 128)
// fp32 outputs of a reduction: fp32 vs double accumulation of up to F=14336 terms, outputs of order 1 by construction
// (weights scaled by 1/sqrt(fan_in)): a few 1e-6 at worst.
#define F32_RED_ATOL 1e-5
#define F32_RED_RTOL 1e-5
// Elementwise ops written with the same IEEE operations on both sides (residual add, RoPE from the same cos/sin
// table, embedding copy, mask): bit-identical, tolerance 0.
// Ops with expf (softmax, SwiGLU): CUDA's expf is within 2 fp32 ulps, so fp32 results within ~1e-6 relative and bf16
// results one rounding flip (one ulp) per rounding point: SwiGLU has two (silu, then the product).
#define F32_EXP_RTOL 1e-5
#define BF16_SOFTMAX_RTOL (1.0 / 128)
#define BF16_SWIGLU_RTOL (2.0 / 128)

static void run_shape(const Shape *s, Precision p) {
    const int T = s->T, D = s->D, H = s->H, Hkv = s->Hkv, Dh = s->Dh, F = s->F, V = s->V;
    const int QD = H * Dh, KVD = Hkv * Dh, half = Dh / 2, n_pos = s->far_pos + T;
    const float eps = 1e-5f;
    bool b16 = p == PREC_BF16;
    double red_atol = b16 ? BF16_RED_ATOL : F32_RED_ATOL, red_rtol = b16 ? BF16_RED_RTOL : F32_RED_RTOL;
    snprintf(g_step, sizeof g_step, "gpu_%s_%s", s->label, precision_name(p));
    printf("== %s: T=%d D=%d H=%d Hkv=%d Dh=%d F=%d V=%d ==\n", g_step, T, D, H, Hkv, Dh, F, V);
    fflush(stdout);
    size_t nx = (size_t)T * D, nq = (size_t)T * QD, nkv = (size_t)T * KVD, nf = (size_t)T * F;

    // Weights (bf16, host and device).
    uint16_t *emb = rand_bf16((size_t)V * D, 1.0f), *norm_w = rand_bf16(D, 1.0f);
    uint16_t *wq = rand_bf16((size_t)QD * D, 1.0f / sqrtf(D)), *wk = rand_bf16((size_t)KVD * D, 1.0f / sqrtf(D));
    uint16_t *wv = rand_bf16((size_t)KVD * D, 1.0f / sqrtf(D)), *wo = rand_bf16((size_t)D * QD, 1.0f / sqrtf(QD));
    uint16_t *w1 = rand_bf16((size_t)F * D, 1.0f / sqrtf(D)), *w2 = rand_bf16((size_t)D * F, 1.0f / sqrtf(F));
    uint16_t *wout = rand_bf16((size_t)V * D, 1.0f / sqrtf(D));
    uint16_t *d_emb = upload_bf16(emb, (size_t)V * D), *d_norm = upload_bf16(norm_w, D);
    uint16_t *d_wq = upload_bf16(wq, (size_t)QD * D), *d_wk = upload_bf16(wk, (size_t)KVD * D);
    uint16_t *d_wv = upload_bf16(wv, (size_t)KVD * D), *d_wo = upload_bf16(wo, (size_t)D * QD);
    uint16_t *d_w1 = upload_bf16(w1, (size_t)F * D), *d_w2 = upload_bf16(w2, (size_t)D * F);
    uint16_t *d_wout = upload_bf16(wout, (size_t)V * D);

    // embedding
    int32_t *tokens = xmalloc((size_t)T * sizeof(int32_t));
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)(hash64(g_seed++) % (uint64_t)V);
    tokens[T - 1] = V - 1;  // the last row of the table is reachable
    int32_t *d_tokens = cuda_malloc((size_t)T * sizeof(int32_t));
    cuda_memcpy_h2d(d_tokens, tokens, (size_t)T * sizeof(int32_t));
    float *x = xmalloc(nx * 4);
    embedding_forward_cpu(x, tokens, emb, T, D, V, p);
    void *d_out = new_out(nx, p);
    embedding_forward_cuda(d_out, d_tokens, d_emb, T, D, V, p);
    check_op("embedding", x, d_out, false, p, T, D, 0, 0, 0);  // a copy: exact
    cuda_free(d_out);

    // rmsnorm (on a random activation, not the embedding, to get a spread of row norms)
    float *xa = rand_f32(nx, 2.0f, b16), *xn = xmalloc(nx * 4), *rstd = xmalloc((size_t)T * 4);
    rmsnorm_forward_cpu(xn, rstd, xa, norm_w, T, D, eps, p);
    void *d_in = upload_act(xa, nx, p);
    d_out = new_out(nx, p);
    float *d_rstd = new_out_f32(T);
    rmsnorm_forward_cuda(d_out, d_rstd, d_in, d_norm, T, D, eps, p);
    // r_t: a float block sum of D squares (16 serial adds per thread, then an 8-level tree: at worst ~24 * 2^-24
    // relative), halved by the inverse square root, plus the roundings of sqrtf and the division: under 2e-6.
    check_op("rmsnorm_rstd", rstd, d_rstd, true, p, T, 0, 0, 0, 2e-6);
    // bf16: two rounding points (x*r, then *weight); an r that differs in the last fp32 bits can flip the first by one
    // ulp, and the second rounding can then land one more ulp away: two bf16 ulps, 2 * 2^-7 of the value.
    check_op("rmsnorm", xn, d_out, false, p, T, D, 0, red_atol, b16 ? 2.0 / 128 : red_rtol);
    cuda_free(d_in), cuda_free(d_out), cuda_free(d_rstd);

    // products: q, k, v (GemmEx), q again through cublasLt, one head as a row slice, wo, w1, w2, logits
    void *d_xn = upload_act(xn, nx, p);
    float *q = xmalloc(nq * 4), *k = xmalloc(nkv * 4), *v = xmalloc(nkv * 4);
    matmul_forward_cpu(q, xn, wq, T, D, QD, p);
    matmul_forward_cpu(k, xn, wk, T, D, KVD, p);
    matmul_forward_cpu(v, xn, wv, T, D, KVD, p);
    d_out = new_out(nq, p);
    matmul_forward_cuda(d_out, d_xn, d_wq, T, D, QD, p);
    check_op("matmul_q", q, d_out, false, p, T, QD, 0, red_atol, red_rtol);
    cuda_poison(d_out, act_bytes(nq, p));
    matmul_lt_forward_cuda(d_out, d_xn, d_wq, T, D, QD, p);
    check_op("matmul_lt_q", q, d_out, false, p, T, QD, 0, red_atol, red_rtol);
    cuda_free(d_out);
    d_out = new_out(nkv, p);
    matmul_forward_cuda(d_out, d_xn, d_wk, T, D, KVD, p);
    check_op("matmul_k", k, d_out, false, p, T, KVD, 0, red_atol, red_rtol);
    cuda_poison(d_out, act_bytes(nkv, p));
    matmul_forward_cuda(d_out, d_xn, d_wv, T, D, KVD, p);
    check_op("matmul_v", v, d_out, false, p, T, KVD, 0, red_atol, red_rtol);
    cuda_free(d_out);
    int last_head = H - 1;  // rows last_head*Dh .. of wq
    float *q_head = xmalloc((size_t)T * Dh * 4);
    matmul_forward_cpu(q_head, xn, wq + (size_t)last_head * Dh * D, T, D, Dh, p);
    d_out = new_out((size_t)T * Dh, p);
    matmul_forward_cuda(d_out, d_xn, d_wq + (size_t)last_head * Dh * D, T, D, Dh, p);
    check_op("matmul_q_last_head", q_head, d_out, false, p, T, Dh, 0, red_atol, red_rtol);
    cuda_free(d_out), free(q_head);

    // RoPE from the same cos/sin table: bit-identical; at start_pos 0 and far away (large angles).
    float *freqs = xmalloc((size_t)half * 4), *cis = xmalloc((size_t)n_pos * Dh * 4);
    rope_freqs_cpu(freqs, Dh, 500000.0, NULL);
    rope_freqs_cis_cpu(cis, freqs, Dh, n_pos);
    float *d_cis = cuda_malloc((size_t)n_pos * Dh * 4);
    cuda_memcpy_h2d(d_cis, cis, (size_t)n_pos * Dh * 4);
    float *qr = xmalloc(nq * 4), *kr = xmalloc(nkv * 4), *qr_far = xmalloc(nq * 4);
    rope_forward_cpu(qr, q, cis, T, H, Dh, 0, p);
    rope_forward_cpu(kr, k, cis, T, Hkv, Dh, 0, p);
    rope_forward_cpu(qr_far, q, cis, T, H, Dh, s->far_pos, p);
    void *d_q = upload_act(q, nq, p), *d_k = upload_act(k, nkv, p);
    d_out = new_out(nq, p);
    rope_forward_cuda(d_out, d_q, d_cis, T, H, Dh, 0, p);
    check_op("rope_q", qr, d_out, false, p, T, QD, 0, 0, 0);
    cuda_poison(d_out, act_bytes(nq, p));
    rope_forward_cuda(d_out, d_q, d_cis, T, H, Dh, s->far_pos, p);
    check_op("rope_q_far", qr_far, d_out, false, p, T, QD, 0, 0, 0);
    cuda_free(d_out);
    d_out = new_out(nkv, p);
    rope_forward_cuda(d_out, d_k, d_cis, T, Hkv, Dh, 0, p);
    check_op("rope_k", kr, d_out, false, p, T, KVD, 0, 0, 0);
    cuda_free(d_out), cuda_free(d_q), cuda_free(d_k);

    // One head the tutorial's way: q head 0, kv head 0 as contiguous [T, Dh].
    float *q0 = xmalloc((size_t)T * Dh * 4), *k0 = xmalloc((size_t)T * Dh * 4), *v0 = xmalloc((size_t)T * Dh * 4);
    for (int t = 0; t < T; t++) {
        memcpy(q0 + (size_t)t * Dh, qr + (size_t)t * QD, (size_t)Dh * 4);
        memcpy(k0 + (size_t)t * Dh, kr + (size_t)t * KVD, (size_t)Dh * 4);
        memcpy(v0 + (size_t)t * Dh, v + (size_t)t * KVD, (size_t)Dh * 4);
    }
    void *d_q0 = upload_act(q0, (size_t)T * Dh, p), *d_k0 = upload_act(k0, (size_t)T * Dh, p);
    void *d_v0 = upload_act(v0, (size_t)T * Dh, p);
    size_t nss = (size_t)T * T;
    float *scores = xmalloc(nss * 4), *masked = xmalloc(nss * 4), *probs = xmalloc(nss * 4);
    attention_scores_cpu(scores, q0, k0, T, T, Dh, p);
    float *d_s = new_out_f32(nss);
    attention_scores_cuda(d_s, d_q0, d_k0, T, T, Dh, p);
    // fp32 scores: fp32 vs double dot over Dh terms; |score| is a few units here.
    check_op("scores_h0", scores, d_s, true, p, T, T, 0, F32_RED_ATOL, F32_RED_RTOL);
    memcpy(masked, scores, nss * 4);
    attention_mask_cpu(masked, T, T, 0, p);
    cuda_memcpy_h2d(d_s, scores, nss * 4);
    attention_mask_cuda(d_s, T, T, 0, p);
    check_op("scores_masked_h0", masked, d_s, true, p, T, T, 0, 0, 0);
    softmax_forward_cpu(probs, masked, T, T, p);
    float *d_m = cuda_malloc(nss * 4), *d_pr = new_out_f32(nss);
    cuda_memcpy_h2d(d_m, masked, nss * 4);
    softmax_forward_cuda(d_pr, d_m, T, T, p);
    double sm_rtol = b16 ? BF16_SOFTMAX_RTOL : F32_EXP_RTOL;
    check_op("softmax_h0", probs, d_pr, true, p, T, T, 0, 1e-30, sm_rtol);
    float *head_out = xmalloc((size_t)T * Dh * 4);
    attention_values_cpu(head_out, probs, v0, T, T, Dh, p);
    cuda_memcpy_h2d(d_pr, probs, nss * 4);
    d_out = new_out((size_t)T * Dh, p);
    attention_values_cuda(d_out, d_pr, d_v0, T, T, Dh, p);
    check_op("values_h0", head_out, d_out, false, p, T, Dh, 0, red_atol, red_rtol);
    // The whole head: the weights may differ by one bf16 ulp each (above), which moves the output by at most
    // 2^-7 * sum_j p_j |v_j| <= 2^-7 * max|v|; then the output's own rounding (one ulp).
    float vmax = max_abs_of(v0, (size_t)T * Dh);
    double head_atol = b16 ? vmax / 128.0 : 1e-5, head_rtol = red_rtol;
    float *att_h = xmalloc(nss * 4);
    attention_head_forward_cpu(head_out, att_h, q0, k0, v0, T, T, Dh, 0, p);
    cuda_poison(d_out, act_bytes((size_t)T * Dh, p));
    cuda_poison(d_pr, nss * 4);
    attention_head_forward_cuda(d_out, d_pr, d_q0, d_k0, d_v0, T, T, Dh, 0, p);
    check_op("attention_head_att", att_h, d_pr, true, p, T, T, 0, b16 ? 1e-30 : 1e-7, sm_rtol);
    check_op("attention_head_out", head_out, d_out, false, p, T, Dh, 0, head_atol, head_rtol);
    cuda_free(d_out), cuda_free(d_s), cuda_free(d_m), cuda_free(d_pr), cuda_free(d_q0), cuda_free(d_k0);
    cuda_free(d_v0);

    // All heads with GQA, the prompt at once and then the last token alone against the cache (start_pos T-1).
    float *attn = xmalloc(nq * 4), *att = xmalloc((size_t)H * T * T * 4);
    attention_forward_cpu(attn, att, qr, kr, v, T, T, H, Hkv, Dh, 0, p);
    void *d_qr = upload_act(qr, nq, p), *d_kr = upload_act(kr, nkv, p), *d_v = upload_act(v, nkv, p);
    float *d_att = new_out_f32((size_t)H * T * T);
    d_out = new_out(nq, p);
    attention_forward_cuda(d_out, d_att, d_qr, d_kr, d_v, T, T, H, Hkv, Dh, 0, p);
    vmax = max_abs_of(v, nkv);
    head_atol = b16 ? vmax / 128.0 : 1e-5;
    check_op("attention_att", att, d_att, true, p, H, T, T, b16 ? 1e-30 : 1e-7, sm_rtol);
    check_op("attention_out", attn, d_out, false, p, T, QD, 0, head_atol, head_rtol);
    float *attn1 = xmalloc((size_t)QD * 4), *att1 = xmalloc((size_t)H * T * 4);
    attention_forward_cpu(attn1, att1, qr + (size_t)(T - 1) * QD, kr, v, 1, T, H, Hkv, Dh, T - 1, p);
    cuda_poison(d_out, act_bytes(nq, p));
    cuda_poison(d_att, (size_t)H * T * 4);
    attention_forward_cuda(d_out, d_att, (const char *)d_qr + act_bytes((size_t)(T - 1) * QD, p), d_kr, d_v, 1, T, H,
                           Hkv, Dh, T - 1, p);
    check_op("attention_decode_att", att1, d_att, true, p, H, 1, T, b16 ? 1e-30 : 1e-7, sm_rtol);
    check_op("attention_decode_out", attn1, d_out, false, p, 1, QD, 0, head_atol, head_rtol);
    cuda_free(d_out), cuda_free(d_att), cuda_free(d_qr), cuda_free(d_kr), cuda_free(d_v);
    free(attn1), free(att1);

    // wo, residual, FFN (w1 and w3 share a shape: w1 is used for both with different inputs), w2, logits.
    float *delta = xmalloc(nx * 4), *h = xmalloc(nx * 4);
    matmul_forward_cpu(delta, attn, wo, T, QD, D, p);
    void *d_attn = upload_act(attn, nq, p);
    d_out = new_out(nx, p);
    matmul_forward_cuda(d_out, d_attn, d_wo, T, QD, D, p);
    check_op("matmul_wo", delta, d_out, false, p, T, D, 0, red_atol, red_rtol);
    residual_forward_cpu(h, xa, delta, nx, p);
    void *d_a = upload_act(xa, nx, p), *d_b = upload_act(delta, nx, p);
    cuda_poison(d_out, act_bytes(nx, p));
    residual_forward_cuda(d_out, d_a, d_b, nx, p);
    check_op("residual", h, d_out, false, p, T, D, 0, 0, 0);  // one IEEE add and the same rounding: exact
    {  // the fused residual + RMSNorm (chapter 17): h exact as above; the norm as rmsnorm's (same float block sum)
        float *hf = xmalloc(nx * 4), *hn = xmalloc(nx * 4);
        residual_rmsnorm_forward_cpu(hf, hn, xa, delta, norm_w, T, D, eps, p);
        void *d_hn = new_out(nx, p);
        cuda_poison(d_out, act_bytes(nx, p));
        residual_rmsnorm_forward_cuda(d_out, d_hn, d_a, d_b, d_norm, T, D, eps, p);
        check_op("residual_rmsnorm_h", hf, d_out, false, p, T, D, 0, 0, 0);
        check_op("residual_rmsnorm", hn, d_hn, false, p, T, D, 0, red_atol, b16 ? 2.0 / 128 : red_rtol);
        cuda_free(d_hn), free(hf), free(hn);
    }
    cuda_free(d_out), cuda_free(d_a), cuda_free(d_b), cuda_free(d_attn);

    float *gate = xmalloc(nf * 4), *up = rand_f32(nf, 1.0f, b16), *act = xmalloc(nf * 4), *ffn = xmalloc(nx * 4);
    matmul_forward_cpu(gate, xn, w1, T, D, F, p);
    d_out = new_out(nf, p);
    matmul_forward_cuda(d_out, d_xn, d_w1, T, D, F, p);
    check_op("matmul_w1", gate, d_out, false, p, T, F, 0, red_atol, red_rtol);
    cuda_poison(d_out, act_bytes(nf, p));
    matmul_lt_forward_cuda(d_out, d_xn, d_w1, T, D, F, p);
    check_op("matmul_lt_w1", gate, d_out, false, p, T, F, 0, red_atol, red_rtol);
    swiglu_forward_cpu(act, gate, up, nf, p);
    void *d_g = upload_act(gate, nf, p), *d_u = upload_act(up, nf, p);
    cuda_poison(d_out, act_bytes(nf, p));
    swiglu_forward_cuda(d_out, d_g, d_u, nf, p);
    check_op("swiglu", act, d_out, false, p, T, F, 0, 1e-30, b16 ? BF16_SWIGLU_RTOL : F32_EXP_RTOL);
    cuda_free(d_out), cuda_free(d_g), cuda_free(d_u);
    matmul_forward_cpu(ffn, act, w2, T, F, D, p);
    void *d_act = upload_act(act, nf, p);
    d_out = new_out(nx, p);
    matmul_forward_cuda(d_out, d_act, d_w2, T, F, D, p);
    check_op("matmul_w2", ffn, d_out, false, p, T, D, 0, red_atol, red_rtol);
    cuda_free(d_out), cuda_free(d_act);

    float *logits = xmalloc((size_t)V * 4);
    logits_forward_cpu(logits, xn + (size_t)(T - 1) * D, wout, 1, D, V, p);
    float *d_logits = new_out_f32(V);
    logits_forward_cuda(d_logits, (const char *)d_xn + act_bytes((size_t)(T - 1) * D, p), d_wout, 1, D, V, p);
    check_op("logits_last_token", logits, d_logits, true, p, V, 0, 0, F32_RED_ATOL, F32_RED_RTOL);
    float *gl = xmalloc((size_t)V * 4);
    cuda_memcpy_d2h(gl, d_logits, (size_t)V * 4);
    CHECK(argmax_cpu(gl, V) == argmax_cpu(logits, V), "%s: argmax differs", g_step);
    cuda_free(d_logits), free(gl), free(logits);

    cuda_free(d_xn), cuda_free(d_cis), cuda_free(d_tokens);
    cuda_free(d_emb), cuda_free(d_norm), cuda_free(d_wq), cuda_free(d_wk), cuda_free(d_wv), cuda_free(d_wo);
    cuda_free(d_w1), cuda_free(d_w2), cuda_free(d_wout);
    free(emb), free(norm_w), free(wq), free(wk), free(wv), free(wo), free(w1), free(w2), free(wout), free(tokens);
    free(x), free(xa), free(xn), free(rstd), free(q), free(k), free(v), free(freqs), free(cis), free(qr), free(kr);
    free(qr_far), free(q0), free(k0), free(v0), free(scores), free(masked), free(probs), free(head_out), free(att_h);
    free(attn), free(att), free(delta), free(h), free(gate), free(up), free(act), free(ffn);
}

int main(int argc, char **argv) {
    bool small_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: test_kernels_gpu [--small]\n  every CUDA launcher against its CPU twin; REQUIRE_GPU=1 "
                   "makes a missing GPU a failure\n");
            return 0;
        } else if (strcmp(argv[i], "--small") == 0) small_only = true;
        else usage_error(argv[0], "unknown argument '%s'", argv[i]);
    }
    const int status = gpu_check_start(NULL, 0);
    if (status >= 0) return status;
    const Shape small = {"small", 7, 256, 4, 2, 64, 512, 1000, 300};
    const Shape llama8b = {"8B", 17, 4096, 32, 8, 128, 14336, 128256, 8000};
    for (int pi = 0; pi < 2; pi++) {
        Precision p = pi ? PREC_FP32 : PREC_BF16;
        run_shape(&small, p);
        if (!small_only) run_shape(&llama8b, p);
    }
    TEST_SUMMARY();
}

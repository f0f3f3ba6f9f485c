// test_engine_ops_gpu.c: each of the engine's kernels (kernels/engine_ops.h) alone, against its CPU twin: the
// reference ops of common/ref/ref_ops.h that it fuses, run in order on the same inputs. The whole-model test
// (test_engine_gpu) sees the kernels only through the logits after every layer; here a wrong index, a missed
// rounding point or a row written twice shows up in the op that has it.
//
//   fused GEMV (decode, one token)   RMSNorm -> wq|wk|wv -> RoPE + KV-cache write; wo and w2 -> residual add;
//                                    RMSNorm -> w1|w3 -> SwiGLU; RMSNorm -> output (fp32 logits); plain products
//                                    with every GEMV batch (2, 4, 8, per shape) and with and without PDL: the
//                                    same bits in every configuration
//   prefill row kernels              add + RMSNorm, RoPE + KV-cache write, SwiGLU of the (gate, up) pairs, embedding
//                                    (whole and a rank's share of the vocabulary), the roundings after an all-reduce
//   attention over the cache         the split kernels (decode and prefill), the cuBLAS path of long prefills
//                                    (from ATTN_GEMM_MIN_T tokens) and the short one-piece kernel against
//                                    attention_forward_cpu at several context lengths, start_pos and cache sizes,
//                                    head dims 64, 128, 256 and 1 to 8 query heads per kv head; the short kernel
//                                    also bit for bit against the two-step path it replaces
// at a small shape and at Llama-3-8B's (D 4096, H 32, Hkv 8, Dh 128, F 14336, V 128256). Output buffers are
// poisoned (0xFF bytes: NaN) first, so an element never written fails; cache rows an op must not touch are
// checked unchanged, and rows past the causal end are poisoned, so reading one turns the output into NaN.
//
//   build/tests/test_engine_ops_gpu [--small]        without a GPU: "skipped: no GPU"
//   REQUIRE_GPU=1 build/tests/test_engine_ops_gpu    without a GPU: a failure (tests/gpu/run.sh sets it)
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if HAVE_CUDA
#include <cublas_v2.h>
#endif

#include "check.h"
#include "gpu_check.h"
#include "compare.h"
#include "engine_ops.h"
#include "kernels.h"
#include "ref/ref_ops.h"
#include "rng.h"
#include "util.h"

// ---- tolerances (why) -----------------------------------------------------------------------------------------------
// The GPU sums a product in fp32 in its own order, the CPU in double; both round the result to bf16 at the same
// point, so a product's bf16 output differs by at most one bf16 ulp (BF16_ULP = 2^-7 of the value, the largest
// relative size of an ulp) when the exact sum lies next to a rounding boundary. What follows a product inherits
// that ulp: the bounds below carry it through each fused step, per element, in units of BF16_ULP times a per-element
// magnitude (check_scaled). FP32_SUM: the fp32 accumulation error of up to 14336 terms of order 1/sqrt(C) each,
// outputs of order 1 (seen on an H200 in test_kernels_gpu: 5.1e-6): the floor for results that cancel to near zero.
#define BF16_ULP (1.0 / 128)
#define FP32_SUM 1e-5
// The RMSNorm pieces are bit-identical when both sides get the same r = 1/sqrt(mean(x²) + eps): the sum of squares is
// in double on both (exact unless the squares span more than 53 bits). If r still differed in its last fp32 bit, the
// two roundings (x·r, then ·w) could each move one ulp: NORM_RTOL, as the chapters' rmsnorm (test_kernels_gpu).
#define NORM_RTOL (2.0 / 128)
// SwiGLU from identical (gate, up): CUDA's expf is within 2 fp32 ulps, so one flip per rounding point (silu, then the
// product): two ulps.
#define SWIGLU_RTOL (2.0 / 128)

static char g_case[96];  // the verdict lines' first column

// ---- random data: rng.h streams, one per tensor ---------------------------------------------------------------------
static uint64_t g_stream = 1;
static float *rand_act(size_t n, float scale) {  // bf16 values (an activation) stored in floats
    float *a = xmalloc(n * sizeof(float));
    uint64_t key = rng_key(17, g_stream++);
    for (size_t i = 0; i < n; i++) a[i] = round_bf16((float)(rng_normal(key, i) * scale));
    return a;
}
static uint16_t *rand_w(size_t n, float scale, float offset) {  // bf16 weights
    uint16_t *w = xmalloc(n * sizeof(uint16_t));
    uint64_t key = rng_key(17, g_stream++);
    for (size_t i = 0; i < n; i++) w[i] = f32_to_bf16(offset + (float)(rng_normal(key, i) * scale));
    return w;
}

// ---- device buffers -------------------------------------------------------------------------------------------------
static void *dev_from(const void *host, size_t bytes) {
    void *d = cuda_malloc(bytes);
    cuda_memcpy_h2d(d, host, bytes);
    return d;
}
static uint16_t *dev_act(const float *x, size_t n) {  // bf16 on the device
    uint16_t *d = cuda_malloc(n * 2);
    cuda_upload_act(d, x, n, PREC_BF16);
    return d;
}
static void *dev_poisoned(size_t bytes) {
    void *d = cuda_malloc(bytes);
    cuda_poison(d, bytes);
    return d;
}
static float *host_act(const uint16_t *d, size_t n) {
    float *h = xmalloc(n * sizeof(float));
    cuda_download_act(h, d, n, PREC_BF16);
    return h;
}
static int *dev_int(int v) { return dev_from(&v, sizeof v); }
static float *dev_freqs_cis(int Dh, int n_pos) {  // the CPU's own table, as the engine uploads it
    float *freqs = xmalloc((size_t)Dh / 2 * sizeof(float)), *cis = xmalloc((size_t)n_pos * Dh * sizeof(float));
    rope_freqs_cpu(freqs, Dh, 500000.0, NULL);
    rope_freqs_cis_cpu(cis, freqs, Dh, n_pos);
    float *d = dev_from(cis, (size_t)n_pos * Dh * sizeof(float));
    free(freqs), free(cis);
    return d;
}
static float *host_cis(int Dh, int n_pos) {
    float *freqs = xmalloc((size_t)Dh / 2 * sizeof(float)), *cis = xmalloc((size_t)n_pos * Dh * sizeof(float));
    rope_freqs_cpu(freqs, Dh, 500000.0, NULL);
    rope_freqs_cis_cpu(cis, freqs, Dh, n_pos);
    free(freqs);
    return cis;
}

// ---- comparisons (the validator of common/compare.h prints the verdict line) -----------------------------------------
static void check_tol(const char *name, const float *ref, const float *out, size_t n, double atol, double rtol) {
    int64_t shape[1] = {(int64_t)n};
    CompareResult r = compare_f32(g_case, name, ref, out, shape, 1, atol, rtol, 0);
    CHECK(r.ok, "%s %s", g_case, name);
}
// |ref_i - out_i| <= ulps * BF16_ULP * scale_i + floor: compared as ref_i / s_i against out_i / s_i with
// s_i = scale_i + floor / (ulps * BF16_ULP), so the verdict line's errors are in units of the element's scale.
static void check_scaled(const char *name, const float *ref, const float *out, const float *scale, size_t n,
                         double ulps, double floor) {
    float *r = xmalloc(n * sizeof(float)), *o = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double s = scale[i] + floor / (ulps * BF16_ULP);
        r[i] = (float)(ref[i] / s), o[i] = (float)(out[i] / s);  // NaN stays NaN: the validator fails it
    }
    char label[96];
    snprintf(label, sizeof label, "%s (per element, / its scale)", name);
    check_tol(label, r, o, n, ulps * BF16_ULP, 0);
    free(r), free(o);
}
// Rows of a device cache other than [row0, row1) are still the host's `before` (bit for bit).
static void check_rows_untouched(const char *name, const uint16_t *dev, const uint16_t *before, int n_rows, int width,
                                 int row0, int row1) {
    size_t n = (size_t)n_rows * width;
    uint16_t *now = xmalloc(n * 2);
    cuda_memcpy_d2h(now, dev, n * 2);
    int changed = 0;
    for (int r = 0; r < n_rows; r++)
        if ((r < row0 || r >= row1) && memcmp(now + (size_t)r * width, before + (size_t)r * width, (size_t)width * 2))
            changed++;
    CHECK(changed == 0, "%s %s: %d rows outside %d..%d changed", g_case, name, changed, row0, row1 - 1);
    free(now);
}
static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

typedef struct {
    const char *label;
    int D, H, Hkv, Dh, F, V;
} Shape;

// ================================================================================================================
// The fused GEMV, one token. The CPU twins compose the reference ops the kernel fuses.
// ================================================================================================================

// x = attention_norm(h); q, k, v = wq(x), wk(x), wv(x); q, k rotated at position pos
static void qkv_rope_cpu(float *q, float *k, float *v, const float *h, const uint16_t *norm_w, const uint16_t *wq,
                         const uint16_t *wk, const uint16_t *wv, const float *cis, int pos, const Shape *s) {
    float *xn = xmalloc((size_t)s->D * sizeof(float));
    rmsnorm_forward_cpu(xn, NULL, h, norm_w, 1, s->D, 1e-5f, PREC_BF16);
    matmul_forward_cpu(q, xn, wq, 1, s->D, s->H * s->Dh, PREC_BF16);
    matmul_forward_cpu(k, xn, wk, 1, s->D, s->Hkv * s->Dh, PREC_BF16);
    matmul_forward_cpu(v, xn, wv, 1, s->D, s->Hkv * s->Dh, PREC_BF16);
    rope_forward_cpu(q, q, cis, 1, s->H, s->Dh, pos, PREC_BF16);
    rope_forward_cpu(k, k, cis, 1, s->Hkv, s->Dh, pos, PREC_BF16);
    free(xn);
}
// h + x·Wᵀ
static void residual_product_cpu(float *h_out, float *delta, const float *h, const float *x, const uint16_t *w, int C,
                                 int OC) {
    matmul_forward_cpu(delta, x, w, 1, C, OC, PREC_BF16);
    residual_forward_cpu(h_out, h, delta, (size_t)OC, PREC_BF16);
}
// silu(w1(ffn_norm(h))) * w3(ffn_norm(h)); gate and up kept for the tolerance
static void swiglu_product_cpu(float *hidden, float *gate, float *up, const float *h, const uint16_t *norm_w,
                               const uint16_t *w1, const uint16_t *w3, int D, int F) {
    float *xn = xmalloc((size_t)D * sizeof(float));
    rmsnorm_forward_cpu(xn, NULL, h, norm_w, 1, D, 1e-5f, PREC_BF16);
    matmul_forward_cpu(gate, xn, w1, 1, D, F, PREC_BF16);
    matmul_forward_cpu(up, xn, w3, 1, D, F, PREC_BF16);
    swiglu_forward_cpu(hidden, gate, up, (size_t)F, PREC_BF16);
    free(xn);
}

// Per-pair scale of a rotated vector: the length of its (even, odd) pair. A rotation keeps lengths, so one ulp of
// either input moves both outputs by at most BF16_ULP * length, and each output's own rounding adds another.
static float *pair_lengths(const float *x, size_t n) {
    float *s = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i += 2) s[i] = s[i + 1] = sqrtf(x[i] * x[i] + x[i + 1] * x[i + 1]);
    return s;
}

typedef struct {  // one GEMV configuration: its launch and the outputs it gave (the first one is checked)
    EngineLaunch launch;
    const char *name;
} GemvConfig;

static void test_gemv(const Shape *s, const GemvConfig *cfg, int n_cfg) {
    const int D = s->D, QD = s->H * s->Dh, KVD = s->Hkv * s->Dh, QKV = QD + 2 * KVD, F = s->F, V = s->V;
    const int pos = 1000, n_pos = pos + 3;  // a far position (large angles); the cache holds n_pos rows
    printf("== gemv %s: D=%d H=%d Hkv=%d Dh=%d F=%d V=%d, position %d ==\n", s->label, D, s->H, s->Hkv, s->Dh, F, V,
           pos);
    fflush(stdout);
    // weights: Meta's separate matrices on the CPU, the engine's packed ones on the GPU (wq|wk|wv rows stacked,
    // w1|w3 rows interleaved: row 2i = w1 row i, 2i+1 = w3 row i)
    uint16_t *attn_norm = rand_w((size_t)D, 0.1f, 1.0f), *ffn_norm = rand_w((size_t)D, 0.1f, 1.0f);
    uint16_t *norm = rand_w((size_t)D, 0.1f, 1.0f);
    uint16_t *wq = rand_w((size_t)QD * D, 1.0f / sqrtf(D), 0), *wk = rand_w((size_t)KVD * D, 1.0f / sqrtf(D), 0);
    uint16_t *wv = rand_w((size_t)KVD * D, 1.0f / sqrtf(D), 0), *wo = rand_w((size_t)D * QD, 1.0f / sqrtf(QD), 0);
    uint16_t *w1 = rand_w((size_t)F * D, 1.0f / sqrtf(D), 0), *w3 = rand_w((size_t)F * D, 1.0f / sqrtf(D), 0);
    uint16_t *w2 = rand_w((size_t)D * F, 1.0f / sqrtf(F), 0), *wout = rand_w((size_t)V * D, 1.0f / sqrtf(D), 0);
    uint16_t *wqkv = xmalloc((size_t)QKV * D * 2), *w13 = xmalloc((size_t)2 * F * D * 2);
    memcpy(wqkv, wq, (size_t)QD * D * 2);
    memcpy(wqkv + (size_t)QD * D, wk, (size_t)KVD * D * 2);
    memcpy(wqkv + (size_t)(QD + KVD) * D, wv, (size_t)KVD * D * 2);
    for (int i = 0; i < F; i++) {
        memcpy(w13 + (size_t)(2 * i) * D, w1 + (size_t)i * D, (size_t)D * 2);
        memcpy(w13 + (size_t)(2 * i + 1) * D, w3 + (size_t)i * D, (size_t)D * 2);
    }
    uint16_t *d_attn_norm = dev_from(attn_norm, (size_t)D * 2), *d_ffn_norm = dev_from(ffn_norm, (size_t)D * 2);
    uint16_t *d_norm = dev_from(norm, (size_t)D * 2), *d_wqkv = dev_from(wqkv, (size_t)QKV * D * 2);
    uint16_t *d_wo = dev_from(wo, (size_t)D * QD * 2), *d_w13 = dev_from(w13, (size_t)2 * F * D * 2);
    uint16_t *d_w2 = dev_from(w2, (size_t)D * F * 2), *d_wout = dev_from(wout, (size_t)V * D * 2);
    float *cis = host_cis(s->Dh, n_pos), *d_cis = dev_freqs_cis(s->Dh, n_pos);
    int *d_pos = dev_int(pos);

    // inputs: the residual stream h (its magnitude grows over the layers: scale 2), attention and FFN outputs
    float *h = rand_act((size_t)D, 2.0f), *att = rand_act((size_t)QD, 1.0f), *hid = rand_act((size_t)F, 0.5f);
    uint16_t *d_h = dev_act(h, (size_t)D), *d_att = dev_act(att, (size_t)QD), *d_hid = dev_act(hid, (size_t)F);

    // the CPU twins
    float *q = xmalloc((size_t)QD * 4), *k = xmalloc((size_t)KVD * 4), *v = xmalloc((size_t)KVD * 4);
    qkv_rope_cpu(q, k, v, h, attn_norm, wq, wk, wv, cis, pos, s);
    float *h_wo = xmalloc((size_t)D * 4), *delta_wo = xmalloc((size_t)D * 4);
    residual_product_cpu(h_wo, delta_wo, h, att, wo, QD, D);
    float *h_w2 = xmalloc((size_t)D * 4), *delta_w2 = xmalloc((size_t)D * 4);
    residual_product_cpu(h_w2, delta_w2, h, hid, w2, F, D);
    float *swi = xmalloc((size_t)F * 4), *gate = xmalloc((size_t)F * 4), *up = xmalloc((size_t)F * 4);
    swiglu_product_cpu(swi, gate, up, h, ffn_norm, w1, w3, D, F);
    float *xn = xmalloc((size_t)D * 4), *logits = xmalloc((size_t)V * 4);
    rmsnorm_forward_cpu(xn, NULL, h, norm, 1, D, 1e-5f, PREC_BF16);
    logits_forward_cpu(logits, xn, wout, 1, D, V, PREC_BF16);
    uint16_t *d_xn = dev_act(xn, (size_t)D);
    float *prod = xmalloc((size_t)D * 4);  // COPY -> BF16: the plain product x·woᵀ
    matmul_forward_cpu(prod, att, wo, 1, QD, D, PREC_BF16);

    // the tolerance scales (see the top of the file)
    float *sc_q = pair_lengths(q, (size_t)QD), *sc_k = pair_lengths(k, (size_t)KVD);
    float *sc_wo = xmalloc((size_t)D * 4), *sc_w2 = xmalloc((size_t)D * 4), *sc_swi = xmalloc((size_t)F * 4);
    for (int i = 0; i < D; i++) {  // h' = round(h + round(delta)): an ulp of delta, then h''s own rounding
        sc_wo[i] = fabsf(delta_wo[i]) + fabsf(h_wo[i]);
        sc_w2[i] = fabsf(delta_w2[i]) + fabsf(h_w2[i]);
    }
    // out = round(round(silu(gate)) * up) with one ulp e in gate and in up: silu moves by 1.1 e |gate| (|silu'| <=
    // 1.1) + e |silu| (its own rounding), the product by |up| times that + |silu| e |up|, the output rounding adds
    // e |out|. The fp32 sums' own error (FP32_SUM in gate and up) moves it by 1.1 |up| + |silu| times that.
    float up_max = max_abs(up, (size_t)F), silu_max = 0;
    for (int i = 0; i < F; i++) {
        float silu = round_bf16(gate[i] / (1.0f + expf(-gate[i])));
        sc_swi[i] = 1.1f * fabsf(up[i]) * fabsf(gate[i]) + 2.0f * fabsf(silu) * fabsf(up[i]) + fabsf(swi[i]);
        silu_max = fmaxf(silu_max, fabsf(silu));
    }

    // the configurations: every output of each compared with the first configuration's bits
    const size_t cache_n = (size_t)n_pos * KVD;
    uint16_t *cache_before = rand_w(cache_n, 1.0f, 0);  // rows the epilogue must leave alone
    uint16_t *ref_bits = NULL;  // the first configuration's outputs, concatenated
    const size_t n_bits = (size_t)QD + 2 * (size_t)KVD + 3 * (size_t)D + (size_t)F + 4 * (size_t)V;
    for (int ci = 0; ci < n_cfg; ci++) {
        const EngineLaunch *L = &cfg[ci].launch;
        snprintf(g_case, sizeof g_case, "gemv_%s_%s", s->label, cfg[ci].name);
        uint16_t *bits = xmalloc(n_bits * 2), *b = bits;
        GemvArgs a;

        // RMSNORM -> QKV_ROPE
        uint16_t *d_q = dev_poisoned((size_t)QD * 2), *d_ck = dev_from(cache_before, cache_n * 2);
        uint16_t *d_cv = dev_from(cache_before, cache_n * 2);
        memset(&a, 0, sizeof a);
        a.w = d_wqkv, a.C = D, a.OC = QKV, a.x = d_h, a.norm_w = d_attn_norm, a.eps = 1e-5f, a.out = d_q;
        a.q_rows = QD, a.k_rows = KVD, a.head_dim = s->Dh, a.cache_k = d_ck, a.cache_v = d_cv, a.freqs_cis = d_cis;
        a.pos = d_pos;
        engine_gemv(&a, GEMV_PRO_RMSNORM, GEMV_EPI_QKV_ROPE, L);
        float *gq = host_act(d_q, (size_t)QD);
        float *gk = host_act(d_ck + (size_t)pos * KVD, (size_t)KVD);
        float *gv = host_act(d_cv + (size_t)pos * KVD, (size_t)KVD);
        cuda_memcpy_d2h(b, d_q, (size_t)QD * 2), b += QD;
        cuda_memcpy_d2h(b, d_ck + (size_t)pos * KVD, (size_t)KVD * 2), b += KVD;
        cuda_memcpy_d2h(b, d_cv + (size_t)pos * KVD, (size_t)KVD * 2), b += KVD;
        if (ci == 0) {
            check_scaled("qkv_rope: q rotated, / |pair|", q, gq, sc_q, (size_t)QD, 2, FP32_SUM);
            check_scaled("qkv_rope: cache_k[pos] rotated, / |pair|", k, gk, sc_k, (size_t)KVD, 2, FP32_SUM);
            check_tol("qkv_rope: cache_v[pos]", v, gv, (size_t)KVD, FP32_SUM, BF16_ULP);
            check_rows_untouched("qkv_rope: cache_k", d_ck, cache_before, n_pos, KVD, pos, pos + 1);
            check_rows_untouched("qkv_rope: cache_v", d_cv, cache_before, n_pos, KVD, pos, pos + 1);
        }
        free(gq), free(gk), free(gv);
        cuda_free(d_q), cuda_free(d_ck), cuda_free(d_cv);

        // COPY -> RESIDUAL: wo (C = H*Dh) and w2 (C = F)
        for (int which = 0; which < 2; which++) {
            uint16_t *d_r = dev_act(h, (size_t)D);
            memset(&a, 0, sizeof a);
            a.w = which ? d_w2 : d_wo, a.C = which ? F : QD, a.OC = D, a.x = which ? d_hid : d_att, a.resid = d_r;
            engine_gemv(&a, GEMV_PRO_COPY, GEMV_EPI_RESIDUAL, L);
            float *g = host_act(d_r, (size_t)D);
            cuda_memcpy_d2h(b, d_r, (size_t)D * 2), b += D;
            if (ci == 0)
                check_scaled(which ? "w2 + residual" : "wo + residual", which ? h_w2 : h_wo, g, which ? sc_w2 : sc_wo,
                             (size_t)D, 1, FP32_SUM);
            free(g);
            cuda_free(d_r);
        }

        // RMSNORM -> SWIGLU (the interleaved w1|w3)
        uint16_t *d_swi = dev_poisoned((size_t)F * 2);
        memset(&a, 0, sizeof a);
        a.w = d_w13, a.C = D, a.OC = 2 * F, a.x = d_h, a.norm_w = d_ffn_norm, a.eps = 1e-5f, a.out = d_swi;
        a.head_dim = 2;
        engine_gemv(&a, GEMV_PRO_RMSNORM, GEMV_EPI_SWIGLU, L);
        float *gs = host_act(d_swi, (size_t)F);
        cuda_memcpy_d2h(b, d_swi, (size_t)F * 2), b += F;
        if (ci == 0) check_scaled("w1|w3 + swiglu", swi, gs, sc_swi, (size_t)F, 1, FP32_SUM * (1.1 * up_max + silu_max));
        free(gs);
        cuda_free(d_swi);

        // RMSNORM -> F32 (decode's logits) and COPY -> F32 (the prefill's last row, normalised before)
        float *d_lg = dev_poisoned((size_t)V * 4);
        for (int which = 0; which < 2; which++) {
            cuda_poison(d_lg, (size_t)V * 4);
            memset(&a, 0, sizeof a);
            a.w = d_wout, a.C = D, a.OC = V, a.x = which ? d_xn : d_h, a.norm_w = d_norm, a.eps = 1e-5f;
            a.out_f32 = d_lg;
            engine_gemv(&a, which ? GEMV_PRO_COPY : GEMV_PRO_RMSNORM, GEMV_EPI_F32, L);
            float *gl = xmalloc((size_t)V * 4);
            cuda_memcpy_d2h(gl, d_lg, (size_t)V * 4);
            memcpy(b, gl, (size_t)V * 4), b += 2 * V;
            // fp32 outputs from the same bf16 inputs (the prologue's x is the CPU's bit for bit): fp32 against
            // double accumulation only
            if (ci == 0) {
                check_tol(which ? "output (x given), fp32 logits" : "norm + output, fp32 logits", logits, gl,
                          (size_t)V, FP32_SUM, 1e-5);
                CHECK(argmax_cpu(gl, V) == argmax_cpu(logits, V), "%s: argmax of the logits differs", g_case);
            }
            free(gl);
        }
        cuda_free(d_lg);

        // COPY -> BF16: the plain product
        uint16_t *d_p = dev_poisoned((size_t)D * 2);
        memset(&a, 0, sizeof a);
        a.w = d_wo, a.C = QD, a.OC = D, a.x = d_att, a.out = d_p;
        engine_gemv(&a, GEMV_PRO_COPY, GEMV_EPI_BF16, L);
        float *gp = host_act(d_p, (size_t)D);
        cuda_memcpy_d2h(b, d_p, (size_t)D * 2), b += D;
        if (ci == 0) check_tol("product (bf16)", prod, gp, (size_t)D, FP32_SUM, BF16_ULP);
        free(gp);
        cuda_free(d_p);

        CHECK((size_t)(b - bits) == n_bits, "%s: %zu of %zu output values kept", g_case, (size_t)(b - bits), n_bits);
        if (ci == 0) ref_bits = bits;
        else {
            CHECK(memcmp(bits, ref_bits, n_bits * 2) == 0, "%s: outputs differ from %s's bits", g_case, cfg[0].name);
            printf("%s  every output bit for bit as %s\n", g_case, cfg[0].name);
            free(bits);
        }
    }
    free(ref_bits);
    cuda_free(d_attn_norm), cuda_free(d_ffn_norm), cuda_free(d_norm), cuda_free(d_wqkv), cuda_free(d_wo);
    cuda_free(d_w13), cuda_free(d_w2), cuda_free(d_wout), cuda_free(d_cis), cuda_free(d_pos), cuda_free(d_h);
    cuda_free(d_att), cuda_free(d_hid), cuda_free(d_xn);
    free(attn_norm), free(ffn_norm), free(norm), free(wq), free(wk), free(wv), free(wo), free(w1), free(w3), free(w2);
    free(wout), free(wqkv), free(w13), free(cis), free(h), free(att), free(hid), free(q), free(k), free(v);
    free(h_wo), free(delta_wo), free(h_w2), free(delta_w2), free(swi), free(gate), free(up), free(xn), free(logits);
    free(prod), free(sc_q), free(sc_k), free(sc_wo), free(sc_w2), free(sc_swi), free(cache_before);
}

// ================================================================================================================
// The prefill's row kernels, T tokens
// ================================================================================================================
static void test_rows(const Shape *s, int T, int start_pos, const EngineLaunch *L) {
    const int D = s->D, QD = s->H * s->Dh, KVD = s->Hkv * s->Dh, QKV = QD + 2 * KVD, F = s->F;
    const int n_pos = start_pos + T + 2;
    snprintf(g_case, sizeof g_case, "rows_%s_T%d_start%d", s->label, T, start_pos);
    printf("== %s ==\n", g_case);
    fflush(stdout);
    const size_t nx = (size_t)T * D;

    // embedding: rows of the table, a copy
    uint16_t *table = rand_w((size_t)s->V * D, 1.0f, 0);
    int32_t *tokens = xmalloc((size_t)T * 4);
    for (int t = 0; t < T; t++) tokens[t] = (int32_t)(rng_u64(rng_key(17, 0), (uint64_t)t) % (uint64_t)s->V);
    tokens[T - 1] = s->V - 1;
    float *emb = xmalloc(nx * 4);
    embedding_forward_cpu(emb, tokens, table, T, D, s->V, PREC_BF16);
    uint16_t *d_table = dev_from(table, (size_t)s->V * D * 2), *d_e = dev_poisoned(nx * 2);
    int32_t *d_tok = dev_from(tokens, (size_t)T * 4);
    engine_embedding(d_e, d_tok, d_table, 0, s->V, T, D, L);
    float *ge = host_act(d_e, nx);
    check_tol("embedding", emb, ge, nx, 0, 0);
    free(ge);
    // a rank's share of the vocabulary (tensor parallelism): rows [vocab0, V) of the table, zeros for the other ids
    const int vocab0 = s->V / 2;
    for (int t = 0; t < T; t++)
        if (tokens[t] < vocab0) memset(emb + (size_t)t * D, 0, (size_t)D * sizeof(float));
    cuda_poison(d_e, nx * 2);
    engine_embedding(d_e, d_tok, d_table + (size_t)vocab0 * D, vocab0, s->V - vocab0, T, D, L);
    ge = host_act(d_e, nx);
    check_tol("embedding of the ids in [V/2, V), zeros for the others", emb, ge, nx, 0, 0);
    free(ge), free(emb), free(table), free(tokens);
    cuda_free(d_table), cuda_free(d_e), cuda_free(d_tok);

    // add + RMSNorm: h = h + delta, then xn = rmsnorm(h) * w; and without delta (layer 0: the norm alone)
    float *h = rand_act(nx, 2.0f), *delta = rand_act(nx, 0.5f), *hs = xmalloc(nx * 4), *xn = xmalloc(nx * 4);
    uint16_t *w = rand_w((size_t)D, 0.1f, 1.0f), *d_w = dev_from(w, (size_t)D * 2);
    for (int with_delta = 0; with_delta < 2; with_delta++) {
        if (with_delta) residual_forward_cpu(hs, h, delta, nx, PREC_BF16);
        else memcpy(hs, h, nx * 4);
        rmsnorm_forward_cpu(xn, NULL, hs, w, T, D, 1e-5f, PREC_BF16);
        uint16_t *d_h = dev_act(h, nx), *d_d = dev_act(delta, nx), *d_xn = dev_poisoned(nx * 2);
        engine_add_rmsnorm(d_xn, d_h, with_delta ? d_d : NULL, d_w, T, D, 1e-5f, L);
        float *gh = host_act(d_h, nx), *gx = host_act(d_xn, nx);
        check_tol(with_delta ? "add_rmsnorm: h + delta" : "add_rmsnorm (no delta): h unchanged", hs, gh, nx, 0, 0);
        check_tol(with_delta ? "add_rmsnorm: rmsnorm(h + delta)" : "add_rmsnorm (no delta): rmsnorm(h)", xn, gx, nx, 0,
                  NORM_RTOL);
        free(gh), free(gx);
        cuda_free(d_h), cuda_free(d_d), cuda_free(d_xn);
    }
    free(h), free(delta), free(hs), free(xn), free(w);
    cuda_free(d_w);

    // RoPE + KV write: qkv [T, QKV] -> q rotated, k rotated and v into cache rows start_pos + t; both sides rotate with
    // the same cos/sin and the same IEEE operations (no contraction): bit for bit
    float *qkv = rand_act((size_t)T * QKV, 1.0f), *q = xmalloc((size_t)T * QD * 4), *k = xmalloc((size_t)T * KVD * 4);
    float *v = xmalloc((size_t)T * KVD * 4), *cis = host_cis(s->Dh, n_pos);
    for (int t = 0; t < T; t++) {
        memcpy(q + (size_t)t * QD, qkv + (size_t)t * QKV, (size_t)QD * 4);
        memcpy(k + (size_t)t * KVD, qkv + (size_t)t * QKV + QD, (size_t)KVD * 4);
        memcpy(v + (size_t)t * KVD, qkv + (size_t)t * QKV + QD + KVD, (size_t)KVD * 4);
    }
    rope_forward_cpu(q, q, cis, T, s->H, s->Dh, start_pos, PREC_BF16);
    rope_forward_cpu(k, k, cis, T, s->Hkv, s->Dh, start_pos, PREC_BF16);
    uint16_t *before = rand_w((size_t)n_pos * KVD, 1.0f, 0);
    uint16_t *d_qkv = dev_act(qkv, (size_t)T * QKV), *d_q = dev_poisoned((size_t)T * QD * 2);
    uint16_t *d_ck = dev_from(before, (size_t)n_pos * KVD * 2), *d_cv = dev_from(before, (size_t)n_pos * KVD * 2);
    float *d_cis = dev_freqs_cis(s->Dh, n_pos);
    int *d_pos = dev_int(start_pos);
    engine_rope_kv(d_q, d_ck, d_cv, d_qkv, d_cis, d_pos, T, s->H, s->Hkv, s->Dh, L);
    float *gq = host_act(d_q, (size_t)T * QD), *gk = host_act(d_ck + (size_t)start_pos * KVD, (size_t)T * KVD);
    float *gv = host_act(d_cv + (size_t)start_pos * KVD, (size_t)T * KVD);
    check_tol("rope_kv: q rotated", q, gq, (size_t)T * QD, 0, 0);
    check_tol("rope_kv: cache_k rows rotated", k, gk, (size_t)T * KVD, 0, 0);
    check_tol("rope_kv: cache_v rows", v, gv, (size_t)T * KVD, 0, 0);
    check_rows_untouched("rope_kv: cache_k", d_ck, before, n_pos, KVD, start_pos, start_pos + T);
    check_rows_untouched("rope_kv: cache_v", d_cv, before, n_pos, KVD, start_pos, start_pos + T);
    free(gq), free(gk), free(gv), free(qkv), free(q), free(k), free(v), free(cis), free(before);
    cuda_free(d_qkv), cuda_free(d_q), cuda_free(d_ck), cuda_free(d_cv), cuda_free(d_cis), cuda_free(d_pos);

    // after an all-reduce of fp32 partial sums (tensor parallelism): h + bf16(sum), and bf16(sum), as the CPU rounds
    float *sum = xmalloc(nx * 4), *hh = rand_act(nx, 2.0f), *want = xmalloc(nx * 4), *sum16 = xmalloc(nx * 4);
    uint64_t key = rng_key(17, g_stream++);
    for (size_t i = 0; i < nx; i++) sum[i] = (float)rng_normal(key, i), sum16[i] = round_bf16(sum[i]);
    residual_forward_cpu(want, hh, sum16, nx, PREC_BF16);
    float *d_sum = dev_from(sum, nx * 4);
    uint16_t *d_hh = dev_act(hh, nx), *d_r = dev_poisoned(nx * 2);
    engine_residual_f32(d_hh, d_sum, nx, L);
    engine_round_bf16(d_r, d_sum, nx, L);
    float *g1 = host_act(d_hh, nx), *g2 = host_act(d_r, nx);
    check_tol("residual_f32: h + bf16(sum)", want, g1, nx, 0, 0);
    check_tol("round_bf16", sum16, g2, nx, 0, 0);
    free(sum), free(hh), free(want), free(sum16), free(g1), free(g2);
    cuda_free(d_sum), cuda_free(d_hh), cuda_free(d_r);

    // SwiGLU of the interleaved (gate, up) pairs of the w1|w3 product
    float *gu = rand_act((size_t)T * 2 * F, 1.5f), *gate = xmalloc((size_t)T * F * 4), *up = xmalloc((size_t)T * F * 4);
    float *hid = xmalloc((size_t)T * F * 4);
    for (size_t i = 0; i < (size_t)T * F; i++) gate[i] = gu[2 * i], up[i] = gu[2 * i + 1];
    swiglu_forward_cpu(hid, gate, up, (size_t)T * F, PREC_BF16);
    uint16_t *d_gu = dev_act(gu, (size_t)T * 2 * F), *d_hid = dev_poisoned((size_t)T * F * 2);
    engine_swiglu_pairs(d_hid, d_gu, T, F, L);
    float *gh = host_act(d_hid, (size_t)T * F);
    check_tol("swiglu_pairs", hid, gh, (size_t)T * F, 1e-30, SWIGLU_RTOL);
    free(gh), free(gu), free(gate), free(up), free(hid);
    cuda_free(d_gu), cuda_free(d_hid);
}

// ================================================================================================================
// Attention over the cache
// ================================================================================================================
typedef struct {
    int H, Hkv, Dh;
} Heads;

// Queries at positions start_pos .. start_pos + T - 1 over a cache of S rows whose rows 0 .. start_pos + T - 1 hold
// keys and values; rows past them are poisoned (NaN: one read of them spoils the output). The split kernels
// (engine_attention) and, when the row fits one piece, the short kernel from the unrotated qkv product.
static cublasHandle_t g_cublas;  // engine_attention_gemm's products (on the default stream, as L)

static void test_attention(const Heads *hd, int T, int start_pos, int S, const EngineLaunch *L) {
    const int H = hd->H, Hkv = hd->Hkv, Dh = hd->Dh, QD = H * Dh, KVD = Hkv * Dh, QKV = QD + 2 * KVD;
    const int Tk = start_pos + T;
    snprintf(g_case, sizeof g_case, "attn_H%d_Hkv%d_Dh%d_T%d_start%d_S%d", H, Hkv, Dh, T, start_pos, S);
    printf("== %s ==\n", g_case);
    fflush(stdout);
    float *q = rand_act((size_t)T * QD, 1.0f), *kc = rand_act((size_t)Tk * KVD, 1.0f);
    float *vc = rand_act((size_t)Tk * KVD, 1.0f);
    float *out = xmalloc((size_t)T * QD * 4), *att = xmalloc((size_t)H * T * Tk * 4);
    attention_forward_cpu(out, att, q, kc, vc, T, Tk, H, Hkv, Dh, start_pos, PREC_BF16);
    // the output moves by at most one ulp of each probability times |v| (2^-7 * max |v|), then its own rounding
    const double atol = max_abs(vc, (size_t)Tk * KVD) * BF16_ULP, rtol = BF16_ULP;

    // scratch as the engine sizes it
    const int splits = engine_attn_splits(T, S);
    const size_t n_scores = (size_t)T * H * S, n_stats = (size_t)T * H * splits * 2;
    const size_t n_partial = (size_t)T * H * splits * Dh;
    float *d_scores = cuda_malloc(n_scores * 4), *d_stats = cuda_malloc(n_stats * 4);
    float *d_partial = cuda_malloc(n_partial * 4);
    int *d_counters = cuda_malloc((size_t)T * Hkv * 4);
    cuda_memset(d_counters, 0, (size_t)T * Hkv * 4);
    uint16_t *d_ck = dev_poisoned((size_t)S * KVD * 2), *d_cv = dev_poisoned((size_t)S * KVD * 2);
    cuda_upload_act(d_ck, kc, (size_t)Tk * KVD, PREC_BF16);
    cuda_upload_act(d_cv, vc, (size_t)Tk * KVD, PREC_BF16);
    uint16_t *d_q = dev_act(q, (size_t)T * QD), *d_out = dev_poisoned((size_t)T * QD * 2);
    int *d_pos = dev_int(start_pos);
    engine_attention(d_out, d_q, d_ck, d_cv, d_pos, T, H, Hkv, Dh, S, d_scores, d_stats, d_partial, d_counters, L);
    float *g = host_act(d_out, (size_t)T * QD);
    check_tol("split attention", out, g, (size_t)T * QD, atol, rtol);
    int *counters = xmalloc((size_t)T * Hkv * 4), nonzero = 0;
    cuda_memcpy_d2h(counters, d_counters, (size_t)T * Hkv * 4);
    for (int i = 0; i < T * Hkv; i++) nonzero += counters[i] != 0;
    CHECK(nonzero == 0, "%s: %d counters left non-zero (the next call would combine too early)", g_case, nonzero);
    // a second call over the same cache (a graph replay does this): the same bits
    uint16_t *again = xmalloc((size_t)T * QD * 2), *first = xmalloc((size_t)T * QD * 2);
    cuda_memcpy_d2h(first, d_out, (size_t)T * QD * 2);
    cuda_poison(d_out, (size_t)T * QD * 2);
    engine_attention(d_out, d_q, d_ck, d_cv, d_pos, T, H, Hkv, Dh, S, d_scores, d_stats, d_partial, d_counters, L);
    cuda_memcpy_d2h(again, d_out, (size_t)T * QD * 2);
    CHECK(memcmp(first, again, (size_t)T * QD * 2) == 0, "%s: a second call gives other bits", g_case);
    free(g), free(counters);
    if (engine_attention_gemm_fits(T, Tk)) {  // a long prefill: the two products through cuBLAS, in the same scratch
        cuda_poison(d_out, (size_t)T * QD * 2);
        cuda_poison(d_scores, n_scores * 4);
        engine_attention_gemm(d_out, d_q, d_ck, d_cv, start_pos, T, H, Hkv, Dh, d_scores, g_cublas, L);
        float *gg = host_act(d_out, (size_t)T * QD);
        check_tol("cuBLAS attention", out, gg, (size_t)T * QD, atol, rtol);
        free(gg);
    }

    if (T > 1 && engine_attention_short_fits(T, Tk)) {
        // the short kernel from the unrotated qkv product of this call's tokens: q and k are rotated here, so the
        // CPU twin rotates them (rope_forward_cpu) before attention_forward_cpu; kc/vc rows before start_pos stay
        float *qkv = rand_act((size_t)T * QKV, 1.0f), *qr = xmalloc((size_t)T * QD * 4);
        float *cis = host_cis(Dh, Tk);
        for (int t = 0; t < T; t++) {
            memcpy(qr + (size_t)t * QD, qkv + (size_t)t * QKV, (size_t)QD * 4);
            memcpy(kc + (size_t)(start_pos + t) * KVD, qkv + (size_t)t * QKV + QD, (size_t)KVD * 4);
            memcpy(vc + (size_t)(start_pos + t) * KVD, qkv + (size_t)t * QKV + QD + KVD, (size_t)KVD * 4);
        }
        rope_forward_cpu(qr, qr, cis, T, H, Dh, start_pos, PREC_BF16);
        rope_forward_cpu(kc + (size_t)start_pos * KVD, kc + (size_t)start_pos * KVD, cis, T, Hkv, Dh, start_pos,
                         PREC_BF16);
        attention_forward_cpu(out, att, qr, kc, vc, T, Tk, H, Hkv, Dh, start_pos, PREC_BF16);
        const double atol_s = max_abs(vc, (size_t)Tk * KVD) * BF16_ULP;
        uint16_t *d_qkv = dev_act(qkv, (size_t)T * QKV);
        float *d_cis = dev_freqs_cis(Dh, Tk);
        // this call's rows of the cache are written by the kernel: poisoned before
        cuda_poison(d_ck + (size_t)start_pos * KVD, (size_t)T * KVD * 2);
        cuda_poison(d_cv + (size_t)start_pos * KVD, (size_t)T * KVD * 2);
        cuda_poison(d_out, (size_t)T * QD * 2);
        engine_attention_short(d_out, d_qkv, d_cis, d_ck, d_cv, d_pos, T, Tk, H, Hkv, Dh, L);
        float *gs = host_act(d_out, (size_t)T * QD), *gk = host_act(d_ck, (size_t)Tk * KVD);
        float *gv = host_act(d_cv, (size_t)Tk * KVD);
        check_tol("short attention (RoPE inside)", out, gs, (size_t)T * QD, atol_s, rtol);
        check_tol("short attention: cache_k rows 0..Tk-1", kc, gk, (size_t)Tk * KVD, 0, 0);
        check_tol("short attention: cache_v rows 0..Tk-1", vc, gv, (size_t)Tk * KVD, 0, 0);
        // the two-step path it replaces (engine_rope_kv, then engine_attention): the same bits
        uint16_t *short_bits = xmalloc((size_t)T * QD * 2);
        cuda_memcpy_d2h(short_bits, d_out, (size_t)T * QD * 2);
        uint16_t *d_qr = dev_poisoned((size_t)T * QD * 2);
        cuda_poison(d_ck + (size_t)start_pos * KVD, (size_t)T * KVD * 2);
        cuda_poison(d_cv + (size_t)start_pos * KVD, (size_t)T * KVD * 2);
        cuda_poison(d_out, (size_t)T * QD * 2);
        engine_rope_kv(d_qr, d_ck, d_cv, d_qkv, d_cis, d_pos, T, H, Hkv, Dh, L);
        engine_attention(d_out, d_qr, d_ck, d_cv, d_pos, T, H, Hkv, Dh, S, d_scores, d_stats, d_partial, d_counters,
                         L);
        cuda_memcpy_d2h(again, d_out, (size_t)T * QD * 2);
        CHECK(memcmp(short_bits, again, (size_t)T * QD * 2) == 0,
              "%s: the short kernel and rope_kv + split attention give different bits", g_case);
        printf("%s  short kernel = rope_kv + split kernels, bit for bit\n", g_case);
        free(qkv), free(qr), free(cis), free(gs), free(gk), free(gv), free(short_bits);
        cuda_free(d_qkv), cuda_free(d_cis), cuda_free(d_qr);
    }
    free(q), free(kc), free(vc), free(out), free(att), free(again), free(first);
    cuda_free(d_scores), cuda_free(d_stats), cuda_free(d_partial), cuda_free(d_counters), cuda_free(d_ck);
    cuda_free(d_cv), cuda_free(d_q), cuda_free(d_out), cuda_free(d_pos);
}

int main(int argc, char **argv) {
    bool small_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: test_engine_ops_gpu [--small]\n  each engine kernel (kernels/engine_ops.h) against the CPU "
                   "reference ops it fuses; REQUIRE_GPU=1 makes a missing GPU a failure\n");
            return 0;
        } else if (strcmp(argv[i], "--small") == 0) small_only = true;
        else usage_error(argv[0], "unknown argument '%s'", argv[i]);
    }
    char desc[256];
    const int status = gpu_check_start(desc, sizeof desc);
    if (status >= 0) return status;
    const char *sm = strstr(desc, "(sm_");
    const bool hopper = sm && atoi(sm + 4) >= 90;  // programmatic dependent launch needs sm_90
#if HAVE_CUDA
    if (cublasCreate(&g_cublas) != CUBLAS_STATUS_SUCCESS) fatal("cublasCreate failed");
#endif

    const Shape small = {"small", 256, 4, 2, 64, 512, 1000};
    const Shape llama8b = {"8B", 4096, 32, 8, 128, 14336, 128256};
    GemvConfig cfg[8];
    int n_cfg = 0;
    const int batches[4] = {0, 2, 4, 8};
    for (int pdl = 0; pdl < (hopper ? 2 : 1); pdl++)
        for (int b = 0; b < 4; b++) {
            static char names[8][32];
            snprintf(names[n_cfg], sizeof names[n_cfg], "batch%d%s%s", batches[b], batches[b] ? "" : "(auto)",
                     pdl ? "_pdl" : "");
            cfg[n_cfg] = (GemvConfig){{NULL, pdl != 0, batches[b]}, names[n_cfg]};
            n_cfg++;
        }
    const EngineLaunch plain = {NULL, false, 0}, pdl = {NULL, hopper, 0};

    test_gemv(&small, cfg, n_cfg);
    if (!small_only) test_gemv(&llama8b, cfg, n_cfg);
    test_rows(&small, 7, 0, &plain);
    test_rows(&small, 5, 300, &pdl);
    if (!small_only) test_rows(&llama8b, 17, 0, &pdl), test_rows(&llama8b, 33, 1500, &plain);

    // attention: head shapes (the 8B's; head dim 64 and 256; 8 query heads per kv head; one kv head as the demo
    // model), then (T, start_pos, S): decode at context lengths around the piece (64) and chunk sizes and far out;
    // short prefills (one piece); prefills over several pieces and chunks, from 0 and from a filled cache
    const Heads heads8b = {32, 8, 128}, h64 = {8, 2, 64}, h256 = {8, 2, 256}, rep8 = {16, 2, 128}, mqa = {4, 1, 128};
    const Heads *all[5] = {&heads8b, &h64, &h256, &rep8, &mqa};
    const int cases[][3] = {
        {1, 0, 2048},   {1, 62, 2048},  {1, 63, 2048},   {1, 64, 2048},    {1, 128, 2048}, {1, 1023, 2048},
        {1, 2047, 2048}, {1, 700, 8192}, {1, 8191, 8192}, {2, 0, 64},       {17, 0, 2048},  {64, 0, 2048},
        {10, 20, 2048}, {3, 61, 2048},  {150, 0, 2048},  {30, 150, 2048},  {5, 1500, 2048}, {100, 1948, 2048},
        {65, 0, 4096},  {512, 0, 1024}, {300, 700, 1024},
    };
    for (int hi = 0; hi < 5; hi++)
        for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
            if (small_only && (cases[ci][2] > 2048 || cases[ci][0] > 64)) continue;
            test_attention(all[hi], cases[ci][0], cases[ci][1], cases[ci][2], ci % 2 ? &pdl : &plain);
        }
    TEST_SUMMARY();
}

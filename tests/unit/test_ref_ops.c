// test_ref_ops.c: properties of the CPU reference ops (common/ref/ref_ops.h), and the driver of the PyTorch comparison.
//
//   build/tests/test_ref_ops                 property tests; ends with "N passed, N failed"
//   build/tests/test_ref_ops --dump DIR      runs one small random Llama-3 layer through every op in both precisions
//                                            and writes inputs and outputs as .npy (DIR/meta.json, DIR/weights/*,
//                                            DIR/bf16/*, DIR/fp32/*) for tests/reference/ops_reference.py
//   build/tests/test_ref_ops --dump DIR --plant OP   the same with one element of DIR/bf16/OP.npy changed by a few
//                                            ulps: the PyTorch comparison must then fail (tests/test_ref_vs_torch.sh)
//
// Shapes in the properties: T=17 tokens, Dh=128 as Llama-3-8B; H=8, Hkv=2 (n_rep 4, as 8B's 32/8) to stay fast.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "check.h"
#include "formats/npy.h"
#include "ref/ref_ops.h"
#include "util.h"

// ---- random numbers (splitmix64; normal by Box-Muller), rounded to bf16 where the model stores bf16 -----------------
static uint64_t rng_state = 0x1234567887654321ull;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uniform(void) { return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0; }
static float rng_normal(void) { return (float)(sqrt(-2.0 * log(rng_uniform())) * cos(2.0 * M_PI * rng_uniform())); }
static float *random_act(size_t n, float scale) {  // bf16-exact activations
    float *a = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) a[i] = round_bf16(rng_normal() * scale);
    return a;
}
static uint16_t *random_bf16(size_t n, float scale) {  // bf16 weights
    uint16_t *w = xmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) w[i] = f32_to_bf16(rng_normal() * scale);
    return w;
}
static bool same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, n * sizeof(float)) == 0; }

// ---- properties -----------------------------------------------------------------------------------------------------

// The 64 frequencies the tutorial prints for theta = 500000, head_dim 128 (torch's default 4 significant digits).
static const char *tutorial_freqs[64] = {
    "1.0000e+00", "8.1462e-01", "6.6360e-01", "5.4058e-01", "4.4037e-01", "3.5873e-01", "2.9223e-01", "2.3805e-01",
    "1.9392e-01", "1.5797e-01", "1.2869e-01", "1.0483e-01", "8.5397e-02", "6.9566e-02", "5.6670e-02", "4.6164e-02",
    "3.7606e-02", "3.0635e-02", "2.4955e-02", "2.0329e-02", "1.6560e-02", "1.3490e-02", "1.0990e-02", "8.9523e-03",
    "7.2927e-03", "5.9407e-03", "4.8394e-03", "3.9423e-03", "3.2114e-03", "2.6161e-03", "2.1311e-03", "1.7360e-03",
    "1.4142e-03", "1.1520e-03", "9.3847e-04", "7.6450e-04", "6.2277e-04", "5.0732e-04", "4.1327e-04", "3.3666e-04",
    "2.7425e-04", "2.2341e-04", "1.8199e-04", "1.4825e-04", "1.2077e-04", "9.8381e-05", "8.0143e-05", "6.5286e-05",
    "5.3183e-05", "4.3324e-05", "3.5292e-05", "2.8750e-05", "2.3420e-05", "1.9078e-05", "1.5542e-05", "1.2660e-05",
    "1.0313e-05", "8.4015e-06", "6.8440e-06", "5.5752e-06", "4.5417e-06", "3.6997e-06", "3.0139e-06", "2.4551e-06"};

static void test_freqs(void) {
    float freqs[64], scaled[64];
    rope_freqs_cpu(freqs, 128, 500000.0, NULL);
    int same = 0;
    for (int i = 0; i < 64; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%.4e", freqs[i]);
        if (strcmp(buf, tutorial_freqs[i]) == 0) same++;
        else fprintf(stderr, "freqs[%d] = %s, the tutorial prints %s\n", i, buf, tutorial_freqs[i]);
    }
    CHECK_EQ_INT(same, 64);
    // formats.md §6 (VERIFIED in torch): the unscaled values at i = 29, 34, 63 and their Llama 3.1 rescaling.
    CHECK_NEAR(freqs[29], 2.616099082e-03, 2.616099082e-03 * 2e-7);
    CHECK_NEAR(freqs[34], 9.384738514e-04, 9.384738514e-04 * 2e-7);
    CHECK_NEAR(freqs[63], 2.455140702e-06, 2.455140702e-06 * 2e-7);
    rope_freqs_cpu(scaled, 128, 500000.0, &ROPE_SCALING_LLAMA31);
    CHECK_NEAR(scaled[29], 2.166570630e-03, 2.166570630e-03 * 2e-7);
    CHECK_NEAR(scaled[34], 1.785077911e-04, 1.785077911e-04 * 2e-7);
    CHECK_NEAR(scaled[63], 3.068925878e-07, 3.068925878e-07 * 2e-7);
    // The bands: i = 0-28 unchanged, 29-34 blended (strictly between f/8 and f), 35-63 exactly f/8.
    int unchanged = 0, blended = 0, divided = 0;
    for (int i = 0; i < 64; i++) {
        if (i <= 28 && scaled[i] == freqs[i]) unchanged++;
        if (i >= 29 && i <= 34 && scaled[i] < freqs[i] && scaled[i] > freqs[i] / 8.0f) blended++;
        if (i >= 35 && scaled[i] == freqs[i] / 8.0f) divided++;
    }
    CHECK_EQ_INT(unchanged, 29);
    CHECK_EQ_INT(blended, 6);
    CHECK_EQ_INT(divided, 29);
    // Llama 3.2 1B/3B: factor 32, the same bands (they depend on the other three constants only).
    const RopeScaling llama32 = {.factor = 32.0, .low_freq_factor = 1.0, .high_freq_factor = 4.0,
                                 .original_max_position_embeddings = 8192.0};
    rope_freqs_cpu(scaled, 128, 500000.0, &llama32);
    unchanged = blended = divided = 0;
    for (int i = 0; i < 64; i++) {
        if (i <= 28 && scaled[i] == freqs[i]) unchanged++;
        if (i >= 29 && i <= 34 && scaled[i] < freqs[i] && scaled[i] > freqs[i] / 32.0f) blended++;
        if (i >= 35 && scaled[i] == freqs[i] / 32.0f) divided++;
    }
    CHECK(unchanged == 29 && blended == 6 && divided == 29, "factor 32: %d unchanged, %d blended, %d divided", unchanged,
          blended, divided);
    // the blend by hand at i = 30 (wavelength 2*pi/f between 2048 and 8192): (1 - s) f / 32 + s f, s = (8192/wl - 1) / 3
    float wl = (float)(2.0 * M_PI) / freqs[30], smooth = (8192.0f / wl - 1.0f) / 3.0f;
    CHECK(scaled[30] == (1.0f - smooth) * freqs[30] / 32.0f + smooth * freqs[30], "blend at 30: %g", scaled[30]);
    // freqs_cis row 0 is (1, 0) everywhere; row p holds (cos, sin) of p * f_i.
    float cis[4 * 64 * 2];
    rope_freqs_cis_cpu(cis, freqs, 128, 4);
    int ones = 0;
    for (int i = 0; i < 64; i++) ones += cis[2 * i] == 1.0f && cis[2 * i + 1] == 0.0f;
    CHECK_EQ_INT(ones, 64);
    CHECK(cis[(3 * 64 + 1) * 2] == cosf(3.0f * freqs[1]) && cis[(3 * 64 + 1) * 2 + 1] == sinf(3.0f * freqs[1]));
}

static void test_rope(void) {
    const int T = 17, H = 8, Dh = 128, n_pos = 8192;
    size_t n = (size_t)T * H * Dh;
    float freqs[64];
    rope_freqs_cpu(freqs, Dh, 500000.0, NULL);
    float *cis = xmalloc((size_t)n_pos * 64 * 2 * sizeof(float));
    rope_freqs_cis_cpu(cis, freqs, Dh, n_pos);
    float *x = random_act(n, 1.0f), *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float));

    // The two forms are bit-identical, in both precisions and at small and large positions.
    int identical = 0;
    int starts[3] = {0, 1000, n_pos - T};
    for (int s = 0; s < 3; s++)
        for (int pi = 0; pi < 2; pi++) {
            Precision p = pi ? PREC_FP32 : PREC_BF16;
            rope_forward_cpu(a, x, cis, T, H, Dh, starts[s], p);
            rope_forward_complex_cpu(b, x, cis, T, H, Dh, starts[s], p);
            identical += same_bits(a, b, n);
        }
    CHECK_EQ_INT(identical, 6);

    // Position 0 is the identity (cos 0 = 1, sin 0 = 0): bit for bit, token 0 of a call with start_pos 0.
    rope_forward_cpu(a, x, cis, T, H, Dh, 0, PREC_BF16);
    CHECK(same_bits(a, x, (size_t)H * Dh));
    CHECK(!same_bits(a + H * Dh, x + H * Dh, (size_t)H * Dh));  // position 1 does rotate

    // A rotation keeps the length of every pair: within fp32 rounding, and within bf16 rounding of the result.
    double worst_fp32 = 0, worst_bf16 = 0;
    float *c = xmalloc(n * sizeof(float));
    rope_forward_cpu(a, x, cis, T, H, Dh, 1000, PREC_FP32);
    rope_forward_cpu(c, x, cis, T, H, Dh, 1000, PREC_BF16);
    for (size_t i = 0; i < n; i += 2) {
        double r0 = hypot(x[i], x[i + 1]);
        if (r0 < 1e-3) continue;
        double e32 = fabs(hypot(a[i], a[i + 1]) - r0) / r0, e16 = fabs(hypot(c[i], c[i + 1]) - r0) / r0;
        if (e32 > worst_fp32) worst_fp32 = e32;
        if (e16 > worst_bf16) worst_bf16 = e16;
    }
    CHECK(worst_fp32 < 1e-6, "pair norm changed by %.3g relative in fp32", worst_fp32);  // a few fp32 ulps
    CHECK(worst_bf16 <= 1.0 / 256, "pair norm changed by %.3g relative in bf16", worst_bf16);  // half a bf16 ulp each
    CHECK(worst_bf16 > 0);  // bf16 rounding is really applied

    // In place (out == inp) gives the same as out of place.
    memcpy(b, x, n * sizeof(float));
    rope_forward_cpu(b, b, cis, T, H, Dh, 5, PREC_BF16);
    rope_forward_cpu(a, x, cis, T, H, Dh, 5, PREC_BF16);
    CHECK(same_bits(a, b, n));
    // start_pos shifts positions: rows t of a call at start_pos s equal rows s+t of a call at 0.
    float *big = xmalloc((size_t)(T + 3) * H * Dh * sizeof(float)), *xs = random_act((size_t)(T + 3) * H * Dh, 1.0f);
    rope_forward_cpu(big, xs, cis, T + 3, H, Dh, 0, PREC_BF16);
    rope_forward_cpu(a, xs + (size_t)3 * H * Dh, cis, T, H, Dh, 3, PREC_BF16);
    CHECK(same_bits(a, big + (size_t)3 * H * Dh, n));
    free(big), free(xs), free(c), free(x), free(a), free(b), free(cis);
}

static void test_rmsnorm(void) {
    const int D = 4096;
    float *x = xmalloc(D * sizeof(float)), *o = xmalloc(D * sizeof(float)), rstd;
    uint16_t *ones = xmalloc(D * sizeof(uint16_t)), *w = random_bf16(D, 1.0f);
    for (int i = 0; i < D; i++) ones[i] = f32_to_bf16(1.0f), x[i] = -2.0f;
    // A constant row c normalises to sign(c): c/sqrt(c² + eps) = -0.99999875, which rounds to -1 in bf16.
    rmsnorm_forward_cpu(o, &rstd, x, ones, 1, D, 1e-5f, PREC_BF16);
    int minus_one = 0;
    for (int i = 0; i < D; i++) minus_one += o[i] == -1.0f;
    CHECK_EQ_INT(minus_one, D);
    CHECK_NEAR(rstd, 1.0 / sqrt(4.0 + 1e-5), 1e-7);
    rmsnorm_forward_cpu(o, NULL, x, ones, 1, D, 1e-5f, PREC_FP32);
    CHECK_NEAR(o[0], -2.0 / sqrt(4.0 + 1e-5), 1e-7);  // fp32 keeps what bf16 rounds away
    CHECK(o[0] != -1.0f);
    // With a weight: out = round(-1 * w) = -w exactly.
    rmsnorm_forward_cpu(o, NULL, x, w, 1, D, 1e-5f, PREC_BF16);
    int neg_w = 0;
    for (int i = 0; i < D; i++) neg_w += o[i] == -bf16_to_f32(w[i]);
    CHECK_EQ_INT(neg_w, D);
    // A random row: the mean square of the normalised row (weight 1, fp32) is 1 up to eps.
    for (int i = 0; i < D; i++) x[i] = round_bf16(rng_normal() * 3.0f);
    rmsnorm_forward_cpu(o, NULL, x, ones, 1, D, 1e-5f, PREC_FP32);
    double ms = 0;
    for (int i = 0; i < D; i++) ms += (double)o[i] * o[i];
    CHECK_NEAR(ms / D, 1.0, 1e-5);
    free(x), free(o), free(ones), free(w);
}

// The fused residual + RMSNorm (chapter 17) is the residual add followed by the norm, bit for bit, in both
// precisions, also in place (h = x), as the engines use it.
static void test_residual_rmsnorm(void) {
    const int T = 5, D = 1024;
    const size_t n = (size_t)T * D;
    for (int pi = 0; pi < 2; pi++) {
        Precision p = pi ? PREC_FP32 : PREC_BF16;
        float *x = random_act(n, 2.0f), *delta = random_act(n, 0.5f);
        uint16_t *w = random_bf16(D, 1.0f);
        float *h_sep = xmalloc(n * sizeof(float)), *n_sep = xmalloc(n * sizeof(float));
        float *h = xmalloc(n * sizeof(float)), *hn = xmalloc(n * sizeof(float));
        residual_forward_cpu(h_sep, x, delta, n, p);
        rmsnorm_forward_cpu(n_sep, NULL, h_sep, w, T, D, 1e-5f, p);
        residual_rmsnorm_forward_cpu(h, hn, x, delta, w, T, D, 1e-5f, p);
        CHECK(same_bits(h, h_sep, n) && same_bits(hn, n_sep, n), "fused residual + rmsnorm (%s)", precision_name(p));
        residual_rmsnorm_forward_cpu(x, hn, x, delta, w, T, D, 1e-5f, p);  // in place: h = x
        CHECK(same_bits(x, h_sep, n) && same_bits(hn, n_sep, n), "fused residual + rmsnorm in place (%s)",
              precision_name(p));
        free(x), free(delta), free(w), free(h_sep), free(n_sep), free(h), free(hn);
    }
}

// A naive product in long double, summed backwards: a different order from matmul_forward_cpu.
static void naive_matmul(double *out, const float *x, const uint16_t *w, int T, int C, int OC) {
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OC; o++) {
            long double acc = 0;
            for (int c = C - 1; c >= 0; c--) acc += (long double)x[(size_t)t * C + c] * bf16_to_f32(w[(size_t)o * C + c]);
            out[(size_t)t * OC + o] = (double)acc;
        }
}

static void test_matmul(void) {
    const int T = 17, C = 512, OC = 256, Dh = 64;
    float *x = random_act((size_t)T * C, 1.0f);
    uint16_t *w = random_bf16((size_t)OC * C, 0.05f);
    double *ref = xmalloc((size_t)T * OC * sizeof(double));
    float *y32 = xmalloc((size_t)T * OC * sizeof(float)), *y16 = xmalloc((size_t)T * OC * sizeof(float));
    naive_matmul(ref, x, w, T, C, OC);
    matmul_forward_cpu(y32, x, w, T, C, OC, PREC_FP32);
    matmul_forward_cpu(y16, x, w, T, C, OC, PREC_BF16);
    int close32 = 0, exact16 = 0;
    for (int i = 0; i < T * OC; i++) {
        close32 += fabs(y32[i] - ref[i]) <= 1e-6 * fabs(ref[i]) + 1e-9;  // only the final rounding to fp32 differs
        exact16 += y16[i] == round_bf16((float)ref[i]);                // the double sum is exact enough to round right
    }
    CHECK_EQ_INT(close32, T * OC);
    CHECK_EQ_INT(exact16, T * OC);
    // One head = a row slice of W: rows h*Dh.. of the full product, bit for bit.
    float *head = xmalloc((size_t)T * Dh * sizeof(float));
    matmul_forward_cpu(head, x, w + (size_t)2 * Dh * C, T, C, Dh, PREC_BF16);
    int same = 0;
    for (int t = 0; t < T; t++) same += memcmp(head + (size_t)t * Dh, y16 + (size_t)t * OC + 2 * Dh, Dh * 4) == 0;
    CHECK_EQ_INT(same, T);
    // The logits are the same product left in fp32.
    float *logits = xmalloc((size_t)T * OC * sizeof(float));
    logits_forward_cpu(logits, x, w, T, C, OC, PREC_BF16);
    CHECK(same_bits(logits, y32, (size_t)T * OC));
#ifdef _OPENMP
    // The result does not depend on the number of threads.
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    matmul_forward_cpu(head, x, w, T, C, Dh, PREC_FP32);
    omp_set_num_threads(threads > 1 ? threads : 2);
    float *head2 = xmalloc((size_t)T * Dh * sizeof(float));
    matmul_forward_cpu(head2, x, w, T, C, Dh, PREC_FP32);
    omp_set_num_threads(threads);
    CHECK(same_bits(head, head2, (size_t)T * Dh));
    free(head2);
#endif
    free(x), free(w), free(ref), free(y32), free(y16), free(head), free(logits);
}

// The plain loop: one output at a time, one double sum in the order c = 0..C-1. matmul_forward_cpu keeps several sums
// going at once (two rows by four features); its outputs must be these bits, at every shape its blocks cut unevenly.
static void test_matmul_blocks(void) {
    const int Ts[] = {1, 2, 3, 17}, Cs[] = {1, 7, 96}, OCs[] = {1, 3, 4, 5, 9};
    int same = 0, cases = 0;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 3; b++)
            for (int d = 0; d < 5; d++) {
                const int T = Ts[a], C = Cs[b], OC = OCs[d];
                float *x = random_act((size_t)T * C, 1.0f);
                uint16_t *w = random_bf16((size_t)OC * C, 0.05f);
                // Products +2^60 and -2^60 first: in order they cancel and the rest is summed; in any other order the
                // small products added to +-2^60 are lost, so the test sees a sum taken out of order.
                for (int t = 0; t < T && C >= 3; t++) x[(size_t)t * C] = 0x1p30f, x[(size_t)t * C + 1] = -0x1p30f;
                for (int o = 0; o < OC && C >= 3; o++) w[(size_t)o * C] = w[(size_t)o * C + 1] = f32_to_bf16(0x1p30f);
                float *y = xmalloc((size_t)T * OC * sizeof(float)), *want = xmalloc((size_t)T * OC * sizeof(float));
                for (int p = 0; p < 2; p++) {
                    for (int t = 0; t < T; t++)
                        for (int o = 0; o < OC; o++) {
                            double acc = 0.0;
                            for (int c = 0; c < C; c++)
                                acc += (double)x[(size_t)t * C + c] * (double)bf16_to_f32(w[(size_t)o * C + c]);
                            want[(size_t)t * OC + o] = p ? round_bf16((float)acc) : (float)acc;
                        }
                    matmul_forward_cpu(y, x, w, T, C, OC, p ? PREC_BF16 : PREC_FP32);
                    same += same_bits(y, want, (size_t)T * OC), cases++;
                }
                free(x), free(w), free(y), free(want);
            }
    CHECK_EQ_INT(same, cases);
}

static void test_softmax_mask(void) {
    const int T = 17, Dh = 128;
    float *q = random_act((size_t)T * Dh, 1.0f), *k = random_act((size_t)T * Dh, 1.0f), *v = random_act((size_t)T * Dh, 1.0f);
    float scores[17 * 17], probs[17 * 17], mask[17 * 17], out[17 * 128], att[17 * 17];
    attention_scores_cpu(scores, q, k, T, T, Dh, PREC_BF16);
    // One score by hand: q0·k3 / sqrt(128).
    double dot = 0;
    for (int d = 0; d < Dh; d++) dot += (double)q[d] * k[3 * Dh + d];
    CHECK_NEAR(scores[3], dot / sqrt(128.0), 1e-6 * fabs(dot));
    // The mask matrix: 0 on and below the diagonal, -inf above it.
    causal_mask_cpu(mask, T, T, 0);
    int right = 0;
    for (int t = 0; t < T; t++)
        for (int j = 0; j < T; j++) right += j > t ? mask[t * T + j] == -INFINITY : mask[t * T + j] == 0.0f;
    CHECK_EQ_INT(right, T * T);
    attention_mask_cpu(scores, T, T, 0, PREC_BF16);
    for (int pi = 0; pi < 2; pi++) {
        Precision p = pi ? PREC_FP32 : PREC_BF16;
        softmax_forward_cpu(probs, scores, T, T, p);
        int rows_ok = 0, zeros = 0, n_masked = 0;
        // bf16: each probability is within half an ulp (2^-9 relative) of its fp32 value, so a row sum is within
        // 2^-9 of 1 (plus fp32 rounding); fp32: within a few fp32 ulps.
        double tol = p == PREC_BF16 ? 1.0 / 512 + 1e-6 : 1e-6;
        for (int t = 0; t < T; t++) {
            double sum = 0;
            for (int j = 0; j < T; j++) {
                sum += probs[t * T + j];
                if (j > t) n_masked++, zeros += probs[t * T + j] == 0.0f && !signbit(probs[t * T + j]);
            }
            rows_ok += fabs(sum - 1.0) <= tol;
        }
        CHECK_EQ_INT(rows_ok, T);
        CHECK_EQ_INT(zeros, n_masked);  // masked entries are exactly +0
    }
    // With start_pos (decoding with a cache): 2 new tokens at positions 5, 6 see keys 0..5 and 0..6.
    causal_mask_cpu(mask, 2, 7, 5);
    CHECK(mask[5] == 0.0f && mask[6] == -INFINITY && mask[7 + 6] == 0.0f);
    // The one-head path = its steps, bit for bit; the masked weights are exactly 0.
    attention_head_forward_cpu(out, att, q, k, v, T, T, Dh, 0, PREC_BF16);
    softmax_forward_cpu(probs, scores, T, T, PREC_BF16);
    CHECK(same_bits(att, probs, (size_t)T * T));
    float out2[17 * 128];
    attention_values_cpu(out2, probs, v, T, T, Dh, PREC_BF16);
    CHECK(same_bits(out, out2, (size_t)T * Dh));
    // Row 0 attends only to key 0: out[0] = v[0] exactly.
    CHECK(att[0] == 1.0f && same_bits(out, v, Dh));
    // Softmax in place equals out of place.
    memcpy(probs, scores, sizeof scores);
    softmax_forward_cpu(probs, probs, T, T, PREC_FP32);
    softmax_forward_cpu(att, scores, T, T, PREC_FP32);
    CHECK(same_bits(att, probs, (size_t)T * T));
    free(q), free(k), free(v);
}

static void test_gqa(void) {
    const int T = 17, H = 8, Hkv = 2, Dh = 128, n_rep = H / Hkv;
    int mapping_ok = 0;
    for (int h = 0; h < 32; h++) mapping_ok += gqa_kv_head(h, 32, 8) == h / 4;
    CHECK_EQ_INT(mapping_ok, 32);
    CHECK(gqa_kv_head(3, 32, 8) == 0 && gqa_kv_head(4, 32, 8) == 1 && gqa_kv_head(31, 32, 8) == 7);
    CHECK(gqa_kv_head(5, 8, 8) == 5);  // no grouping: every head its own
    float *q = random_act((size_t)T * H * Dh, 1.0f), *kc = random_act((size_t)T * Hkv * Dh, 1.0f),
          *vc = random_act((size_t)T * Hkv * Dh, 1.0f);
    float *out = xmalloc((size_t)T * H * Dh * 4), *att = xmalloc((size_t)H * T * T * 4);
    attention_forward_cpu(out, att, q, kc, vc, T, T, H, Hkv, Dh, 0, PREC_BF16);
    // Every head h equals the one-head path on contiguous copies of q head h and kv head h / n_rep ...
    float *qh = xmalloc((size_t)T * Dh * 4), *kh = xmalloc((size_t)T * Dh * 4), *vh = xmalloc((size_t)T * Dh * 4);
    float *oh = xmalloc((size_t)T * Dh * 4), *ah = xmalloc((size_t)T * T * 4);
    int heads_ok = 0, wrong_kv_differs = 0;
    for (int h = 0; h < H; h++) {
        for (int pass = 0; pass < 2; pass++) {
            int kv = pass == 0 ? h / n_rep : (h / n_rep + 1) % Hkv;  // pass 1: a wrong mapping must not match
            for (int t = 0; t < T; t++) {
                memcpy(qh + (size_t)t * Dh, q + ((size_t)t * H + h) * Dh, Dh * 4);
                memcpy(kh + (size_t)t * Dh, kc + ((size_t)t * Hkv + kv) * Dh, Dh * 4);
                memcpy(vh + (size_t)t * Dh, vc + ((size_t)t * Hkv + kv) * Dh, Dh * 4);
            }
            attention_head_forward_cpu(oh, ah, qh, kh, vh, T, T, Dh, 0, PREC_BF16);
            bool same = same_bits(ah, att + (size_t)h * T * T, (size_t)T * T);
            for (int t = 0; t < T; t++) same = same && same_bits(oh + (size_t)t * Dh, out + ((size_t)t * H + h) * Dh, Dh);
            if (pass == 0) heads_ok += same;
            else wrong_kv_differs += !same;
        }
    }
    CHECK_EQ_INT(heads_ok, H);
    CHECK_EQ_INT(wrong_kv_differs, H);
    // ... and a KV cache gives the same answer: the last 5 tokens computed alone (start_pos 12, keys 0..16 from the
    // cache) equal the last 5 rows of the full prompt.
    float *out_tail = xmalloc((size_t)5 * H * Dh * 4), *att_tail = xmalloc((size_t)H * 5 * T * 4);
    attention_forward_cpu(out_tail, att_tail, q + (size_t)12 * H * Dh, kc, vc, 5, T, H, Hkv, Dh, 12, PREC_BF16);
    CHECK(same_bits(out_tail, out + (size_t)12 * H * Dh, (size_t)5 * H * Dh));
    free(out_tail), free(att_tail), free(q), free(kc), free(vc), free(out), free(att), free(qh), free(kh), free(vh);
    free(oh), free(ah);
}

static void test_elementwise(void) {
    const size_t n = 4096;
    float *a = random_act(n, 2.0f), *b = random_act(n, 2.0f), *o = xmalloc(n * 4);
    residual_forward_cpu(o, a, b, n, PREC_BF16);
    int ok16 = 0;
    for (size_t i = 0; i < n; i++) ok16 += o[i] == round_bf16(a[i] + b[i]);  // bf16 + bf16 is exact in fp32
    CHECK_EQ_INT(ok16, (int)n);
    residual_forward_cpu(o, a, b, n, PREC_FP32);
    CHECK(o[7] == a[7] + b[7]);
    // SwiGLU against the formula in double: within one bf16 ulp of each rounding (two roundings).
    swiglu_forward_cpu(o, a, b, n, PREC_BF16);
    int close = 0;
    for (size_t i = 0; i < n; i++) {
        double silu = a[i] / (1.0 + exp(-(double)a[i])), want = silu * b[i];
        close += fabs(o[i] - want) <= fabs(want) * (2.0 / 256 + 1e-6) + 1e-30;
    }
    CHECK_EQ_INT(close, (int)n);
    float g[3] = {0.0f, 20.0f, -30.0f}, u[3] = {5.0f, 1.5f, 2.0f}, s[3];
    swiglu_forward_cpu(s, g, u, 3, PREC_FP32);
    CHECK(s[0] == 0.0f);                       // silu(0) = 0
    CHECK_NEAR(s[1], 30.0, 30.0 * 1e-6);       // silu(g) -> g for large g
    CHECK(fabsf(s[2]) < 1e-10f);               // silu(g) -> 0 for very negative g
    // Embedding: rows of the table, exactly.
    uint16_t *table = random_bf16(10 * 64, 1.0f);
    int32_t toks[3] = {7, 0, 7};
    float e[3 * 64];
    embedding_forward_cpu(e, toks, table, 3, 64, 10, PREC_BF16);
    CHECK(e[0] == bf16_to_f32(table[7 * 64]) && e[64 + 5] == bf16_to_f32(table[5]) && same_bits(e, e + 128, 64));
    // A token id outside the vocabulary is an input error: exit 2 (run in a child process).
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        int32_t bad[1] = {10};
        embedding_forward_cpu(e, bad, table, 1, 64, 10, PREC_BF16);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %d", status);
    free(a), free(b), free(o), free(table);
}

static void test_argmax_topk(void) {
    float x[8] = {0.5f, 3.0f, -1.0f, 3.0f, NAN, 2.0f, -INFINITY, 1.0f};
    CHECK_EQ_INT(argmax_cpu(x, 8), 1);  // the first of two equal maxima; NaN never wins
    int64_t idx[4];
    float val[4];
    CHECK_EQ_INT(topk_cpu(idx, val, x, 8, 4), 4);
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 5 && idx[3] == 7, "%lld %lld %lld %lld", (long long)idx[0],
          (long long)idx[1], (long long)idx[2], (long long)idx[3]);
    CHECK(val[0] == 3.0f && val[2] == 2.0f);
    CHECK_EQ_INT(topk_cpu(idx, val, x, 3, 5), 3);  // k > n
    CHECK(idx[0] == 1 && idx[1] == 0 && idx[2] == 2);
    // A large random vector: top-k agrees with argmax and is sorted.
    size_t n = 128256;
    float *logits = random_act(n, 3.0f);
    logits[98765] = 50.0f;
    int64_t top[10];
    float tv[10];
    topk_cpu(top, tv, logits, (int64_t)n, 10);
    int sorted = 1;
    for (int i = 1; i < 10; i++) sorted &= tv[i] <= tv[i - 1];
    CHECK(top[0] == 98765 && argmax_cpu(logits, (int64_t)n) == 98765 && sorted);
    free(logits);
    Precision p;
    CHECK(precision_from_name("fp32", &p) && p == PREC_FP32 && !precision_from_name("fp16", &p));
    CHECK_EQ_STR(precision_name(PREC_BF16), "bf16");
}

// ---- the driver for the PyTorch comparison --------------------------------------------------------------------------
// One small layer with Llama-3's structure: D=256, H=4, Hkv=2 (n_rep 2), Dh=64, F=512, V=300, T=9, theta 500000;
// RoPE also at start_pos 4000 (large angles) and with the Llama 3.1 scaling.
enum { DT = 9, DD = 256, DH = 4, DHKV = 2, DDH = 64, DF = 512, DV = 300, DPOS = 4000 };

static void save(const char *dir, const char *sub, const char *name, const float *a, int ndim, int64_t d0, int64_t d1,
                 int64_t d2, const char *plant) {
    int64_t shape[3] = {d0, d1, d2};
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *copy = NULL;
    if (plant && strcmp(sub, "bf16") == 0 && strcmp(plant, name) == 0) {
        // A planted error of 4 bf16 ulps in the middle element: the comparison must notice it.
        copy = xmalloc(n * sizeof(float));
        memcpy(copy, a, n * sizeof(float));
        copy[n / 2] = copy[n / 2] * (1.0f + 4.0f / 128.0f) + 1e-3f;
        a = copy;
    }
    char *path = xasprintf("%s/%s/%s.npy", dir, sub, name);
    npy_write_f32(path, a, shape, ndim);
    free(path);
    free(copy);
}
static void save_bf16(const char *dir, const char *name, const uint16_t *w, int ndim, int64_t d0, int64_t d1) {
    size_t n = (size_t)d0 * (ndim > 1 ? (size_t)d1 : 1);
    float *f = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = bf16_to_f32(w[i]);
    save(dir, "weights", name, f, ndim, d0, d1, 1, NULL);
    free(f);
}

static int dump(const char *dir, const char *plant) {
    const float eps = 1e-5f;
    const double theta = 500000.0;
    for (const char *sub = "weights"; sub; sub = strcmp(sub, "weights") == 0 ? "bf16" : strcmp(sub, "bf16") == 0 ? "fp32" : NULL) {
        char *d = xasprintf("%s/%s", dir, sub);
        mkdir_p(d);
        free(d);
    }
    int32_t tokens[DT];
    for (int t = 0; t < DT; t++) tokens[t] = (int32_t)(rng_next() % DV);
    // Weights: normal * scale, as in a trained model (norm weights around 1, projections ~ 1/sqrt(D)).
    uint16_t *emb = random_bf16((size_t)DV * DD, 1.0f), *attn_norm = random_bf16(DD, 0.2f), *ffn_norm = random_bf16(DD, 0.2f);
    uint16_t *final_norm = random_bf16(DD, 0.2f);
    for (int i = 0; i < DD; i++) {  // shift norm weights to ~1
        attn_norm[i] = f32_to_bf16(1.0f + bf16_to_f32(attn_norm[i]));
        ffn_norm[i] = f32_to_bf16(1.0f + bf16_to_f32(ffn_norm[i]));
        final_norm[i] = f32_to_bf16(1.0f + bf16_to_f32(final_norm[i]));
    }
    float ws = 1.0f / sqrtf((float)DD), wf = 1.0f / sqrtf((float)DF);
    uint16_t *wq = random_bf16((size_t)DH * DDH * DD, ws), *wk = random_bf16((size_t)DHKV * DDH * DD, ws);
    uint16_t *wv = random_bf16((size_t)DHKV * DDH * DD, ws), *wo = random_bf16((size_t)DD * DH * DDH, ws);
    uint16_t *w1 = random_bf16((size_t)DF * DD, ws), *w3 = random_bf16((size_t)DF * DD, ws), *w2 = random_bf16((size_t)DD * DF, wf);
    uint16_t *wout = random_bf16((size_t)DV * DD, ws);
    save_bf16(dir, "tok_embeddings", emb, 2, DV, DD);
    save_bf16(dir, "attention_norm", attn_norm, 1, DD, 1);
    save_bf16(dir, "ffn_norm", ffn_norm, 1, DD, 1);
    save_bf16(dir, "norm", final_norm, 1, DD, 1);
    save_bf16(dir, "wq", wq, 2, DH * DDH, DD);
    save_bf16(dir, "wk", wk, 2, DHKV * DDH, DD);
    save_bf16(dir, "wv", wv, 2, DHKV * DDH, DD);
    save_bf16(dir, "wo", wo, 2, DD, DH * DDH);
    save_bf16(dir, "w1", w1, 2, DF, DD);
    save_bf16(dir, "w2", w2, 2, DD, DF);
    save_bf16(dir, "w3", w3, 2, DF, DD);
    save_bf16(dir, "output", wout, 2, DV, DD);
    int64_t tok64[DT];
    for (int t = 0; t < DT; t++) tok64[t] = tokens[t];
    char *tp = xasprintf("%s/weights/tokens.npy", dir);
    int64_t tshape[1] = {DT};
    npy_write_i64(tp, tok64, tshape, 1);
    free(tp);
    char *mp = xasprintf("%s/meta.json", dir);
    FILE *mf = xfopen(mp, "w");
    fprintf(mf, "{\"T\": %d, \"D\": %d, \"H\": %d, \"Hkv\": %d, \"Dh\": %d, \"F\": %d, \"V\": %d, \"eps\": %.9g, "
                "\"theta\": %.1f, \"start_pos_far\": %d}\n", DT, DD, DH, DHKV, DDH, DF, DV, eps, theta, DPOS);
    xfclose(mf, mp);
    free(mp);

    const int n_pos = DPOS + DT;
    float freqs[DDH / 2], freqs_scaled[DDH / 2];
    rope_freqs_cpu(freqs, DDH, theta, NULL);
    rope_freqs_cpu(freqs_scaled, DDH, theta, &ROPE_SCALING_LLAMA31);
    float *cis = xmalloc((size_t)n_pos * DDH * sizeof(float)), *cis_scaled = xmalloc((size_t)n_pos * DDH * sizeof(float));
    rope_freqs_cis_cpu(cis, freqs, DDH, n_pos);
    rope_freqs_cis_cpu(cis_scaled, freqs_scaled, DDH, n_pos);
    save(dir, "fp32", "freqs", freqs, 1, DDH / 2, 1, 1, NULL);
    save(dir, "fp32", "freqs_scaled", freqs_scaled, 1, DDH / 2, 1, 1, NULL);
    save(dir, "fp32", "freqs_cis", cis, 3, n_pos, DDH / 2, 2, NULL);
    save(dir, "fp32", "freqs_cis_scaled", cis_scaled, 3, n_pos, DDH / 2, 2, NULL);

    size_t nx = (size_t)DT * DD, nq = (size_t)DT * DH * DDH, nkv = (size_t)DT * DHKV * DDH, nf = (size_t)DT * DF;
    float *x = xmalloc(nx * 4), *xn = xmalloc(nx * 4), *q = xmalloc(nq * 4), *k = xmalloc(nkv * 4), *v = xmalloc(nkv * 4);
    float *qr = xmalloc(nq * 4), *kr = xmalloc(nkv * 4), *qr_far = xmalloc(nq * 4), *qr_scaled = xmalloc(nq * 4);
    float *attn = xmalloc(nq * 4), *att = xmalloc((size_t)DH * DT * DT * 4), *delta = xmalloc(nx * 4), *h = xmalloc(nx * 4);
    float *hn = xmalloc(nx * 4), *gate = xmalloc(nf * 4), *up = xmalloc(nf * 4), *act = xmalloc(nf * 4);
    float *ffn = xmalloc(nx * 4), *out = xmalloc(nx * 4), *fn = xmalloc(nx * 4), *logits = xmalloc(DV * 4);
    float *q0 = xmalloc((size_t)DT * DDH * 4), *k0 = xmalloc((size_t)DT * DDH * 4), *v0 = xmalloc((size_t)DT * DDH * 4);
    float *scores = xmalloc(DT * DT * 4), *probs = xmalloc(DT * DT * 4), *head0 = xmalloc((size_t)DT * DDH * 4);
    for (int pi = 0; pi < 2; pi++) {
        Precision p = pi ? PREC_FP32 : PREC_BF16;
        const char *s = precision_name(p);
        embedding_forward_cpu(x, tokens, emb, DT, DD, DV, p);
        save(dir, s, "embed", x, 2, DT, DD, 1, plant);
        rmsnorm_forward_cpu(xn, NULL, x, attn_norm, DT, DD, eps, p);
        save(dir, s, "attention_norm_out", xn, 2, DT, DD, 1, plant);
        matmul_forward_cpu(q, xn, wq, DT, DD, DH * DDH, p);
        matmul_forward_cpu(k, xn, wk, DT, DD, DHKV * DDH, p);
        matmul_forward_cpu(v, xn, wv, DT, DD, DHKV * DDH, p);
        save(dir, s, "q", q, 2, DT, DH * DDH, 1, plant);
        save(dir, s, "k", k, 2, DT, DHKV * DDH, 1, plant);
        save(dir, s, "v", v, 2, DT, DHKV * DDH, 1, plant);
        rope_forward_cpu(qr, q, cis, DT, DH, DDH, 0, p);
        rope_forward_cpu(kr, k, cis, DT, DHKV, DDH, 0, p);
        rope_forward_complex_cpu(qr_far, q, cis, DT, DH, DDH, DPOS, p);
        rope_forward_cpu(qr_scaled, q, cis_scaled, DT, DH, DDH, DPOS, p);
        save(dir, s, "q_rotated", qr, 2, DT, DH * DDH, 1, plant);
        save(dir, s, "k_rotated", kr, 2, DT, DHKV * DDH, 1, plant);
        save(dir, s, "q_rotated_far", qr_far, 2, DT, DH * DDH, 1, plant);
        save(dir, s, "q_rotated_scaled", qr_scaled, 2, DT, DH * DDH, 1, plant);
        // Head 0 the tutorial's way: contiguous [T, Dh] slices, scores, mask, softmax, values.
        for (int t = 0; t < DT; t++) {
            memcpy(q0 + (size_t)t * DDH, qr + (size_t)t * DH * DDH, DDH * 4);
            memcpy(k0 + (size_t)t * DDH, kr + (size_t)t * DHKV * DDH, DDH * 4);
            memcpy(v0 + (size_t)t * DDH, v + (size_t)t * DHKV * DDH, DDH * 4);
        }
        attention_scores_cpu(scores, q0, k0, DT, DT, DDH, p);
        save(dir, s, "scores_h0", scores, 2, DT, DT, 1, plant);
        attention_mask_cpu(scores, DT, DT, 0, p);
        save(dir, s, "scores_masked_h0", scores, 2, DT, DT, 1, plant);
        softmax_forward_cpu(probs, scores, DT, DT, p);
        save(dir, s, "att_h0", probs, 2, DT, DT, 1, plant);
        attention_values_cpu(head0, probs, v0, DT, DT, DDH, p);
        save(dir, s, "attn_out_h0", head0, 2, DT, DDH, 1, plant);
        // All heads with GQA; k/v rotated/unrotated of this call are the cache.
        attention_forward_cpu(attn, att, qr, kr, v, DT, DT, DH, DHKV, DDH, 0, p);
        save(dir, s, "attn_out", attn, 2, DT, DH * DDH, 1, plant);
        save(dir, s, "att", att, 3, DH, DT, DT, plant);
        matmul_forward_cpu(delta, attn, wo, DT, DH * DDH, DD, p);
        save(dir, s, "wo_out", delta, 2, DT, DD, 1, plant);
        residual_forward_cpu(h, x, delta, nx, p);
        save(dir, s, "h", h, 2, DT, DD, 1, plant);
        rmsnorm_forward_cpu(hn, NULL, h, ffn_norm, DT, DD, eps, p);
        save(dir, s, "ffn_norm_out", hn, 2, DT, DD, 1, plant);
        matmul_forward_cpu(gate, hn, w1, DT, DD, DF, p);
        matmul_forward_cpu(up, hn, w3, DT, DD, DF, p);
        save(dir, s, "gate", gate, 2, DT, DF, 1, plant);
        save(dir, s, "up", up, 2, DT, DF, 1, plant);
        swiglu_forward_cpu(act, gate, up, nf, p);
        save(dir, s, "swiglu", act, 2, DT, DF, 1, plant);
        matmul_forward_cpu(ffn, act, w2, DT, DF, DD, p);
        save(dir, s, "ffn_out", ffn, 2, DT, DD, 1, plant);
        residual_forward_cpu(out, h, ffn, nx, p);
        save(dir, s, "layer_out", out, 2, DT, DD, 1, plant);
        rmsnorm_forward_cpu(fn, NULL, out, final_norm, DT, DD, eps, p);
        save(dir, s, "final_norm_out", fn, 2, DT, DD, 1, plant);
        logits_forward_cpu(logits, fn + (size_t)(DT - 1) * DD, wout, 1, DD, DV, p);
        save(dir, s, "logits", logits, 1, DV, 1, 1, plant);
        float next[1] = {(float)argmax_cpu(logits, DV)};
        save(dir, s, "next_token", next, 1, 1, 1, 1, NULL);
    }
    printf("wrote %s (meta.json, weights/, bf16/, fp32/)\n", dir);
    free(emb), free(attn_norm), free(ffn_norm), free(final_norm), free(wq), free(wk), free(wv), free(wo), free(w1);
    free(w2), free(w3), free(wout), free(cis), free(cis_scaled), free(x), free(xn), free(q), free(k), free(v);
    free(qr), free(kr), free(qr_far), free(qr_scaled), free(attn), free(att), free(delta), free(h), free(hn);
    free(gate), free(up), free(act), free(ffn), free(out), free(fn), free(logits), free(q0), free(k0), free(v0);
    free(scores), free(probs), free(head0);
    return 0;
}

int main(int argc, char **argv) {
    const char *dump_dir = NULL, *plant = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: test_ref_ops [--dump DIR [--plant NAME]]\n"
                   "  no arguments: property tests of the CPU reference ops\n"
                   "  --dump DIR: write a random layer's inputs and outputs as .npy for ops_reference.py\n"
                   "  --plant NAME: change one element of DIR/bf16/NAME.npy (the comparison must fail)\n");
            return 0;
        } else if (strcmp(argv[i], "--dump") == 0 && i + 1 < argc) dump_dir = argv[++i];
        else if (strcmp(argv[i], "--plant") == 0 && i + 1 < argc) plant = argv[++i];
        else usage_error(argv[0], "unknown argument '%s'", argv[i]);
    }
    if (dump_dir) return dump(dump_dir, plant);
    test_freqs();
    test_rope();
    test_rmsnorm();
    test_matmul();
    test_matmul_blocks();
    test_softmax_mask();
    test_gqa();
    test_elementwise();
    test_argmax_topk();
    test_residual_rmsnorm();  // last: it draws random numbers, the tests above keep their inputs
    TEST_SUMMARY();
}

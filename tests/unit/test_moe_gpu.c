// test_moe_gpu.c: every mixture-of-experts launcher of kernels/kernels.h (moe_gate_topk_cuda, moe_sort_cuda,
// moe_gather_cuda, moe_expert_forward_cuda, moe_combine_cuda, moe_forward_cuda) against its CPU twin in
// common/ref/ref_moe.h, in both precisions, at MiniMind's shape (D 512, F 1408, E 4, k 2, 1 shared expert), at
// Mixtral-8x7B's (D 4096, F 14336, E 8, k 2), with T = 1 (experts without tokens: empty segments), 17 and 64, and
// with a gate of zeros (every score tied: torch.topk's order must come out of the kernel too). Each launcher gets
// the CPU reference's own inputs, so a difference belongs to it; output buffers are poisoned (NaN bytes) first.
//
//   build/tests/test_moe_gpu                 without a GPU: a skip notice and "0 passed, 0 failed", exit 0
//   REQUIRE_GPU=1 build/tests/test_moe_gpu   without a GPU: a failure (tests/gpu/run.sh sets this)
//   build/tests/test_moe_gpu --small         MiniMind's shape only
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gpu_check.h"
#include "compare.h"
#include "kernels.h"
#include "ref/ref_moe.h"
#include "util.h"

typedef struct {
    const char *label;
    int T, D, F, E, k, S;
    bool zero_gate;
} Case;

static uint64_t g_state = 0x2545f4914f6cdd1dull;
static double uniform(void) {
    g_state ^= g_state << 13, g_state ^= g_state >> 7, g_state ^= g_state << 17;
    return (double)(g_state >> 11) / 9007199254740992.0;
}
static uint16_t *rand_bf16(size_t n, double scale) {
    uint16_t *w = xmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) w[i] = f32_to_bf16((float)((2 * uniform() - 1) * 1.7320508 * scale));
    return w;
}
static void *poisoned(size_t bytes) {
    void *d = cuda_malloc(bytes);
    cuda_poison(d, bytes);
    return d;
}
static double rms(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : 0;
}

static char g_label[96];
static void check_floats(const char *name, const float *ref, const float *out, size_t n, double atol, double rtol) {
    int64_t shape[1] = {(int64_t)n};
    CompareResult r = compare_f32(g_label, name, ref, out, shape, 1, atol, rtol, 0);
    CHECK(r.ok, "%s %s: max abs %.3g, %lld mismatches", g_label, name, r.max_abs, (long long)r.n_mismatch);
}
// an activation buffer on the device against the CPU's: bf16 outputs of fp32 sums against double ones differ by at
// most a rounding of the output (2^-7 relative), plus 1/256 of the RMS for values that cancelled; fp32: 1e-5
static void check_act(const char *name, const float *ref, const void *dev, size_t n, Precision p) {
    float *out = xmalloc((n ? n : 1) * sizeof(float));
    cuda_download_act(out, dev, n, p);
    double r = rms(ref, n);
    if (p == PREC_BF16) check_floats(name, ref, out, n, r / 256, 1.0 / 128);
    else check_floats(name, ref, out, n, 1e-5 * r, 1e-5);
    free(out);
}
static void check_ints(const char *name, const int32_t *ref, const int32_t *dev, size_t n) {
    int32_t *out = xmalloc((n ? n : 1) * sizeof(int32_t));
    cuda_memcpy_d2h(out, dev, n * sizeof(int32_t));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += out[i] != ref[i];
    CHECK(bad == 0, "%s %s: %zu of %zu differ", g_label, name, bad, n);
    free(out);
}

static void run_case(const Case *c, Precision p) {
    snprintf(g_label, sizeof g_label, "%s T=%d %s", c->label, c->T, precision_name(p));
    const int T = c->T, D = c->D, F = c->F, E = c->E, k = c->k, S = c->S, n = T * k;
    const size_t TD = (size_t)T * D;
    // weights: host bf16 and their device copies
    MoeWeights wh = {.E = E, .k = k, .S = S, .norm_topk_prob = true}, wd = wh;
    moe_weights_alloc_tables(&wh), moe_weights_alloc_tables(&wd);
    uint16_t *gate = rand_bf16((size_t)E * D, 1.5 / sqrt((double)D));
    if (c->zero_gate) memset(gate, 0, (size_t)E * D * sizeof(uint16_t));
    wh.gate = gate, wd.gate = upload_bf16(gate, (size_t)E * D);
    for (int e = 0; e < E + S; e++) {
        uint16_t *w1 = rand_bf16((size_t)F * D, 1 / sqrt((double)D)), *w3 = rand_bf16((size_t)F * D, 1 / sqrt((double)D));
        uint16_t *w2 = rand_bf16((size_t)D * F, 1 / sqrt((double)F));
        const uint16_t **h1 = e < E ? &wh.w1[e] : &wh.shared_w1[e - E], **h2 = e < E ? &wh.w2[e] : &wh.shared_w2[e - E];
        const uint16_t **h3 = e < E ? &wh.w3[e] : &wh.shared_w3[e - E];
        const uint16_t **d1 = e < E ? &wd.w1[e] : &wd.shared_w1[e - E], **d2 = e < E ? &wd.w2[e] : &wd.shared_w2[e - E];
        const uint16_t **d3 = e < E ? &wd.w3[e] : &wd.shared_w3[e - E];
        *h1 = w1, *h2 = w2, *h3 = w3;
        *d1 = upload_bf16(w1, (size_t)F * D), *d2 = upload_bf16(w2, (size_t)D * F), *d3 = upload_bf16(w3, (size_t)F * D);
    }
    float *x = xmalloc(TD * sizeof(float));
    for (size_t i = 0; i < TD; i++) x[i] = act_round((float)(2 * uniform() - 1) * 1.7f, p);
    // the CPU reference, every intermediate
    MoeTrace ref;
    moe_trace_alloc(&ref, T, D, F, E, k, S);
    moe_forward_cpu(&ref, x, &wh, T, D, F, p);
    void *dx = upload_act(x, TD, p);

    // the router on the CPU's logits
    float *scores = poisoned((size_t)T * E * sizeof(float)), *w = poisoned((size_t)n * sizeof(float));
    int32_t *idx = poisoned((size_t)n * sizeof(int32_t));
    void *dlogits = upload_act(ref.gate_logits, (size_t)T * E, p);
    moe_gate_topk_cuda(scores, idx, w, dlogits, T, E, k, true, p);
    float *h = xmalloc((size_t)(T * E > n ? T * E : n) * sizeof(float));
    cuda_memcpy_d2h(h, scores, (size_t)T * E * sizeof(float));
    check_floats("gate_scores", ref.gate_scores, h, (size_t)T * E, 1e-6, 1e-5);  // fp32 sums vs double: a few ulps
    check_ints("topk_idx", ref.topk_idx, idx, (size_t)n);
    cuda_memcpy_d2h(h, w, (size_t)n * sizeof(float));
    check_floats("topk_weight", ref.topk_w, h, (size_t)n, 1e-6, 1e-5);
    // the grouping on the CPU's picks
    int32_t *didx = cuda_malloc((size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(didx, ref.topk_idx, (size_t)n * sizeof(int32_t));
    int32_t *sorted = poisoned((size_t)n * sizeof(int32_t)), *pos = poisoned((size_t)n * sizeof(int32_t));
    int32_t *off = poisoned((size_t)(E + 1) * sizeof(int32_t));
    moe_sort_cuda(sorted, pos, off, didx, T, k, E);
    check_ints("sorted", ref.sorted, sorted, (size_t)n);
    check_ints("pos", ref.pos, pos, (size_t)n);
    check_ints("offsets", ref.offsets, off, (size_t)E + 1);
    // gather (exact) and each expert on its segment
    int32_t *dsorted = cuda_malloc((size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(dsorted, ref.sorted, (size_t)n * sizeof(int32_t));
    void *rows = poisoned(act_bytes((size_t)n * D, p));
    moe_gather_cuda(rows, dx, dsorted, n, k, D, p);
    float *rows_ref = xmalloc((size_t)n * D * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(rows_ref + (size_t)i * D, x + (size_t)(ref.sorted[i] / k) * D, (size_t)D * sizeof(float));
    float *rows_out = xmalloc((size_t)n * D * sizeof(float));
    cuda_download_act(rows_out, rows, (size_t)n * D, p);
    CHECK(memcmp(rows_out, rows_ref, (size_t)n * D * sizeof(float)) == 0, "%s gather: a copy, bit for bit", g_label);
    void *eo = poisoned(act_bytes((size_t)n * D, p));
    const size_t rb = act_bytes((size_t)D, p);
    void *drows_ref = upload_act(rows_ref, (size_t)n * D, p);
    for (int e = 0; e < E; e++)
        moe_expert_forward_cuda((char *)eo + (size_t)ref.offsets[e] * rb, (char *)drows_ref + (size_t)ref.offsets[e] * rb,
                                ref.offsets[e + 1] - ref.offsets[e], wd.w1[e], wd.w2[e], wd.w3[e], D, F, p);
    check_act("expert_out", ref.expert_out, eo, (size_t)n * D, p);
    // the weighted sum on the CPU's expert outputs
    int32_t *dpos = cuda_malloc((size_t)n * sizeof(int32_t));
    cuda_memcpy_h2d(dpos, ref.pos, (size_t)n * sizeof(int32_t));
    float *dw = cuda_malloc((size_t)n * sizeof(float));
    cuda_memcpy_h2d(dw, ref.topk_w, (size_t)n * sizeof(float));
    void *deo = upload_act(ref.expert_out, (size_t)n * D, p), *routed = poisoned(act_bytes(TD, p));
    moe_combine_cuda(routed, deo, dpos, didx, dw, T, k, D, p);
    check_act("routed_out", ref.routed_out, routed, TD, p);
    // the whole MoE from x: the same picks, and the output within two roundings (the router may see logits a
    // rounding away from the CPU's, and each product accumulates in another order)
    MoeTrace got;
    moe_trace_alloc(&got, T, D, F, E, k, S);
    void *out = poisoned(act_bytes(TD, p));
    moe_forward_cuda(out, &got, dx, &wd, T, D, F, p);
    CHECK(memcmp(got.topk_idx, ref.topk_idx, (size_t)n * sizeof(int32_t)) == 0, "%s whole: the same picks", g_label);
    double r = rms(ref.moe_out, TD);
    float *o = xmalloc(TD * sizeof(float));
    cuda_download_act(o, out, TD, p);
    if (p == PREC_BF16) check_floats("moe_out (whole)", ref.moe_out, o, TD, 2 * r / 256, 2.0 / 128);
    else check_floats("moe_out (whole)", ref.moe_out, o, TD, 1e-5 * r, 1e-5);
    if (c->zero_gate)  // four equal scores: torch.topk's CPU order picks experts 2 and 3 (E = 4, k = 2)
        CHECK(E != 4 || k != 2 || (got.topk_idx[0] == 2 && got.topk_idx[1] == 3), "%s ties: %d %d", g_label,
              got.topk_idx[0], got.topk_idx[1]);

    moe_trace_free(&ref), moe_trace_free(&got);
    for (int e = 0; e < E; e++) {
        free((void *)wh.w1[e]), free((void *)wh.w2[e]), free((void *)wh.w3[e]);
        cuda_free((void *)wd.w1[e]), cuda_free((void *)wd.w2[e]), cuda_free((void *)wd.w3[e]);
    }
    for (int s = 0; s < S; s++) {
        free((void *)wh.shared_w1[s]), free((void *)wh.shared_w2[s]), free((void *)wh.shared_w3[s]);
        cuda_free((void *)wd.shared_w1[s]), cuda_free((void *)wd.shared_w2[s]), cuda_free((void *)wd.shared_w3[s]);
    }
    void *bufs[] = {(void *)wd.gate, dx, scores, w, idx, dlogits, didx, sorted, pos, off, dsorted, rows, eo, drows_ref,
                    dpos, dw, deo, routed, out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
    moe_weights_free_tables(&wh), moe_weights_free_tables(&wd);
    free(gate), free(x), free(h), free(rows_ref), free(rows_out), free(o);
}

int main(int argc, char **argv) {
    bool small_only = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            printf("usage: test_moe_gpu [--small]\n  the MoE launchers against their CPU twins; REQUIRE_GPU=1 makes a "
                   "missing GPU a failure\n");
            return 0;
        } else if (strcmp(argv[i], "--small") == 0) small_only = true;
        else usage_error(argv[0], "unknown argument '%s'", argv[i]);
    }
    int status = gpu_check_start(NULL, 0);
    if (status >= 0) return status;
    const Case cases[] = {
        {"minimind", 1, 512, 1408, 4, 2, 1, false},  {"minimind", 17, 512, 1408, 4, 2, 1, false},
        {"minimind", 64, 512, 1408, 4, 2, 1, false}, {"minimind ties", 17, 512, 1408, 4, 2, 1, true},
        {"mixtral-8x7b", 17, 4096, 14336, 8, 2, 0, false},
    };
    for (int pi = 0; pi < 2; pi++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            if (small_only && cases[i].D > 512) continue;
            run_case(&cases[i], pi ? PREC_FP32 : PREC_BF16);
            printf("%s: %d passed, %d failed so far\n", g_label, check_passed_, check_failed_);
            fflush(stdout);
        }
    cuda_shutdown();
    TEST_SUMMARY();
}

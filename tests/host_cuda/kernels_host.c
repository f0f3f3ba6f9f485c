// kernels_host.c: kernels/kernels.h on the host, for testing the steps' CUDA path on a machine without a GPU.
//
// Every "device" buffer is host memory (cuda_malloc fills it with NaN bytes, like cuda_poison) and every op is its
// CPU twin from common/ref on the same bytes: an activation buffer holds bf16 (uint16) with PREC_BF16 and float with
// PREC_FP32, exactly as on the GPU. So a chapter linked with this file runs its CUDA path — uploads, downloads,
// pointer offsets, the inputs it feeds each op, --no-compare's chain of ops — and must get the CPU reference's bits:
// every comparison with max_abs 0, and a --no-compare trace equal to the CPU's, byte for byte. That checks the
// plumbing of the chapters, not the kernels (test_kernels_gpu does that on a GPU). tests/test_cuda_plumbing.sh links
// the chapter programs with it (`make hostcuda`, under AddressSanitizer).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "tensor.h"
#include "util.h"

int cuda_device_count(void) { return 1; }
void cuda_init(int device) { (void)device; }
void cuda_shutdown(void) {}
void cuda_device_describe(int device, char *buf, size_t n) {
    (void)device;
    snprintf(buf, n, "host (kernels.h on the CPU reference, tests/host_cuda)");
}
void *cuda_malloc(size_t bytes) {
    void *p = xmalloc(bytes ? bytes : 1);
    memset(p, 0xFF, bytes);
    return p;
}
void cuda_free(void *p) { free(p); }
void cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void cuda_memcpy_h2d_many(void *const *dst, const void *const *src, const size_t *bytes, int n) {
    for (int i = 0; i < n; i++) memcpy(dst[i], src[i], bytes[i]);
}
void cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) { memcpy(dst, src, bytes); }
void cuda_memcpy_d2d(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
void cuda_memset(void *dst, int byte, size_t bytes) { memset(dst, byte, bytes); }
void cuda_synchronize(void) {}
void cuda_upload_act(void *dst, const float *src, size_t n, Precision p) {
    if (p == PREC_BF16)
        for (size_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(src[i]);
    else memcpy(dst, src, n * sizeof(float));
}
void cuda_download_act(float *dst, const void *src, size_t n, Precision p) {
    if (p == PREC_BF16)
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(((const uint16_t *)src)[i]);
    else memcpy(dst, src, n * sizeof(float));
}
void cuda_poison(void *dst, size_t bytes) { memset(dst, 0xFF, bytes); }

// An activation buffer as host floats (malloc'd), and back (freeing the floats).
static float *act_in(const void *dev, size_t n, Precision p) {
    float *f = xmalloc((n ? n : 1) * sizeof(float));
    cuda_download_act(f, dev, n, p);
    return f;
}
static float *act_out(size_t n) { return xmalloc((n ? n : 1) * sizeof(float)); }
static void act_put(void *dev, float *f, size_t n, Precision p) {
    cuda_upload_act(dev, f, n, p);
    free(f);
}

void embedding_forward_cuda(void *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V, Precision p) {
    size_t n = (size_t)T * D;
    float *o = act_out(n);
    embedding_forward_cpu(o, tokens, table, T, D, V, p);
    act_put(out, o, n, p);
}
void rmsnorm_forward_cuda(void *out, float *rstd, const void *inp, const uint16_t *weight, int T, int D, float eps,
                          Precision p) {
    size_t n = (size_t)T * D;
    float *x = act_in(inp, n, p), *o = act_out(n);
    rmsnorm_forward_cpu(o, rstd, x, weight, T, D, eps, p);
    free(x);
    act_put(out, o, n, p);
}
// HOST_CUDA_PERTURB=1 moves the first element of every product by one unit in the last place: a CUDA result that is
// not the reference's, which the test must notice (it shows the test can fail).
void matmul_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    float *x = act_in(inp, (size_t)T * C, p), *o = act_out((size_t)T * OC);
    matmul_forward_cpu(o, x, weight, T, C, OC, p);
    free(x);
    act_put(out, o, (size_t)T * OC, p);
    if (getenv("HOST_CUDA_PERTURB") && T > 0 && OC > 0) {
        if (p == PREC_BF16) ((uint16_t *)out)[0] ^= 1;
        else ((float *)out)[0] = nextafterf(((float *)out)[0], INFINITY);
    }
}
void matmul_lt_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    matmul_forward_cuda(out, inp, weight, T, C, OC, p);
}
void logits_forward_cuda(float *logits, const void *inp, const uint16_t *weight, int T, int C, int V, Precision p) {
    float *x = act_in(inp, (size_t)T * C, p);
    logits_forward_cpu(logits, x, weight, T, C, V, p);
    free(x);
}
void rope_forward_cuda(void *out, const void *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                       int start_pos, Precision p) {
    size_t n = (size_t)T * n_heads * head_dim;
    float *x = act_in(inp, n, p), *o = act_out(n);
    rope_forward_cpu(o, x, freqs_cis, T, n_heads, head_dim, start_pos, p);
    free(x);
    act_put(out, o, n, p);
}
void attention_scores_cuda(float *scores, const void *q, const void *k, int T, int Tk, int head_dim, Precision p) {
    float *qf = act_in(q, (size_t)T * head_dim, p), *kf = act_in(k, (size_t)Tk * head_dim, p);
    attention_scores_cpu(scores, qf, kf, T, Tk, head_dim, p);
    free(qf), free(kf);
}
void attention_mask_cuda(float *scores, int T, int Tk, int start_pos, Precision p) {
    attention_mask_cpu(scores, T, Tk, start_pos, p);
}
void softmax_forward_cuda(float *probs, const float *scores, int n_rows, int n_cols, Precision p) {
    softmax_forward_cpu(probs, scores, n_rows, n_cols, p);
}
void attention_values_cuda(void *out, const float *probs, const void *v, int T, int Tk, int head_dim, Precision p) {
    float *vf = act_in(v, (size_t)Tk * head_dim, p), *o = act_out((size_t)T * head_dim);
    attention_values_cpu(o, probs, vf, T, Tk, head_dim, p);
    free(vf);
    act_put(out, o, (size_t)T * head_dim, p);
}
void attention_head_forward_cuda(void *out, float *att, const void *q, const void *k, const void *v, int T, int Tk,
                                 int head_dim, int start_pos, Precision p) {
    float *qf = act_in(q, (size_t)T * head_dim, p), *kf = act_in(k, (size_t)Tk * head_dim, p);
    float *vf = act_in(v, (size_t)Tk * head_dim, p), *o = act_out((size_t)T * head_dim);
    attention_head_forward_cpu(o, att, qf, kf, vf, T, Tk, head_dim, start_pos, p);
    free(qf), free(kf), free(vf);
    act_put(out, o, (size_t)T * head_dim, p);
}
void attention_forward_cuda(void *out, float *att, const void *q, const void *k_cache, const void *v_cache, int T,
                            int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos, Precision p) {
    size_t nq = (size_t)T * n_heads * head_dim, nkv = (size_t)Tk * n_kv_heads * head_dim;
    float *qf = act_in(q, nq, p), *kf = act_in(k_cache, nkv, p), *vf = act_in(v_cache, nkv, p), *o = act_out(nq);
    attention_forward_cpu(o, att, qf, kf, vf, T, Tk, n_heads, n_kv_heads, head_dim, start_pos, p);
    free(qf), free(kf), free(vf);
    act_put(out, o, nq, p);
    // HOST_CUDA_FLIP_ATT=1: the weights come back as 1 - w (the output stays right), so a figure drawn from the "CUDA"
    // weights is visibly not the reference's: the test sees which of the two a chapter drew.
    if (att && getenv("HOST_CUDA_FLIP_ATT"))
        for (size_t i = 0; i < (size_t)n_heads * T * Tk; i++) att[i] = 1.0f - att[i];
}
void residual_forward_cuda(void *out, const void *a, const void *b, size_t n, Precision p) {
    float *af = act_in(a, n, p), *bf = act_in(b, n, p), *o = act_out(n);
    residual_forward_cpu(o, af, bf, n, p);
    free(af), free(bf);
    act_put(out, o, n, p);
}
void residual_rmsnorm_forward_cuda(void *h, void *out, const void *x, const void *delta, const uint16_t *weight, int T,
                                   int D, float eps, Precision p) {
    size_t n = (size_t)T * D;
    float *xf = act_in(x, n, p), *df = act_in(delta, n, p), *hf = act_out(n), *o = act_out(n);
    residual_rmsnorm_forward_cpu(hf, o, xf, df, weight, T, D, eps, p);
    free(xf), free(df);
    act_put(h, hf, n, p);
    act_put(out, o, n, p);
}
void swiglu_forward_cuda(void *out, const void *gate, const void *up, size_t n, Precision p) {
    float *g = act_in(gate, n, p), *u = act_in(up, n, p), *o = act_out(n);
    swiglu_forward_cpu(o, g, u, n, p);
    free(g), free(u);
    act_put(out, o, n, p);
}

// ---- the mixture-of-experts launchers (kernels/moe_gate.cu, moe_experts.cu) on their twins in ref/ref_moe.h -----------
void moe_gate_topk_cuda(float *gate_scores, int32_t *topk_idx, float *topk_w, const void *gate_logits, int T, int E,
                        int k, bool norm_topk_prob, Precision p) {
    float *l = act_in(gate_logits, (size_t)T * E, p);
    softmax_forward_cpu(gate_scores, l, T, E, PREC_FP32);  // fp32, as moe_gate_forward_cpu keeps the scores
    free(l);
    moe_topk_cpu(topk_idx, topk_w, gate_scores, T, E, k, norm_topk_prob);
}
void moe_sort_cuda(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k, int E) {
    moe_sort_cpu(sorted, pos, offsets, topk_idx, T, k, E);
}
void moe_gather_cuda(void *rows, const void *x, const int32_t *sorted, int n, int k, int D, Precision p) {
    size_t es = act_bytes(1, p);  // a row is copied as it is: no rounding on the GPU either
    for (int i = 0; i < n; i++)
        memcpy((char *)rows + (size_t)i * D * es, (const char *)x + (size_t)(sorted[i] / k) * D * es, (size_t)D * es);
}
void moe_expert_forward_cuda(void *out, const void *x, int n, const uint16_t *w1, const uint16_t *w2,
                             const uint16_t *w3, int D, int F, Precision p) {
    float *xf = act_in(x, (size_t)n * D, p), *o = act_out((size_t)n * D);
    moe_expert_forward_cpu(o, xf, n, w1, w2, w3, D, F, p);
    free(xf);
    act_put(out, o, (size_t)n * D, p);
}
void moe_combine_cuda(void *routed_out, const void *expert_out, const int32_t *pos, const int32_t *topk_idx,
                      const float *topk_w, int T, int k, int D, Precision p) {
    float *e = act_in(expert_out, (size_t)T * k * D, p), *o = act_out((size_t)T * D);
    moe_combine_cpu(o, e, pos, topk_idx, topk_w, T, k, D, p);
    free(e);
    act_put(routed_out, o, (size_t)T * D, p);
}
void moe_forward_cuda(void *out, MoeTrace *host, const void *x, const MoeWeights *w, int T, int D, int F, Precision p) {
    float *xf = act_in(x, (size_t)T * D, p);
    MoeTrace tr;
    moe_trace_alloc(&tr, T, D, F, w->E, w->k, w->S);
    moe_forward_cpu(&tr, xf, w, T, D, F, p);  // the weight pointers are host memory here
    free(xf);
    cuda_upload_act(out, tr.moe_out, (size_t)T * D, p);
    if (host) {  // every intermediate, as the GPU version downloads them
        const size_t TE = (size_t)T * w->E, Tk = (size_t)T * w->k, TD = (size_t)T * D;
        memcpy(host->gate_logits, tr.gate_logits, TE * sizeof(float));
        memcpy(host->gate_scores, tr.gate_scores, TE * sizeof(float));
        memcpy(host->topk_idx, tr.topk_idx, Tk * sizeof(int32_t));
        memcpy(host->topk_w, tr.topk_w, Tk * sizeof(float));
        memcpy(host->sorted, tr.sorted, Tk * sizeof(int32_t));
        memcpy(host->pos, tr.pos, Tk * sizeof(int32_t));
        memcpy(host->offsets, tr.offsets, (size_t)(w->E + 1) * sizeof(int32_t));
        memcpy(host->expert_out, tr.expert_out, Tk * D * sizeof(float));
        memcpy(host->routed_out, tr.routed_out, TD * sizeof(float));
        memcpy(host->shared_out, tr.shared_out, (size_t)w->S * TD * sizeof(float));
        memcpy(host->moe_out, tr.moe_out, TD * sizeof(float));
    }
    moe_trace_free(&tr);
}


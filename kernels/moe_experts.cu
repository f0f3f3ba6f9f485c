// moe_experts.cu: the experts of the mixture-of-experts feed-forward, run as MiniMind's moe_infer runs them: the
// T*k picks (token t, choice j) are sorted by expert id, the tokens of each expert gathered into one contiguous
// segment, each expert applied to its segment with ONE cuBLAS product per weight (no wasted rows, no padding), and
// the weighted outputs summed back per token. Twins in common/ref/ref_moe.c:
//   moe_sort_cuda      sorted [T*k], pos [T*k], offsets [E+1]   stable counting sort by expert id (moe_sort_cpu)
//   moe_gather_cuda    rows [T*k, D] = x[sorted[i] / k]
//   moe_expert_forward_cuda  out [n, D] = w2(silu(w1 x) * w3 x)  (moe_expert_forward_cpu)
//   moe_combine_cuda   routed_out [T, D] = Σ_j w[t,j] · expert_out[pos[t k + j]], expert-id order (moe_combine_cpu)
//   moe_forward_cuda   gate, top-k, the above, the shared experts (moe_forward_cpu)
// Sums are fp32 on the GPU and double on the CPU; the results agree to a bf16 rounding of the output.
#include "common.cuh"

#include <stdlib.h>
#include <string.h>

#define MOE_SORT_THREADS 256

// One block. Thread i owns experts i, i + blockDim, ...: it counts their picks, then (after one thread has made the
// offsets from the counts) writes their picks in pick order, which keeps the sort stable and deterministic.
__global__ void moe_sort_kernel(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int n, int E) {
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = 0;
        for (int a = 0; a < n; a++) c += topk_idx[a] == e;
        offsets[e + 1] = c;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        offsets[0] = 0;
        for (int e = 0; e < E; e++) offsets[e + 1] += offsets[e];
    }
    __syncthreads();
    for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int i = offsets[e];
        for (int a = 0; a < n; a++)
            if (topk_idx[a] == e) sorted[i] = a, pos[a] = i, i++;
    }
}

extern "C" void moe_sort_cuda(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k,
                              int E) {
    REQUIRE(T >= 0 && k >= 1 && E >= 1 && (long long)T * k < 2147483647LL, "T %d k %d E %d", T, k, E);
    moe_sort_kernel<<<1, MOE_SORT_THREADS>>>(sorted, pos, offsets, topk_idx, T * k, E);
    cudaCheckLaunch();
}

__global__ void moe_gather_kernel(void *rows, const void *x, const int32_t *sorted, int n, int k, int D, int is_bf16) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)n * D) return;
    size_t r = i / (size_t)D, d = i % (size_t)D;
    size_t token = (size_t)(sorted[r] / k);
    store_act(rows, i, load_act(x, token * (size_t)D + d, is_bf16), is_bf16);  // a copy: exact in either precision
}

extern "C" void moe_gather_cuda(void *rows, const void *x, const int32_t *sorted, int n, int k, int D, Precision p) {
    REQUIRE(n >= 0 && k >= 1 && D >= 1, "n %d k %d D %d", n, k, D);
    if (n == 0) return;
    moe_gather_kernel<<<ceil_div((long long)n * D, 256), 256>>>(rows, x, sorted, n, k, D, p == PREC_BF16);
    cudaCheckLaunch();
}

#define MOE_MAX_K 64

// One thread per (t, d): the token's k picks in expert-id order, each weight times its expert's output row.
__global__ void moe_combine_kernel(void *out, const void *expert_out, const int32_t *pos, const int32_t *topk_idx,
                                   const float *topk_w, int T, int k, int D, int is_bf16) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * D) return;
    size_t t = i / (size_t)D, d = i % (size_t)D;
    const int32_t *idx = topk_idx + t * (size_t)k;
    float acc = 0.0f;
    int prev = -1;
    for (int r = 0; r < k; r++) {  // the r-th smallest expert id among the token's picks (they are distinct)
        int j_min = -1;
        for (int j = 0; j < k; j++)
            if (idx[j] > prev && (j_min < 0 || idx[j] < idx[j_min])) j_min = j;
        prev = idx[j_min];
        size_t a = t * (size_t)k + (size_t)j_min;
        acc = __fmaf_rn(topk_w[a], load_act(expert_out, (size_t)pos[a] * (size_t)D + d, is_bf16), acc);
    }
    store_act(out, i, acc, is_bf16);
}

extern "C" void moe_combine_cuda(void *routed_out, const void *expert_out, const int32_t *pos, const int32_t *topk_idx,
                                 const float *topk_w, int T, int k, int D, Precision p) {
    REQUIRE(T >= 0 && k >= 1 && k <= MOE_MAX_K && D >= 1, "T %d k %d (1..%d) D %d", T, k, MOE_MAX_K, D);
    if (T == 0) return;
    moe_combine_kernel<<<ceil_div((long long)T * D, 256), 256>>>(routed_out, expert_out, pos, topk_idx, topk_w, T, k,
                                                                  D, p == PREC_BF16);
    cudaCheckLaunch();
}

extern "C" void moe_expert_forward_cuda(void *out, const void *x, int n, const uint16_t *w1, const uint16_t *w2,
                                        const uint16_t *w3, int D, int F, Precision p) {
    REQUIRE(n >= 0 && D >= 1 && F >= 1, "n %d D %d F %d", n, D, F);
    if (n == 0) return;
    void *gate = cuda_malloc(act_bytes((size_t)n * F, p)), *up = cuda_malloc(act_bytes((size_t)n * F, p));
    // self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x)): w2(silu(w1 x) * w3 x)
    matmul_forward_cuda(gate, x, w1, n, D, F, p);
    matmul_forward_cuda(up, x, w3, n, D, F, p);
    swiglu_forward_cuda(gate, gate, up, (size_t)n * F, p);
    matmul_forward_cuda(out, gate, w2, n, F, D, p);
    cuda_free(gate), cuda_free(up);
}

extern "C" void moe_forward_cuda(void *out, MoeTrace *host, const void *x, const MoeWeights *w, int T, int D, int F,
                                 Precision p) {
    const int E = w->E, k = w->k, S = w->S, n = T * k;
    REQUIRE(T >= 1 && E >= 1 && k >= 1 && k <= E && S >= 0, "T %d E %d k %d S %d", T, E, k, S);
    REQUIRE(out != x, "out %p must not alias x %p (the shared experts read x after out is written)", out, x);
    if (host) REQUIRE(host->T == T && host->D == D && host->E == E && host->k == k && host->S == S, "host trace T %d, expected %d", host->T, T);
    const size_t TD = (size_t)T * D;
    void *logits = cuda_malloc(act_bytes((size_t)T * E, p));
    float *scores = (float *)cuda_malloc((size_t)T * E * sizeof(float)), *topk_w = (float *)cuda_malloc((size_t)n * sizeof(float));
    int32_t *topk_idx = (int32_t *)cuda_malloc((size_t)n * sizeof(int32_t));
    int32_t *sorted = (int32_t *)cuda_malloc((size_t)n * sizeof(int32_t)), *pos = (int32_t *)cuda_malloc((size_t)n * sizeof(int32_t));
    int32_t *offsets = (int32_t *)cuda_malloc((size_t)(E + 1) * sizeof(int32_t));
    void *rows = cuda_malloc(act_bytes((size_t)n * D, p)), *expert_out = cuda_malloc(act_bytes((size_t)n * D, p));
    void *shared_out = cuda_malloc(act_bytes(TD, p));

    // the gate: logits = x · Wgᵀ, then softmax and top-k in one kernel
    matmul_forward_cuda(logits, x, w->gate, T, D, E, p);
    moe_gate_topk_cuda(scores, topk_idx, topk_w, logits, T, E, k, w->norm_topk_prob, p);
    // idxs = flat_expert_indices.argsort(); tokens_per_expert = bincount(...).cumsum(0)
    moe_sort_cuda(sorted, pos, offsets, topk_idx, T, k, E);
    int32_t *off = (int32_t *)malloc((size_t)(E + 1) * sizeof(int32_t));
    if (!off) fatal("out of memory (%d offsets)", E + 1);
    cuda_memcpy_d2h(off, offsets, (size_t)(E + 1) * sizeof(int32_t));  // the host launches one product per segment
    moe_gather_cuda(rows, x, sorted, n, k, D, p);
    const size_t row_bytes = act_bytes((size_t)D, p);
    for (int e = 0; e < E; e++) {
        int cnt = off[e + 1] - off[e];
        if (cnt == 0) continue;  // an expert no token picked costs nothing
        moe_expert_forward_cuda((char *)expert_out + (size_t)off[e] * row_bytes, (const char *)rows + (size_t)off[e] * row_bytes,
                                cnt, w->w1[e], w->w2[e], w->w3[e], D, F, p);
    }
    moe_combine_cuda(out, expert_out, pos, topk_idx, topk_w, T, k, D, p);
    if (host) cuda_download_act(host->routed_out, out, TD, p);
    // for expert in self.shared_experts: y = y + expert(identity)
    for (int s = 0; s < S; s++) {
        moe_expert_forward_cuda(shared_out, x, T, w->shared_w1[s], w->shared_w2[s], w->shared_w3[s], D, F, p);
        if (host) cuda_download_act(host->shared_out + (size_t)s * TD, shared_out, TD, p);
        residual_forward_cuda(out, out, shared_out, TD, p);
    }
    if (host) {
        cuda_download_act(host->gate_logits, logits, (size_t)T * E, p);
        cuda_memcpy_d2h(host->gate_scores, scores, (size_t)T * E * sizeof(float));
        cuda_memcpy_d2h(host->topk_idx, topk_idx, (size_t)n * sizeof(int32_t));
        cuda_memcpy_d2h(host->topk_w, topk_w, (size_t)n * sizeof(float));
        cuda_memcpy_d2h(host->sorted, sorted, (size_t)n * sizeof(int32_t));
        cuda_memcpy_d2h(host->pos, pos, (size_t)n * sizeof(int32_t));
        memcpy(host->offsets, off, (size_t)(E + 1) * sizeof(int32_t));
        cuda_download_act(host->expert_out, expert_out, (size_t)n * D, p);
        cuda_download_act(host->moe_out, out, TD, p);
    }
    free(off);
    void *bufs[] = {logits, scores, topk_w, topk_idx, sorted, pos, offsets, rows, expert_out, shared_out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) cuda_free(bufs[i]);
}

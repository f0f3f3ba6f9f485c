// moe_gate.cu: the router of the mixture-of-experts feed-forward, twin of moe_gate_forward_cpu's softmax and
// moe_topk_cpu (common/ref/ref_moe.c):
//   gate_scores[t] = softmax(gate_logits[t]) over the E experts, fp32          [T, E]
//   topk_idx[t], topk_w[t] = the k largest scores, largest first               [T, k]
//                            (equal scores in torch.topk's CPU order: ref/topk_torch.h, shared with the CPU twin)
//   topk_w[t] /= Σ_j topk_w[t, j] + 1e-20          when norm_topk_prob and k > 1 (MiniMind's MoEGate)
// The gate's logits themselves are an ordinary product (matmul_forward_cuda with the gate weight [E, D]).
// One thread per token: E is small (4 in MiniMind, 8 in Mixtral), so a token's row fits in its registers and
// loops, and the sums run in a fixed order (the CPU's are in double: the scores agree to a few fp32 ulps).
#include "common.cuh"
#include "ref/topk_torch.h"

#define MOE_GATE_MAX_E 256  // a token's (score, id) pairs live in the thread's local memory
#define MOE_GATE_THREADS 128

__global__ void moe_gate_topk_kernel(float *scores, int32_t *topk_idx, float *topk_w, const void *logits, int T, int E,
                                     int k, int norm, int is_bf16) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= T) return;
    const size_t row = (size_t)t * (size_t)E;
    float *s = scores + row;
    // scores = logits.softmax(dim=-1)
    float max = -INFINITY;
    for (int e = 0; e < E; e++) max = fmaxf(max, load_act(logits, row + e, is_bf16));
    float sum = 0.0f;
    for (int e = 0; e < E; e++) sum += expf(load_act(logits, row + e, is_bf16) - max);
    for (int e = 0; e < E; e++) s[e] = __fdiv_rn(expf(load_act(logits, row + e, is_bf16) - max), sum);
    // topk_weight, topk_idx = torch.topk(scores, k): the selection torch runs on the CPU, ties included
    TopkItem buf[MOE_GATE_MAX_E];
    topk_torch_order(buf, s, E, k);
    float wsum = 0.0f;
    for (int j = 0; j < k; j++) {
        topk_idx[(size_t)t * k + j] = buf[j].i;
        topk_w[(size_t)t * k + j] = buf[j].v;
        wsum += buf[j].v;
    }
    if (norm && k > 1)  // topk_weight / (topk_weight.sum(dim=-1, keepdim=True) + 1e-20)
        for (int j = 0; j < k; j++) topk_w[(size_t)t * k + j] = __fdiv_rn(topk_w[(size_t)t * k + j], wsum + 1e-20f);
}

extern "C" void moe_gate_topk_cuda(float *gate_scores, int32_t *topk_idx, float *topk_w, const void *gate_logits,
                                   int T, int E, int k, bool norm_topk_prob, Precision p) {
    REQUIRE(T >= 0 && E >= 1 && E <= MOE_GATE_MAX_E, "T %d, E %d (1..%d experts)", T, E, MOE_GATE_MAX_E);
    REQUIRE(k >= 1 && k <= E, "k %d must be in 1..E = %d", k, E);
    if (T == 0) return;
    moe_gate_topk_kernel<<<ceil_div(T, MOE_GATE_THREADS), MOE_GATE_THREADS>>>(gate_scores, topk_idx, topk_w,
                                                                              gate_logits, T, E, k, norm_topk_prob,
                                                                              p == PREC_BF16);
    cudaCheckLaunch();
}

// moe_nocuda.c: the mixture-of-experts launchers of kernels.h for a build without nvcc (see kernels_nocuda.c): no
// caller reaches them, since cuda_device_count() is 0; a call is a bug and exits saying the build has no CUDA.
#include "kernels.h"
#include "util.h"

#define NO_CUDA(name) fatal("%s: this build has no CUDA (nvcc was not found when it was built): use --device cpu", name)

void moe_gate_topk_cuda(float *gate_scores, int32_t *topk_idx, float *topk_w, const void *gate_logits, int T, int E,
                        int k, bool norm_topk_prob, Precision p) {
    NO_CUDA("moe_gate_topk_cuda");
}
void moe_sort_cuda(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k, int E) {
    NO_CUDA("moe_sort_cuda");
}
void moe_gather_cuda(void *rows, const void *x, const int32_t *sorted, int n, int k, int D, Precision p) {
    NO_CUDA("moe_gather_cuda");
}
void moe_expert_forward_cuda(void *out, const void *x, int n, const uint16_t *w1, const uint16_t *w2,
                             const uint16_t *w3, int D, int F, Precision p) {
    NO_CUDA("moe_expert_forward_cuda");
}
void moe_combine_cuda(void *routed_out, const void *expert_out, const int32_t *pos, const int32_t *topk_idx,
                      const float *topk_w, int T, int k, int D, Precision p) {
    NO_CUDA("moe_combine_cuda");
}
void moe_forward_cuda(void *out, MoeTrace *host, const void *x, const MoeWeights *w, int T, int D, int F, Precision p) {
    NO_CUDA("moe_forward_cuda");
}

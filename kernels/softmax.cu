// softmax.cu: probs[r] = softmax(scores[r]) over rows, in fp32, then rounded (bf16 in PREC_BF16); twin of
// softmax_forward_cpu. -inf (masked) entries give exactly 0. One block per row: block max, then the sum of
// exp(s - max), then each value divided by the sum. expf on the GPU is within 2 fp32 ulps of the CPU's exp.
#include "common.cuh"

#define SOFTMAX_THREADS 256

__global__ void softmax_forward_kernel(float *probs, const float *scores, int n_cols, int is_bf16) {
    __shared__ float shared[32];
    const float *s = scores + (size_t)blockIdx.x * (size_t)n_cols;
    float *o = probs + (size_t)blockIdx.x * (size_t)n_cols;
    float max = -INFINITY;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) max = fmaxf(max, s[j]);
    max = block_max(max, shared);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x) sum += expf(s[j] - max);
    sum = block_sum(sum, shared);
    for (int j = threadIdx.x; j < n_cols; j += blockDim.x)
        o[j] = dev_act_round(__fdiv_rn(expf(s[j] - max), sum), is_bf16);  // softmax(scores.float()).type_as(q)
}

void softmax_rows_launch(float *probs, const float *scores, int n_rows, int n_cols, int is_bf16) {
    if (n_rows == 0 || n_cols == 0) return;
    softmax_forward_kernel<<<n_rows, SOFTMAX_THREADS>>>(probs, scores, n_cols, is_bf16);
    cudaCheckLaunch();
}

extern "C" void softmax_forward_cuda(float *probs, const float *scores, int n_rows, int n_cols, Precision p) {
    REQUIRE(n_rows >= 0 && n_cols >= 0, "n_rows %d n_cols %d", n_rows, n_cols);
    softmax_rows_launch(probs, scores, n_rows, n_cols, p == PREC_BF16);
}

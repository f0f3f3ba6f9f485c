// residual_rmsnorm.cu: the serving engines' fused residual + RMSNorm, twin of residual_rmsnorm_forward_cpu.
//   h[t] = round(x[t] + delta[t]);  out[t] = round(round(h[t] * r_t) * weight),  r_t = 1 / sqrtf(mean(h[t]^2) + eps)
// One block per row: each thread adds its elements, writes h and keeps their squares; a block sum gives r_t; the
// thread then normalises the very elements it wrote (no other thread's writes are read, so no second barrier is
// needed). The adds and products are __fadd_rn/__fmul_rn so they round exactly as the separate kernels do
// (residual.cu, rmsnorm_bf16.cu); the sum of squares is a float block reduction (the CPU sums in double).
// h may equal x (the residual stream updated in place, as the engine does).
#include "common.cuh"

#define RESIDUAL_RMSNORM_THREADS 256

__global__ void residual_rmsnorm_forward_kernel(void *h, void *out, const void *x, const void *delta,
                                                const uint16_t *weight, int D, float eps, int is_bf16) {
    __shared__ float shared[32];
    const size_t base = (size_t)blockIdx.x * (size_t)D;
    float sum_sq = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = dev_act_round(__fadd_rn(load_act(x, base + i, is_bf16), load_act(delta, base + i, is_bf16)), is_bf16);
        store_act(h, base + i, v, is_bf16);  // exact: v is already rounded
        sum_sq += v * v;
    }
    sum_sq = block_sum(sum_sq, shared);
    float r = 1.0f / sqrtf(sum_sq / (float)D + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float normed = dev_act_round(__fmul_rn(load_act(h, base + i, is_bf16), r), is_bf16);
        store_act(out, base + i, __fmul_rn(normed, dev_bf16_to_f32(weight[i])), is_bf16);
    }
}

extern "C" void residual_rmsnorm_forward_cuda(void *h, void *out, const void *x, const void *delta,
                                              const uint16_t *weight, int T, int D, float eps, Precision p) {
    REQUIRE(T >= 0 && D > 0 && eps >= 0.0f, "T %d D %d eps %g", T, D, (double)eps);
    REQUIRE(out != h && out != x && out != delta, "out %p must not alias h %p, x %p or delta %p", out, h, x, delta);
    if (T == 0) return;
    residual_rmsnorm_forward_kernel<<<T, RESIDUAL_RMSNORM_THREADS>>>(h, out, x, delta, weight, D, eps, p == PREC_BF16);
    cudaCheckLaunch();
}

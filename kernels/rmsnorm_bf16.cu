// rmsnorm_bf16.cu: RMSNorm, twin of rmsnorm_forward_cpu.
//   out[t] = round(round(x[t] * r_t) * weight),  r_t = 1 / sqrtf(mean(x[t]^2) + eps)
// One block per row; the sum of squares is a float block reduction (the CPU sums in double: the two r_t agree to a
// few fp32 ulps). Multiplications use __fmul_rn so the compiler cannot fuse them with anything.
#include "common.cuh"

#define RMSNORM_THREADS 256

__global__ void rmsnorm_forward_kernel(void *out, float *rstd, const void *inp, const uint16_t *weight, int D,
                                       float eps, int is_bf16) {
    __shared__ float shared[32];
    int t = blockIdx.x;
    size_t base = (size_t)t * (size_t)D;
    float sum_sq = 0.0f;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float x = load_act(inp, base + i, is_bf16);
        sum_sq += x * x;
    }
    sum_sq = block_sum(sum_sq, shared);
    float r = 1.0f / sqrtf(sum_sq / (float)D + eps);  // IEEE sqrt and division (no -use_fast_math)
    if (rstd && threadIdx.x == 0) rstd[t] = r;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float normed = dev_act_round(__fmul_rn(load_act(inp, base + i, is_bf16), r), is_bf16);  // .type_as(x)
        store_act(out, base + i, __fmul_rn(normed, dev_bf16_to_f32(weight[i])), is_bf16);      // * self.weight
    }
}

extern "C" void rmsnorm_forward_cuda(void *out, float *rstd, const void *inp, const uint16_t *weight, int T, int D,
                                     float eps, Precision p) {
    REQUIRE(T >= 0 && D > 0 && eps >= 0.0f, "T %d D %d eps %g", T, D, (double)eps);
    if (T == 0) return;
    rmsnorm_forward_kernel<<<T, RMSNORM_THREADS>>>(out, rstd, inp, weight, D, eps, p == PREC_BF16);
    cudaCheckLaunch();
}

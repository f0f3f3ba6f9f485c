// swiglu.cu: out[i] = round(round(silu(gate[i])) * up[i]), silu(g) = g / (1 + exp(-g)) in fp32; twin of
// swiglu_forward_cpu (`F.silu(self.w1(x)) * self.w3(x)`, each product of bf16 tensors rounded to bf16).
// expf on the GPU is within 2 ulps of glibc's, so a bf16 result may differ from the CPU by one bf16 ulp.
#include "common.cuh"

__global__ void swiglu_forward_kernel(void *out, const void *gate, const void *up, size_t n, int is_bf16) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = load_act(gate, i, is_bf16);
    float silu = dev_act_round(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), is_bf16);
    store_act(out, i, __fmul_rn(silu, load_act(up, i, is_bf16)), is_bf16);
}

extern "C" void swiglu_forward_cuda(void *out, const void *gate, const void *up, size_t n, Precision p) {
    if (n == 0) return;
    REQUIRE(n / 256 < 2147483647u, "n %zu", n);
    swiglu_forward_kernel<<<ceil_div((long long)n, 256), 256>>>(out, gate, up, n, p == PREC_BF16);
    cudaCheckLaunch();
}

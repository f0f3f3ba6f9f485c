// residual.cu: out[i] = round(a[i] + b[i]) (`h = x + delta`), twin of residual_forward_cpu. out may alias a or b.
#include "common.cuh"

__global__ void residual_forward_kernel(void *out, const void *a, const void *b, size_t n, int is_bf16) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) store_act(out, i, __fadd_rn(load_act(a, i, is_bf16), load_act(b, i, is_bf16)), is_bf16);
}

extern "C" void residual_forward_cuda(void *out, const void *a, const void *b, size_t n, Precision p) {
    if (n == 0) return;
    REQUIRE(n / 256 < 2147483647u, "n %zu", n);
    residual_forward_kernel<<<ceil_div((long long)n, 256), 256>>>(out, a, b, n, p == PREC_BF16);
    cudaCheckLaunch();
}

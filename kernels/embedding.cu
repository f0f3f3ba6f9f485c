// embedding.cu: out[T, D] = table[tokens[t]] (bf16 rows; exact in either precision). Twin of embedding_forward_cpu.
// One block per token; threads copy the row. The token ids are checked on the host first (an id outside [0, V) is an
// input error, exit 2, as on the CPU), which costs one small copy.
#include <stdlib.h>

#include "common.cuh"

extern "C" __attribute__((noreturn)) void input_error(const char *file, const char *fmt, ...);

__global__ void embedding_forward_kernel(void *out, const int32_t *tokens, const uint16_t *table, int D, int is_bf16) {
    int t = blockIdx.x;
    const uint16_t *row = table + (size_t)tokens[t] * (size_t)D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        size_t o = (size_t)t * (size_t)D + (size_t)i;
        if (is_bf16) ((uint16_t *)out)[o] = row[i];
        else ((float *)out)[o] = dev_bf16_to_f32(row[i]);
    }
}

extern "C" void embedding_forward_cuda(void *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V,
                                       Precision p) {
    REQUIRE(T >= 0 && D > 0 && V > 0, "T %d D %d V %d", T, D, V);
    if (T == 0) return;
    int32_t *host = (int32_t *)malloc((size_t)T * sizeof(int32_t));
    if (!host) fatal("embedding_forward_cuda: out of host memory");
    cuda_memcpy_d2h(host, tokens, (size_t)T * sizeof(int32_t));
    for (int t = 0; t < T; t++)
        if (host[t] < 0 || host[t] >= V) input_error(NULL, "tokens[%d]: id %d is outside the vocabulary [0, %d)", t, host[t], V);
    free(host);
    embedding_forward_kernel<<<T, 256>>>(out, tokens, table, D, p == PREC_BF16);
    cudaCheckLaunch();
}

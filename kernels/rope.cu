// rope.cu: rotary position embedding, twin of rope_forward_cpu (Meta's interleaved pairs).
//   for each token t, head h, pair i:  (c, s) = freqs_cis[start_pos + t][i]
//   y[2i] = x[2i]*c - x[2i+1]*s,  y[2i+1] = x[2i]*s + x[2i+1]*c   in fp32, then rounded
// The cos/sin table comes from the host (rope_freqs_cis_cpu) and the arithmetic is written with __fmul_rn/__fadd_rn
// (no fused multiply-add), so the result is bit-identical to the CPU reference.
#include "common.cuh"

__global__ void rope_forward_kernel(void *out, const void *inp, const float *freqs_cis, int T, int n_heads,
                                    int head_dim, int start_pos, int is_bf16) {
    int half = head_dim / 2;
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;  // one thread per pair
    size_t n_pairs = (size_t)T * (size_t)n_heads * (size_t)half;
    if (idx >= n_pairs) return;
    int i = (int)(idx % (size_t)half);
    int t = (int)(idx / ((size_t)half * (size_t)n_heads));
    const float *cs = freqs_cis + ((size_t)(start_pos + t) * (size_t)half + (size_t)i) * 2;
    float c = cs[0], s = cs[1];
    float x_even = load_act(inp, 2 * idx, is_bf16), x_odd = load_act(inp, 2 * idx + 1, is_bf16);
    float y_even, y_odd;
    rope_pair(x_even, x_odd, c, s, &y_even, &y_odd);
    store_act(out, 2 * idx, y_even, is_bf16);
    store_act(out, 2 * idx + 1, y_odd, is_bf16);
}

extern "C" void rope_forward_cuda(void *out, const void *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                                  int start_pos, Precision p) {
    REQUIRE(T >= 0 && n_heads > 0 && head_dim > 0 && head_dim % 2 == 0 && start_pos >= 0,
            "T %d n_heads %d head_dim %d start_pos %d", T, n_heads, head_dim, start_pos);
    size_t n_pairs = (size_t)T * (size_t)n_heads * (size_t)(head_dim / 2);
    if (n_pairs == 0) return;
    rope_forward_kernel<<<ceil_div((long long)n_pairs, 256), 256>>>(out, inp, freqs_cis, T, n_heads, head_dim,
                                                                     start_pos, p == PREC_BF16);
    cudaCheckLaunch();
}

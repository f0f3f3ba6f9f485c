// engine_elementwise.cu: the engine's row-wise kernels for the prefill path (T tokens at once), fused where the data
// allows (engine.h):
//   engine_embedding     h[t] = tok_embeddings[tokens[t]]
//   engine_add_rmsnorm   h[t] = bf16(h[t] + delta[t]) then xn[t] = rmsnorm(h[t]) * w  (seed 002's RMSNorm(x, residual))
//   engine_rope_kv       qkv[t] -> q rotated; k rotated and v written into the cache rows start_pos + t
//   engine_swiglu_pairs  interleaved (gate, up) -> bf16(bf16(silu(gate)) * up)
// Rounding points as common/ref_ops.h; RoPE and the norm are written without FMA contraction so that they round
// exactly like the CPU reference. All but the embedding (which follows a host copy) are launched as programmatic
// dependents (engine.h): each starts with pdl_wait().
#include "engine.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"

__device__ __forceinline__ float rbf(float x) { return dev_bf16_to_f32(dev_f32_to_bf16(x)); }

__global__ void embedding_kernel(uint16_t *h, const int32_t *tokens, const uint16_t *table, int D) {
    pdl_launch_dependents();
    pdl_wait();  // a no-op unless launched as a dependent (engine.h)
    const int t = blockIdx.x;
    const int4 *src = (const int4 *)(table + (size_t)tokens[t] * D);
    int4 *dst = (int4 *)(h + (size_t)t * D);
    for (int v = threadIdx.x; v < D / 8; v += blockDim.x) dst[v] = src[v];
}

void engine_embedding(uint16_t *h, const int32_t *tokens, const uint16_t *table, int T, int D, cudaStream_t st) {
    REQUIRE(T >= 1 && D % 8 == 0, "T %d D %d", T, D);
    embedding_kernel<<<T, 256, 0, st>>>(h, tokens, table, D);
    cudaCheckLaunch();
}

__global__ void add_rmsnorm_kernel(uint16_t *xn, uint16_t *h, const uint16_t *delta, const uint16_t *w, int D, float eps) {
    __shared__ double red[32];
    const size_t row = (size_t)blockIdx.x * D;
    pdl_launch_dependents();
    pdl_wait();
    double ss = 0.0;
    for (int i = threadIdx.x; i < D; i += blockDim.x) {
        float v = dev_bf16_to_f32(h[row + i]);
        if (delta) {
            v = rbf(v + dev_bf16_to_f32(delta[row + i]));  // h = x + delta, a bf16 tensor
            h[row + i] = dev_f32_to_bf16(v);
        }
        ss += (double)v * (double)v;
    }
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if (threadIdx.x % 32 == 0) red[threadIdx.x / 32] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        double t = 0.0;
        for (int k = 0; k < (int)blockDim.x / 32; k++) t += red[k];
        red[0] = t;
    }
    __syncthreads();
    float r = 1.0f / sqrtf((float)(red[0] / (double)D) + eps);
    for (int i = threadIdx.x; i < D; i += blockDim.x) {  // each thread reads back only what it wrote above
        float normed = rbf(__fmul_rn(dev_bf16_to_f32(h[row + i]), r));
        xn[row + i] = dev_f32_to_bf16(__fmul_rn(normed, dev_bf16_to_f32(w[i])));
    }
}

void engine_add_rmsnorm(uint16_t *xn, uint16_t *h, const uint16_t *delta, const uint16_t *w, int T, int D, float eps,
                        cudaStream_t st) {
    REQUIRE(T >= 1 && D >= 1, "T %d D %d", T, D);
    cudaCheck(engine_launch(add_rmsnorm_kernel, dim3(T), dim3(256), 0, st, xn, h, delta, w, D, eps));
}

__global__ void rope_kv_kernel(uint16_t *q, uint16_t *cache_k, uint16_t *cache_v, const uint16_t *qkv,
                               const float *freqs_cis, const int *pos, int H, int Hkv, int Dh) {
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x, p = *pos + t, half = Dh / 2;
    const int q_rows = H * Dh, k_rows = Hkv * Dh, width = q_rows + 2 * k_rows;
    const uint16_t *row = qkv + (size_t)t * width;
    const float *cs_row = freqs_cis + (size_t)p * half * 2;
    for (int pair = threadIdx.x; pair < (q_rows + k_rows) / 2; pair += blockDim.x) {
        int o = 2 * pair;
        int r = o < q_rows ? o : o - q_rows;
        int i = (r % Dh) / 2;
        float x0 = dev_bf16_to_f32(row[o]), x1 = dev_bf16_to_f32(row[o + 1]);
        float c = cs_row[2 * i], s = cs_row[2 * i + 1];
        float y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
        float y1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
        uint16_t *dst = o < q_rows ? q + (size_t)t * q_rows + r : cache_k + (size_t)p * k_rows + r;
        dst[0] = dev_f32_to_bf16(y0);
        dst[1] = dev_f32_to_bf16(y1);
    }
    for (int i = threadIdx.x; i < k_rows; i += blockDim.x) cache_v[(size_t)p * k_rows + i] = row[q_rows + k_rows + i];
}

void engine_rope_kv(uint16_t *q, uint16_t *cache_k, uint16_t *cache_v, const uint16_t *qkv, const float *freqs_cis,
                    const int *pos, int T, int H, int Hkv, int Dh, cudaStream_t st) {
    REQUIRE(T >= 1 && Dh % 2 == 0, "T %d Dh %d", T, Dh);
    cudaCheck(engine_launch(rope_kv_kernel, dim3(T), dim3(256), 0, st, q, cache_k, cache_v, qkv, freqs_cis, pos, H, Hkv,
                            Dh));
}

__global__ void swiglu_pairs_kernel(uint16_t *hidden, const uint16_t *gu, size_t n) {
    pdl_launch_dependents();
    pdl_wait();
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float gate = dev_bf16_to_f32(gu[2 * i]), up = dev_bf16_to_f32(gu[2 * i + 1]);
    float silu = rbf(gate / (1.0f + expf(-gate)));
    hidden[i] = dev_f32_to_bf16(__fmul_rn(silu, up));
}

void engine_swiglu_pairs(uint16_t *hidden, const uint16_t *gu, int T, int F, cudaStream_t st) {
    size_t n = (size_t)T * (size_t)F;
    REQUIRE(n > 0, "T %d F %d", T, F);
    cudaCheck(engine_launch(swiglu_pairs_kernel, dim3(ceil_div((long long)n, 256)), dim3(256), 0, st, hidden, gu, n));
}

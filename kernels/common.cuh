// common.cuh: what every kernels/*.cu shares: checked CUDA and cuBLAS calls, launcher preconditions, bf16 <-> float
// on the device (the same rounding as the host's f32_to_bf16 in common/tensor.h), activation loads and stores for
// either precision, 16-byte vectors of 8 bf16 with the per-vector pieces of RMSNorm and RoPE, and a block-wide
// sum/max.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include "kernels.h"

extern "C" __attribute__((noreturn)) void fatal(const char *fmt, ...);  // common/util.c (util.h is C-only)

// cudaCheck(cudaMemcpy(...)): on failure, "fatal: kernels/x.cu:12: cudaMemcpy(...): an illegal memory access ...".
#define cudaCheck(call)                                                                                           \
    do {                                                                                                          \
        cudaError_t err_ = (call);                                                                                \
        if (err_ != cudaSuccess) fatal("%s:%d: %s: CUDA error %s: %s", __FILE__, __LINE__, #call,                 \
                                       cudaGetErrorName(err_), cudaGetErrorString(err_));                         \
    } while (0)
#define cublasCheck(call)                                                                                         \
    do {                                                                                                          \
        cublasStatus_t st_ = (call);                                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS) fatal("%s:%d: %s: cuBLAS error %d (%s)", __FILE__, __LINE__, #call,     \
                                                (int)st_, cublasGetStatusString(st_));                            \
    } while (0)
// After a <<<...>>> launch: catches bad launch configurations at once (errors inside kernels surface at the next sync).
#define cudaCheckLaunch() cudaCheck(cudaGetLastError())
// A launcher's precondition: "fatal: kernels/rope.cu:40: rope_forward_cuda: head_dim % 2 == 0 failed (head_dim 127)".
#define REQUIRE(cond, fmt, ...)                                                                                   \
    do {                                                                                                          \
        if (!(cond)) fatal("%s:%d: %s: %s failed (" fmt ")", __FILE__, __LINE__, __func__, #cond, __VA_ARGS__);   \
    } while (0)

// The shared cuBLAS handles (device.cu); created by cuda_init or on first use.
cublasHandle_t kernels_cublas(void);
cublasLtHandle_t kernels_cublaslt(void);
void *kernels_cublaslt_workspace(size_t *bytes);

// ---- bf16 on the device ---------------------------------------------------------------------------------------------
__device__ __forceinline__ float dev_bf16_to_f32(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ uint16_t dev_f32_to_bf16(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN stays a (quiet) NaN
    u += 0x7fffu + ((u >> 16) & 1u);                                            // round to nearest, ties to even
    return (uint16_t)(u >> 16);
}
__device__ __forceinline__ float dev_act_round(float x, int is_bf16) {
    return is_bf16 ? dev_bf16_to_f32(dev_f32_to_bf16(x)) : x;
}
// Element i of an activation buffer (bf16 or float), and its store with the rounding of that precision.
__device__ __forceinline__ float load_act(const void *p, size_t i, int is_bf16) {
    return is_bf16 ? dev_bf16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}
__device__ __forceinline__ void store_act(void *p, size_t i, float v, int is_bf16) {
    if (is_bf16) ((uint16_t *)p)[i] = dev_f32_to_bf16(v);
    else ((float *)p)[i] = v;
}

__device__ __forceinline__ float dev_round_bf16(float x) { return dev_bf16_to_f32(dev_f32_to_bf16(x)); }

// ---- 16-byte vectors of 8 bf16 (an int4 holds 4 pairs; element 2k is the low half of word k) -----------------------
__device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ uint32_t pack_bf16x2(float lo, float hi) {
    return (uint32_t)dev_f32_to_bf16(lo) | ((uint32_t)dev_f32_to_bf16(hi) << 16);
}
__device__ __forceinline__ void unpack_bf16x8(int4 v, float *f) {
    const uint32_t u[4] = {(uint32_t)v.x, (uint32_t)v.y, (uint32_t)v.z, (uint32_t)v.w};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        f[2 * k] = bf16_lo(u[k]);
        f[2 * k + 1] = bf16_hi(u[k]);
    }
}
__device__ __forceinline__ int4 pack_bf16x8(const float *f) {
    return make_int4((int)pack_bf16x2(f[0], f[1]), (int)pack_bf16x2(f[2], f[3]), (int)pack_bf16x2(f[4], f[5]),
                     (int)pack_bf16x2(f[6], f[7]));
}
// x + d in bf16 (the residual add: a bf16 tensor plus a bf16 tensor)
__device__ __forceinline__ int4 add_bf16x8(int4 x, int4 d) {
    float a[8], b[8];
    unpack_bf16x8(x, a);
    unpack_bf16x8(d, b);
#pragma unroll
    for (int i = 0; i < 8; i++) a[i] += b[i];
    return pack_bf16x8(a);
}
// Meta's RMSNorm, the pieces of one vector: ss + the sum of the squares (in double, as the CPU reference), and
// bf16(bf16(x * r) * w) with r = rsqrt(mean(x²) + eps)
__device__ __forceinline__ double sumsq_bf16x8(int4 x, double ss) {
    float f[8];
    unpack_bf16x8(x, f);
#pragma unroll
    for (int i = 0; i < 8; i++) ss += (double)f[i] * (double)f[i];
    return ss;
}
__device__ __forceinline__ int4 rmsnorm_bf16x8(int4 x, int4 w, float r) {
    float f[8], g[8];
    unpack_bf16x8(x, f);
    unpack_bf16x8(w, g);
#pragma unroll
    for (int i = 0; i < 8; i++) f[i] = __fmul_rn(dev_round_bf16(__fmul_rn(f[i], r)), g[i]);
    return pack_bf16x8(f);
}
// RoPE of one interleaved pair, written without contraction so it rounds exactly like the CPU's x0*c - x1*s
__device__ __forceinline__ void rope_pair(float x0, float x1, float c, float s, float *y0, float *y1) {
    *y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    *y1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}
// 8 bf16 (4 pairs) rotated by cs[2k], cs[2k+1] = (cos, sin) of pair k; bf16 results
__device__ __forceinline__ int4 rope_bf16x8(int4 x, const float *cs) {
    float f[8];
    unpack_bf16x8(x, f);
#pragma unroll
    for (int k = 0; k < 4; k++) rope_pair(f[2 * k], f[2 * k + 1], cs[2 * k], cs[2 * k + 1], &f[2 * k], &f[2 * k + 1]);
    return pack_bf16x8(f);
}
// The same 8 values at position p: pairs i0 .. i0+3 of a head (i0 a multiple of 4) rotated by row p of freqs_cis
// [S, Dh/2, 2] (half = Dh/2 pairs per row), the (cos, sin) read as two 16-byte loads
__device__ __forceinline__ int4 rope_bf16x8_at(int4 x, const float *freqs_cis, int p, int half, int i0) {
    const float4 *cs4 = (const float4 *)(freqs_cis + ((size_t)p * half + i0) * 2);
    const float4 c01 = cs4[0], c23 = cs4[1];
    const float cs[8] = {c01.x, c01.y, c01.z, c01.w, c23.x, c23.y, c23.z, c23.w};
    return rope_bf16x8(x, cs);
}

// ---- block reductions (blockDim.x a multiple of 32, at most 1024) ----------------------------------------------------
__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
// Every thread of the block gets the result. `shared` holds 32 floats; the call synchronises the block.
__device__ __forceinline__ float block_sum(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();  // `shared` may still be read from a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : 0.0f;
    return warp_sum(v);
}
__device__ __forceinline__ float block_max(float v, float *shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < n_warps ? shared[lane] : -INFINITY;
    return warp_max(v);
}

static inline int ceil_div(long long a, long long b) { return (int)((a + b - 1) / b); }

// common.cuh: what every kernels/*.cu shares: checked CUDA and cuBLAS calls, launcher preconditions, bf16 <-> float
// on the device (the same rounding as the host's f32_to_bf16 in common/tensor.h), activation loads and stores for
// either precision, and a block-wide sum/max.
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

// device.cu: the device query, memory helpers and the shared cuBLAS/cublasLt handles (see kernels.h).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

static int g_device = -1;
static cublasHandle_t g_cublas;
static cublasLtHandle_t g_cublaslt;
static void *g_lt_workspace;
static const size_t LT_WORKSPACE_BYTES = 32u << 20;  // cublasLt picks faster algorithms with room to split K

extern "C" int cuda_device_count(void) {
    int n = 0;
    // No driver or no GPU: cudaGetDeviceCount returns an error (cudaErrorNoDevice, cudaErrorInsufficientDriver, ...).
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky-free error so later calls are not confused by it
        return 0;
    }
    return n;
}

extern "C" void cuda_init(int device) {
    if (g_device == device) return;
    int n = cuda_device_count();
    if (device < 0 || device >= n) fatal("cuda_init: device %d requested, %d CUDA devices found", device, n);
    cudaCheck(cudaSetDevice(device));
    if (g_device < 0) {
        cublasCheck(cublasCreate(&g_cublas));
        // Pedantic fp32 products in PREC_FP32 are requested per call; the default math mode never uses TF32.
        cublasCheck(cublasSetMathMode(g_cublas, CUBLAS_DEFAULT_MATH));
        cublasCheck(cublasLtCreate(&g_cublaslt));
        cudaCheck(cudaMalloc(&g_lt_workspace, LT_WORKSPACE_BYTES));
    }
    g_device = device;
}

void matmul_free_scratch(void);  // matmul_cublas.cu

// Everything cuda_init made, and the scratch of the products, freed: a clean exit for compute-sanitizer's leak check.
extern "C" void cuda_shutdown(void) {
    if (g_device < 0) return;
    cudaCheck(cudaDeviceSynchronize());
    matmul_free_scratch();
    cudaCheck(cudaFree(g_lt_workspace));
    cublasCheck(cublasLtDestroy(g_cublaslt));
    cublasCheck(cublasDestroy(g_cublas));
    g_lt_workspace = NULL, g_device = -1;
}

static void ensure_init(void) {
    if (g_device < 0) cuda_init(0);
}
cublasHandle_t kernels_cublas(void) {
    ensure_init();
    return g_cublas;
}
cublasLtHandle_t kernels_cublaslt(void) {
    ensure_init();
    return g_cublaslt;
}
void *kernels_cublaslt_workspace(size_t *bytes) {
    ensure_init();
    *bytes = LT_WORKSPACE_BYTES;
    return g_lt_workspace;
}

extern "C" void cuda_device_describe(int device, char *buf, size_t n) {
    cudaDeviceProp prop;
    cudaCheck(cudaGetDeviceProperties(&prop, device));
    snprintf(buf, n, "%s (sm_%d%d, %.1f GiB)", prop.name, prop.major, prop.minor,
             (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
}

extern "C" void *cuda_malloc(size_t bytes) {
    ensure_init();
    void *p = NULL;
    cudaError_t err = cudaMalloc(&p, bytes ? bytes : 1);
    if (err != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        fatal("cuda_malloc: cannot allocate %zu bytes on the GPU (%s; %zu of %zu bytes free)", bytes,
              cudaGetErrorString(err), free_b, total_b);
    }
    return p;
}
extern "C" void cuda_free(void *p) {
    if (p) cudaCheck(cudaFree(p));
}
extern "C" void cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) {
    ensure_init();
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
extern "C" void cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) {
    ensure_init();
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
extern "C" void cuda_memcpy_d2d(void *dst, const void *src, size_t bytes) {
    ensure_init();
    cudaCheck(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
extern "C" void cuda_memset(void *dst, int byte, size_t bytes) {
    ensure_init();
    cudaCheck(cudaMemset(dst, byte, bytes));
}
extern "C" void cuda_synchronize(void) {
    ensure_init();
    cudaCheck(cudaDeviceSynchronize());
}
extern "C" void cuda_poison(void *dst, size_t bytes) { cuda_memset(dst, 0xFF, bytes); }

extern "C" void cuda_upload_act(void *dst, const float *src, size_t n, Precision p) {
    if (p == PREC_FP32) {
        cuda_memcpy_h2d(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *tmp = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
    if (!tmp) fatal("cuda_upload_act: out of host memory (%zu elements)", n);
    for (size_t i = 0; i < n; i++) tmp[i] = f32_to_bf16(src[i]);
    cuda_memcpy_h2d(dst, tmp, n * sizeof(uint16_t));
    free(tmp);
}

extern "C" void cuda_download_act(float *dst, const void *src, size_t n, Precision p) {
    if (p == PREC_FP32) {
        cuda_memcpy_d2h(dst, src, n * sizeof(float));
        return;
    }
    uint16_t *tmp = (uint16_t *)malloc(n * sizeof(uint16_t) + 1);
    if (!tmp) fatal("cuda_download_act: out of host memory (%zu elements)", n);
    cuda_memcpy_d2h(tmp, src, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(tmp[i]);
    free(tmp);
}

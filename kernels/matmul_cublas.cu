// matmul_cublas.cu: the products with weights, twins of matmul_forward_cpu and logits_forward_cpu.
//   out[T, OC] = inp[T, C] · W[OC, C]ᵀ      W bf16, row-major (nn.Linear layout), possibly a row slice (one head)
// cuBLAS is column-major: a row-major [T, OC] result is a column-major [OC, T] matrix, so we ask for
//   outᵀ[OC, T] = op(W)[OC, C] · inpᵀ[C, T]  with W read as a column-major [C, OC] matrix and op = transpose.
// PREC_BF16: bf16 x bf16, fp32 accumulation (CUBLAS_COMPUTE_32F), bf16 or fp32 result.
// PREC_FP32: the weight is upcast into a float scratch buffer and the product is pedantic fp32 (never TF32), the
// ground truth of the fp32 mode. Two entry points: cublasGemmEx (matmul_forward_cuda, logits_forward_cuda) and
// cublasLt (matmul_lt_forward_cuda).
#include "common.cuh"

static float *g_w_f32;       // scratch: the weight upcast to float (PREC_FP32 only)
static size_t g_w_f32_elems;

__global__ void bf16_to_f32_kernel(float *out, const uint16_t *in, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = dev_bf16_to_f32(in[i]);
}

static const float *weight_as_f32(const uint16_t *weight, size_t n) {
    if (n > g_w_f32_elems) {
        if (g_w_f32) cudaCheck(cudaFree(g_w_f32));
        g_w_f32 = (float *)cuda_malloc(n * sizeof(float));
        g_w_f32_elems = n;
    }
    bf16_to_f32_kernel<<<ceil_div((long long)n, 256), 256>>>(g_w_f32, weight, n);
    cudaCheckLaunch();
    return g_w_f32;
}

// Frees the fp32 scratch (cuda_shutdown calls it).
void matmul_free_scratch(void) {
    if (g_w_f32) cudaCheck(cudaFree(g_w_f32));
    g_w_f32 = NULL, g_w_f32_elems = 0;
}

#define REQUIRE_GEMM(T, C, OC) REQUIRE((T) >= 0 && (C) > 0 && (OC) > 0, "T %d C %d OC %d", (T), (C), (OC))

// out_f32: the result type is float (logits, or PREC_FP32), else bf16.
static void gemm_ex(void *out, int out_f32, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    const float alpha = 1.0f, beta = 0.0f;
    cublasHandle_t handle = kernels_cublas();
    if (p == PREC_BF16) {
        cublasCheck(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, OC, T, C, &alpha, weight, CUDA_R_16BF, C, inp,
                                 CUDA_R_16BF, C, &beta, out, out_f32 ? CUDA_R_32F : CUDA_R_16BF, OC, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    } else {
        const float *w = weight_as_f32(weight, (size_t)OC * (size_t)C);
        cublasCheck(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, OC, T, C, &alpha, w, CUDA_R_32F, C, inp, CUDA_R_32F,
                                 C, &beta, out, CUDA_R_32F, OC, CUBLAS_COMPUTE_32F_PEDANTIC, CUBLAS_GEMM_DEFAULT));
    }
}

extern "C" void matmul_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC,
                                    Precision p) {
    REQUIRE_GEMM(T, C, OC);
    if (T == 0) return;
    gemm_ex(out, p == PREC_FP32, inp, weight, T, C, OC, p);
}

extern "C" void logits_forward_cuda(float *logits, const void *inp, const uint16_t *weight, int T, int C, int V,
                                    Precision p) {
    REQUIRE_GEMM(T, C, V);
    if (T == 0) return;
    gemm_ex(logits, 1, inp, weight, T, C, V, p);
}

extern "C" void matmul_lt_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC,
                                       Precision p) {
    REQUIRE_GEMM(T, C, OC);
    if (T == 0) return;
    cudaDataType_t type = p == PREC_BF16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t compute = p == PREC_BF16 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_PEDANTIC;
    const void *w = p == PREC_BF16 ? (const void *)weight : (const void *)weight_as_f32(weight, (size_t)OC * C);
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a_layout, b_layout, d_layout;
    cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    cublasCheck(cublasLtMatmulDescCreate(&desc, compute, CUDA_R_32F));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof trans_a));
    cublasCheck(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof trans_b));
    cublasCheck(cublasLtMatrixLayoutCreate(&a_layout, type, C, OC, C));  // W as column-major [C, OC]
    cublasCheck(cublasLtMatrixLayoutCreate(&b_layout, type, C, T, C));   // inpᵀ [C, T]
    cublasCheck(cublasLtMatrixLayoutCreate(&d_layout, type, OC, T, OC)); // outᵀ [OC, T]
    size_t ws_bytes = 0;
    void *ws = kernels_cublaslt_workspace(&ws_bytes);
    cublasLtMatmulPreference_t pref;
    cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
    cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                     sizeof ws_bytes));
    cublasLtMatmulHeuristicResult_t heuristic;
    int found = 0;
    cublasCheck(cublasLtMatmulAlgoGetHeuristic(kernels_cublaslt(), desc, a_layout, b_layout, d_layout, d_layout, pref, 1,
                                               &heuristic, &found));
    if (found == 0) fatal("matmul_lt_forward_cuda: cublasLt has no algorithm for T %d C %d OC %d (%s)", T, C, OC,
                          precision_name(p));
    const float alpha = 1.0f, beta = 0.0f;
    cublasCheck(cublasLtMatmul(kernels_cublaslt(), desc, &alpha, w, a_layout, inp, b_layout, &beta, out, d_layout, out,
                               d_layout, &heuristic.algo, ws, ws_bytes, 0));
    cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
    cublasCheck(cublasLtMatrixLayoutDestroy(a_layout));
    cublasCheck(cublasLtMatrixLayoutDestroy(b_layout));
    cublasCheck(cublasLtMatrixLayoutDestroy(d_layout));
    cublasCheck(cublasLtMatmulDescDestroy(desc));
}

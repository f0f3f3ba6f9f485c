// attention.cu: causal self-attention on the GPU; twins of attention_scores_cpu, attention_mask_cpu,
// attention_values_cpu, attention_head_forward_cpu and attention_forward_cpu (all heads, GQA).
//
//   scores[h, t, j] = q[t, h] · k[j, kv(h)] / sqrt(Dh)       fp32; -inf for j > start_pos + t when masking
//   att[h, t, :]    = softmax(scores[h, t, :])                softmax.cu, fp32 then rounded
//   out[t, h, :]    = sum_j att[h, t, j] * v[j, kv(h), :]     fp32 accumulation, then rounded
// with kv(h) = h / (H / Hkv): the caches [Tk, Hkv, Dh] are read in place, never repeated.
// One block per (query row t, head h). This is the plain version for the walkthrough and correctness; it keeps the
// whole [H, T, Tk] matrix because the chapters draw it.
#include "common.cuh"

#define MAX_HEAD_DIM 1024

void softmax_rows_launch(float *probs, const float *scores, int n_rows, int n_cols, int is_bf16);  // softmax.cu

// mask_start < 0: no mask. q rows are q_stride apart, k rows k_stride apart (elements).
__global__ void attention_scores_kernel(float *scores, const void *q, size_t q_stride, const void *k, size_t k_stride,
                                        int T, int Tk, int n_heads, int n_rep, int head_dim, int mask_start,
                                        int is_bf16) {
    extern __shared__ float q_row[];  // [head_dim]
    int t = blockIdx.x, h = blockIdx.y, kv = h / n_rep;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x)
        q_row[d] = load_act(q, (size_t)t * q_stride + (size_t)h * head_dim + d, is_bf16);
    __syncthreads();
    float scale = sqrtf((float)head_dim);
    float *row = scores + ((size_t)h * (size_t)T + (size_t)t) * (size_t)Tk;
    for (int j = threadIdx.x; j < Tk; j += blockDim.x) {
        if (mask_start >= 0 && j > mask_start + t) {
            row[j] = -INFINITY;
            continue;
        }
        size_t k_base = (size_t)j * k_stride + (size_t)kv * head_dim;
        float dot = 0.0f;
        for (int d = 0; d < head_dim; d++) dot += q_row[d] * load_act(k, k_base + d, is_bf16);
        row[j] = __fdiv_rn(dot, scale);
    }
}

__global__ void attention_mask_kernel(float *scores, int T, int Tk, int start_pos) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= (size_t)T * (size_t)Tk) return;
    int t = (int)(idx / (size_t)Tk), j = (int)(idx % (size_t)Tk);
    if (j > start_pos + t) scores[idx] = -INFINITY;
}

__global__ void attention_values_kernel(void *out, size_t out_stride, const float *att, const void *v, size_t v_stride,
                                        int T, int Tk, int n_rep, int head_dim, int is_bf16) {
    int t = blockIdx.x, h = blockIdx.y, kv = h / n_rep;
    const float *p = att + ((size_t)h * (size_t)T + (size_t)t) * (size_t)Tk;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < Tk; j++) {
            float w = p[j];
            if (w != 0.0f) acc += w * load_act(v, (size_t)j * v_stride + (size_t)kv * head_dim + d, is_bf16);
        }
        store_act(out, (size_t)t * out_stride + (size_t)h * head_dim + d, acc, is_bf16);
    }
}

static int threads_for(int n) {  // a multiple of 32, at least 32, at most 256
    int t = ((n + 31) / 32) * 32;
    return t < 32 ? 32 : t > 256 ? 256 : t;
}

static void scores_launch(float *scores, const void *q, size_t q_stride, const void *k, size_t k_stride, int T, int Tk,
                          int n_heads, int n_kv_heads, int head_dim, int mask_start, int is_bf16) {
    dim3 grid(T, n_heads);
    attention_scores_kernel<<<grid, threads_for(Tk), (size_t)head_dim * sizeof(float)>>>(
        scores, q, q_stride, k, k_stride, T, Tk, n_heads, n_heads / n_kv_heads, head_dim, mask_start, is_bf16);
    cudaCheckLaunch();
}

static void values_launch(void *out, size_t out_stride, const float *att, const void *v, size_t v_stride, int T, int Tk,
                          int n_heads, int n_kv_heads, int head_dim, int is_bf16) {
    dim3 grid(T, n_heads);
    attention_values_kernel<<<grid, threads_for(head_dim)>>>(out, out_stride, att, v, v_stride, T, Tk,
                                                              n_heads / n_kv_heads, head_dim, is_bf16);
    cudaCheckLaunch();
}

#define REQUIRE_SHAPE(T, Tk, head_dim, start_pos)                                                                   \
    REQUIRE((T) >= 0 && (head_dim) > 0 && (head_dim) <= MAX_HEAD_DIM && (start_pos) >= 0 && (Tk) >= (start_pos) + (T), \
            "T %d Tk %d head_dim %d start_pos %d", (T), (Tk), (head_dim), (start_pos))

extern "C" void attention_scores_cuda(float *scores, const void *q, const void *k, int T, int Tk, int head_dim,
                                      Precision p) {
    REQUIRE_SHAPE(T, Tk, head_dim, 0);
    if (T == 0 || Tk == 0) return;
    scores_launch(scores, q, (size_t)head_dim, k, (size_t)head_dim, T, Tk, 1, 1, head_dim, -1, p == PREC_BF16);
}

extern "C" void attention_mask_cuda(float *scores, int T, int Tk, int start_pos, Precision p) {
    REQUIRE_SHAPE(T, Tk, 1, start_pos);
    size_t n = (size_t)T * (size_t)Tk;
    if (n == 0) return;
    attention_mask_kernel<<<ceil_div((long long)n, 256), 256>>>(scores, T, Tk, start_pos);
    cudaCheckLaunch();
}

extern "C" void attention_values_cuda(void *out, const float *probs, const void *v, int T, int Tk, int head_dim,
                                      Precision p) {
    REQUIRE_SHAPE(T, Tk, head_dim, 0);
    if (T == 0) return;
    values_launch(out, (size_t)head_dim, probs, v, (size_t)head_dim, T, Tk, 1, 1, head_dim, p == PREC_BF16);
}

extern "C" void attention_forward_cuda(void *out, float *att, const void *q, const void *k_cache, const void *v_cache,
                                       int T, int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos,
                                       Precision p) {
    REQUIRE_SHAPE(T, Tk, head_dim, start_pos);
    REQUIRE(n_heads > 0 && n_kv_heads > 0 && n_heads % n_kv_heads == 0 && n_heads <= 65535,
            "n_heads %d n_kv_heads %d", n_heads, n_kv_heads);
    REQUIRE(att != NULL, "att %p", (void *)att);
    if (T == 0) return;
    int is_bf16 = p == PREC_BF16;
    size_t q_stride = (size_t)n_heads * head_dim, kv_stride = (size_t)n_kv_heads * head_dim;
    scores_launch(att, q, q_stride, k_cache, kv_stride, T, Tk, n_heads, n_kv_heads, head_dim, start_pos, is_bf16);
    softmax_rows_launch(att, att, n_heads * T, Tk, is_bf16);
    values_launch(out, q_stride, att, v_cache, kv_stride, T, Tk, n_heads, n_kv_heads, head_dim, is_bf16);
}

extern "C" void attention_head_forward_cuda(void *out, float *att, const void *q, const void *k, const void *v, int T,
                                            int Tk, int head_dim, int start_pos, Precision p) {
    attention_forward_cuda(out, att, q, k, v, T, Tk, 1, 1, head_dim, start_pos, p);
}

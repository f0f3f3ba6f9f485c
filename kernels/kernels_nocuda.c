// kernels_nocuda.c: kernels.h for a build without nvcc (and for the sanitizer build): there is no GPU here.
// cuda_device_count() says 0, so steps and tests fall back to the CPU reference; any other call is a bug in the caller
// and exits with a message saying the build has no CUDA.
#include "kernels.h"
#include "util.h"

#define NO_CUDA(name) fatal("%s: this build has no CUDA (nvcc was not found when it was built): use --device cpu", name)

int cuda_device_count(void) { return 0; }
void cuda_init(int device) { NO_CUDA("cuda_init"); }
void cuda_shutdown(void) {}  // nothing was made
void cuda_device_describe(int device, char *buf, size_t n) { NO_CUDA("cuda_device_describe"); }
void *cuda_malloc(size_t bytes) { NO_CUDA("cuda_malloc"); }
void cuda_free(void *p) { NO_CUDA("cuda_free"); }
void cuda_memcpy_h2d(void *dst, const void *src, size_t bytes) { NO_CUDA("cuda_memcpy_h2d"); }
void cuda_memcpy_h2d_many(void *const *dst, const void *const *src, const size_t *bytes, int n) {
    NO_CUDA("cuda_memcpy_h2d_many");
}
void cuda_memcpy_d2h(void *dst, const void *src, size_t bytes) { NO_CUDA("cuda_memcpy_d2h"); }
void cuda_memcpy_d2d(void *dst, const void *src, size_t bytes) { NO_CUDA("cuda_memcpy_d2d"); }
void cuda_memset(void *dst, int byte, size_t bytes) { NO_CUDA("cuda_memset"); }
void cuda_synchronize(void) { NO_CUDA("cuda_synchronize"); }
void cuda_upload_act(void *dst, const float *src, size_t n, Precision p) { NO_CUDA("cuda_upload_act"); }
void cuda_download_act(float *dst, const void *src, size_t n, Precision p) { NO_CUDA("cuda_download_act"); }
void cuda_poison(void *dst, size_t bytes) { NO_CUDA("cuda_poison"); }

void embedding_forward_cuda(void *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V, Precision p) {
    NO_CUDA("embedding_forward_cuda");
}
void rmsnorm_forward_cuda(void *out, float *rstd, const void *inp, const uint16_t *weight, int T, int D, float eps,
                          Precision p) {
    NO_CUDA("rmsnorm_forward_cuda");
}
void matmul_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    NO_CUDA("matmul_forward_cuda");
}
void matmul_lt_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p) {
    NO_CUDA("matmul_lt_forward_cuda");
}
void logits_forward_cuda(float *logits, const void *inp, const uint16_t *weight, int T, int C, int V, Precision p) {
    NO_CUDA("logits_forward_cuda");
}
void rope_forward_cuda(void *out, const void *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                       int start_pos, Precision p) {
    NO_CUDA("rope_forward_cuda");
}
void attention_scores_cuda(float *scores, const void *q, const void *k, int T, int Tk, int head_dim, Precision p) {
    NO_CUDA("attention_scores_cuda");
}
void attention_mask_cuda(float *scores, int T, int Tk, int start_pos, Precision p) { NO_CUDA("attention_mask_cuda"); }
void softmax_forward_cuda(float *probs, const float *scores, int n_rows, int n_cols, Precision p) {
    NO_CUDA("softmax_forward_cuda");
}
void attention_values_cuda(void *out, const float *probs, const void *v, int T, int Tk, int head_dim, Precision p) {
    NO_CUDA("attention_values_cuda");
}
void attention_head_forward_cuda(void *out, float *att, const void *q, const void *k, const void *v, int T, int Tk,
                                 int head_dim, int start_pos, Precision p) {
    NO_CUDA("attention_head_forward_cuda");
}
void attention_forward_cuda(void *out, float *att, const void *q, const void *k_cache, const void *v_cache, int T,
                            int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos, Precision p) {
    NO_CUDA("attention_forward_cuda");
}
void residual_forward_cuda(void *out, const void *a, const void *b, size_t n, Precision p) {
    NO_CUDA("residual_forward_cuda");
}
void residual_rmsnorm_forward_cuda(void *h, void *out, const void *x, const void *delta, const uint16_t *weight, int T,
                                   int D, float eps, Precision p) {
    NO_CUDA("residual_rmsnorm_forward_cuda");
}
void swiglu_forward_cuda(void *out, const void *gate, const void *up, size_t n, Precision p) {
    NO_CUDA("swiglu_forward_cuda");
}

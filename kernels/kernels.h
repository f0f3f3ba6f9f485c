// kernels.h: the CUDA path of one Llama-3 layer, as plain C functions. The only header the rest of the project includes
// from kernels/: no CUDA types here, device buffers are void* / uint16_t* / float* / int32_t*.
//
// Every launcher has the same name as its CPU twin in common/ref/ref_ops.h with `_cuda` for `_cpu`, and the same
// arguments in the same order. Differences:
//   - pointers are DEVICE pointers (cuda_malloc); activations (void*) hold bf16 (2 bytes) with PREC_BF16 and float
//     with PREC_FP32: act_bytes(n, p) is the size. Attention weights and scores are always float, logits are float.
//   - RoPE takes freqs_cis in device memory: compute it with rope_freqs_cis_cpu and upload it (cuda_memcpy_h2d), so
//     both backends rotate by bit-identical cos/sin values.
// Launches go to the default stream and are asynchronous; cuda_memcpy_d2h and cuda_synchronize wait. Failures (a CUDA
// or cuBLAS error, a broken precondition) exit through fatal() naming the file, line and failing statement.
//
// Built from kernels/*.cu by nvcc when it is found; otherwise kernels/kernels_nocuda.c is linked instead, where
// cuda_device_count() returns 0 and every other function exits saying the build has no CUDA.
// Shapes use the names of ref_ops.h: T, Tk, D, H, Hkv, Dh, F, V.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ref/ref_moe.h"  // MoeWeights, MoeTrace
#include "ref/ref_ops.h"  // Precision, act_bytes

#ifdef __cplusplus
extern "C" {
#endif

// ---- device and memory ----------------------------------------------------------------------------------------------
// Number of usable CUDA devices: 0 when there is no GPU, no driver, or the build has no CUDA. Never exits.
int cuda_device_count(void);
// Selects the device and creates the cuBLAS handles (called on first use otherwise, with device 0).
void cuda_init(int device);
// Frees what cuda_init and the products allocated (the cuBLAS handles, workspaces); cuda_init may be called again.
void cuda_shutdown(void);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)" into buf.
void cuda_device_describe(int device, char *buf, size_t n);
void *cuda_malloc(size_t bytes);  // exits naming the size when the device is out of memory
void cuda_free(void *p);          // NULL is fine
void cuda_memcpy_h2d(void *dst_dev, const void *src_host, size_t bytes);
// n host buffers to their device buffers at once through pinned staging buffers and 8 host threads (the engine's
// loader, kernels/engine_load.cu): for a model's weights from the checkpoint's memory map, several times faster
// than cuda_memcpy_h2d's pageable copies.
void cuda_memcpy_h2d_many(void *const *dst_dev, const void *const *src_host, const size_t *bytes, int n);
void cuda_memcpy_d2h(void *dst_host, const void *src_dev, size_t bytes);  // waits for the work before it
void cuda_memcpy_d2d(void *dst_dev, const void *src_dev, size_t bytes);
void cuda_memset(void *dst_dev, int byte, size_t bytes);
void cuda_synchronize(void);
// Activations between a host float array and a device buffer of precision p (bf16: rounded to nearest even on upload;
// exact on download).
void cuda_upload_act(void *dst_dev, const float *src_host, size_t n, Precision p);
void cuda_download_act(float *dst_host, const void *src_dev, size_t n, Precision p);
// Fills a buffer with 0xFF bytes: NaN as bf16 and as float, so an element a kernel forgot to write shows up.
void cuda_poison(void *dst_dev, size_t bytes);

// ---- ops (see the CPU twins in ref_ops.h for the math and the rounding points) --------------------------------------
void embedding_forward_cuda(void *out, const int32_t *tokens, const uint16_t *table, int T, int D, int V, Precision p);
void rmsnorm_forward_cuda(void *out, float *rstd, const void *inp, const uint16_t *weight, int T, int D, float eps,
                          Precision p);  // rstd: device [T] or NULL
// x·Wᵀ through cublasGemmEx: bf16 x bf16 with fp32 accumulation and a bf16 result (PREC_BF16); in PREC_FP32 the
// weight is upcast to a float scratch copy and the product is fp32 (no TF32).
void matmul_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p);
// The same product through cublasLt (the engine's path); same results within accumulation order.
void matmul_lt_forward_cuda(void *out, const void *inp, const uint16_t *weight, int T, int C, int OC, Precision p);
// logits[T, V] (float) = inp · Wᵀ with an fp32 result in either precision.
void logits_forward_cuda(float *logits, const void *inp, const uint16_t *weight, int T, int C, int V, Precision p);
// freqs_cis: device [>= start_pos + T, Dh/2, 2] floats from rope_freqs_cis_cpu. out may equal inp.
void rope_forward_cuda(void *out, const void *inp, const float *freqs_cis, int T, int n_heads, int head_dim,
                       int start_pos, Precision p);
// One head: scores [T, Tk] float; q [T, Dh], k [Tk, Dh] activations.
void attention_scores_cuda(float *scores, const void *q, const void *k, int T, int Tk, int head_dim, Precision p);
void attention_mask_cuda(float *scores, int T, int Tk, int start_pos, Precision p);
void softmax_forward_cuda(float *probs, const float *scores, int n_rows, int n_cols, Precision p);
void attention_values_cuda(void *out, const float *probs, const void *v, int T, int Tk, int head_dim, Precision p);
void attention_head_forward_cuda(void *out, float *att, const void *q, const void *k, const void *v, int T, int Tk,
                                 int head_dim, int start_pos, Precision p);
// All heads with GQA: q [T, H, Dh], caches [Tk, Hkv, Dh], out [T, H, Dh], att [H, T, Tk] float (required).
void attention_forward_cuda(void *out, float *att, const void *q, const void *k_cache, const void *v_cache, int T,
                            int Tk, int n_heads, int n_kv_heads, int head_dim, int start_pos, Precision p);
void residual_forward_cuda(void *out, const void *a, const void *b, size_t n, Precision p);
// h = x + delta, out = rmsnorm(h) * weight in one kernel (kernels/residual_rmsnorm.cu); h may equal x, out aliases
// nothing.
void residual_rmsnorm_forward_cuda(void *h, void *out, const void *x, const void *delta, const uint16_t *weight, int T,
                                   int D, float eps, Precision p);
void swiglu_forward_cuda(void *out, const void *gate, const void *up, size_t n, Precision p);

// ---- tensor parallelism: NCCL's collectives (kernels/nccl.cu) -------------------------------------------------------
// One communicator per process, one process per GPU (kernels/engine_ranks.h starts them): rank r selects GPU r, then
// calls nccl_comm_init with the id that one process made with nccl_unique_id and passed to all. NCCL is opened at
// run time (libnccl.so.2 through the usual library search, LD_LIBRARY_PATH included): programs that never use
// tensor parallelism run without it. NCCL_NVLS_ENABLE is set to 0 before NCCL starts (whatever the environment
// held): NVLink multicast is never used, and no multicast API is called. The collectives are queued on the default
// stream, or on `stream` (a cudaStream_t) in the _on forms, which a CUDA graph may capture.
#define NCCL_ID_BYTES 128
int nccl_available(void);  // 1 when NCCL can be used (a build with nccl.h, libnccl.so.2 found), else 0; never exits
// Sets NCCL_NVLS_ENABLE=0 in this process's environment (NCCL reads it there; the ranks inherit it), overwriting
// any value (kernels/engine_ranks.c: plain C, in every build).
void nccl_nvls_pin(void);
int nccl_version(void);    // NCCL's version code, e.g. 22809 for 2.28.9
void nccl_unique_id(uint8_t id[NCCL_ID_BYTES]);
void *nccl_comm_init(const uint8_t id[NCCL_ID_BYTES], int n_ranks, int rank);  // blocks until every rank joined
// In place: buf (device, n activations of precision p) becomes the sum over the ranks of their buf.
void nccl_all_reduce_sum(void *comm, void *buf, size_t n, Precision p);
void nccl_all_reduce_sum_on(void *comm, void *buf, size_t n, Precision p, void *stream);
// recv [n_ranks * n_per_rank] (device) receives every rank's send [n_per_rank] in rank order (send may be recv's
// own slice: in place).
void nccl_all_gather_f32(void *comm, const float *send, float *recv, size_t n_per_rank);
void nccl_all_gather_f32_on(void *comm, const float *send, float *recv, size_t n_per_rank, void *stream);
// buf [n] (device) of rank `root` on every rank.
void nccl_broadcast_i32_on(void *comm, int32_t *buf, size_t n, int root, void *stream);
void nccl_comm_destroy(void *comm);

// ---- the mixture-of-experts feed-forward (kernels/moe_gate.cu, kernels/moe_experts.cu; twins in ref/ref_moe.h) --------
// gate_scores [T, E] (float) = softmax(gate_logits [T, E] activations) in fp32; topk_idx [T, k] (int32) and topk_w
// [T, k] (float): the k largest scores (ties in torch.topk's CPU order, ref/topk_torch.h), renormalised when
// norm_topk_prob and k > 1.
void moe_gate_topk_cuda(float *gate_scores, int32_t *topk_idx, float *topk_w, const void *gate_logits, int T, int E,
                        int k, bool norm_topk_prob, Precision p);
// The T*k picks grouped by expert id (a stable counting sort): sorted [T*k], pos [T*k] its inverse, offsets [E+1].
void moe_sort_cuda(int32_t *sorted, int32_t *pos, int32_t *offsets, const int32_t *topk_idx, int T, int k, int E);
// rows [n, D] = x[sorted[i] / k]: the tokens in expert order (activations).
void moe_gather_cuda(void *rows, const void *x, const int32_t *sorted, int n, int k, int D, Precision p);
// One SwiGLU expert on n rows: out [n, D] = w2(silu(w1 x) * w3 x): three cuBLAS products and the swiglu kernel.
void moe_expert_forward_cuda(void *out, const void *x, int n, const uint16_t *w1, const uint16_t *w2,
                             const uint16_t *w3, int D, int F, Precision p);
// routed_out [T, D] = Σ_j topk_w[t,j] · expert_out[pos[t k + j]] in expert-id order, fp32 sums, rounded once.
void moe_combine_cuda(void *routed_out, const void *expert_out, const int32_t *pos, const int32_t *topk_idx,
                      const float *topk_w, int T, int k, int D, Precision p);
// The whole MoE feed-forward as MiniMind's moe_infer runs it: gate, top-k, tokens sorted by expert, ONE product per
// expert segment (the segment sizes come back to the host: one small synchronous copy), the weighted sum, the shared
// experts. x, out [T, D] activations; w holds DEVICE weight pointers (host arrays of them). Scratch is allocated and
// freed inside. host (optional, sized for T, D, F, E, k, S) receives every intermediate, downloaded.
void moe_forward_cuda(void *out, MoeTrace *host, const void *x, const MoeWeights *w, int T, int D, int F, Precision p);

#ifdef __cplusplus
}
#endif

// engine_ops.h: the engine's kernels as C-callable launchers. Kernels-internal: kernels/engine_*.cu and the engine's
// op tests (tests/unit/test_engine_ops_gpu.c) include it; programs use engine.h. Pointers are device pointers,
// bf16 values are uint16_t; each launcher checks its preconditions (REQUIRE: file, line and the failed condition)
// and queues its kernel(s) on launch->stream.
//
// Each fused kernel computes, with the rounding points of common/ref/ref_ops.h, what these CPU reference ops compute
// in sequence (the CPU twin its test composes, tests/unit/test_engine_ops_gpu.c):
//   engine_gemv RMSNORM -> QKV_ROPE   rmsnorm_forward_cpu, matmul_forward_cpu (wq|wk|wv packed), rope_forward_cpu of
//                                     q and k at position *pos; k and v stored into the cache row *pos
//   engine_gemv COPY -> RESIDUAL      matmul_forward_cpu, residual_forward_cpu (h = h + x·Wᵀ)
//   engine_gemv RMSNORM -> SWIGLU     rmsnorm_forward_cpu, matmul_forward_cpu of w1 and w3, swiglu_forward_cpu
//   engine_gemv RMSNORM -> F32        rmsnorm_forward_cpu, logits_forward_cpu
//   engine_add_rmsnorm                residual_forward_cpu (h = h + delta), rmsnorm_forward_cpu
//   engine_rope_kv                    rope_forward_cpu of q and k at positions *pos + t, k and v into the cache
//   engine_swiglu_pairs               swiglu_forward_cpu of the interleaved (gate, up) pairs
//   engine_attention(_short)          attention_forward_cpu over cache rows 0..*pos + t (the short kernel: after
//                                     engine_rope_kv's work, which it does itself)
// Shapes: names of ref_ops.h; QKV = (H + 2*Hkv)*Dh; S = rows of a layer's cache [S, Hkv*Dh].
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"  // the C headers it includes get C linkage there

#ifdef __CUDACC__
#include <cublas_v2.h>
#include <cuda_runtime.h>
#else
typedef struct CUstream_st *cudaStream_t;  // as cuda_runtime.h declares it: C callers need no CUDA header
typedef struct cublasContext *cublasHandle_t;  // as cublas_api.h declares it
#endif

#ifdef __cplusplus
extern "C" {
#endif

// How the engine's kernels are launched. The engine fills it from EngineOptions; a test may use {NULL, false, 0}.
typedef struct {
    cudaStream_t stream;  // NULL: the default stream
    bool pdl;             // programmatic dependent launch (engine_pdl.cuh); only meaningful on sm_90 and later
    int gemv_batch;       // engine_gemv's 16-byte loads per row per lane in one step: 2, 4 or 8; 0: chosen per shape
} EngineLaunch;

// ---- the decode product y[OC] = W[OC, C] · x[C] with its prologue and epilogue (engine_gemv.cu) ----------------
// Prologue: how the input vector x [C] reaches shared memory.
enum { GEMV_PRO_COPY = 0, GEMV_PRO_RMSNORM = 1 };
// Epilogue: what happens to the two fp32 sums of a row pair (o, o+1).
enum {
    GEMV_EPI_F32 = 0,       // out_f32[o] = y                                      (logits)
    GEMV_EPI_BF16 = 1,      // out[o] = bf16(y)
    GEMV_EPI_RESIDUAL = 2,  // resid[o] = bf16(resid[o] + bf16(y))                 (h = x + wo(...), out + w2(...))
    GEMV_EPI_QKV_ROPE = 3,  // q rows: RoPE -> q_out; k rows: RoPE -> cache_k[pos]; v rows -> cache_v[pos]
    GEMV_EPI_SWIGLU = 4     // (gate, up) pair -> hidden[o/2] = bf16(bf16(silu(gate)) * up)
};
typedef struct {
    const uint16_t *w;        // [OC, C]
    int C, OC;
    const uint16_t *x;        // PRO_COPY: [C]; PRO_RMSNORM: the residual stream row h [C]
    const uint16_t *norm_w;   // PRO_RMSNORM: [C]
    float eps;
    float *out_f32;           // EPI_F32
    uint16_t *out;            // EPI_BF16, EPI_SWIGLU (hidden), EPI_QKV_ROPE (q)
    uint16_t *resid;          // EPI_RESIDUAL
    // EPI_QKV_ROPE
    int q_rows, k_rows, head_dim;
    uint16_t *cache_k, *cache_v;  // this layer's [S, Hkv*Dh]
    const float *freqs_cis;   // [S, Dh/2, 2]
    const int *pos;           // device: the position of the token
} GemvArgs;
// C % 8 == 0, w and x 16-byte aligned; QKV_ROPE and SWIGLU need even OC and head_dim (SWIGLU: head_dim = 2).
void engine_gemv(const GemvArgs *a, int pro, int epi, const EngineLaunch *launch);

// ---- row-wise kernels of the prefill path (engine_elementwise.cu) ------------------------------------------------
// h[t] = table[tokens[t] - vocab0] for the ids in [vocab0, vocab0 + V) (the table's rows: a rank's share of the
// vocabulary, all of it with vocab0 = 0), zeros for the others; t < T (a plain launch: it follows a host copy)
void engine_embedding(uint16_t *h, const int32_t *tokens, const uint16_t *table, int vocab0, int V, int T, int D,
                      const EngineLaunch *launch);
// xn[t] = rmsnorm(h[t]) * w; with delta != NULL first h[t] = bf16(h[t] + delta[t]) (the fused residual + norm).
void engine_add_rmsnorm(uint16_t *xn, uint16_t *h, const uint16_t *delta, const uint16_t *w, int T, int D, float eps,
                        const EngineLaunch *launch);
// qkv [T, QKV] -> q rotated [T, H*Dh]; k rotated and v into the cache rows start_pos + t (start_pos = *pos).
void engine_rope_kv(uint16_t *q, uint16_t *cache_k, uint16_t *cache_v, const uint16_t *qkv, const float *freqs_cis,
                    const int *pos, int T, int H, int Hkv, int Dh, const EngineLaunch *launch);
// h[i] = bf16(h[i] + bf16(sum[i])), i < n: the residual add of a row-parallel product whose fp32 partial sums were
// all-reduced (the rounding of engine_gemv's RESIDUAL epilogue)
void engine_residual_f32(uint16_t *h, const float *sum, size_t n, const EngineLaunch *launch);
// out[i] = bf16(in[i]), i < n
void engine_round_bf16(uint16_t *out, const float *in, size_t n, const EngineLaunch *launch);
// gu [T, 2F] interleaved (gate, up) -> hidden [T, F]
void engine_swiglu_pairs(uint16_t *hidden, const uint16_t *gu, int T, int F, const EngineLaunch *launch);
// Reads bytes at p (16-byte aligned, a multiple of 16) into L2 with `blocks` blocks (engine_model.cu: the wo matrix,
// beside attention); sink is a device int that is written only in a case that does not happen.
void engine_l2_fill(const void *p, size_t bytes, int *sink, int blocks, const EngineLaunch *launch);

// ---- attention over the KV cache (engine_attention.cu) -----------------------------------------------------------
// Causal attention of T queries at positions start_pos.. (= *pos) over cache rows 0..start_pos+t.
// q [T, H*Dh] -> out [T, H*Dh]. The keys of a row are cut into engine_attn_splits(T, S) chunks of a multiple of
// ATTN_PIECE keys, one block each. Scratch: scores [T*H*S] floats, stats [T*H*splits*2] floats, partial
// [T*H*splits*Dh] floats, counters [T*Hkv] ints (zero; left zero). Dh is 64, 128 or 256; H/Hkv at most 8.
#define ATTN_PIECE 64              // keys a block loads at once (16-byte loads, all in flight)
#define ATTN_MAX_SPLITS_DECODE 32  // T = 1: up to 32 chunks per kv head (8 kv heads -> 256 blocks at long contexts)
#define ATTN_MAX_SPLITS_PREFILL 16 // T > 1: the queries already give parallelism; bounds the scratch
int engine_attn_splits(int T, int S);
void engine_attention(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                      const int *pos, int T, int H, int Hkv, int Dh, int S, float *scores, float *stats,
                      float *partial, int *counters, const EngineLaunch *launch);
// A short prefill, T > 1 tokens with start_pos + T = max_keys <= ATTN_PIECE (known on the host): engine_rope_kv and
// engine_attention in one kernel, straight from the qkv product [T, QKV]; writes the cache rows of the T tokens and
// out, the same bits as the two-step path.
bool engine_attention_short_fits(int T, int max_keys);
void engine_attention_short(uint16_t *out, const uint16_t *qkv, const float *freqs_cis, uint16_t *cache_k,
                            uint16_t *cache_v, const int *pos, int T, int max_keys, int H, int Hkv, int Dh,
                            const EngineLaunch *launch);

// A long prefill (T >= ATTN_GEMM_MIN_T, start_pos known on the host): engine_attention's arithmetic with the two
// products through cuBLAS (tensor cores) and a softmax kernel between them; q rotated and the cache rows written
// (engine_rope_kv) before. Scratch: scores [T * H * (start_pos + T)] floats (the split kernels' [T * H * S] holds it).
// cublas runs on launch->stream.
#define ATTN_GEMM_MIN_T 64
bool engine_attention_gemm_fits(int T, int max_keys);
void engine_attention_gemm(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                           int start_pos, int T, int H, int Hkv, int Dh, float *scores, cublasHandle_t cublas,
                           const EngineLaunch *launch);

// ---- loading (engine_load.cu) --------------------------------------------------------------------------------------
// Copy jobs from host memory (the mmap) into one device allocation.
typedef struct {
    const uint8_t *src;       // host
    size_t dst_offset;        // bytes into the device allocation
    size_t rows, row_bytes;   // rows of row_bytes each
    size_t dst_row_pitch;     // bytes between destination rows (row_bytes = contiguous; 2*row_bytes = interleaved)
    size_t src_row_pitch;     // bytes between source rows: 0 or row_bytes = contiguous; more = a column slice
} UploadJob;
// Copies every job with n_threads host threads, each with two pinned staging buffers and its own stream, so that
// reading the page cache and the DMA overlap. Reads with pread() when src lies in one of the mapped files. A column
// slice (src_row_pitch > row_bytes: a rank's columns of wo or w2) is read as the whole span of its rows and the 2-D
// copy to the GPU picks the columns.
void engine_upload(const UploadJob *jobs, int n_jobs, uint8_t *dev_base, int device, int n_threads,
                   const MappedFile *files, int n_files, bool quiet);

#ifdef __cplusplus
}
#endif

// engine.h: the Llama-3 inference engine on one GPU: weights loaded once, prefill and decode through all layers with
// a KV cache, fused kernels, decode in one CUDA graph. The C API below has no CUDA types; a build without nvcc links
// kernels/engine_nocuda.c, where engine_available() is false and every other call exits saying so.
//
// Shapes (names of ref_ops.h): T tokens of a call, S = max_seq_len, L layers, D dim, H heads, Hkv kv heads, Dh head
// dim, F ffn hidden, V vocab, QKV = (H + 2*Hkv)*Dh.
//
// Device memory: exactly two allocations.
//   weights  (bf16)   per layer: attention_norm [D], wqkv [QKV, D] (wq, wk, wv rows packed: one product for all
//                     three), wo [D, H*Dh], ffn_norm [D], w13 [2F, D] (w1 and w3 rows INTERLEAVED: row 2i = gate i,
//                     row 2i+1 = up i, so one product yields the (gate, up) pairs that SiLU·up consumes), w2 [D, F];
//                     then tok_embeddings [V, D], norm [D], output [V, D] (shared with tok_embeddings when tied).
//   state             the KV cache [L][S][Hkv][Dh] bf16 (K and V), the activations sized for max_prefill tokens,
//                     the attention scratch, fp32 logits [V], the cuBLAS workspace.
// Tensor parallelism (DESIGN.md's --tp N, not implemented): the layout is ready for it: rank r would hold the
// wqkv rows of its heads (H/N query heads, Hkv/N kv heads), the w13 row pairs of its F/N slice, the columns of wo
// and w2 that match, and the cache of its kv heads; the wo and w2 products end in an all-reduce of D floats.
//
// Numerics: the rounding points of common/ref/ref_ops.h (bf16 activations, fp32 accumulation, RMSNorm with a double
// sum of squares, RoPE/softmax in fp32, bf16 attention weights, fp32 logits), so greedy tokens agree with
// common/ref/model_cpu.c; only accumulation order differs.
//
// Use:
//   EngineOptions o; engine_options_default(&o); o.max_seq_len = 2048;
//   Engine *e = engine_create(&ck, &o);                 // loads the weights (pinned staging, threads, overlap)
//   const float *logits = engine_forward(e, prompt, T, 0);    // prefill: logits [V] of the last token (host)
//   logits = engine_decode(e, next, T);                 // one token at position T through the CUDA graph
//   engine_free(e);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#ifndef _Noreturn
#define _Noreturn __attribute__((noreturn))  // util.h is C11; the CUDA files include it through this header
#endif
#endif
#include "formats/checkpoint.h"

typedef enum {
    ENGINE_GEMV_OURS = 0,  // decode products through engine_gemv.cu (16-byte streaming loads, fused prologue/epilogue)
    ENGINE_GEMV_CUBLAS = 1 // decode through the prefill path with T = 1 (cublasGemmEx), for comparison
} EngineGemv;

typedef struct {
    int device;            // CUDA device (default 0)
    int max_seq_len;       // S: positions the KV cache holds (default 2048)
    int max_prefill;       // tokens per forward call; longer prompts are prefilled in chunks (default min(S, 512))
    bool use_graphs;       // decode through one CUDA graph per step (default true)
    EngineGemv gemv;       // default ENGINE_GEMV_OURS
    int load_threads;      // host threads that stage weights (default 8)
    bool quiet;            // no progress line while loading
} EngineOptions;

typedef struct {
    char device_name[192];
    double load_s;              // mmap -> GPU, the whole upload
    size_t weight_bytes;        // the weights allocation
    size_t state_bytes;         // the cache + activations allocation
    size_t cache_bytes;         // of which the KV cache
    size_t bytes_per_token;     // weight bytes one decode step reads (every layer, final norm, output)
    size_t gpu_total_bytes;
    size_t gpu_used_bytes;      // total - free after creation (whole process)
} EngineInfo;

typedef struct Engine Engine;

void engine_options_default(EngineOptions *o);
// true when this build has CUDA and a device is there.
bool engine_available(void);
// Checks the model (bf16 or converted), measures what it needs and exits 1 with "the GPU has X GiB free, this model
// needs Y GiB (weights A, KV cache B for --max-seq-len S, activations C)" when the GPU is too small.
Engine *engine_create(const Checkpoint *ck, const EngineOptions *o);
void engine_free(Engine *e);
const EngineInfo *engine_info(const Engine *e);

// Runs tokens[0..T) at positions start_pos..start_pos+T-1 (chunked by max_prefill), writing their K/V into the
// cache; returns the fp32 logits [V] of the last token in pinned host memory, valid until the next call.
// Token ids outside [0, V) or positions past S are fatal (callers check user input first).
const float *engine_forward(Engine *e, const int32_t *tokens, int T, int start_pos);
// One token at position pos (cache rows 0..pos-1 must hold the tokens before it): the CUDA graph (or the plain
// launches without use_graphs). Returns the logits as engine_forward does.
const float *engine_decode(Engine *e, int32_t token, int pos);

// Switches the decode products (the graph is captured again at the next decode).
void engine_set_gemv(Engine *e, EngineGemv gemv);

// Timing with CUDA events (bench): milliseconds of one prefill of T tokens at start_pos 0, and of n decode steps
// at positions pos0..pos0+n-1 (the cache rows before pos0 must be filled, e.g. by a prefill).
double engine_time_prefill_ms(Engine *e, const int32_t *tokens, int T);
double engine_time_decode_ms(Engine *e, int32_t token, int pos0, int n);
// Device-to-device copy bandwidth of this GPU in bytes/s (cudaMemcpy of `bytes`, counted as read + write),
// median of `reps`: the limit decode is measured against.
double engine_copy_bandwidth(int device, size_t bytes, int reps);
// Peak device memory in use by the process since creation (cudaMemGetInfo samples), bytes.
size_t engine_peak_gpu_bytes(const Engine *e);

#ifdef __cplusplus
}
#endif

// ---- internal: the launchers that kernels/engine_*.cu share (CUDA translation units only) ---------------------------
#ifdef __CUDACC__
#include <cuda_runtime.h>

// Prologue of the decode product: how the input vector x [C] reaches shared memory.
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
void engine_gemv(const GemvArgs *a, int pro, int epi, cudaStream_t stream);

void engine_embedding(uint16_t *h, const int32_t *tokens, const uint16_t *table, int T, int D, cudaStream_t st);
// xn[t] = rmsnorm(h[t]) * w; with delta != NULL first h[t] = bf16(h[t] + delta[t]) (the fused residual + norm).
void engine_add_rmsnorm(uint16_t *xn, uint16_t *h, const uint16_t *delta, const uint16_t *w, int T, int D, float eps,
                        cudaStream_t st);
// qkv [T, QKV] -> q rotated [T, H*Dh]; k rotated and v into the cache rows start_pos + t (start_pos = *pos).
void engine_rope_kv(uint16_t *q, uint16_t *cache_k, uint16_t *cache_v, const uint16_t *qkv, const float *freqs_cis,
                    const int *pos, int T, int H, int Hkv, int Dh, cudaStream_t st);
// Reads bytes at p (16-byte aligned, a multiple of 16) into L2 with `blocks` blocks (engine_model.cu: the wo matrix,
// beside attention); sink is a device int that is written only in a case that does not happen.
void engine_l2_fill(const void *p, size_t bytes, int *sink, int blocks, cudaStream_t st);
// gu [T, 2F] interleaved (gate, up) -> hidden [T, F]
void engine_swiglu_pairs(uint16_t *hidden, const uint16_t *gu, int T, int F, cudaStream_t st);
// Causal attention of T queries at positions start_pos.. (= *pos) over cache rows 0..start_pos+t.
// q [T, H*Dh] -> out [T, H*Dh]. The keys of a row are cut into engine_attn_splits(T, S) chunks of a multiple of
// ATTN_PIECE keys, one block each (engine_attention.cu). Scratch: scores [T*H*S] floats, stats [T*H*splits*2] floats,
// partial [T*H*splits*Dh] floats, counters [T*Hkv] ints (zero; left zero).
#define ATTN_PIECE 64              // keys a block loads at once (16-byte loads, all in flight)
#define ATTN_MAX_SPLITS_DECODE 32  // T = 1: up to 32 chunks per kv head (8 kv heads -> 256 blocks at long contexts)
#define ATTN_MAX_SPLITS_PREFILL 16 // T > 1: the queries already give parallelism; bounds the scratch
int engine_attn_splits(int T, int S);
void engine_attention(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                      const int *pos, int T, int H, int Hkv, int Dh, int S, float *scores, float *stats,
                      float *partial, int *counters, cudaStream_t st);
// A short prefill, T > 1 tokens with start_pos + T = max_keys <= ATTN_PIECE (known on the host): engine_rope_kv and
// engine_attention in one kernel, straight from the qkv product [T, QKV]; writes the cache rows of the T tokens and
// out, the same bits as the two-step path.
bool engine_attention_short_fits(int T, int max_keys);
void engine_attention_short(uint16_t *out, const uint16_t *qkv, const float *freqs_cis, uint16_t *cache_k,
                            uint16_t *cache_v, const int *pos, int T, int max_keys, int H, int Hkv, int Dh,
                            cudaStream_t st);

// out[T, OC] = bf16(in[T, C] · W[OC, C]ᵀ) for a few tokens (T <= SMALL_GEMM_MAX_T) on the tensor cores
// (mma.sync m16n8k16 bf16, fp32 accumulation), streaming W once at memory speed; the prefill of a short prompt.
#define SMALL_GEMM_MAX_T 32
bool engine_small_gemm_fits(int T, int C, int OC);  // T in 1..SMALL_GEMM_MAX_T, C and OC multiples of 32
void engine_small_gemm(uint16_t *out, const uint16_t *in, const uint16_t *w, int T, int C, int OC, cudaStream_t st);

// Programmatic dependent launch (Hopper): a kernel launched through engine_launch may start while the kernel before
// it drains; every engine kernel first issues what depends on nothing (weight loads), then pdl_wait(), which returns
// when the previous kernel has finished and its writes are visible. engine_pdl is set by engine_create (sm_90 and
// ENGINE_PDL unset or not 0).
extern int engine_pdl;
__device__ __forceinline__ void pdl_wait(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
// Lets the next kernel's blocks be scheduled once every block of this one has started (they wait in pdl_wait).
__device__ __forceinline__ void pdl_launch_dependents(void) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;");
#endif
}
template <typename... KernelArgs, typename... Args>
static inline cudaError_t engine_launch(void (*kernel)(KernelArgs...), dim3 grid, dim3 block, size_t smem,
                                        cudaStream_t st, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = engine_pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((KernelArgs)args)...);
}

// Loading: copy jobs from host memory (the mmap) into the weights allocation.
typedef struct {
    const uint8_t *src;       // host
    size_t dst_offset;        // bytes into the device allocation
    size_t rows, row_bytes;   // rows of row_bytes each
    size_t dst_row_pitch;     // bytes between destination rows (row_bytes = contiguous; 2*row_bytes = interleaved)
} UploadJob;
// Copies every job with n_threads host threads, each with two pinned staging buffers and its own stream, so that
// reading the page cache and the DMA overlap. Reads with pread() when src lies in one of the mapped files.
void engine_upload(const UploadJob *jobs, int n_jobs, uint8_t *dev_base, int device, int n_threads,
                   const MappedFile *files, int n_files, bool quiet);
#endif

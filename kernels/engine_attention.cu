// engine_attention.cu: causal attention over the KV cache for the engine, decode (T = 1) and prefill (T > 1), with
// grouped-query attention read in place: the n_rep query heads of a kv head are handled by the same block, so each
// K/V row is loaded once for all of them and never copied (no repeat_kv).
//
//   scores[t, h, j] = q[t, h] · k[j, h / n_rep] / sqrt(Dh)       j = 0 .. start_pos + t   (the mask, offset)
//   p[t, h, j]      = bf16(softmax_j(scores))                      fp32, rounded like F.softmax(...).type_as(xq)
//   out[t, h]       = bf16(sum_j p · v[j, h / n_rep])              fp32 accumulation
// start_pos is read from device memory (*pos), so a CUDA graph captured once serves every decode position.
//
// Work split: the keys of one (query, kv head) are cut into ATTN_SPLITS chunks, one block each (a decode step at
// context 1024 has 8 kv heads x 16 = 128 blocks, about one per SM). Kernel 1 writes the scores. Kernel 2 gets the
// row max and sum over ALL keys (so the probabilities are rounded after normalising, as the reference does), weighs
// its chunk of V, writes a partial sum, and the last block of the row to finish adds the partials in a fixed order
// (deterministic) and writes bf16.
// Scratch: scores [T, H, S] floats, partial [T, H, ATTN_SPLITS, Dh] floats, counters [T, Hkv] (zero, left zero).
#include "engine.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_MAX_REP 8

struct AttnRow {  // what a block works on
    int t, kv, n_rep, Tk, j0, j1;
};
__device__ __forceinline__ AttnRow attn_row(const int *pos, int Hkv, int H) {
    AttnRow r;
    r.t = blockIdx.x / Hkv;
    r.kv = blockIdx.x % Hkv;
    r.n_rep = H / Hkv;
    r.Tk = *pos + r.t + 1;  // keys 0 .. start_pos + t: the causal mask with its start_pos offset
    int chunk = (r.Tk + ATTN_SPLITS - 1) / ATTN_SPLITS;
    r.j0 = blockIdx.y * chunk;
    r.j1 = min(r.Tk, r.j0 + chunk);
    return r;
}

// EPL: elements of a head vector per lane (Dh = 32 * EPL)
template <int EPL>
__device__ __forceinline__ void load_lane(float *dst, const uint16_t *src) {
#pragma unroll
    for (int e = 0; e < EPL; e++) dst[e] = dev_bf16_to_f32(src[e]);
}

template <int EPL>
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_scores_kernel(float *scores, const uint16_t *q, const uint16_t *cache_k, const int *pos, int H, int Hkv, int S) {
    const int Dh = 32 * EPL, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    AttnRow r = attn_row(pos, Hkv, H);
    if (r.j0 >= r.j1) return;
    float qv[ATTN_MAX_REP][EPL];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
        if (i < r.n_rep) load_lane<EPL>(qv[i], q + ((size_t)r.t * H + (size_t)(r.kv * r.n_rep + i)) * Dh + lane * EPL);
    const float scale = 1.0f / sqrtf((float)Dh);
    for (int j = r.j0 + warp; j < r.j1; j += ATTN_WARPS) {
        float kvv[EPL];
        load_lane<EPL>(kvv, cache_k + ((size_t)j * Hkv + r.kv) * Dh + lane * EPL);
#pragma unroll
        for (int i = 0; i < ATTN_MAX_REP; i++) {
            if (i >= r.n_rep) break;
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) dot = fmaf(qv[i][e], kvv[e], dot);
            dot = warp_sum(dot);
            if (lane == 0) scores[((size_t)r.t * H + (size_t)(r.kv * r.n_rep + i)) * S + j] = dot * scale;
        }
    }
}

template <int EPL>
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_values_kernel(uint16_t *out, const float *scores, const uint16_t *cache_v, const int *pos, int H, int Hkv,
                       int S, float *partial, int *counters) {
    const int Dh = 32 * EPL, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __shared__ float red[32];
    __shared__ float row_max[ATTN_MAX_REP], row_sum[ATTN_MAX_REP];
    __shared__ float acc_s[ATTN_WARPS][ATTN_MAX_REP * 32 * EPL];
    __shared__ int is_last;
    AttnRow r = attn_row(pos, Hkv, H);

    // softmax statistics of each head's whole row (every block of the row computes the same numbers)
    for (int i = 0; i < r.n_rep; i++) {
        const float *s = scores + ((size_t)r.t * H + (size_t)(r.kv * r.n_rep + i)) * S;
        float m = -INFINITY;
        for (int j = threadIdx.x; j < r.Tk; j += ATTN_THREADS) m = fmaxf(m, s[j]);
        m = block_max(m, red);
        float sum = 0.0f;
        for (int j = threadIdx.x; j < r.Tk; j += ATTN_THREADS) sum += expf(s[j] - m);
        sum = block_sum(sum, red);
        if (threadIdx.x == 0) row_max[i] = m, row_sum[i] = sum;
    }
    __syncthreads();

    float acc[ATTN_MAX_REP][EPL];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[i][e] = 0.0f;
    for (int j = r.j0 + warp; j < r.j1; j += ATTN_WARPS) {
        float vv[EPL];
        load_lane<EPL>(vv, cache_v + ((size_t)j * Hkv + r.kv) * Dh + lane * EPL);
#pragma unroll
        for (int i = 0; i < ATTN_MAX_REP; i++) {
            if (i >= r.n_rep) break;
            float s = scores[((size_t)r.t * H + (size_t)(r.kv * r.n_rep + i)) * S + j];
            float p = dev_bf16_to_f32(dev_f32_to_bf16(expf(s - row_max[i]) / row_sum[i]));  // .type_as(xq)
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[i][e] = fmaf(p, vv[e], acc[i][e]);
        }
    }
    // the warps' sums -> this block's partial [head][Dh]
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
        if (i < r.n_rep)
#pragma unroll
            for (int e = 0; e < EPL; e++) acc_s[warp][i * Dh + lane * EPL + e] = acc[i][e];
    __syncthreads();
    const int n = r.n_rep * Dh;
    for (int idx = threadIdx.x; idx < n; idx += ATTN_THREADS) {
        float v = 0.0f;
        for (int w = 0; w < ATTN_WARPS; w++) v += acc_s[w][idx];
        int i = idx / Dh, d = idx % Dh;
        size_t head = (size_t)r.t * H + (size_t)(r.kv * r.n_rep + i);
        partial[(head * ATTN_SPLITS + blockIdx.y) * Dh + d] = v;
    }
    // the last block of this (t, kv) to finish adds the partials in split order
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int prev = atomicAdd(&counters[blockIdx.x], 1);
        is_last = prev == ATTN_SPLITS - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    for (int idx = threadIdx.x; idx < n; idx += ATTN_THREADS) {
        int i = idx / Dh, d = idx % Dh;
        size_t head = (size_t)r.t * H + (size_t)(r.kv * r.n_rep + i);
        float v = 0.0f;
        for (int sp = 0; sp < ATTN_SPLITS; sp++) v += __ldcg(&partial[(head * ATTN_SPLITS + sp) * Dh + d]);
        out[head * Dh + d] = dev_f32_to_bf16(v);
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;  // ready for the next call (graph replays included)
}

void engine_attention(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                      const int *pos, int T, int H, int Hkv, int Dh, int S, float *scores, float *partial,
                      int *counters, cudaStream_t st) {
    REQUIRE(T >= 1 && Hkv >= 1 && H % Hkv == 0 && H / Hkv <= ATTN_MAX_REP, "T %d H %d Hkv %d (n_rep at most %d)", T, H,
            Hkv, ATTN_MAX_REP);
    dim3 grid((unsigned)(T * Hkv), ATTN_SPLITS);
#define ATTN_CASE(EPL)                                                                                               \
    if (Dh == 32 * EPL) {                                                                                            \
        attn_scores_kernel<EPL><<<grid, ATTN_THREADS, 0, st>>>(scores, q, cache_k, pos, H, Hkv, S);                   \
        cudaCheckLaunch();                                                                                           \
        attn_values_kernel<EPL><<<grid, ATTN_THREADS, 0, st>>>(out, scores, cache_v, pos, H, Hkv, S, partial,        \
                                                               counters);                                            \
        cudaCheckLaunch();                                                                                           \
        return;                                                                                                      \
    }
    ATTN_CASE(2)
    ATTN_CASE(4)
    ATTN_CASE(8)
#undef ATTN_CASE
    fatal("engine_attention: head_dim %d is not supported (64, 128 or 256)", Dh);
}

// engine_attention.cu: causal attention over the KV cache for the engine, decode (T = 1) and prefill (T > 1), with
// grouped-query attention read in place: the n_rep query heads of a kv head are handled by the same block, so each
// K/V row is loaded once for all of them and never copied (no repeat_kv).
//
//   scores[t, h, j] = q[t, h] · k[j, h / n_rep] / sqrt(Dh)       j = 0 .. start_pos + t   (the mask, offset)
//   p[t, h, j]      = bf16(softmax_j(scores))                      fp32, rounded like F.softmax(...).type_as(xq)
//   out[t, h]       = bf16(sum_j p · v[j, h / n_rep])              fp32 accumulation
// start_pos is read from device memory (*pos), so a CUDA graph captured once serves every decode position.
//
// Work split (split-K over the cache, "flash decoding" without the online rescaling, because the probabilities must
// be rounded to bf16 AFTER normalising, as the reference does): the keys of one (query t, kv head) are cut into
// chunks of `chunk` keys (a multiple of ATTN_PIECE = 64), one block each; grid (T * Hkv, splits). At context 1024 a
// decode step has 8 kv heads x 16 chunks = 128 blocks. Blocks whose chunk starts past the causal end exit at once.
//   kernel 1 (scores)  each thread loads 16 bytes of a K row (Dh/8 threads per row, all 64 rows of a piece in flight
//                      at once), the dot products for the n_rep heads are reduced across those threads; the scores
//                      go to scratch, and the block's (max, sum exp(s - max)) per head to `stats`.
//   kernel 2 (values)  combines the stats of the active chunks into the row's max and sum (exactly the softmax
//                      denominator, up to summation order), weighs its chunk of V the same way (16-byte loads), writes
//                      a partial sum per head; the last block of the row to finish adds the partials in chunk order
//                      (deterministic) and writes bf16.
// Scratch: scores [T, H, S], stats [T, H, splits, 2], partial [T, H, splits, Dh] floats; counters [T, Hkv] (zero,
// left zero).
// The short kernel (one block per row of at most ATTN_PIECE keys) runs the same piece functions below, so the three
// kernels compute scores, softmax statistics and weighted values with the same code.
#include "engine_ops.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"
#include "engine_pdl.cuh"

#define ATTN_THREADS 128
#define ATTN_WARPS (ATTN_THREADS / 32)
#define ATTN_MAX_REP 8

struct AttnRow {  // what a block works on
    int t, kv, n_rep, Tk, j0, j1, n_active;
};
__device__ __forceinline__ AttnRow attn_row(const int *pos, int Hkv, int H, int chunk) {
    AttnRow r;
    r.t = blockIdx.x / Hkv;
    r.kv = blockIdx.x % Hkv;
    r.n_rep = H / Hkv;
    r.Tk = *pos + r.t + 1;  // keys 0 .. start_pos + t: the causal mask with its start_pos offset
    r.j0 = blockIdx.y * chunk;
    r.j1 = min(r.Tk, r.j0 + chunk);
    r.n_active = (r.Tk + chunk - 1) / chunk;
    return r;
}

// ---- one piece of ATTN_PIECE keys: the work every kernel here shares ---------------------------------------------
// Thread (slot, sub) holds 16 bytes (elements sub*8 .. sub*8+7) of the rows it * KPI + slot, it < NIT, of K or V:
// LPK = Dh/8 neighbouring lanes of one warp hold one row, KPI rows are held at once, NIT times.

// The 64 rows of one piece, 16 bytes per thread: thread (slot, sub) loads row p0 + it * KPI + slot, bytes sub*16...
template <int DH>
__device__ __forceinline__ void load_piece(int4 *dst, const uint16_t *cache, int p0, int j1, int Hkv, int kv) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
    const int sub = threadIdx.x % LPK, slot = threadIdx.x / LPK;
#pragma unroll
    for (int it = 0; it < NIT; it++) {
        int j = p0 + it * KPI + slot;
        dst[it] = j < j1 ? __ldg((const int4 *)(cache + ((size_t)j * Hkv + kv) * DH) + sub) : make_int4(0, 0, 0, 0);
    }
}

// The scores of the piece that starts at key p0: s[i][c] = q_i · k_j / sqrt(Dh), j = p0 + c < j1, for the n_rep
// query heads i of the block (kr: this thread's parts of the key rows, qv: its parts of the queries). The 8 products
// of a thread are summed in order, then over the LPK threads of the row. SPLIT (the split kernels): the scores also
// go to g[(head0 + i) * S + j], their scratch [T, H, S]; else (the short kernel) the keys j >= j1 get s = 0.
template <int DH, bool SPLIT>
__device__ __forceinline__ void piece_scores(float (*s)[ATTN_PIECE], const int4 *kr, const float (*qv)[8], int n_rep,
                                             int p0, int j1, float *g, size_t head0, int S) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
    const int sub = threadIdx.x % LPK, slot = threadIdx.x / LPK;
    const float scale = 1.0f / sqrtf((float)DH);
#pragma unroll
    for (int it = 0; it < NIT; it++) {
        float kf[8];
        unpack_bf16x8(kr[it], kf);
        const int c = it * KPI + slot, j = p0 + c;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_REP; i++) {
            if (i >= n_rep) break;
            float d = 0.0f;
#pragma unroll
            for (int e = 0; e < 8; e++) d = fmaf(qv[i][e], kf[e], d);
#pragma unroll
            for (int off = LPK / 2; off > 0; off >>= 1) d += __shfl_xor_sync(0xffffffffu, d, off);
            if (SPLIT && sub == 0 && j < j1) {
                float v = d * scale;
                g[(head0 + i) * S + j] = v;
                s[i][c] = v;
            } else if (!SPLIT && sub == 0) {
                s[i][c] = j < j1 ? d * scale : 0.0f;
            }
        }
    }
}

// Softmax statistics of one head's n <= 64 scores s[0..n) by one warp: every lane gets the max m and the sum of
// exp(s - m), and keeps its own two scores a = s[lane], b = s[lane + 32] (-inf past n).
struct PieceSoftmax {
    float a, b, m, sum;
};
__device__ __forceinline__ PieceSoftmax piece_softmax(const float *s, int n) {
    const int lane = threadIdx.x % 32;
    PieceSoftmax r;
    r.a = lane < n ? s[lane] : -INFINITY;
    r.b = lane + 32 < n ? s[lane + 32] : -INFINITY;
    r.m = warp_max(fmaxf(r.a, r.b));
    float sm = (lane < n ? expf(r.a - r.m) : 0.0f) + (lane + 32 < n ? expf(r.b - r.m) : 0.0f);
    r.sum = warp_sum(sm);
    return r;
}

// The weighted values of a piece: acc[i][e] += p[i][c] · v_c[e] over the rows c this thread holds (vr), in order.
template <int DH>
__device__ __forceinline__ void piece_values(float (*acc)[8], const int4 *vr, const float (*p)[ATTN_PIECE], int n_rep,
                                             int slot) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
#pragma unroll
    for (int it = 0; it < NIT; it++) {
        float vf[8];
        unpack_bf16x8(vr[it], vf);
        const int c = it * KPI + slot;
#pragma unroll
        for (int i = 0; i < ATTN_MAX_REP; i++) {
            if (i >= n_rep) break;
            float pc = p[i][c];
#pragma unroll
            for (int e = 0; e < 8; e++) acc[i][e] = fmaf(pc, vf[e], acc[i][e]);
        }
    }
}

// The KPI slots' sums (thread (slot, sub): elements sub*8 .. of its heads) -> s_red[slot][i * DH + d]; after a __syncthreads(), slots_sum(s_red, idx) adds them in slot
// order for element idx = i * DH + d of the block's heads.
template <int DH>
__device__ __forceinline__ void slots_store(float (*s_red)[ATTN_MAX_REP * DH], const float (*acc)[8], int n_rep,
                                            int sub, int slot) {
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++) {
        if (i >= n_rep) break;
#pragma unroll
        for (int e = 0; e < 8; e++) s_red[slot][i * DH + sub * 8 + e] = acc[i][e];
    }
}
template <int DH>
__device__ __forceinline__ float slots_sum(const float (*s_red)[ATTN_MAX_REP * DH], int idx) {
    constexpr int KPI = ATTN_THREADS / (DH / 8);
    float v = 0.0f;
#pragma unroll
    for (int k = 0; k < KPI; k++) v += s_red[k][idx];
    return v;
}

// ---- the split kernels -------------------------------------------------------------------------------------------
template <int DH>
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_scores_kernel(float *scores, float *stats, const uint16_t *q, const uint16_t *cache_k, const int *pos, int H,
                       int Hkv, int S, int chunk) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
    __shared__ float s_sc[ATTN_MAX_REP][ATTN_PIECE];
    pdl_launch_dependents();
    pdl_wait();
    const AttnRow r = attn_row(pos, Hkv, H, chunk);
    if (r.j0 >= r.j1) return;  // past the causal end (the whole block)
    const int sub = threadIdx.x % LPK, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t head0 = (size_t)r.t * H + (size_t)r.kv * r.n_rep;  // first query head of this kv head
    float qv[ATTN_MAX_REP][8];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
        if (i < r.n_rep) unpack_bf16x8(__ldg((const int4 *)(q + (head0 + i) * DH) + sub), qv[i]);
    // running (max, sum) of the heads this warp reduces: warp, warp + 4
    float run_m[ATTN_MAX_REP / ATTN_WARPS], run_s[ATTN_MAX_REP / ATTN_WARPS];
#pragma unroll
    for (int k = 0; k < ATTN_MAX_REP / ATTN_WARPS; k++) run_m[k] = -INFINITY, run_s[k] = 0.0f;

    for (int p0 = r.j0; p0 < r.j1; p0 += ATTN_PIECE) {
        int4 kr[NIT];
        load_piece<DH>(kr, cache_k, p0, r.j1, Hkv, r.kv);
        piece_scores<DH, true>(s_sc, kr, qv, r.n_rep, p0, r.j1, scores, head0, S);
        __syncthreads();
        const int n = min(ATTN_PIECE, r.j1 - p0);
#pragma unroll
        for (int k = 0; k < ATTN_MAX_REP / ATTN_WARPS; k++) {
            const int i = warp + ATTN_WARPS * k;
            if (i >= r.n_rep) break;
            const PieceSoftmax ps = piece_softmax(s_sc[i], n);
            float M = fmaxf(run_m[k], ps.m);
            run_s[k] = run_s[k] * expf(run_m[k] - M) + ps.sum * expf(ps.m - M);
            run_m[k] = M;
        }
        __syncthreads();  // s_sc is written again by the next piece
    }
    const int nsplit = gridDim.y;
#pragma unroll
    for (int k = 0; k < ATTN_MAX_REP / ATTN_WARPS; k++) {
        const int i = warp + ATTN_WARPS * k;
        if (i < r.n_rep && lane == 0) {
            float *st = stats + ((head0 + i) * nsplit + blockIdx.y) * 2;
            st[0] = run_m[k];
            st[1] = run_s[k];
        }
    }
}

template <int DH>
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_values_kernel(uint16_t *out, const float *scores, const float *stats, const uint16_t *cache_v, const int *pos,
                       int H, int Hkv, int S, int chunk, float *partial, int *counters) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
    __shared__ float s_p[ATTN_MAX_REP][ATTN_PIECE];
    __shared__ float s_max[ATTN_MAX_REP], s_sum[ATTN_MAX_REP];
    __shared__ float s_red[KPI][ATTN_MAX_REP * DH];  // 32 KB: KPI * DH = 8 * ATTN_THREADS
    __shared__ int is_last;
    pdl_launch_dependents();
    pdl_wait();
    const AttnRow r = attn_row(pos, Hkv, H, chunk);
    if (r.j0 >= r.j1) return;
    const int sub = threadIdx.x % LPK, slot = threadIdx.x / LPK, nsplit = gridDim.y;
    const size_t head0 = (size_t)r.t * H + (size_t)r.kv * r.n_rep;

    // the row's softmax max and denominator from the chunks' stats (every block of the row gets the same numbers)
    if (threadIdx.x < r.n_rep) {
        const float *st = stats + (head0 + threadIdx.x) * nsplit * 2;
        float M = -INFINITY, sum = 0.0f;
        for (int sp = 0; sp < r.n_active; sp++) M = fmaxf(M, st[2 * sp]);
        for (int sp = 0; sp < r.n_active; sp++) sum += st[2 * sp + 1] * expf(st[2 * sp] - M);
        s_max[threadIdx.x] = M;
        s_sum[threadIdx.x] = sum;
    }
    float acc[ATTN_MAX_REP][8];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[i][e] = 0.0f;
    for (int p0 = r.j0; p0 < r.j1; p0 += ATTN_PIECE) {
        int4 vr[NIT];
        load_piece<DH>(vr, cache_v, p0, r.j1, Hkv, r.kv);  // in flight while the probabilities are computed
        __syncthreads();  // s_max/s_sum written; s_p free again
        for (int idx = threadIdx.x; idx < r.n_rep * ATTN_PIECE; idx += ATTN_THREADS) {
            int i = idx / ATTN_PIECE, c = idx % ATTN_PIECE, j = p0 + c;
            float p = 0.0f;
            if (j < r.j1) p = dev_bf16_to_f32(dev_f32_to_bf16(expf(scores[(head0 + i) * S + j] - s_max[i]) / s_sum[i]));
            s_p[i][c] = p;  // .type_as(xq): bf16 probabilities
        }
        __syncthreads();
        piece_values<DH>(acc, vr, s_p, r.n_rep, slot);
    }
    // the slots' sums -> this block's partial [head][Dh]
    slots_store<DH>(s_red, acc, r.n_rep, sub, slot);
    __syncthreads();
    const int n = r.n_rep * DH;
    for (int idx = threadIdx.x; idx < n; idx += ATTN_THREADS)
        partial[((head0 + idx / DH) * nsplit + blockIdx.y) * DH + idx % DH] = slots_sum<DH>(s_red, idx);
    // the last block of this (t, kv) to finish adds the partials in chunk order
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) {
        int prev = atomicAdd(&counters[blockIdx.x], 1);
        is_last = prev == r.n_active - 1;
    }
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    for (int idx = threadIdx.x; idx < n; idx += ATTN_THREADS) {
        const size_t head = head0 + idx / DH;
        const int d = idx % DH;
        float v = 0.0f;
        for (int sp = 0; sp < r.n_active; sp++) v += __ldcg(&partial[(head * nsplit + sp) * DH + d]);
        out[head * DH + d] = dev_f32_to_bf16(v);
    }
    if (threadIdx.x == 0) counters[blockIdx.x] = 0;  // ready for the next call (graph replays included)
}

// ---- the short kernel ----------------------------------------------------------------------------------------------
// A short prefill (every row has at most ATTN_PIECE keys: start_pos + T <= 64, e.g. the tutorial's 17-token prompt):
// one block per (t, kv head) does the whole row in one kernel, RoPE included: it rotates q of its heads and the keys
// of this call straight from the qkv product (rounded to bf16 exactly as engine_rope_kv writes them to the cache),
// writes its own row t of the cache (k rotated, v), reads earlier calls' keys from the cache, and then computes the
// scores of the one piece into shared memory, the softmax, the bf16 probabilities and the weighted sum of V. The
// same arithmetic in the same order as engine_rope_kv + the two kernels above with a single chunk (whose partial
// sum pass adds one term to 0), so the same bits; it saves two launches and the round trips through global memory.
template <int DH>
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_short_kernel(uint16_t *out, const uint16_t *qkv, const float *freqs_cis, uint16_t *cache_k,
                      uint16_t *cache_v, const int *pos, int H, int Hkv) {
    constexpr int LPK = DH / 8, KPI = ATTN_THREADS / LPK, NIT = ATTN_PIECE / KPI;
    __shared__ float s_p[ATTN_MAX_REP][ATTN_PIECE];
    __shared__ float s_red[KPI][ATTN_MAX_REP * DH];
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x / Hkv, kv = blockIdx.x % Hkv, n_rep = H / Hkv, half = DH / 2;
    const int p0 = *pos, Tk = p0 + t + 1;  // keys 0 .. start_pos + t (the launcher checks Tk <= ATTN_PIECE)
    const int sub = threadIdx.x % LPK, slot = threadIdx.x / LPK, lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    const size_t head0 = (size_t)t * H + (size_t)kv * n_rep;
    const size_t width = (size_t)(H + 2 * Hkv) * DH, kcol = (size_t)H * DH + (size_t)kv * DH;
    const size_t vcol = (size_t)(H + Hkv) * DH + (size_t)kv * DH;
    // keys and values: rows before this call from the cache, rows of this call from qkv (k rotated here)
    int4 kr[NIT], vr[NIT];
#pragma unroll
    for (int it = 0; it < NIT; it++) {
        const int j = it * KPI + slot;
        if (j >= Tk) {
            kr[it] = vr[it] = make_int4(0, 0, 0, 0);
        } else if (j < p0) {
            kr[it] = __ldg((const int4 *)(cache_k + ((size_t)j * Hkv + kv) * DH) + sub);
            vr[it] = __ldg((const int4 *)(cache_v + ((size_t)j * Hkv + kv) * DH) + sub);
        } else {
            const uint16_t *row = qkv + (size_t)(j - p0) * width;
            kr[it] = rope_bf16x8_at(__ldg((const int4 *)(row + kcol) + sub), freqs_cis, j, half, sub * 4);
            vr[it] = __ldg((const int4 *)(row + vcol) + sub);
        }
    }
    // this block's own row t of the cache (one block per (t, kv head) writes it)
    if (slot == 0) {
        const int j = p0 + t;
        const uint16_t *row = qkv + (size_t)t * width;
        *((int4 *)(cache_k + ((size_t)j * Hkv + kv) * DH) + sub) =
            rope_bf16x8_at(__ldg((const int4 *)(row + kcol) + sub), freqs_cis, j, half, sub * 4);
        *((int4 *)(cache_v + ((size_t)j * Hkv + kv) * DH) + sub) = __ldg((const int4 *)(row + vcol) + sub);
    }
    float qv[ATTN_MAX_REP][8];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
        if (i < n_rep) {
            const uint16_t *qrow = qkv + (size_t)t * width + (size_t)(kv * n_rep + i) * DH;
            unpack_bf16x8(rope_bf16x8_at(__ldg((const int4 *)qrow + sub), freqs_cis, p0 + t, half, sub * 4), qv[i]);
        }
    piece_scores<DH, false>(s_p, kr, qv, n_rep, 0, Tk, NULL, 0, 0);
    __syncthreads();
    // softmax of each head's row (warp w: heads w, w + ATTN_WARPS), probabilities rounded to bf16 (.type_as(xq)); the
    // keys past Tk get 0
#pragma unroll
    for (int k = 0; k < ATTN_MAX_REP / ATTN_WARPS; k++) {
        const int i = warp + ATTN_WARPS * k;
        if (i >= n_rep) break;
        const PieceSoftmax ps = piece_softmax(s_p[i], Tk);
        s_p[i][lane] = lane < Tk ? dev_bf16_to_f32(dev_f32_to_bf16(expf(ps.a - ps.m) / ps.sum)) : 0.0f;
        s_p[i][lane + 32] = lane + 32 < Tk ? dev_bf16_to_f32(dev_f32_to_bf16(expf(ps.b - ps.m) / ps.sum)) : 0.0f;
    }
    __syncthreads();
    float acc[ATTN_MAX_REP][8];
#pragma unroll
    for (int i = 0; i < ATTN_MAX_REP; i++)
#pragma unroll
        for (int e = 0; e < 8; e++) acc[i][e] = 0.0f;
    piece_values<DH>(acc, vr, s_p, n_rep, slot);
    slots_store<DH>(s_red, acc, n_rep, sub, slot);
    __syncthreads();
    for (int idx = threadIdx.x; idx < n_rep * DH; idx += ATTN_THREADS)
        out[(head0 + idx / DH) * DH + idx % DH] = dev_f32_to_bf16(0.0f + slots_sum<DH>(s_red, idx));
}

// ---- long prefills: the two products on tensor cores (cuBLAS) -----------------------------------------------------
// The split kernels compute q·k and p·v on the CUDA cores, each block loading the K and V rows of its own query: at
// T = 512 the keys are read 512 times over and the products run without tensor cores. For a long prefill whose
// start_pos is known on the host, the two products are strided batched matrix products instead, one call per query
// head r of a kv group (the batch runs over the kv heads g; query head h = g * n_rep + r reads kv head g in place):
//   scores[h] [T, Tk] = q_h [T, Dh] · k_g[0 .. Tk)ᵀ · (1 / sqrt(Dh))   fp32 accumulation, fp32 out
//   p[h]      [T, Tk] = bf16(exp(s - max) / sum), keys j <= start_pos + t; 0 past them (the causal mask)
//   out_h     [T, Dh] = bf16(p[h] · v_g[0 .. Tk))                        fp32 accumulation, one rounding
// The arithmetic is the split kernels' (fp32 scores scaled by one multiply, bf16 probabilities after normalising,
// fp32 sums of p·v rounded once); only the order of the sums differs. p is written over its own row of scores (bf16
// in the first half of the fp32 row), so the scratch is the split kernels' scores [T * H * S] floats.
#define ATTN_GEMM_THREADS 256
__global__ void __launch_bounds__(ATTN_GEMM_THREADS)
    attn_gemm_softmax_kernel(float *scores, int T, int Tk, int start_pos) {
    __shared__ float red[32];
    pdl_launch_dependents();
    pdl_wait();
    const int t = blockIdx.x, h = blockIdx.y, n = start_pos + t + 1;  // keys 0 .. start_pos + t
    float *row = scores + ((size_t)h * T + t) * (size_t)Tk;
    float m = -INFINITY;
    for (int j = threadIdx.x; j < n; j += ATTN_GEMM_THREADS) m = fmaxf(m, row[j]);
    m = block_max(m, red);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += ATTN_GEMM_THREADS) sum += expf(row[j] - m);
    sum = block_sum(sum, red);
    // In place, a tile of 2 * ATTN_GEMM_THREADS keys at a time: the tile is read before any of it is written, and
    // its bf16 values land on the floats [c/2, c/2 + ATTN_GEMM_THREADS), none of them past the tile.
    uint16_t *p = (uint16_t *)row;
    for (int c = 0; c < Tk; c += 2 * ATTN_GEMM_THREADS) {
        const int j0 = c + threadIdx.x, j1 = j0 + ATTN_GEMM_THREADS;
        const float a = j0 < n ? expf(row[j0] - m) / sum : 0.0f, b = j1 < n ? expf(row[j1] - m) / sum : 0.0f;
        __syncthreads();
        if (j0 < Tk) p[j0] = dev_f32_to_bf16(a);
        if (j1 < Tk) p[j1] = dev_f32_to_bf16(b);
        __syncthreads();
    }
}

bool engine_attention_gemm_fits(int T, int max_keys) { return T >= ATTN_GEMM_MIN_T && max_keys >= T; }

void engine_attention_gemm(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                           int start_pos, int T, int H, int Hkv, int Dh, float *scores, cublasHandle_t cublas,
                           const EngineLaunch *launch) {
    REQUIRE(T >= 1 && start_pos >= 0 && Hkv >= 1 && H % Hkv == 0, "T %d start_pos %d H %d Hkv %d", T, start_pos, H,
            Hkv);
    const int Tk = start_pos + T, n_rep = H / Hkv, QD = H * Dh, KVD = Hkv * Dh;
    const long long group = (long long)n_rep * T * Tk;  // floats between the scores of kv heads g and g + 1
    const float scale = 1.0f / sqrtf((float)Dh), one = 1.0f, zero = 0.0f;
    for (int r = 0; r < n_rep; r++)  // column-major: scores_hᵀ [Tk, T] = K_g [Dh, Tk]ᵀ · q_h [Dh, T]
        cublasCheck(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, Tk, T, Dh, &scale, cache_k,
                                               CUDA_R_16BF, KVD, Dh, q + (size_t)r * Dh, CUDA_R_16BF, QD,
                                               (long long)n_rep * Dh, &zero, scores + (size_t)r * T * Tk, CUDA_R_32F,
                                               Tk, group, Hkv, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    cudaCheck(engine_launch(attn_gemm_softmax_kernel, dim3((unsigned)T, (unsigned)H), dim3(ATTN_GEMM_THREADS), 0,
                            launch, scores, T, Tk, start_pos));
    for (int r = 0; r < n_rep; r++)  // out_hᵀ [Dh, T] = V_g [Dh, Tk] · p_hᵀ [Tk, T]; p's rows are 2 * Tk bf16 apart
        cublasCheck(cublasGemmStridedBatchedEx(cublas, CUBLAS_OP_N, CUBLAS_OP_N, Dh, T, Tk, &one, cache_v,
                                               CUDA_R_16BF, KVD, Dh, (const uint16_t *)(scores + (size_t)r * T * Tk),
                                               CUDA_R_16BF, 2 * Tk, 2 * group, &zero, out + (size_t)r * Dh,
                                               CUDA_R_16BF, QD, (long long)n_rep * Dh, Hkv, CUBLAS_COMPUTE_32F,
                                               CUBLAS_GEMM_DEFAULT));
}

// ---- launchers -----------------------------------------------------------------------------------------------------
// Chunks of a multiple of ATTN_PIECE keys, at most ATTN_MAX_SPLITS_* of them.
static int attn_chunk(int T, int S) {
    int cap = T == 1 ? ATTN_MAX_SPLITS_DECODE : ATTN_MAX_SPLITS_PREFILL;
    int pieces = ceil_div(S, ATTN_PIECE);
    return ceil_div(pieces, cap) * ATTN_PIECE;
}
int engine_attn_splits(int T, int S) { return ceil_div(S, attn_chunk(T, S)); }

void engine_attention(uint16_t *out, const uint16_t *q, const uint16_t *cache_k, const uint16_t *cache_v,
                      const int *pos, int T, int H, int Hkv, int Dh, int S, float *scores, float *stats,
                      float *partial, int *counters, const EngineLaunch *launch) {
    REQUIRE(T >= 1 && Hkv >= 1 && H % Hkv == 0 && H / Hkv <= ATTN_MAX_REP, "T %d H %d Hkv %d (n_rep at most %d)", T, H,
            Hkv, ATTN_MAX_REP);
    const int chunk = attn_chunk(T, S);
    dim3 grid((unsigned)(T * Hkv), (unsigned)ceil_div(S, chunk));
#define ATTN_CASE(DH)                                                                                                \
    if (Dh == DH) {                                                                                                  \
        cudaCheck(engine_launch(attn_scores_kernel<DH>, grid, dim3(ATTN_THREADS), 0, launch, scores, stats, q,       \
                                cache_k, pos, H, Hkv, S, chunk));                                                    \
        cudaCheck(engine_launch(attn_values_kernel<DH>, grid, dim3(ATTN_THREADS), 0, launch, out, scores, stats,     \
                                cache_v, pos, H, Hkv, S, chunk, partial, counters));                                 \
        return;                                                                                                      \
    }
    ATTN_CASE(64)
    ATTN_CASE(128)
    ATTN_CASE(256)
#undef ATTN_CASE
    fatal("engine_attention: head_dim %d is not supported (64, 128 or 256)", Dh);
}

bool engine_attention_short_fits(int T, int max_keys) { return T > 1 && max_keys >= T && max_keys <= ATTN_PIECE; }

void engine_attention_short(uint16_t *out, const uint16_t *qkv, const float *freqs_cis, uint16_t *cache_k,
                            uint16_t *cache_v, const int *pos, int T, int max_keys, int H, int Hkv, int Dh,
                            const EngineLaunch *launch) {
    REQUIRE(engine_attention_short_fits(T, max_keys) && Hkv >= 1 && H % Hkv == 0 && H / Hkv <= ATTN_MAX_REP,
            "T %d max_keys %d (at most %d) H %d Hkv %d", T, max_keys, ATTN_PIECE, H, Hkv);
#define ATTN_SHORT_CASE(DH)                                                                                          \
    if (Dh == DH) {                                                                                                  \
        cudaCheck(engine_launch(attn_short_kernel<DH>, dim3((unsigned)(T * Hkv)), dim3(ATTN_THREADS), 0, launch,    \
                                out, qkv, freqs_cis, cache_k, cache_v, pos, H, Hkv));                                \
        return;                                                                                                      \
    }
    ATTN_SHORT_CASE(64)
    ATTN_SHORT_CASE(128)
    ATTN_SHORT_CASE(256)
#undef ATTN_SHORT_CASE
    fatal("engine_attention_short: head_dim %d is not supported (64, 128 or 256)", Dh);
}

// engine_gemv.cu: the decode product y[OC] = W[OC, C] · x[C] for one token (M = 1), at memory speed, with the work
// around it fused in (engine.h, GemvArgs).
//
// Decode reads every weight once per token and does 2 flops per 2 bytes: the time is the bytes. So the kernel is
// built around the loads: each warp streams two neighbouring rows with 16-byte loads (8 bf16 per lane per load),
// four loads per row in flight per lane, marked evict-first (__ldcs) so the weights do not push the KV cache out of
// L2. x is staged once per block in shared memory as bf16.
//
// Fusions (the rounding points are those of common/ref_ops.h):
//   prologue RMSNORM   x = rmsnorm(h) * w computed by every block from the residual stream h (sum of squares in
//                      double, as the CPU reference), so no separate norm kernel runs between products.
//   epilogue RESIDUAL  h[o] = bf16(h[o] + bf16(y)): the residual add of wo and w2 (each row is written by one warp).
//   epilogue QKV_ROPE  the packed wq|wk|wv product: the pair (o, o+1) is one complex number of a head, rotated by
//                      freqs_cis[pos] in fp32 and written to q, or into the KV cache at row pos (v unrotated).
//   epilogue SWIGLU    the interleaved w1|w3 product: the pair is (gate, up) -> bf16(bf16(silu(gate)) * up).
// Layout: 256 threads = 8 warps per block, 2 rows per warp, 16 rows per block.
// Grid: persistent, as many blocks as fit on the GPU at once, each looping over groups of 16 rows, so the prologue
// (the RMSNorm of x) runs once per block rather than once per 16 rows.
// Launch: engine_launch (programmatic dependent launch when ENGINE_PDL=1; off by default: measured slower).
#include "engine.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"
#include <stdlib.h>
#include <string.h>

#define GEMV_WARPS 8
#define GEMV_ROWS_PER_WARP 2
#define GEMV_ROWS_PER_BLOCK (GEMV_WARPS * GEMV_ROWS_PER_WARP)

__device__ __forceinline__ float bf16_lo(uint32_t u) { return __uint_as_float(u << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t u) { return __uint_as_float(u & 0xffff0000u); }
__device__ __forceinline__ float round_bf(float x) { return dev_bf16_to_f32(dev_f32_to_bf16(x)); }

// acc += dot of 8 bf16 weights and 8 bf16 inputs
__device__ __forceinline__ float dot8(int4 w, int4 x, float acc) {
    acc = fmaf(bf16_lo((uint32_t)w.x), bf16_lo((uint32_t)x.x), acc);
    acc = fmaf(bf16_hi((uint32_t)w.x), bf16_hi((uint32_t)x.x), acc);
    acc = fmaf(bf16_lo((uint32_t)w.y), bf16_lo((uint32_t)x.y), acc);
    acc = fmaf(bf16_hi((uint32_t)w.y), bf16_hi((uint32_t)x.y), acc);
    acc = fmaf(bf16_lo((uint32_t)w.z), bf16_lo((uint32_t)x.z), acc);
    acc = fmaf(bf16_hi((uint32_t)w.z), bf16_hi((uint32_t)x.z), acc);
    acc = fmaf(bf16_lo((uint32_t)w.w), bf16_lo((uint32_t)x.w), acc);
    acc = fmaf(bf16_hi((uint32_t)w.w), bf16_hi((uint32_t)x.w), acc);
    return acc;
}

// RoPE of one pair, written without contraction so it rounds exactly like the CPU's x0*c - x1*s.
__device__ __forceinline__ void rope_pair(float x0, float x1, float c, float s, float *y0, float *y1) {
    *y0 = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, s));
    *y1 = __fadd_rn(__fmul_rn(x0, s), __fmul_rn(x1, c));
}

// BATCH: 16-byte loads per row in flight per lane (4 or 8: engine_gemv_batch)
template <int PRO, int EPI, int GEMV_BATCH>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(GemvArgs a) {
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint16_t *xs = (uint16_t *)smem_raw;  // x [C] as bf16
    __shared__ double red[32];
    const int C = a.C, tid = threadIdx.x;
    pdl_launch_dependents();

    const int warp = tid / 32, lane = tid % 32;
    const int nvec = C / 8;
    pdl_wait();  // from here on: the previous kernel's outputs (x, h) are complete

    // ---- prologue: x into shared memory
    if (PRO == GEMV_PRO_COPY) {
        const int4 *src = (const int4 *)a.x;
        int4 *dst = (int4 *)xs;
        for (int v = tid; v < C / 8; v += blockDim.x) dst[v] = src[v];
    } else {
        // Meta's RMSNorm: x.float() * rsqrt(mean(x²) + eps), .type_as(x), * weight
        double ss = 0.0;
        for (int i = tid; i < C; i += blockDim.x) {
            double v = (double)dev_bf16_to_f32(a.x[i]);
            ss += v * v;
        }
        for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (tid % 32 == 0) red[tid / 32] = ss;
        __syncthreads();
        if (tid == 0) {
            double t = 0.0;
            for (int w = 0; w < (int)blockDim.x / 32; w++) t += red[w];
            red[0] = t;
        }
        __syncthreads();
        float mean_sq = (float)(red[0] / (double)C);
        float r = 1.0f / sqrtf(mean_sq + a.eps);
        for (int i = tid; i < C; i += blockDim.x) {
            float normed = round_bf(__fmul_rn(dev_bf16_to_f32(a.x[i]), r));
            xs[i] = dev_f32_to_bf16(__fmul_rn(normed, dev_bf16_to_f32(a.norm_w[i])));
        }
    }
    __syncthreads();
    // ---- the row groups of this block: blockIdx.x, then + gridDim.x ... (a grid of a few blocks per SM, so the
    // prologue above runs once per block, not once per 16 rows)
    const int4 *x4 = (const int4 *)xs;
    for (int grp = blockIdx.x;; grp += gridDim.x) {
        const int o = (grp * GEMV_WARPS + warp) * GEMV_ROWS_PER_WARP;
        if (o >= a.OC) break;
        const bool has_second = o + 1 < a.OC;
        const int4 *w0 = (const int4 *)(a.w + (size_t)o * (size_t)C);
        const int4 *w1 = has_second ? (const int4 *)(a.w + (size_t)(o + 1) * (size_t)C) : w0;
        float acc0 = 0.0f, acc1 = 0.0f;
        int v = lane;
        for (; v + 32 * (GEMV_BATCH - 1) < nvec; v += 32 * GEMV_BATCH) {
            int4 wa[GEMV_BATCH], wb[GEMV_BATCH];
#pragma unroll
            for (int b = 0; b < GEMV_BATCH; b++) {
                wa[b] = __ldcs(w0 + v + 32 * b);
                wb[b] = __ldcs(w1 + v + 32 * b);
            }
#pragma unroll
            for (int b = 0; b < GEMV_BATCH; b++) {
                int4 xv = x4[v + 32 * b];
                acc0 = dot8(wa[b], xv, acc0);
                acc1 = dot8(wb[b], xv, acc1);
            }
        }
        for (; v < nvec; v += 32) {
            int4 xv = x4[v];
            acc0 = dot8(__ldcs(w0 + v), xv, acc0);
            acc1 = dot8(__ldcs(w1 + v), xv, acc1);
        }
        acc0 = warp_sum(acc0);
        acc1 = warp_sum(acc1);
        if (lane != 0) continue;
        // ---- epilogue (lane 0 of the warp)
        if (EPI == GEMV_EPI_F32) {
            a.out_f32[o] = acc0;
            if (has_second) a.out_f32[o + 1] = acc1;
        } else if (EPI == GEMV_EPI_BF16) {
            a.out[o] = dev_f32_to_bf16(acc0);
            if (has_second) a.out[o + 1] = dev_f32_to_bf16(acc1);
        } else if (EPI == GEMV_EPI_RESIDUAL) {
            a.resid[o] = dev_f32_to_bf16(dev_bf16_to_f32(a.resid[o]) + round_bf(acc0));
            if (has_second) a.resid[o + 1] = dev_f32_to_bf16(dev_bf16_to_f32(a.resid[o + 1]) + round_bf(acc1));
        } else if (EPI == GEMV_EPI_QKV_ROPE) {
            const int pos = *a.pos, Dh = a.head_dim;
            float y0 = round_bf(acc0), y1 = round_bf(acc1);  // xq = self.wq(x) is a bf16 tensor
            if (o < a.q_rows + a.k_rows) {
                int r = o < a.q_rows ? o : o - a.q_rows;
                int i = (r % Dh) / 2;
                const float *cs = a.freqs_cis + ((size_t)pos * (size_t)(Dh / 2) + (size_t)i) * 2;
                float z0, z1;
                rope_pair(y0, y1, cs[0], cs[1], &z0, &z1);
                uint16_t *dst = o < a.q_rows ? a.out + r : a.cache_k + (size_t)pos * (size_t)a.k_rows + r;
                dst[0] = dev_f32_to_bf16(z0);
                dst[1] = dev_f32_to_bf16(z1);
            } else {
                int r = o - a.q_rows - a.k_rows;
                uint16_t *dst = a.cache_v + (size_t)pos * (size_t)a.k_rows + r;
                dst[0] = dev_f32_to_bf16(y0);
                dst[1] = dev_f32_to_bf16(y1);
            }
        } else if (EPI == GEMV_EPI_SWIGLU) {
            float gate = round_bf(acc0), up = round_bf(acc1);
            float silu = round_bf(gate / (1.0f + expf(-gate)));  // F.silu(w1(x)) is bf16
            a.out[o / 2] = dev_f32_to_bf16(__fmul_rn(silu, up));
        }
    }
}

// 16-byte loads per row in flight per lane: 4 (ENGINE_GEMV_BATCH=8 doubles it; measured on an H200: 8 was slower,
// 184.6 against 189.0 tok/s, so bytes in flight were not what limited; bench/NOTES.md).
static int gemv_batch(void) {
    static int batch = 0;
    if (!batch) {
        const char *env = getenv("ENGINE_GEMV_BATCH");
        batch = env && strcmp(env, "8") == 0 ? 8 : 4;
    }
    return batch;
}

// The grid: as many blocks as are resident at once, each looping over row groups (ENGINE_GEMV_PERSIST=0: one block
// per 16 rows, the first version).
static bool gemv_persistent(void) {
    const char *env = getenv("ENGINE_GEMV_PERSIST");
    return !(env && strcmp(env, "0") == 0);
}
static int gemv_sm_count(void) {
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        cudaCheck(cudaGetDevice(&dev));
        cudaCheck(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    }
    return sms;
}

template <int PRO, int EPI, int BATCH>
static void launch_batch(const GemvArgs *a, cudaStream_t st) {
    size_t smem = (size_t)a->C * sizeof(uint16_t);
    static size_t smem_allowed = 48 * 1024;  // raised once per instantiation (rows longer than 24576, e.g. 70B's w2)
    if (smem > smem_allowed) {
        cudaCheck(cudaFuncSetAttribute(gemv_kernel<PRO, EPI, BATCH>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int)smem));
        smem_allowed = smem;
    }
    int grid = ceil_div(a->OC, GEMV_ROWS_PER_BLOCK);
    // a persistent grid: as many blocks as fit at once (occupancy of this instantiation), each looping over groups
    static int resident = 0;
    if (!resident) {
        int per_sm = 0;
        cudaCheck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<PRO, EPI, BATCH>,
                                                                GEMV_WARPS * 32, smem));
        resident = (per_sm > 0 ? per_sm : 1) * gemv_sm_count();
    }
    if (gemv_persistent() && grid > resident) grid = resident;
    cudaCheck(engine_launch(gemv_kernel<PRO, EPI, BATCH>, dim3(grid), dim3(GEMV_WARPS * 32), smem, st, *a));
}
template <int PRO, int EPI>
static void launch(const GemvArgs *a, cudaStream_t st) {
    if (gemv_batch() == 4) launch_batch<PRO, EPI, 4>(a, st);
    else launch_batch<PRO, EPI, 8>(a, st);
}

void engine_gemv(const GemvArgs *a, int pro, int epi, cudaStream_t st) {
    REQUIRE(a->C > 0 && a->C % 8 == 0 && a->OC > 0, "C %d OC %d: C must be a multiple of 8 (16-byte rows)", a->C,
            a->OC);
    REQUIRE(((uintptr_t)a->w & 15) == 0 && ((uintptr_t)a->x & 15) == 0, "w %p x %p must be 16-byte aligned",
            (const void *)a->w, (const void *)a->x);
    if (epi == GEMV_EPI_QKV_ROPE || epi == GEMV_EPI_SWIGLU)
        REQUIRE(a->OC % 2 == 0 && a->head_dim % 2 == 0, "OC %d head_dim %d: pairs need even sizes", a->OC,
                a->head_dim);
#define CASE(P, E)                                 \
    if (pro == P && epi == E) return launch<P, E>(a, st);
    CASE(GEMV_PRO_COPY, GEMV_EPI_F32)
    CASE(GEMV_PRO_COPY, GEMV_EPI_BF16)
    CASE(GEMV_PRO_COPY, GEMV_EPI_RESIDUAL)
    CASE(GEMV_PRO_COPY, GEMV_EPI_SWIGLU)
    CASE(GEMV_PRO_RMSNORM, GEMV_EPI_F32)
    CASE(GEMV_PRO_RMSNORM, GEMV_EPI_QKV_ROPE)
    CASE(GEMV_PRO_RMSNORM, GEMV_EPI_SWIGLU)
#undef CASE
    fatal("engine_gemv: prologue %d with epilogue %d is not instantiated", pro, epi);
}

// engine_gemv.cu: the decode product y[OC] = W[OC, C] · x[C] for one token (M = 1), at memory speed, with the work
// around it fused in (engine_ops.h, GemvArgs).
//
// Decode reads every weight once per token and does 2 flops per 2 bytes: the time is the bytes. So the kernel is
// built around the loads: each warp streams two neighbouring rows with 16-byte loads (8 bf16 per lane per load),
// BATCH loads per row per step, marked evict-first (__ldcs) so the weights do not push the KV cache out of L2, and
// the next step's loads issued before the current step is computed (two register buffers), so a warp never waits
// with nothing in flight. The first step is loaded before the kernel waits for its predecessor (pdl_wait) and before
// the prologue. x is staged once per block in shared memory as bf16.
//
// Fusions (the rounding points are those of common/ref/ref_ops.h):
//   prologue RMSNORM   x = rmsnorm(h) * w computed by every block from the residual stream h (sum of squares in
//                      double, as the CPU reference), so no separate norm kernel runs between products.
//   epilogue RESIDUAL  h[o] = bf16(h[o] + bf16(y)): the residual add of wo and w2 (each row is written by one warp).
//   epilogue QKV_ROPE  the packed wq|wk|wv product: the pair (o, o+1) is one complex number of a head, rotated by
//                      freqs_cis[pos] in fp32 and written to q, or into the KV cache at row pos (v unrotated).
//   epilogue SWIGLU    the interleaved w1|w3 product: the pair is (gate, up) -> bf16(bf16(silu(gate)) * up).
// Layout: 256 threads = 8 warps per block, 2 rows per warp, 16 rows per block.
// Grid: persistent, as many blocks as fit on the GPU at once, each looping over groups of 16 rows, so the prologue
// (the RMSNorm of x) runs once per block rather than once per 16 rows.
// Launch: engine_launch (programmatic dependent launch when launch->pdl, engine_pdl.cuh).
// Measured (bench/NOTES.md, H200, llama3-8b preset): the two buffers took decode from 196 to 218-224 tok/s, the
// early first step and the per-shape BATCH to 228-230 (81-83% of the copy-bandwidth limit).
#include "engine_ops.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"
#include "engine_pdl.cuh"

#define GEMV_WARPS 8
#define GEMV_ROWS_PER_WARP 2
#define GEMV_ROWS_PER_BLOCK (GEMV_WARPS * GEMV_ROWS_PER_WARP)


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

// One step of a warp: BATCH 16-byte loads of each of its two rows, at vectors v, v+32, ... (zero past the row end).
template <int BATCH>
__device__ __forceinline__ void load_step(int4 *wa, int4 *wb, const int4 *w0, const int4 *w1, int v, int nvec) {
#pragma unroll
    for (int b = 0; b < BATCH; b++) {
        const bool in = v + 32 * b < nvec;
        wa[b] = in ? __ldcs(w0 + v + 32 * b) : make_int4(0, 0, 0, 0);
        wb[b] = in ? __ldcs(w1 + v + 32 * b) : make_int4(0, 0, 0, 0);
    }
}

// The epilogue of the row pair (o, o+1) with sums y0, y1 (lane 0 of the warp).
template <int EPI>
__device__ __forceinline__ void gemv_epilogue(const GemvArgs &a, int o, bool has_second, float acc0, float acc1) {
    if (EPI == GEMV_EPI_F32) {
        a.out_f32[o] = acc0;
        if (has_second) a.out_f32[o + 1] = acc1;
    } else if (EPI == GEMV_EPI_BF16) {
        a.out[o] = dev_f32_to_bf16(acc0);
        if (has_second) a.out[o + 1] = dev_f32_to_bf16(acc1);
    } else if (EPI == GEMV_EPI_RESIDUAL) {
        a.resid[o] = dev_f32_to_bf16(dev_bf16_to_f32(a.resid[o]) + dev_round_bf16(acc0));
        if (has_second) a.resid[o + 1] = dev_f32_to_bf16(dev_bf16_to_f32(a.resid[o + 1]) + dev_round_bf16(acc1));
    } else if (EPI == GEMV_EPI_QKV_ROPE) {
        const int pos = *a.pos, Dh = a.head_dim;
        float y0 = dev_round_bf16(acc0), y1 = dev_round_bf16(acc1);  // xq = self.wq(x) is a bf16 tensor
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
        float gate = dev_round_bf16(acc0), up = dev_round_bf16(acc1);
        float silu = dev_round_bf16(gate / (1.0f + expf(-gate)));  // F.silu(w1(x)) is bf16
        a.out[o / 2] = dev_f32_to_bf16(__fmul_rn(silu, up));
    }
}

// BATCH: 16-byte loads per row per lane in one step. The loads of the warp's next step (the next stretch of its
// rows, or the first stretch of its next row pair) are issued before the current step is computed (two register
// buffers), so a warp always has loads in flight; each lane sums its vectors in the order v = lane, lane + 32, ...
// whatever BATCH, grid or pipelining, so every configuration computes the same bits.
template <int PRO, int EPI, int BATCH>
__global__ void __launch_bounds__(GEMV_WARPS * 32) gemv_kernel(GemvArgs a) {
    extern __shared__ __align__(16) uint8_t smem_raw[];
    uint16_t *xs = (uint16_t *)smem_raw;  // x [C] as bf16
    __shared__ double red[GEMV_WARPS];
    const int C = a.C, tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32;
    const int nvec = C / 8;
    pdl_launch_dependents();

    // ---- before anything that depends on the previous kernel: the first loads of this warp's first row pair
    // (weights depend on nothing; under programmatic dependent launch they are issued while the previous kernel
    // drains, and in any case they travel while the prologue below runs)
    const int steps = (nvec + 32 * BATCH - 1) / (32 * BATCH);
    int grp = blockIdx.x, s = 0;
    int o = (grp * GEMV_WARPS + warp) * GEMV_ROWS_PER_WARP;
    const int4 *w0 = (const int4 *)(a.w + (size_t)(o < a.OC ? o : 0) * (size_t)C);
    const int4 *w1 = o + 1 < a.OC ? w0 + nvec : w0;
    int4 ca[BATCH], cb[BATCH], na[BATCH], nb[BATCH];
    if (o < a.OC) load_step<BATCH>(ca, cb, w0, w1, lane, nvec);
    pdl_wait();  // from here on: the previous kernel's outputs (x, h) are complete

    // ---- prologue: x into shared memory (16-byte loads)
    const int4 *x4g = (const int4 *)a.x;
    int4 *xs4 = (int4 *)xs;
    if (PRO == GEMV_PRO_COPY) {
        for (int v = tid; v < nvec; v += blockDim.x) xs4[v] = x4g[v];
    } else {
        // Meta's RMSNorm: x.float() * rsqrt(mean(x²) + eps), .type_as(x), * weight (sum of squares in double)
        double ss = 0.0;
        for (int v = tid; v < nvec; v += blockDim.x) ss = sumsq_bf16x8(x4g[v], ss);
        for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
        if (lane == 0) red[warp] = ss;
        __syncthreads();
        double t = 0.0;
#pragma unroll
        for (int w = 0; w < GEMV_WARPS; w++) t += red[w];
        float mean_sq = (float)(t / (double)C);
        float r = 1.0f / sqrtf(mean_sq + a.eps);
        const int4 *nw4 = (const int4 *)a.norm_w;
        for (int v = tid; v < nvec; v += blockDim.x) xs4[v] = rmsnorm_bf16x8(x4g[v], nw4[v], r);
    }
    __syncthreads();

    // ---- the row pairs of this warp: group blockIdx.x, then + gridDim.x, ... (a persistent grid, so the prologue
    // above runs once per block), each in steps of BATCH vectors per lane (the first step is loaded already)
    if (o >= a.OC) return;
    float acc0 = 0.0f, acc1 = 0.0f;
    for (;;) {
        // the next step: the same rows further on, or the next row pair of this warp
        int s2 = s + 1, grp2 = grp, o2 = o;
        const int4 *n0 = w0, *n1 = w1;
        if (s2 == steps) {
            s2 = 0;
            grp2 = grp + gridDim.x;
            o2 = (grp2 * GEMV_WARPS + warp) * GEMV_ROWS_PER_WARP;
            n0 = (const int4 *)(a.w + (size_t)(o2 < a.OC ? o2 : o) * (size_t)C);
            n1 = o2 + 1 < a.OC ? n0 + nvec : n0;
        }
        const bool more = o2 < a.OC;
        if (more) load_step<BATCH>(na, nb, n0, n1, s2 * 32 * BATCH + lane, nvec);
        const int v0 = s * 32 * BATCH + lane;
#pragma unroll
        for (int b = 0; b < BATCH; b++) {
            if (v0 + 32 * b < nvec) {
                int4 xv = xs4[v0 + 32 * b];
                acc0 = dot8(ca[b], xv, acc0);
                acc1 = dot8(cb[b], xv, acc1);
            }
        }
        if (s == steps - 1) {
            float y0 = warp_sum(acc0), y1 = warp_sum(acc1);
            if (lane == 0) gemv_epilogue<EPI>(a, o, o + 1 < a.OC, y0, y1);
            acc0 = acc1 = 0.0f;
        }
        if (!more) break;
#pragma unroll
        for (int b = 0; b < BATCH; b++) ca[b] = na[b], cb[b] = nb[b];
        s = s2, grp = grp2, o = o2, w0 = n0, w1 = n1;
    }
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

// Blocks of this instantiation resident on the whole GPU at once with `smem` bytes of x (remembered per size).
template <int PRO, int EPI, int BATCH>
static int gemv_resident(size_t smem) {
    static size_t smem_allowed = 48 * 1024;  // raised once per instantiation (rows longer than 24576, e.g. 70B's w2)
    static size_t last_smem = 0;
    static int last = 0;
    if (smem > smem_allowed) {
        cudaCheck(cudaFuncSetAttribute(gemv_kernel<PRO, EPI, BATCH>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       (int)smem));
        smem_allowed = smem;
    }
    if (smem != last_smem) {
        int per_sm = 0;
        cudaCheck(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_kernel<PRO, EPI, BATCH>,
                                                                GEMV_WARPS * 32, smem));
        last = (per_sm > 0 ? per_sm : 1) * gemv_sm_count();
        last_smem = smem;
    }
    return last;
}

template <int PRO, int EPI, int BATCH>
static void launch_batch(const GemvArgs *a, const EngineLaunch *launch) {
    size_t smem = (size_t)a->C * sizeof(uint16_t);
    int grid = ceil_div(a->OC, GEMV_ROWS_PER_BLOCK);
    // a persistent grid: as many blocks as fit at once (occupancy of this instantiation), each looping over groups
    // (measured against one block per 16 rows: +5.6% decode, bench/NOTES.md session 1)
    int resident = gemv_resident<PRO, EPI, BATCH>(smem);
    if (grid > resident) grid = resident;
    cudaCheck(engine_launch(gemv_kernel<PRO, EPI, BATCH>, dim3(grid), dim3(GEMV_WARPS * 32), smem, launch, *a));
}
// BATCH 4 (~92 registers: 2 blocks of 256 threads per SM) keeps 8 KB per warp in flight; when the row groups
// would not all fit at once with it but do with BATCH 2 (~60 registers, 4 blocks per SM), BATCH 2 runs them in a
// single round instead of leaving the second round half empty (the packed wqkv of the 8B: 384 groups, 264 resident
// blocks at BATCH 4, 528 at BATCH 2). launch->gemv_batch = 2, 4 or 8 forces one (bench --gemv-batch).
template <int PRO, int EPI>
static void launch_shape(const GemvArgs *a, const EngineLaunch *launch) {
    int batch = launch->gemv_batch;
    if (!batch) {
        size_t smem = (size_t)a->C * sizeof(uint16_t);
        int groups = ceil_div(a->OC, GEMV_ROWS_PER_BLOCK);
        batch = groups > gemv_resident<PRO, EPI, 4>(smem) && groups <= gemv_resident<PRO, EPI, 2>(smem) ? 2 : 4;
    }
    switch (batch) {
    case 2: launch_batch<PRO, EPI, 2>(a, launch); break;
    case 8: launch_batch<PRO, EPI, 8>(a, launch); break;
    default: launch_batch<PRO, EPI, 4>(a, launch); break;
    }
}

void engine_gemv(const GemvArgs *a, int pro, int epi, const EngineLaunch *launch) {
    REQUIRE(a->C > 0 && a->C % 8 == 0 && a->OC > 0, "C %d OC %d: C must be a multiple of 8 (16-byte rows)", a->C,
            a->OC);
    REQUIRE(launch->gemv_batch == 0 || launch->gemv_batch == 2 || launch->gemv_batch == 4 || launch->gemv_batch == 8,
            "gemv_batch %d: 0 (per shape), 2, 4 or 8", launch->gemv_batch);
    REQUIRE(((uintptr_t)a->w & 15) == 0 && ((uintptr_t)a->x & 15) == 0, "w %p x %p must be 16-byte aligned",
            (const void *)a->w, (const void *)a->x);
    if (epi == GEMV_EPI_QKV_ROPE || epi == GEMV_EPI_SWIGLU)
        REQUIRE(a->OC % 2 == 0 && a->head_dim % 2 == 0, "OC %d head_dim %d: pairs need even sizes", a->OC,
                a->head_dim);
#define CASE(P, E)                                 \
    if (pro == P && epi == E) return launch_shape<P, E>(a, launch);
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

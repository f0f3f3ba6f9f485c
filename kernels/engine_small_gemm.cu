// engine_small_gemm.cu: out[T, OC] = bf16(in[T, C] · W[OC, C]ᵀ) for a few tokens (2 <= T <= SMALL_GEMM_MAX_T = 32),
// the products of a short prefill (the tutorial's 17-token prompt), on the tensor cores.
//
// Why not cuBLAS: at T = 17 a product reads W (2 bytes per weight) and does 17 multiply-adds per weight: still
// memory-bound (17 FLOP/byte, far under the H200's ~200), so the time should be the bytes of W. The CUDA cores
// cannot keep up with that (17 x 2 x 2.1e12 weights/s = 71 TFLOP/s > 67 fp32), the tensor cores easily can. This
// kernel streams W once with 16-byte evict-first loads and feeds it straight from registers to mma.sync (no shared
// memory staging for W, no tiles of x larger than a fragment).
//
// The fragment trick: mma.sync.m16n8k16 sums over k, so any permutation of k applied to both A (W) and B (x) gives
// the same dot products. Thread (g = lane / 4, c = lane % 4) owns the k slots {2c, 2c+1, 2c+8, 2c+9} of A rows g and
// g+8 and of B column g. We map them to the physical columns 8c .. 8c+3 of a 32-column chunk (first mma) and
// 8c+4 .. 8c+7 (second mma): so one 16-byte load of W row g at column 8c feeds both mmas, and one 16-byte load of
// x[token g] at the same column gives the matching B fragments. A warp covers 16 rows x 32 columns per pair.
//
// Measured on an H200 (bench/NOTES.md): slower than cuBLAS at T = 17 (7.06 against 6.10 ms for the whole prefill),
// with either tile height; the loads and the mmas of a step are not overlapped (a next step to try: double-buffered
// weights, or cp.async/TMA staging).
// Layout: 256 threads = 8 warps per block, 16 * SG_MT rows (SG_MT m16 tiles) per block; the warps split K (warp w takes the
// 32-column chunks w, w+8, w+16, ... so that the block reads 512 contiguous bytes of each row at a time), UNROLL
// chunks per step in flight (16 loads of 16 bytes per thread); the 8 partial sums meet in shared memory.
// NT = ceil(T / 8) n8 tiles of tokens (tokens past T read as zero and are not written).
// Requires C % 32 == 0 and OC % 32 == 0 (engine_small_gemm_fits); the engine falls back to cuBLAS otherwise.
#include "engine.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"
#include <stdlib.h>
#include <string.h>

#define SG_WARPS 8
#define SG_UNROLL 4   // 32-column chunks per warp per step

__device__ __forceinline__ void mma_bf16_16816(float *d, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                               uint32_t b0, uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#endif
}

// SG_MT: m16 tiles per block (1: 16 rows, more blocks; 2: 32 rows, x fragments reused twice)
template <int NT, int SG_MT>
__global__ void __launch_bounds__(SG_WARPS * 32, 1)
    small_gemm_kernel(uint16_t *out, const uint16_t *in, const uint16_t *w, int T, int C, int OC) {
    __shared__ float red[SG_WARPS][SG_MT * NT * 32 * 4];
    pdl_launch_dependents();
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, c = lane % 4;
    const size_t row0 = (size_t)blockIdx.x * (16 * SG_MT);
    const int nchunks = C / 32;
    // rows g, g+8 of each m tile; int4 index c inside a chunk (a chunk is 4 int4 of a row)
    const int4 *wr[2 * SG_MT];
#pragma unroll
    for (int r = 0; r < 2 * SG_MT; r++) wr[r] = (const int4 *)(w + (row0 + (size_t)(8 * r + g)) * (size_t)C) + c;
    int4 a[SG_UNROLL][2 * SG_MT];
    int k = warp;
    // the first step's weights before waiting for the kernel that writes `in` (they depend on nothing)
#pragma unroll
    for (int u = 0; u < SG_UNROLL; u++)
#pragma unroll
        for (int r = 0; r < 2 * SG_MT; r++)
            a[u][r] = k + SG_WARPS * u < nchunks ? __ldcs(wr[r] + 4 * (k + SG_WARPS * u)) : make_int4(0, 0, 0, 0);
    pdl_wait();
    const int4 *xr[NT];
    bool xvalid[NT];
#pragma unroll
    for (int nt = 0; nt < NT; nt++) {
        xvalid[nt] = nt * 8 + g < T;
        xr[nt] = (const int4 *)(in + (size_t)(xvalid[nt] ? nt * 8 + g : 0) * (size_t)C) + c;
    }
    float acc[SG_MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < SG_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) acc[mt][nt][i] = 0.0f;

    while (true) {
#pragma unroll
        for (int u = 0; u < SG_UNROLL; u++) {
            const int kk = k + SG_WARPS * u;
            if (kk >= nchunks) break;
#pragma unroll
            for (int nt = 0; nt < NT; nt++) {
                int4 xb = xvalid[nt] ? __ldg(xr[nt] + 4 * kk) : make_int4(0, 0, 0, 0);
#pragma unroll
                for (int mt = 0; mt < SG_MT; mt++) {
                    const int4 lo = a[u][2 * mt], hi = a[u][2 * mt + 1];  // rows g and g+8 of tile mt
                    mma_bf16_16816(acc[mt][nt], (uint32_t)lo.x, (uint32_t)hi.x, (uint32_t)lo.y, (uint32_t)hi.y,
                                   (uint32_t)xb.x, (uint32_t)xb.y);
                    mma_bf16_16816(acc[mt][nt], (uint32_t)lo.z, (uint32_t)hi.z, (uint32_t)lo.w, (uint32_t)hi.w,
                                   (uint32_t)xb.z, (uint32_t)xb.w);
                }
            }
        }
        k += SG_WARPS * SG_UNROLL;
        if (k >= nchunks) break;
#pragma unroll
        for (int u = 0; u < SG_UNROLL; u++)
#pragma unroll
            for (int r = 0; r < 2 * SG_MT; r++)
                a[u][r] = k + SG_WARPS * u < nchunks ? __ldcs(wr[r] + 4 * (k + SG_WARPS * u)) : make_int4(0, 0, 0, 0);
    }
    // the warps' partial sums -> shared memory -> one sum per (row, token), in warp order (deterministic)
#pragma unroll
    for (int mt = 0; mt < SG_MT; mt++)
#pragma unroll
        for (int nt = 0; nt < NT; nt++)
#pragma unroll
            for (int i = 0; i < 4; i++) red[warp][((mt * NT + nt) * 32 + lane) * 4 + i] = acc[mt][nt][i];
    __syncthreads();
    for (int idx = threadIdx.x; idx < SG_MT * NT * 32 * 4; idx += SG_WARPS * 32) {
        float v = 0.0f;
#pragma unroll
        for (int wi = 0; wi < SG_WARPS; wi++) v += red[wi][idx];
        const int i = idx % 4, src = (idx / 4) % 32, nt = (idx / 128) % NT, mt = idx / (128 * NT);
        // C fragment: d0, d1 = row g, tokens 2c, 2c+1; d2, d3 = row g+8, the same tokens
        const int t = nt * 8 + 2 * (src % 4) + (i & 1);
        const size_t row = row0 + (size_t)(mt * 16 + src / 4 + (i >= 2 ? 8 : 0));
        if (t < T) out[(size_t)t * (size_t)OC + row] = dev_f32_to_bf16(v);
    }
}

bool engine_small_gemm_fits(int T, int C, int OC) {
    return T >= 1 && T <= SMALL_GEMM_MAX_T && C % 32 == 0 && OC % 32 == 0;
}

void engine_small_gemm(uint16_t *out, const uint16_t *in, const uint16_t *w, int T, int C, int OC, cudaStream_t st) {
    REQUIRE(engine_small_gemm_fits(T, C, OC), "T %d C %d OC %d: T in 1..%d, C and OC multiples of 32", T, C, OC,
            SMALL_GEMM_MAX_T);
    REQUIRE(((uintptr_t)in & 15) == 0 && ((uintptr_t)w & 15) == 0, "in %p w %p must be 16-byte aligned",
            (const void *)in, (const void *)w);
    // ENGINE_SMALL_GEMM=2 selects 32 rows per block (default 16: twice the blocks, more bytes in flight)
    static int mt = 0;
    if (!mt) {
        const char *env = getenv("ENGINE_SMALL_GEMM");
        mt = env && strcmp(env, "2") == 0 ? 2 : 1;
    }
    dim3 grid((unsigned)(OC / (16 * mt))), block(SG_WARPS * 32);
#define SG_CASE(NT, MT)                                                                                             \
    if ((T + 7) / 8 == NT && mt == MT) {                                                                            \
        cudaCheck(engine_launch(small_gemm_kernel<NT, MT>, grid, block, 0, st, out, in, w, T, C, OC));              \
        return;                                                                                                     \
    }
    SG_CASE(1, 1) SG_CASE(2, 1) SG_CASE(3, 1) SG_CASE(4, 1)
    SG_CASE(1, 2) SG_CASE(2, 2) SG_CASE(3, 2) SG_CASE(4, 2)
#undef SG_CASE
    fatal("engine_small_gemm: T %d", T);
}

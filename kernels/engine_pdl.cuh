// engine_pdl.cuh: programmatic dependent launch (Hopper) for the engine's kernels (CUDA translation units only).
// A kernel launched through engine_launch with launch->pdl may start while the kernel before it drains; every engine
// kernel first issues what depends on nothing (weight loads), then pdl_wait(), which returns when the previous kernel
// has finished and its writes are visible. Without pdl (or below sm_90) both calls are no-ops and the launch is an
// ordinary one. Measured in bench/NOTES.md (session 2): neutral for decode, -4% time for the 17-token prefill.
#pragma once
#include <cuda_runtime.h>

#include "engine_ops.h"

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
                                        const EngineLaunch *launch, Args... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = launch->stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = launch->pdl ? 1 : 0;
    return cudaLaunchKernelEx(&cfg, kernel, ((KernelArgs)args)...);
}

// gpu_check.h: what the GPU unit tests (tests/unit/test_*_gpu.c) share: their start (gpu_check_start) and the
// uploads of their inputs. Without a usable CUDA device the test is a skip ("0 passed, 0 failed, 1 skipped", exit 0), or a
// failure when REQUIRE_GPU=1 (tests/gpu/run.sh sets it, so that a GPU run cannot pass by skipping). With one, device
// 0 is initialised and named.
#pragma once
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

// Returns -1 when the test may go on (a device is ready; its description in desc[n] when desc is not NULL), else the
// exit status main() should return.
static inline int gpu_check_start(char *desc, size_t n) {
    if (cuda_device_count() == 0) {
        const char *req = getenv("REQUIRE_GPU");
        if (req && strcmp(req, "1") == 0) {
            fprintf(stderr, "FAIL: REQUIRE_GPU=1 but no CUDA device (or this build has no CUDA)\n");
            printf("0 passed, 1 failed\n");
            return 1;
        }
        printf("skipped: no GPU (or a build without CUDA); make test-gpu runs this on a GPU machine\n");
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    char own[256];
    if (!desc) desc = own, n = sizeof own;
    cuda_init(0);
    cuda_device_describe(0, desc, n);
    printf("device 0: %s\n", desc);
    return -1;
}

// bf16 weights [n] copied to the device as they are
static inline uint16_t *upload_bf16(const uint16_t *w, size_t n) {
    uint16_t *d = cuda_malloc(n * sizeof(uint16_t));
    cuda_memcpy_h2d(d, w, n * sizeof(uint16_t));
    return d;
}
// fp32 values [n] as a device activation of precision p (bf16: rounded on the way)
static inline void *upload_act(const float *x, size_t n, Precision p) {
    void *d = cuda_malloc(act_bytes(n, p));
    cuda_upload_act(d, x, n, p);
    return d;
}

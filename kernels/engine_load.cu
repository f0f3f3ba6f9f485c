// engine_load.cu: weights from the checkpoint's memory map (page cache) into the one device allocation.
//
// The copy is cut into chunks of whole rows (<= 16 MiB). n_threads host threads take chunks in turn; each has two
// pinned staging buffers and its own stream: while the DMA engine copies buffer A to the GPU, the thread fills
// buffer B from the page cache. Chunks that lie in a mapped file are read with pread(), which copies from the page
// cache straight into the pinned buffer without faulting the mapping in page by page. A destination pitch larger
// than the row (the interleaved w1|w3 rows) becomes a 2-D copy, so interleaving costs nothing extra.
#include <fcntl.h>
#include <pthread.h>
#include <atomic>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine_ops.h"  // first: it includes the C headers (tensor.h, util.h) with C linkage
#include "common.cuh"

#define LOAD_CHUNK_BYTES (16u << 20)

typedef struct {
    const uint8_t *src;
    size_t dst_offset, rows, row_bytes, dst_row_pitch, src_row_pitch;
} Chunk;

typedef struct {
    const Chunk *chunks;
    int n_chunks;
    std::atomic<int> next;
    uint8_t *dev_base;
    int device;
    const MappedFile *files;
    const int *fds;
    int n_files;
} LoadShared;

static void read_chunk(const LoadShared *ls, uint8_t *dst, const uint8_t *src, size_t bytes) {
    for (int f = 0; f < ls->n_files; f++) {
        const MappedFile *m = &ls->files[f];
        if (ls->fds[f] >= 0 && src >= m->data && src + bytes <= m->data + m->size) {
            off_t off = (off_t)(src - m->data);
            size_t done = 0;
            while (done < bytes) {
                ssize_t n = pread(ls->fds[f], dst + done, bytes - done, off + (off_t)done);
                if (n <= 0) fatal("engine_upload: pread %s: %s", m->path, n < 0 ? strerror(errno) : "end of file");
                done += (size_t)n;
            }
            return;
        }
    }
    memcpy(dst, src, bytes);  // a tensor rebuilt in host memory (joined shards, converted dtype)
}

static void *load_thread(void *arg) {
    LoadShared *ls = (LoadShared *)arg;
    cudaCheck(cudaSetDevice(ls->device));
    cudaStream_t st;
    cudaCheck(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    uint8_t *staging[2];
    cudaEvent_t done[2];
    bool used[2] = {false, false};
    for (int b = 0; b < 2; b++) {
        cudaCheck(cudaHostAlloc((void **)&staging[b], LOAD_CHUNK_BYTES, cudaHostAllocDefault));
        cudaCheck(cudaEventCreateWithFlags(&done[b], cudaEventDisableTiming));
    }
    int b = 0;
    for (;;) {
        int i = ls->next.fetch_add(1);
        if (i >= ls->n_chunks) break;
        const Chunk *c = &ls->chunks[i];
        if (used[b]) cudaCheck(cudaEventSynchronize(done[b]));  // the DMA from this buffer has finished
        read_chunk(ls, staging[b], c->src, (c->rows - 1) * c->src_row_pitch + c->row_bytes);
        cudaCheck(cudaMemcpy2DAsync(ls->dev_base + c->dst_offset, c->dst_row_pitch, staging[b], c->src_row_pitch,
                                    c->row_bytes, c->rows, cudaMemcpyHostToDevice, st));
        cudaCheck(cudaEventRecord(done[b], st));
        used[b] = true;
        b ^= 1;
    }
    cudaCheck(cudaStreamSynchronize(st));
    for (int k = 0; k < 2; k++) {
        cudaCheck(cudaFreeHost(staging[k]));
        cudaCheck(cudaEventDestroy(done[k]));
    }
    cudaCheck(cudaStreamDestroy(st));
    return NULL;
}

void engine_upload(const UploadJob *jobs, int n_jobs, uint8_t *dev_base, int device, int n_threads,
                   const MappedFile *files, int n_files, bool quiet) {
    // chunks of whole rows (a column slice: of whole source row spans)
    size_t n_chunks = 0, total = 0;
    for (int j = 0; j < n_jobs; j++) {
        const size_t pitch = jobs[j].src_row_pitch ? jobs[j].src_row_pitch : jobs[j].row_bytes;
        REQUIRE(jobs[j].row_bytes > 0 && pitch >= jobs[j].row_bytes && pitch <= LOAD_CHUNK_BYTES,
                "row of %zu bytes, source pitch %zu", jobs[j].row_bytes, pitch);
        size_t rows_per = LOAD_CHUNK_BYTES / pitch;
        n_chunks += (jobs[j].rows + rows_per - 1) / rows_per;
        total += jobs[j].rows * jobs[j].row_bytes;
    }
    Chunk *chunks = (Chunk *)calloc(n_chunks + 1, sizeof(Chunk));
    if (!chunks) fatal("engine_upload: out of host memory");
    size_t k = 0;
    for (int j = 0; j < n_jobs; j++) {
        const UploadJob *u = &jobs[j];
        const size_t pitch = u->src_row_pitch ? u->src_row_pitch : u->row_bytes;
        size_t rows_per = LOAD_CHUNK_BYTES / pitch;
        for (size_t r = 0; r < u->rows; r += rows_per) {
            size_t n = u->rows - r < rows_per ? u->rows - r : rows_per;
            chunks[k++] = (Chunk){u->src + r * pitch, u->dst_offset + r * u->dst_row_pitch, n, u->row_bytes,
                                  u->dst_row_pitch, pitch};
        }
    }
    int *fds = (int *)malloc(sizeof(int) * (size_t)(n_files + 1));
    for (int f = 0; f < n_files; f++) fds[f] = open(files[f].path, O_RDONLY);
    LoadShared ls;
    ls.chunks = chunks;
    ls.n_chunks = (int)n_chunks;
    ls.next.store(0);
    ls.dev_base = dev_base;
    ls.device = device;
    ls.files = files;
    ls.fds = fds;
    ls.n_files = n_files;
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t th[64];
    for (int t = 0; t < n_threads; t++)
        if (pthread_create(&th[t], NULL, load_thread, &ls) != 0) fatal("engine_upload: pthread_create failed");
    for (int t = 0; t < n_threads; t++) pthread_join(th[t], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!quiet)
        fprintf(stderr, "loaded %.2f GB of weights to the GPU in %.2f s (%.1f GB/s, %d threads)\n", (double)total / 1e9,
                s, (double)total / 1e9 / s, n_threads);
    for (int f = 0; f < n_files; f++)
        if (fds[f] >= 0) close(fds[f]);
    free(fds);
    free(chunks);
}

// kernels.h: separate device buffers through the same loader. Each buffer is one or two jobs of whole 1 MiB rows
// (and the rest as one row), addressed from a base of 0: dst_offset is the buffer's device address itself.
extern "C" void cuda_memcpy_h2d_many(void *const *dst, const void *const *src, const size_t *bytes, int n) {
    const size_t R = 1u << 20;
    UploadJob *jobs = (UploadJob *)calloc(2 * (size_t)n + 1, sizeof(UploadJob));
    if (!jobs) fatal("cuda_memcpy_h2d_many: out of host memory");
    int nj = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *s8 = (const uint8_t *)src[i];
        const size_t d = (size_t)(uintptr_t)dst[i], whole = bytes[i] / R, rest = bytes[i] % R;
        if (whole) jobs[nj++] = (UploadJob){s8, d, whole, R, R};
        if (rest) jobs[nj++] = (UploadJob){s8 + whole * R, d + whole * R, 1, rest, rest};
    }
    int device = 0;
    cudaCheck(cudaGetDevice(&device));
    if (nj) engine_upload(jobs, nj, (uint8_t *)0, device, 8, NULL, 0, true);
    free(jobs);
}

// nccl_nocuda.c: kernels.h's NCCL collectives for a build without nvcc, apart from kernels_nocuda.c so that a build
// with its own stand-in for the CUDA ops (tests/host_cuda/kernels_host.c) links these too. nccl_available() says 0
// (chapter 18 then runs its ranks one after another); any other call is a bug in the caller and exits saying the build
// has no NCCL.
#include "kernels.h"
#include "util.h"

#define NO_NCCL(name) fatal("%s: this build has no CUDA and no NCCL (nvcc was not found when it was built)", name)

int nccl_available(void) { return 0; }
int nccl_version(void) { NO_NCCL("nccl_version"); }
void nccl_unique_id(uint8_t id[NCCL_ID_BYTES]) { NO_NCCL("nccl_unique_id"); }
void *nccl_comm_init(const uint8_t id[NCCL_ID_BYTES], int n_ranks, int rank) { NO_NCCL("nccl_comm_init"); }
void nccl_all_reduce_sum(void *comm, void *buf, size_t n, Precision p) { NO_NCCL("nccl_all_reduce_sum"); }
void nccl_all_reduce_sum_on(void *comm, void *buf, size_t n, Precision p, void *stream) {
    NO_NCCL("nccl_all_reduce_sum_on");
}
void nccl_all_gather_f32(void *comm, const float *send, float *recv, size_t n_per_rank) {
    NO_NCCL("nccl_all_gather_f32");
}
void nccl_all_gather_f32_on(void *comm, const float *send, float *recv, size_t n_per_rank, void *stream) {
    NO_NCCL("nccl_all_gather_f32_on");
}
void nccl_broadcast_i32_on(void *comm, int32_t *buf, size_t n, int root, void *stream) {
    NO_NCCL("nccl_broadcast_i32_on");
}
void nccl_comm_destroy(void *comm) {}

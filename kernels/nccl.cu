// nccl.cu: the collectives of tensor parallelism (kernels.h "tensor parallelism"): a thin, checked layer over NCCL.
//
// One communicator per process (one process per GPU, as Meta's code runs under torchrun; kernels/engine_ranks.h
// starts them): rank r selects GPU r, then calls nccl_comm_init with the id one process made (nccl_unique_id) and
// passed to all. NCCL is opened at run time (dlopen of libnccl.so.2, searched like any shared library: the
// program's run path, LD_LIBRARY_PATH, the system's), so the programs and chapters that never use tensor
// parallelism start on machines without it. NVLink multicast (NVLS) is never used: NCCL_NVLS_ENABLE=0 is set before
// NCCL reads its environment (when the variable is unset; a value that is set must be 0), and no multicast API is
// called. Built with HAVE_NCCL (the Makefile defines it when nccl.h exists); without it nccl_available() is 0 and
// every other call exits saying the build has no NCCL.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"

#ifdef HAVE_NCCL
#include <nccl.h>

// The functions used, loaded once. The types come from nccl.h, so a mismatch is a compile error.
static struct {
    bool tried, ok;
    char why[512];
    decltype(&ncclGetUniqueId) GetUniqueId;
    decltype(&ncclCommInitRank) CommInitRank;
    decltype(&ncclCommDestroy) CommDestroy;
    decltype(&ncclAllReduce) AllReduce;
    decltype(&ncclAllGather) AllGather;
    decltype(&ncclBroadcast) Broadcast;
    decltype(&ncclGetErrorString) GetErrorString;
    decltype(&ncclGetVersion) GetVersion;
} nccl;

static bool nccl_load(void) {
    if (nccl.tried) return nccl.ok;
    nccl.tried = true;
    void *lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) lib = dlopen("libnccl.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(nccl.why, sizeof nccl.why, "cannot open libnccl.so.2 (%s); install NCCL or add its lib directory "
                 "to LD_LIBRARY_PATH", dlerror());
        return false;
    }
#define LOAD(name)                                                                                                   \
    if (!(*(void **)&nccl.name = dlsym(lib, "nccl" #name))) {                                                        \
        snprintf(nccl.why, sizeof nccl.why, "libnccl.so.2 has no nccl" #name);                                       \
        return false;                                                                                                \
    }
    LOAD(GetUniqueId) LOAD(CommInitRank) LOAD(CommDestroy) LOAD(AllReduce) LOAD(AllGather) LOAD(Broadcast)
    LOAD(GetErrorString) LOAD(GetVersion)
#undef LOAD
    nccl.ok = true;
    return true;
}
static void need_nccl(const char *what) {
    if (!nccl_load()) fatal("%s: tensor parallelism needs NCCL: %s", what, nccl.why);
}

#define ncclCheck(call)                                                                                          \
    do {                                                                                                         \
        ncclResult_t r_ = (call);                                                                                \
        if (r_ != ncclSuccess) fatal("%s:%d: %s: NCCL error %d: %s", __FILE__, __LINE__, #call, (int)r_,         \
                                     nccl.GetErrorString(r_));                                                   \
    } while (0)

extern "C" int nccl_available(void) { return nccl_load() ? 1 : 0; }

extern "C" int nccl_version(void) {
    int v = 0;
    need_nccl("nccl_version");
    ncclCheck(nccl.GetVersion(&v));
    return v;
}

extern "C" void nccl_unique_id(uint8_t id[NCCL_ID_BYTES]) {
    static_assert(NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "kernels.h NCCL_ID_BYTES");
    nccl_nvls_pin();
    need_nccl("nccl_unique_id");
    ncclUniqueId u;
    ncclCheck(nccl.GetUniqueId(&u));
    memcpy(id, u.internal, NCCL_ID_BYTES);
}

extern "C" void *nccl_comm_init(const uint8_t id[NCCL_ID_BYTES], int n_ranks, int rank) {
    REQUIRE(n_ranks >= 1 && rank >= 0 && rank < n_ranks, "n_ranks %d rank %d", n_ranks, rank);
    nccl_nvls_pin();
    need_nccl("nccl_comm_init");
    ncclUniqueId u;
    memcpy(u.internal, id, NCCL_ID_BYTES);
    ncclComm_t comm;
    ncclCheck(nccl.CommInitRank(&comm, n_ranks, u, rank));
    return comm;
}

static ncclDataType_t nccl_type(Precision p) { return p == PREC_BF16 ? ncclBfloat16 : ncclFloat32; }

extern "C" void nccl_all_reduce_sum_on(void *comm, void *buf, size_t n, Precision p, void *stream) {
    ncclCheck(nccl.AllReduce(buf, buf, n, nccl_type(p), ncclSum, (ncclComm_t)comm, (cudaStream_t)stream));
}
extern "C" void nccl_all_reduce_sum(void *comm, void *buf, size_t n, Precision p) {
    nccl_all_reduce_sum_on(comm, buf, n, p, NULL);
}

extern "C" void nccl_all_gather_f32_on(void *comm, const float *send, float *recv, size_t n_per_rank, void *stream) {
    ncclCheck(nccl.AllGather(send, recv, n_per_rank, ncclFloat32, (ncclComm_t)comm, (cudaStream_t)stream));
}
extern "C" void nccl_all_gather_f32(void *comm, const float *send, float *recv, size_t n_per_rank) {
    nccl_all_gather_f32_on(comm, send, recv, n_per_rank, NULL);
}

extern "C" void nccl_broadcast_i32_on(void *comm, int32_t *buf, size_t n, int root, void *stream) {
    ncclCheck(nccl.Broadcast(buf, buf, n, ncclInt32, root, (ncclComm_t)comm, (cudaStream_t)stream));
}

extern "C" void nccl_comm_destroy(void *comm) {
    if (comm) ncclCheck(nccl.CommDestroy((ncclComm_t)comm));
}

#else  // a build without nccl.h

#define NO_NCCL(name) fatal("%s: this build has no NCCL (nccl.h was not found when it was built)", name)
extern "C" int nccl_available(void) { return 0; }
extern "C" int nccl_version(void) { NO_NCCL("nccl_version"); }
extern "C" void nccl_unique_id(uint8_t id[NCCL_ID_BYTES]) { NO_NCCL("nccl_unique_id"); }
extern "C" void *nccl_comm_init(const uint8_t id[NCCL_ID_BYTES], int n_ranks, int rank) { NO_NCCL("nccl_comm_init"); }
extern "C" void nccl_all_reduce_sum_on(void *comm, void *buf, size_t n, Precision p, void *stream) {
    NO_NCCL("nccl_all_reduce_sum_on");
}
extern "C" void nccl_all_reduce_sum(void *comm, void *buf, size_t n, Precision p) { NO_NCCL("nccl_all_reduce_sum"); }
extern "C" void nccl_all_gather_f32_on(void *comm, const float *send, float *recv, size_t n_per_rank, void *stream) {
    NO_NCCL("nccl_all_gather_f32_on");
}
extern "C" void nccl_all_gather_f32(void *comm, const float *send, float *recv, size_t n_per_rank) {
    NO_NCCL("nccl_all_gather_f32");
}
extern "C" void nccl_broadcast_i32_on(void *comm, int32_t *buf, size_t n, int root, void *stream) {
    NO_NCCL("nccl_broadcast_i32_on");
}
extern "C" void nccl_comm_destroy(void *comm) {}
#endif

// fuzz_safetensors.c: a .safetensors file (common/formats/safetensors.c): the header's JSON, the dtypes and shapes,
// and the exact tiling of the byte buffer.
//
// Promise of an accepted file: the tensors, in buffer order, cover the bytes after the header exactly, each with
// numel * element size bytes; every byte of every tensor can be read.
#include "formats/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    SafetensorsFile sf;
    memset(&sf, 0, sizeof sf);
    char err[512];
    if (!safetensors_parse_try(&sf, data, size, err, sizeof err)) {
        fuzz_check_message(err, sizeof err);
        return 0;
    }
    uint64_t covered = 0;
    for (int i = 0; i < sf.n_tensors; i++) {
        const Tensor *t = &sf.tensors[i];
        int64_t nbytes;
        FUZZ_REQUIRE(shape_nbytes_checked(t->shape, t->ndim, dtype_size(t->dtype), &nbytes), "tensor %d: size overflows", i);
        covered += (uint64_t)nbytes;
        FUZZ_REQUIRE(safetensors_find(&sf, t->name) == t, "tensor %d: its name finds another tensor", i);
        (void)tensor_crc32(t);
    }
    FUZZ_REQUIRE(sf.buffer_offset + covered == size, "the tensors cover %llu bytes after a header of %zu, file %zu",
                 (unsigned long long)covered, sf.buffer_offset, size);
    safetensors_close(&sf);
    return 0;
}

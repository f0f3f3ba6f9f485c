// fuzz_pth.c: a .pth file (zip + pickle, common/formats/pth.c) as torch.save writes it.
//
// Promise of an accepted file: every tensor's elements, at every index its shape allows, lie inside the bytes
// (checked by reading them all: its CRC-32, as wt-inspect computes it, under AddressSanitizer), and its byte count
// fits in the file: a view cannot claim more elements than its storage holds. Every zip entry lies inside the bytes
// (its CRC-32 is computed, as checkpoint_verify does).
#include "formats/pth.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PthIndex ix;
    char err[512];
    if (!pth_index_try(&ix, data, size, err, sizeof err)) {
        fuzz_check_message(err, sizeof err);
        return 0;
    }
    for (int i = 0; i < ix.n_tensors; i++) {
        const Tensor *t = &ix.tensors[i];
        int64_t nbytes;
        FUZZ_REQUIRE(shape_nbytes_checked(t->shape, t->ndim, dtype_size(t->dtype), &nbytes), "tensor %d: its size overflows", i);
        FUZZ_REQUIRE((uint64_t)nbytes <= size, "tensor %d: %lld bytes in a file of %zu", i, (long long)nbytes, size);
        FUZZ_REQUIRE(ix.file_offsets[i] <= size, "tensor %d starts past the end", i);
        (void)tensor_crc32(t);
    }
    for (int e = 0; e < ix.zip.n_entries; e++) {  // what checkpoint_verify reads: every entry lies inside the bytes
        const ZipEntry *z = &ix.zip.entries[e];
        FUZZ_REQUIRE(z->data_offset <= size && z->size <= size - z->data_offset, "entry %d outside the file", e);
        (void)zip_crc32(0, data + z->data_offset, (size_t)z->size);
    }
    pth_index_free(&ix);
    return 0;
}

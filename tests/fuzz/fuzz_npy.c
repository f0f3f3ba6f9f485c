// fuzz_npy.c: a .npy file (common/formats/npy.c): magic, version, the header's dict literal, the shape.
//
// Promise of an accepted file: the data holds exactly numel * element size bytes, all copied out.
#include "formats/npy.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    NpyArray a;
    char err[512];
    if (!npy_read_try(data, size, &a, err, sizeof err)) {
        fuzz_check_message(err, sizeof err);
        return 0;
    }
    int64_t nbytes;
    FUZZ_REQUIRE(shape_nbytes_checked(a.shape, a.ndim, dtype_size(a.dtype), &nbytes), "size overflows");
    FUZZ_REQUIRE((uint64_t)nbytes <= size, "%lld bytes of data in a file of %zu", (long long)nbytes, size);
    if (nbytes) FUZZ_REQUIRE(memcmp(a.data, data + size - (size_t)nbytes, (size_t)nbytes) == 0, "the data differs from the file's last bytes");
    npy_free(&a);
    return 0;
}

// fuzz_pickle.c: the safe pickle VM (common/formats/pickle.c) on any bytes: the tensor list of a checkpoint pickle and
// the text form of any pickle. The VM must stop on every input, without undefined behaviour, in time linear in the
// input (the replay of the corpus fails an input that takes seconds).
//
// Promise of an accepted tensor list: each view stays inside its storage and has no more elements than it.
#include "formats/pickle.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PickleTensorList list;
    char err[512];
    if (pickle_read_tensors(data, size, &list, err, sizeof err)) {
        for (int i = 0; i < list.n; i++) {
            const PickleTensor *t = &list.tensors[i];
            int64_t numel, reach = t->storage_offset;
            FUZZ_REQUIRE(shape_numel_checked(t->shape, t->ndim, &numel), "tensor %d: element count overflows", i);
            FUZZ_REQUIRE(t->storage_offset >= 0 && numel <= t->storage_numel - t->storage_offset, "tensor %d: %lld elements from offset %lld of %lld",
                         i, (long long)numel, (long long)t->storage_offset, (long long)t->storage_numel);
            for (int d = 0; d < t->ndim && numel > 0; d++) reach += (t->shape[d] - 1) * t->stride[d];
            FUZZ_REQUIRE(numel == 0 || reach < t->storage_numel, "tensor %d reaches element %lld of %lld", i, (long long)reach,
                         (long long)t->storage_numel);
            FUZZ_REQUIRE(t->name[0] != 0, "tensor %d has an empty name", i);
        }
        pickle_tensor_list_free(&list);
    } else {
        fuzz_check_message(err, sizeof err);
    }
    static char text[1 << 16];
    if (!pickle_to_text(data, size, text, sizeof text, err, sizeof err)) fuzz_check_message(err, sizeof err);
    else FUZZ_REQUIRE(memchr(text, 0, sizeof text) != NULL, "the text is not terminated");
    return 0;
}

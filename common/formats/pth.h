// pth.h: one PyTorch checkpoint file (torch.save, zip format) as a list of named Tensor views into its memory map.
//
// A .pth file is a zip (zip.h) holding `<archive>/data.pkl`, a pickle that describes the tensors (pickle.h), and one
// entry `<archive>/data/<key>` of raw little-endian bytes per storage. A tensor is a view of a storage: element
// [i0, i1, ...] lives at storage byte (storage_offset + sum(i_d * stride[d])) * element_size. Views keep their strides
// (a saved `t[1:, ::2]` stays strided); several tensors may share one storage. Nothing is copied: Tensor.data points
// into the map, so opening a 16 GB checkpoint costs the time to read the pickle, not the weights.
//
// Checked (each failure is one line naming the file): a zip that is truncated or corrupt, a legacy (pre-1.6) or
// TorchScript file, a forbidden pickle global, a storage entry whose size is not numel * element size, a view that
// reaches outside its storage, `byteorder` other than `little`.
//
// Use:
//   PthFile f;  pth_open(&f, "consolidated.00.pth");
//   for (int i = 0; i < f.index.n_tensors; i++) printf("%s\n", f.index.tensors[i].name);
//   pth_close(&f);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/zip.h"
#include "tensor.h"
#include "util.h"

typedef struct {
    char *archive_prefix;    // the top folder of the zip with its '/', e.g. "consolidated/"
    int n_tensors;
    Tensor *tensors;         // in pickle order; names malloc'd (freed by pth_index_free); data points into the bytes
    uint64_t *file_offsets;  // for each tensor, the byte offset in the file of its element [0, 0, ...]
    int64_t *storage_ids;    // for each tensor, which storage it views: its zip entry, an index into zip.entries
    ZipArchive zip;          // every entry, with the CRC-32 the central directory states (checkpoint_verify)
} PthIndex;

// Reads the index of a checkpoint lying in data[0 .. size). Returns false with a one-line message in err on bad
// input (then nothing is to be freed).
bool pth_index_try(PthIndex *ix, const uint8_t *data, size_t size, char *err, size_t errlen);
// The same for a mapped file; exits 2 with "error: PATH: message" on bad input.
void pth_index_read(PthIndex *ix, const MappedFile *m);
void pth_index_free(PthIndex *ix);

// A mapped file and its index together.
typedef struct {
    MappedFile file;
    PthIndex index;
} PthFile;
void pth_open(PthFile *f, const char *path);  // exits 2 on bad input
void pth_close(PthFile *f);
// True when the file starts like a torch checkpoint (zip "PK\3\4" or the legacy pickle magic): used to tell a .pth
// from a .safetensors file without trusting the extension.
bool pth_looks_like_torch(const uint8_t *data, size_t size);

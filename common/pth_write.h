// pth_write.h: writes a PyTorch checkpoint exactly as torch.save does (formats.md §2): a zip with STORED entries
// 64-byte aligned, zip64 records always, a protocol-2 pickle of a dict name -> tensor, then the storages.
//
// torch.save writes data.pkl first, so every tensor is declared up front; then the tensor bytes are streamed in
// declaration order. The file appears under its name only when pth_writer_close() succeeds.
#pragma once
#include <stddef.h>

#include "tensor.h"

typedef struct {
    const char *name;
    DType dtype;
    int ndim;
    int64_t shape[MAX_DIMS];
} PthTensorSpec;

typedef struct PthWriter PthWriter;

PthWriter *pth_writer_open(const char *path, const PthTensorSpec *specs, int n);
// Bytes of the current tensor (contiguous, row-major); may be called many times per tensor. When a tensor's byte
// count is reached, the writer moves on to the next one.
void pth_writer_append(PthWriter *w, const void *bytes, size_t nbytes);
// Checks that every tensor was written in full, writes the remaining entries, the central directory and the zip64
// end records, and renames PATH.partial to PATH.
void pth_writer_close(PthWriter *w);

// pth_write.h: writes a PyTorch checkpoint exactly as torch.save does (formats.md §2): a zip with STORED entries
// 64-byte aligned, zip64 records always, a protocol-2 pickle of a dict name -> tensor, then the storages.
//
// torch.save writes data.pkl first, so every tensor is declared up front; then the tensor bytes are streamed in
// declaration order. The file appears under its name only when pth_writer_close() succeeds.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

// ---- additions ------------------------------------------------------------------------------------------------------
// A small record of the zip besides the pickle and the tensors: short name (without the archive folder) and bytes.
typedef struct {
    const char *name;
    const void *data;
    size_t size;
} PthRecord;

typedef struct {
    // torch <= 1.13 writes no "<archive>/byteorder" entry (newer torch and Meta's files have it). Set this to get the
    // very bytes Debian's torch 1.13 torch.save writes (the tests compare them).
    bool no_byteorder;
    // Values >= this threshold go into zip64 extra fields (0 means zip's own limit, 0xFFFFFFFF, as torch does). Tests
    // lower it to exercise every zip64 record on a small file; readers accept such files all the same.
    uint64_t zip64_threshold;
    // Tests of the reader: these bytes become data.pkl instead of the pickle made from the specs (which then only
    // give the storages data/0, data/1, ...). Views the writer never makes (stride 0, odd names) are written this
    // way with correct CRC-32s, so that a reader must refuse them for what they say, not for a bad checksum.
    const uint8_t *raw_pickle;
    size_t raw_pickle_len;
    // The folder every entry goes under, without its '/' (NULL: pth_archive_name(path), as torch.save names it).
    // wt-convert reshard keeps the input's, so that joining shards back gives the original file's very bytes.
    const char *archive_name;
    // Records written after data.pkl (and byteorder), before the tensors, and records written after "version", in
    // the order given. Newer torch.save writes ".format_version" and ".storage_alignment" before byteorder and
    // ".data/serialization_id" at the end; wt-convert reshard passes the input's own records (with no_byteorder,
    // byteorder among them) so that a file comes back with the very bytes it had.
    // torch <= 1.13 writes the storage entries sorted by key as text ("0", "1", "10", "11", ..., "2"); newer torch
    // in key order. With this set the tensors' bytes are due in that text order: ask pth_writer_next_tensor.
    bool keys_in_text_order;
    const PthRecord *records_before;
    int n_records_before;
    const PthRecord *records_after;
    int n_records_after;
} PthWriterOptions;

PthWriter *pth_writer_open_opts(const char *path, const PthTensorSpec *specs, int n, const PthWriterOptions *opt);
// The tensor whose bytes pth_writer_append expects next (declaration order unless keys_in_text_order), -1 when
// every tensor is complete.
int pth_writer_next_tensor(const PthWriter *w);
// Bytes written to PATH.partial so far (for progress reports).
uint64_t pth_writer_bytes_written(const PthWriter *w);
// Gives up: closes and deletes PATH.partial.
void pth_writer_abort(PthWriter *w);
// The folder name torch.save puts every entry under: the basename of path minus its last extension
// ("dir/consolidated.00.pth" -> "consolidated.00"), "archive" if that is empty. malloc'd.
char *pth_archive_name(const char *path);

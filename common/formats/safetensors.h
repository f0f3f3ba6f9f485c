// safetensors.h: reading and writing .safetensors files (formats.md §5), and the q/k row order of HF checkpoints.
//
// A .safetensors file is
//     u64 N (little-endian) | N bytes of JSON header | the byte buffer, to the end of the file
// where the header maps each tensor name to {"dtype": "BF16", "shape": [d0, ...], "data_offsets": [BEGIN, END]}
// (offsets relative to the buffer) plus an optional "__metadata__" object of string -> string.
//
// Reading: safetensors_open() maps the file and checks every rule the reference reader (huggingface/safetensors)
// enforces: N <= 100,000,000; the header is one JSON object with no duplicate keys; the tensors, sorted by BEGIN,
// tile the buffer exactly (no hole, no overlap); END - BEGIN == numel * element size; 8 + N + buffer == file size;
// known dtypes only. Any violation exits 2 with one line naming the file and the field. The tensors are views into
// the memory map; a tensor whose address is not a multiple of its element size (an old writer that did not pad
// the header to 8 bytes) is copied into aligned memory owned by the SafetensorsFile.
//
// Writing: safetensors_writer_open() takes the list of tensors up front, lays them out (the reference writer's
// order: larger element size first, then by name), writes the header padded with spaces to a multiple of 8 bytes
// and `"__metadata__": {"format": "pt"}` (transformers refuses files without it); then each tensor's bytes are
// written by index in any order. The file gets its name only when safetensors_writer_close() succeeds.
//
// HF q/k rows: Meta's checkpoints pair RoPE dimensions (2i, 2i+1) of each head, HF's pair (i, i + Dh/2). With
// Dh = head_dim, h a head, 0 <= i < Dh/2, j in {0, 1}:   HF_row[h*Dh + j*Dh/2 + i] == Meta_row[h*Dh + 2i + j].
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"
#include "util.h"

#define SAFETENSORS_MAX_HEADER 100000000ull  // the reference reader's limit on N

typedef struct {
    MappedFile file;
    int n_tensors;
    Tensor *tensors;       // in buffer order (sorted by BEGIN); names point into `names`
    char *names;           // all tensor names, NUL-separated, one allocation
    size_t header_len;     // N
    size_t buffer_offset;  // 8 + N: file offset of the byte buffer
    char *metadata_format; // the "format" entry of __metadata__, or NULL
    int n_copies;
    void **copies;         // aligned copies of misaligned tensors (usually none)
} SafetensorsFile;

// Maps and validates path; exits 2 on any bad input.
void safetensors_open(SafetensorsFile *sf, const char *path);
// The same checks on size bytes at base (which must stay valid while the tensors are used; sf->file is kept as the
// caller set it, e.g. zeroed for bytes in memory). False with a one-line message in err; then nothing is to be freed
// but sf->file. safetensors_close() frees what a successful parse made.
bool safetensors_parse_try(SafetensorsFile *sf, const uint8_t *base, size_t size, char *err, size_t errlen);
// Unmaps the file and frees everything (also the names and copies unless they were taken by the caller).
void safetensors_close(SafetensorsFile *sf);
const Tensor *safetensors_find(const SafetensorsFile *sf, const char *name);  // NULL if absent

// "BF16" <-> DT_BF16, ... Returns false / NULL for dtypes this project does not handle.
bool safetensors_dtype_parse(const char *s, DType *out);
const char *safetensors_dtype_string(DType t);

// Writer.
typedef struct {
    const char *name;
    DType dtype;
    int ndim;
    int64_t shape[MAX_DIMS];
} SafetensorsSpec;
typedef struct SafetensorsWriter SafetensorsWriter;

// Writes the header at once (to PATH.partial). Duplicate names or unsupported dtypes are a caller bug (fatal).
SafetensorsWriter *safetensors_writer_open(const char *path, const SafetensorsSpec *specs, int n);
// Writes all bytes of tensor `index` (position in the specs given to open), contiguous row-major, in any order.
void safetensors_writer_write(SafetensorsWriter *w, int index, const void *bytes);
// Checks that every tensor was written once, then renames PATH.partial to PATH.
void safetensors_writer_close(SafetensorsWriter *w);

// Row order of q/k projections. rows_in/rows_out are [n_heads * head_dim, row_bytes / elsize] matrices of any dtype;
// row_bytes is the size of one row. head_dim must be even.
void qk_rows_hf_to_meta(const void *hf, void *meta, int n_heads, int head_dim, size_t row_bytes);
void qk_rows_meta_to_hf(const void *meta, void *hf, int n_heads, int head_dim, size_t row_bytes);
// The Meta row that HF row r holds (the formula above, as an index map).
int64_t qk_hf_row_to_meta_row(int64_t r, int head_dim);

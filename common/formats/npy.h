// npy.h: NumPy .npy files (format version 1.0), the tensors a learner np.load()s next to the tutorial's notebook.
//
// bf16 has no numpy dtype: bf16 tensors are written as float32, which holds every bf16 value exactly.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

// Writes a contiguous float32 array of the given shape (atomically: PATH.partial, then rename).
void npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim);
// Writes any tensor: f32/f16/f64/integers in their own dtype, bf16 as float32; strided views are made contiguous.
void npy_write_tensor(const char *path, const Tensor *t);
// Writes int64 values (token ids).
void npy_write_i64(const char *path, const int64_t *data, const int64_t *shape, int ndim);

// The header of a .npy file (format 1.0, 2.0 or 3.0), what np.load() makes of it, read without the data (a tensor of
// the real model can be hundreds of MB): a little-endian number type numpy loads, C order, the shape.
typedef struct {
    char descr[16];           // "<f4", "|u1", ...
    const char *numpy_dtype;  // numpy's name of it: "float32", "int64", "uint16", "bool", ...
    int ndim;
    int64_t shape[MAX_DIMS];
    size_t data_offset;       // where the data starts in the file
} NpyHeader;
// Exits 2 naming the file and the field ("magic: expected a .npy file", "shape: ...") on bad input.
void npy_read_header(const char *path, NpyHeader *h);

// A loaded .npy: data is malloc'd and owned (free with npy_free). Only little-endian, C-order arrays of the dtypes
// of tensor.h (f2/f4/f8, i1..i8, u1, b1); the header is npy_read_header's. A complex64 (complex128) array [..., n] is
// read as float32 (float64) [..., n, 2]: (real, imaginary), torch.view_as_real's layout.
typedef struct {
    DType dtype;
    int ndim;
    int64_t shape[MAX_DIMS];
    void *data;
} NpyArray;
void npy_read(const char *path, NpyArray *a);  // exits 2 naming the file and the field on bad input
// The same on bytes in memory: false with a one-line message in err on bad input (then a holds nothing to free).
bool npy_read_try(const uint8_t *bytes, size_t len, NpyArray *a, char *err, size_t errlen);
void npy_free(NpyArray *a);

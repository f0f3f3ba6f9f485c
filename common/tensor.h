// tensor.h: dtypes (bf16, f16, f32, ...), a strided tensor view, and exact conversions between them.
//
// A Tensor never owns its data: it is a view into a memory map (checkpoint weights) or into a buffer that
// somebody else allocated and frees. Shapes and strides count ELEMENTS, never bytes; all sizes are 64-bit.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64, DT_I64, DT_I32, DT_I16, DT_I8, DT_U8, DT_BOOL, DT_COUNT } DType;

size_t dtype_size(DType t);             // bytes per element
const char *dtype_name(DType t);        // "bf16", "f32", ... (as wt-inspect prints them)
const char *dtype_npy_descr(DType t);   // "<f4", "<f2", ... ; NULL for bf16 (numpy has none)
bool dtype_from_name(const char *s, DType *out);  // accepts the names dtype_name() prints

#define MAX_DIMS 8

typedef struct {
    const char *name;         // NUL-terminated; owned by whoever made the view
    DType dtype;
    int ndim;                 // 0 for a scalar
    int64_t shape[MAX_DIMS];
    int64_t stride[MAX_DIMS]; // in elements
    const void *data;         // address of element [0, 0, ...] (storage offset already applied)
} Tensor;

// Element count and byte size of a shape read from a file, checked: false when a dim is negative or the count, or
// the count times elem_size, passes INT64_MAX (a 524-byte file can claim 2^62 elements). *out is set on success.
bool shape_numel_checked(const int64_t *shape, int ndim, int64_t *out);
bool shape_nbytes_checked(const int64_t *shape, int ndim, size_t elem_size, int64_t *out);
// The same for a Tensor whose shape a reader has already checked: an overflow here is a bug (fatal, exit 1).
int64_t tensor_numel(const Tensor *t);
bool tensor_is_contiguous(const Tensor *t);
size_t tensor_nbytes(const Tensor *t);          // numel * element size (contiguous size)
void tensor_set_contiguous_strides(Tensor *t);  // row-major strides from shape
// "[17, 4096]" into buf (always NUL-terminated); returns buf.
char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n);
// zlib's CRC-32 of the tensor's bytes in row-major order (a strided view read as torch's t.contiguous() would be):
// the same number as Python's zlib.crc32(t.contiguous().view(torch.uint8).numpy()).
uint32_t tensor_crc32(const Tensor *t);
// Copies a (possibly strided) tensor of any float dtype into a contiguous float32 array of tensor_numel floats.
void tensor_to_f32(const Tensor *t, float *out);

// bf16 <-> f32: bf16 is the top half of an f32; rounding to nearest, ties to even; NaN stays NaN (quiet).
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // NaN: keep sign, force quiet
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}
// Rounds an f32 to the nearest bf16 value and returns it as f32: the CPU reference's rounding point.
static inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// IEEE half <-> f32, round to nearest even; subnormals, infinities and NaN handled.
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

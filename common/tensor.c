// tensor.c: see tensor.h.
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <zlib.h>

#include "util.h"

static const struct {
    const char *name, *npy;
    size_t size;
} DTYPES[DT_COUNT] = {
    [DT_F32] = {"f32", "<f4", 4}, [DT_F16] = {"f16", "<f2", 2}, [DT_BF16] = {"bf16", NULL, 2},
    [DT_F64] = {"f64", "<f8", 8}, [DT_I64] = {"i64", "<i8", 8}, [DT_I32] = {"i32", "<i4", 4},
    [DT_I16] = {"i16", "<i2", 2}, [DT_I8] = {"i8", "|i1", 1},   [DT_U8] = {"u8", "|u1", 1},
    [DT_BOOL] = {"bool", "|b1", 1},
};

size_t dtype_size(DType t) { return DTYPES[t].size; }
const char *dtype_name(DType t) { return DTYPES[t].name; }
const char *dtype_npy_descr(DType t) { return DTYPES[t].npy; }
bool dtype_from_name(const char *s, DType *out) {
    for (int i = 0; i < DT_COUNT; i++)
        if (strcmp(s, DTYPES[i].name) == 0) {
            *out = (DType)i;
            return true;
        }
    return false;
}

bool shape_numel_checked(const int64_t *shape, int ndim, int64_t *out) {
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0 || __builtin_mul_overflow(n, shape[d], &n)) return false;
    *out = n;
    return true;
}
bool shape_nbytes_checked(const int64_t *shape, int ndim, size_t elem_size, int64_t *out) {
    int64_t n;
    return shape_numel_checked(shape, ndim, &n) && elem_size <= INT64_MAX && !__builtin_mul_overflow(n, (int64_t)elem_size, out);
}

int64_t tensor_numel(const Tensor *t) {
    int64_t n;
    if (!shape_numel_checked(t->shape, t->ndim, &n)) fatal("tensor %s: its shape has a negative dim or more than 2^63 elements", t->name ? t->name : "?");
    return n;
}
bool tensor_is_contiguous(const Tensor *t) {
    int64_t expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expect) return false;
        expect *= t->shape[d];
    }
    return true;
}
size_t tensor_nbytes(const Tensor *t) {
    int64_t n;
    if (!shape_nbytes_checked(t->shape, t->ndim, dtype_size(t->dtype), &n)) fatal("tensor %s: its size in bytes passes 2^63", t->name ? t->name : "?");
    return (size_t)n;
}
void tensor_set_contiguous_strides(Tensor *t) {
    int64_t s = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        t->stride[d] = s;
        s *= t->shape[d];
    }
}
char *shape_str(const int64_t *shape, int ndim, char *buf, size_t n) {
    size_t k = 0;
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "[");
    for (int d = 0; d < ndim; d++)
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%lld", d ? ", " : "", (long long)shape[d]);
    snprintf(buf + k, k < n ? n - k : 0, "]");
    return buf;
}

static float load_as_f32(const uint8_t *p, DType t) {
    switch (t) {
    case DT_F32: { float v; memcpy(&v, p, 4); return v; }
    case DT_F16: { uint16_t h; memcpy(&h, p, 2); return f16_to_f32(h); }
    case DT_BF16: { uint16_t h; memcpy(&h, p, 2); return bf16_to_f32(h); }
    case DT_F64: { double v; memcpy(&v, p, 8); return (float)v; }
    case DT_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case DT_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case DT_I16: { int16_t v; memcpy(&v, p, 2); return (float)v; }
    case DT_I8: return (float)*(const int8_t *)p;
    case DT_U8: case DT_BOOL: return (float)*p;
    default: fatal("load_as_f32: bad dtype %d", (int)t);
    }
}

void tensor_to_f32(const Tensor *t, float *out) {
    int64_t n = tensor_numel(t);
    size_t es = dtype_size(t->dtype);
    const uint8_t *base = t->data;
    if (tensor_is_contiguous(t)) {
        for (int64_t i = 0; i < n; i++) out[i] = load_as_f32(base + (size_t)i * es, t->dtype);
        return;
    }
    int64_t idx[MAX_DIMS] = {0};
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        out[i] = load_as_f32(base + (size_t)off * es, t->dtype);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
}

// Contiguous tensors are hashed in place; a strided view is gathered element by element in row-major order.
uint32_t tensor_crc32(const Tensor *t) {
    size_t es = dtype_size(t->dtype);
    int64_t n = tensor_numel(t);
    uLong crc = crc32_z(0L, Z_NULL, 0);
    if (n == 0) return (uint32_t)crc;
    if (tensor_is_contiguous(t)) return (uint32_t)crc32_z(crc, t->data, (size_t)n * es);
    int64_t idx[MAX_DIMS] = {0};
    const uint8_t *base = t->data;
    for (int64_t k = 0; k < n; k++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        crc = crc32_z(crc, base + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return (uint32_t)crc;
}

float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0) {
        if (mant == 0) u = sign;
        else {  // subnormal: normalise
            int e = -1;
            do { e++; mant <<= 1; } while (!(mant & 0x400));
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 31) u = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0);
    else u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;  // NaN
    if (a >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: infinity
    if (a < 0x38800000u) {                       // below the smallest normal half (2^-14): subnormal or zero
        if (a < 0x33000000u) return sign;        // below half the smallest subnormal (2^-25): zero
        uint32_t exp = a >> 23, mant = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)exp;  // 14 + 113 - 1 - exp: places the leading one
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    a += 0xfff + ((a >> 13) & 1);  // round to nearest even on the 13 dropped bits
    return sign | (uint16_t)((a - (112u << 23)) >> 13);
}

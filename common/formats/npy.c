// npy.c: see npy.h. Format: "\x93NUMPY" 1 0, u16 header length, a Python dict literal padded with spaces to a
// multiple of 64 bytes ending in '\n', then the raw little-endian C-order data.
#include "formats/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static void write_header(FILE *f, const char *path, const char *descr, const int64_t *shape, int ndim) {
    char dict[512];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int d = 0; d < ndim; d++) n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld, ", (long long)shape[d]);
    if (ndim > 1) n -= 2;  // numpy writes (4,) for 1-D and (2, 3) for 2-D
    else if (ndim == 1) n -= 1;
    n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    uint16_t hlen = (uint16_t)((size_t)n + pad + 1);
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    xfwrite(magic, 10, f, path);
    xfwrite(dict, (size_t)n, f, path);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
}

static void write_array(const char *path, const char *descr, const void *data, size_t nbytes, const int64_t *shape, int ndim) {
    AtomicFile a;
    atomic_open(&a, path);
    write_header(a.f, path, descr, shape, ndim);
    xfwrite(data, nbytes, a.f, path);
    atomic_commit(&a);
}

// Bytes of an array this program made: its shape is a bug if it overflows.
static size_t count_bytes(const int64_t *shape, int ndim, size_t elem_size) {
    int64_t n;
    if (!shape_nbytes_checked(shape, ndim, elem_size, &n)) fatal("npy: an array of %d dims whose size passes 2^63 bytes", ndim);
    return (size_t)n;
}

void npy_write_f32(const char *path, const float *data, const int64_t *shape, int ndim) {
    write_array(path, "<f4", data, count_bytes(shape, ndim, 4), shape, ndim);
}
void npy_write_i64(const char *path, const int64_t *data, const int64_t *shape, int ndim) {
    write_array(path, "<i8", data, count_bytes(shape, ndim, 8), shape, ndim);
}

void npy_write_tensor(const char *path, const Tensor *t) {
    size_t n = (size_t)tensor_numel(t);
    if (t->dtype == DT_BF16 || t->dtype == DT_F32) {
        float *buf = xmalloc(n * sizeof(float));
        tensor_to_f32(t, buf);
        npy_write_f32(path, buf, t->shape, t->ndim);
        free(buf);
        return;
    }
    size_t es = dtype_size(t->dtype);
    uint8_t *buf = xmalloc(n * es);
    const uint8_t *src = t->data;
    int64_t idx[MAX_DIMS] = {0};
    for (size_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
        memcpy(buf + i * es, src + (size_t)off * es, es);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    write_array(path, dtype_npy_descr(t->dtype), buf, n * es, t->shape, t->ndim);
    free(buf);
}

// numpy's dtype name for a .npy descr string, NULL if it is not a plain little-endian number type numpy loads.
static const char *numpy_dtype_name(const char *descr) {
    static const char *const table[][2] = {
        {"<f4", "float32"}, {"<f8", "float64"}, {"<f2", "float16"}, {"<i8", "int64"}, {"<i4", "int32"},
        {"<i2", "int16"},   {"|i1", "int8"},    {"|u1", "uint8"},   {"<u2", "uint16"}, {"<u4", "uint32"},
        {"<u8", "uint64"},  {"|b1", "bool"},    {"<c8", "complex64"}, {"<c16", "complex128"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(descr, table[i][0]) == 0) return table[i][1];
    return NULL;
}

// The one header parser (npy_read_try, npy_read_header). buf holds at least the header: "\x93NUMPY", the version
// (1: a u16 length; 2, 3: a u32 length), then a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (17, 4096), }. Shape entries are decimal integers separated by
// commas; one that does not fit in 63 bits is refused (strtoll would quietly saturate it).
static bool header_try(const uint8_t *buf, size_t len, NpyHeader *h, char *err, size_t errlen) {
    memset(h, 0, sizeof *h);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return fail_msg(err, errlen, "magic: expected a .npy file (\\x93NUMPY)");
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return fail_msg(err, errlen, "header: truncated");
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return fail_msg(err, errlen, "version: expected .npy format 1, 2 or 3, got %d", major);
    }
    if (hlen > len - hoff) return fail_msg(err, errlen, "header length: %zu bytes run past the end of the file", hlen);
    char *hdr = xmalloc(hlen + 1);
    memcpy(hdr, buf + hoff, hlen);
    hdr[hlen] = 0;
    bool ok = true;
    const char *p = strstr(hdr, "'descr':");
    if (!p || sscanf(p, "'descr': '%15[^']'", h->descr) != 1) ok = fail_msg(err, errlen, "descr: not found in the header");
    if (ok && !(h->numpy_dtype = numpy_dtype_name(h->descr)))
        ok = fail_msg(err, errlen, "descr: '%s' is not a little-endian number type numpy loads", h->descr);
    if (ok && (!(p = strstr(hdr, "'fortran_order':")) || strncmp(p + 16 + strspn(p + 16, " "), "False", 5) != 0))
        ok = fail_msg(err, errlen, "fortran_order: expected False (C order)");
    if (ok && (!(p = strstr(hdr, "'shape':")) || !(p = strchr(p, '(')))) ok = fail_msg(err, errlen, "shape: not found in the header");
    if (ok) p++;
    while (ok && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9') {
            ok = fail_msg(err, errlen, "shape: expected a non-negative integer at \"%.12s\"", p);
            break;
        }
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v)) {
                ok = fail_msg(err, errlen, "shape[%d]: does not fit in 63 bits", h->ndim);
                break;
            }
        if (ok && h->ndim == MAX_DIMS) ok = fail_msg(err, errlen, "shape: more than %d dims", MAX_DIMS);
        if (ok) h->shape[h->ndim++] = v;
    }
    h->data_offset = hoff + hlen;
    free(hdr);
    return ok;
}

bool npy_read_try(const uint8_t *buf, size_t len, NpyArray *a, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    NpyHeader h;
    if (!header_try(buf, len, &h, err, errlen)) return false;
    bool found = false;
    for (int t = 0; t < DT_COUNT && !found; t++)
        if (dtype_npy_descr((DType)t) && strcmp(h.descr, dtype_npy_descr((DType)t)) == 0) a->dtype = (DType)t, found = true;
    // complex64/complex128 (np.save of a complex tensor): read as float32/float64 pairs in a last dimension of 2
    bool complex_pairs = !found && (strcmp(h.descr, "<c8") == 0 || strcmp(h.descr, "<c16") == 0);
    if (complex_pairs) a->dtype = h.descr[2] == '8' ? DT_F32 : DT_F64, found = true;
    if (!found) return fail_msg(err, errlen, "descr: '%s' is not supported here (f2/f4/f8, c8/c16, i1..i8, u1, b1)", h.descr);
    a->ndim = h.ndim;
    memcpy(a->shape, h.shape, sizeof a->shape);
    if (complex_pairs) {
        if (a->ndim == MAX_DIMS) {
            memset(a, 0, sizeof *a);
            return fail_msg(err, errlen, "shape: more than %d dims with the (real, imaginary) pair", MAX_DIMS - 1);
        }
        a->shape[a->ndim++] = 2;
    }
    int64_t nbytes = 0;
    if (!shape_nbytes_checked(a->shape, a->ndim, dtype_size(a->dtype), &nbytes)) {
        memset(a, 0, sizeof *a);
        return fail_msg(err, errlen, "shape: the byte count overflows 64 bits");
    }
    if ((uint64_t)(len - h.data_offset) != (uint64_t)nbytes) {
        memset(a, 0, sizeof *a);
        return fail_msg(err, errlen, "data: %zu bytes, the shape needs %lld", len - h.data_offset, (long long)nbytes);
    }
    a->data = xmalloc(nbytes ? (size_t)nbytes : 1);
    if (nbytes) memcpy(a->data, buf + h.data_offset, (size_t)nbytes);
    return true;
}

void npy_read(const char *path, NpyArray *a) {
    size_t len;
    char *buf = read_whole_file(path, &len);
    char err[256];
    bool ok = npy_read_try((const uint8_t *)buf, len, a, err, sizeof err);
    free(buf);
    if (!ok) input_error(path, "%s", err);
}

void npy_read_header(const char *path, NpyHeader *h) {
    // Only the start of the file: a header is at most 1 MiB here (numpy writes a few hundred bytes), while the data
    // of a tensor of the real model can be hundreds of MB.
    FILE *f = fopen(path, "rb");
    if (!f) input_error(path, "cannot open: %s", strerror(errno));
    uint8_t *buf = xmalloc((1u << 20) + 12);
    size_t len = fread(buf, 1, (1u << 20) + 12, f);
    fclose(f);
    char err[256];
    bool ok = header_try(buf, len, h, err, sizeof err);
    free(buf);
    if (!ok) input_error(path, "%s", err);
}

void npy_free(NpyArray *a) {
    free(a->data);
    a->data = NULL;
}

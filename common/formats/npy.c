// npy.c: see npy.h. Format: "\x93NUMPY" 1 0, u16 header length, a Python dict literal padded with spaces to a
// multiple of 64 bytes ending in '\n', then the raw little-endian C-order data.
#include "formats/npy.h"

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

// The header is a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (17, 4096), }.
// Shape entries are decimal integers separated by commas; one that does not fit in 63 bits is refused (strtoll would
// quietly saturate it), and so is a shape whose byte count overflows or differs from the bytes that follow.
bool npy_read_try(const uint8_t *buf, size_t len, NpyArray *a, char *err, size_t errlen) {
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return fail_msg(err, errlen, "not a .npy file (magic \\x93NUMPY expected)");
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) {
        hlen = buf[8] | (size_t)buf[9] << 8;
        hoff = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) return fail_msg(err, errlen, "truncated header");
        hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        hoff = 12;
    } else {
        return fail_msg(err, errlen, "npy version %d: expected 1, 2 or 3", major);
    }
    if (hlen > len - hoff) return fail_msg(err, errlen, "header length %zu runs past the end of the file", hlen);
    char *hdr = xmalloc(hlen + 1);
    memcpy(hdr, buf + hoff, hlen);
    hdr[hlen] = 0;
    bool ok = true;
    char descr[16] = {0};
    const char *p = strstr(hdr, "'descr':");
    if (!p || sscanf(p, "'descr': '%15[^']'", descr) != 1) ok = fail_msg(err, errlen, "header: 'descr' missing");
    bool found = false;
    for (int t = 0; ok && t < DT_COUNT; t++)
        if (dtype_npy_descr((DType)t) && strcmp(descr, dtype_npy_descr((DType)t)) == 0) a->dtype = (DType)t, found = true;
    // complex64/complex128 (np.save of a complex tensor): read as float32/float64 pairs in a last dimension of 2
    bool complex_pairs = ok && !found && (strcmp(descr, "<c8") == 0 || strcmp(descr, "<c16") == 0);
    if (complex_pairs) a->dtype = descr[2] == '8' ? DT_F32 : DT_F64, found = true;
    if (ok && !found)
        ok = fail_msg(err, errlen, "header: descr '%s' not supported (little-endian f2/f4/f8/c8/c16/i1..i8/u1/b1 expected)", descr);
    if (ok && (!(p = strstr(hdr, "'fortran_order':")) || strncmp(p + 16 + strspn(p + 16, " "), "False", 5) != 0))
        ok = fail_msg(err, errlen, "header: fortran_order must be False");
    if (ok && (!(p = strstr(hdr, "'shape':")) || !(p = strchr(p, '(')))) ok = fail_msg(err, errlen, "header: 'shape' missing");
    if (ok) p++;
    while (ok && *p != ')') {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9') {
            ok = fail_msg(err, errlen, "header: shape: expected a non-negative integer at \"%.12s\"", p);
            break;
        }
        int64_t v = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v)) {
                ok = fail_msg(err, errlen, "header: shape[%d] does not fit in 63 bits", a->ndim);
                break;
            }
        if (ok && a->ndim == MAX_DIMS) ok = fail_msg(err, errlen, "header: more than %d dims", MAX_DIMS);
        if (ok) a->shape[a->ndim++] = v;
    }
    if (ok && complex_pairs) {
        if (a->ndim == MAX_DIMS) ok = fail_msg(err, errlen, "header: more than %d dims with the (real, imaginary) pair", MAX_DIMS - 1);
        else a->shape[a->ndim++] = 2;
    }
    int64_t nbytes = 0;
    if (ok && !shape_nbytes_checked(a->shape, a->ndim, dtype_size(a->dtype), &nbytes))
        ok = fail_msg(err, errlen, "header: shape: the byte count overflows 64 bits");
    size_t data_off = hoff + hlen;
    if (ok && (uint64_t)(len - data_off) != (uint64_t)nbytes)
        ok = fail_msg(err, errlen, "data is %zu bytes, the shape needs %lld", len - data_off, (long long)nbytes);
    if (ok) {
        a->data = xmalloc((size_t)nbytes);
        if (nbytes) memcpy(a->data, buf + data_off, (size_t)nbytes);
    }
    free(hdr);
    if (!ok) memset(a, 0, sizeof *a);
    return ok;
}

void npy_read(const char *path, NpyArray *a) {
    size_t len;
    char *buf = read_whole_file(path, &len);
    char err[256];
    if (!npy_read_try((const uint8_t *)buf, len, a, err, sizeof err)) input_error(path, "%s", err);
    free(buf);
}

void npy_free(NpyArray *a) {
    free(a->data);
    a->data = NULL;
}

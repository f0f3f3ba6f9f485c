// safetensors.c: see safetensors.h. The reader follows the checks of huggingface/safetensors `Metadata::validate`
// (formats.md §5); the writer produces what its `serialize` produces: sorted layout, header padded to 8 bytes.
#include "formats/safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- dtypes -------------------------------------------------------------------------------------------------------
static const struct {
    const char *name;
    DType dtype;
} ST_DTYPES[] = {
    {"BF16", DT_BF16}, {"F16", DT_F16}, {"F32", DT_F32}, {"F64", DT_F64}, {"I64", DT_I64},
    {"I32", DT_I32},   {"I16", DT_I16}, {"I8", DT_I8},   {"U8", DT_U8},   {"BOOL", DT_BOOL},
};
// Valid in the safetensors format, but not held by any DType of this project: rejected with a clear message.
static const char *ST_DTYPES_UNHANDLED[] = {"U16",         "U32",         "U64", "F8_E5M2", "F8_E4M3",
                                            "F8_E8M0",     "F8_E4M3FNUZ", "F4",  "F6_E2M3", "F6_E3M2",
                                            "F8_E5M2FNUZ", "C64"};

bool safetensors_dtype_parse(const char *s, DType *out) {
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (strcmp(s, ST_DTYPES[i].name) == 0) {
            *out = ST_DTYPES[i].dtype;
            return true;
        }
    return false;
}
const char *safetensors_dtype_string(DType t) {
    for (size_t i = 0; i < sizeof ST_DTYPES / sizeof ST_DTYPES[0]; i++)
        if (ST_DTYPES[i].dtype == t) return ST_DTYPES[i].name;
    return NULL;
}
static bool dtype_is_unhandled(const char *s) {
    for (size_t i = 0; i < sizeof ST_DTYPES_UNHANDLED / sizeof ST_DTYPES_UNHANDLED[0]; i++)
        if (strcmp(s, ST_DTYPES_UNHANDLED[i]) == 0) return true;
    return false;
}

// ---- reader -------------------------------------------------------------------------------------------------------
typedef struct {
    const char *name;  // points into the Jansson object while parsing
    DType dtype;
    int ndim;
    int64_t shape[MAX_DIMS];
    uint64_t begin, end;
} Entry;

static int compare_entries_by_offset(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;  // zero-sized tensors first at one offset
    return strcmp(x->name, y->name);
}

// A JSON integer >= 0 (Jansson keeps integers and reals apart: 3.0 is not accepted, as in the Rust reader).
static bool json_get_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
    *out = (uint64_t)json_integer_value(v);
    return true;
}

static bool parse_tensor_info(const char *name, const json_t *info, Entry *e, char *err, size_t errlen) {
    if (!json_is_object(info)) return fail_msg(err, errlen, "header: tensor \"%s\": expected an object {dtype, shape, data_offsets}", name);
    e->name = name;
    const json_t *dtype = json_object_get(info, "dtype");
    if (!json_is_string(dtype)) return fail_msg(err, errlen, "header: tensor \"%s\": dtype: expected a string such as \"BF16\"", name);
    const char *ds = json_string_value(dtype);
    if (!safetensors_dtype_parse(ds, &e->dtype)) {
        if (dtype_is_unhandled(ds))
            return fail_msg(err, errlen, "header: tensor \"%s\": dtype \"%s\" is valid safetensors but not supported here "
                        "(supported: BF16, F16, F32, F64, I64, I32, I16, I8, U8, BOOL)", name, ds);
        return fail_msg(err, errlen, "header: tensor \"%s\": unknown dtype \"%.32s\"", name, ds);
    }
    const json_t *shape = json_object_get(info, "shape");
    if (!json_is_array(shape)) return fail_msg(err, errlen, "header: tensor \"%s\": shape: expected an array of sizes", name);
    size_t nd = json_array_size(shape);
    if (nd > MAX_DIMS) return fail_msg(err, errlen, "header: tensor \"%s\": shape has %zu dims; at most %d are supported", name, nd, MAX_DIMS);
    e->ndim = (int)nd;
    for (size_t d = 0; d < nd; d++) {
        uint64_t v;
        if (!json_get_u64(json_array_get(shape, d), &v) || v > (uint64_t)INT64_MAX)
            return fail_msg(err, errlen, "header: tensor \"%s\": shape[%zu]: expected an integer >= 0", name, d);
        e->shape[d] = (int64_t)v;
    }
    const json_t *offs = json_object_get(info, "data_offsets");
    if (!json_is_array(offs) || json_array_size(offs) != 2 || !json_get_u64(json_array_get(offs, 0), &e->begin) ||
        !json_get_u64(json_array_get(offs, 1), &e->end))
        return fail_msg(err, errlen, "header: tensor \"%s\": data_offsets: expected [BEGIN, END], two integers >= 0", name);
    if (e->end < e->begin)
        return fail_msg(err, errlen, "header: tensor \"%s\": data_offsets [%llu, %llu]: END is before BEGIN", name,
                    (unsigned long long)e->begin, (unsigned long long)e->end);
    // END - BEGIN must be exactly the bytes the dtype and shape need (checked without overflow).
    int64_t nbytes;
    if (!shape_nbytes_checked(e->shape, e->ndim, dtype_size(e->dtype), &nbytes))
        return fail_msg(err, errlen, "header: tensor \"%s\": shape: the element count overflows 64 bits", name);
    if (e->end - e->begin != (uint64_t)nbytes) {
        char sb[200];
        return fail_msg(err, errlen, "header: tensor \"%s\": data_offsets [%llu, %llu] span %llu bytes, but %s %s needs %lld",
                    name, (unsigned long long)e->begin, (unsigned long long)e->end,
                    (unsigned long long)(e->end - e->begin), ds, shape_str(e->shape, e->ndim, sb, sizeof sb), (long long)nbytes);
    }
    return true;
}

// Every check of the reference reader on the bytes of a file (the header and the tiling), then the views.
static bool check_layout(SafetensorsFile *sf, const json_t *root, size_t buffer_len, Entry *entries, int *n_out, size_t *names_bytes,
                         char *err, size_t errlen) {
    int n_entries = 0;
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)root, key, value) {
        if (strcmp(key, "__metadata__") == 0) {
            // Metadata is a map string -> string (or null); anything else is rejected by the reference reader.
            if (json_is_null(value)) continue;
            if (!json_is_object(value)) return fail_msg(err, errlen, "header: __metadata__: expected an object of strings");
            const char *mk;
            json_t *mv;
            json_object_foreach(value, mk, mv) {
                if (!json_is_string(mv)) return fail_msg(err, errlen, "header: __metadata__: \"%s\": expected a string value", mk);
                if (strcmp(mk, "format") == 0 && !sf->metadata_format) sf->metadata_format = xstrdup(json_string_value(mv));
            }
            continue;
        }
        if (!parse_tensor_info(key, value, &entries[n_entries], err, errlen)) return false;
        *names_bytes += strlen(key) + 1;
        n_entries++;
    }
    *n_out = n_entries;
    // The tensors, sorted by BEGIN, must tile [0, buffer_len) exactly.
    qsort(entries, (size_t)n_entries, sizeof(Entry), compare_entries_by_offset);
    uint64_t covered = 0;
    for (int i = 0; i < n_entries; i++) {
        const Entry *e = &entries[i];
        if (e->begin < covered)
            return fail_msg(err, errlen, "header: tensor \"%s\": data_offsets [%llu, %llu] overlap the tensor before it (\"%s\" ends at %llu)",
                        e->name, (unsigned long long)e->begin, (unsigned long long)e->end, entries[i - 1].name,
                        (unsigned long long)covered);
        if (e->begin > covered)
            return fail_msg(err, errlen, "header: tensor \"%s\": data_offsets [%llu, %llu] leave a hole: bytes %llu..%llu belong to no tensor",
                        e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)covered, (unsigned long long)e->begin);
        covered = e->end;
    }
    if (covered > buffer_len)
        return fail_msg(err, errlen, "the tensors need %llu bytes of data but the file holds %zu after the header: truncated file",
                    (unsigned long long)covered, buffer_len);
    if (covered < buffer_len)
        return fail_msg(err, errlen, "the file has %zu bytes of data after the header but the tensors cover only %llu: "
                    "size mismatch (trailing bytes)", buffer_len, (unsigned long long)covered);
    return true;
}

bool safetensors_parse_try(SafetensorsFile *sf, const uint8_t *base, size_t size, char *err, size_t errlen) {
    MappedFile keep = sf->file;
    memset(sf, 0, sizeof *sf);
    sf->file = keep;
    if (size < 8) return fail_msg(err, errlen, "file has %zu bytes: too short for the 8-byte header length of a safetensors file", size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | base[i];  // u64 little-endian
    if (n > SAFETENSORS_MAX_HEADER)
        return fail_msg(err, errlen, "header length %llu exceeds the limit of %llu bytes (not a safetensors file?)",
                    (unsigned long long)n, SAFETENSORS_MAX_HEADER);
    if (n > size - 8)
        return fail_msg(err, errlen, "header length %llu runs past the end of the file (%zu bytes): truncated file", (unsigned long long)n, size);
    if (n < 2 || base[8] != '{') return fail_msg(err, errlen, "header: expected a JSON object starting with '{' at byte 8");
    sf->header_len = (size_t)n;
    sf->buffer_offset = 8 + (size_t)n;
    size_t buffer_len = size - sf->buffer_offset;

    json_error_t jerr;
    // JSON_REJECT_DUPLICATES: two tensors with one name are an error, as in the reference reader.
    json_t *root = json_loadb((const char *)base + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return fail_msg(err, errlen, "header: invalid JSON at byte %d of the header: %s", jerr.position, jerr.text);
    size_t n_keys = json_is_object(root) ? json_object_size(root) : 0;
    Entry *entries = xcalloc(n_keys ? n_keys : 1, sizeof(Entry));
    int n_entries = 0;
    size_t names_bytes = 0;
    bool ok = json_is_object(root) ? check_layout(sf, root, buffer_len, entries, &n_entries, &names_bytes, err, errlen)
                                   : fail_msg(err, errlen, "header: expected a JSON object");
    if (ok) {  // tensors as views into the bytes; names in one arena
        sf->n_tensors = n_entries;
        sf->tensors = xcalloc(n_entries ? (size_t)n_entries : 1, sizeof(Tensor));
        sf->names = xmalloc(names_bytes ? names_bytes : 1);
        char *np = sf->names;
        for (int i = 0; i < n_entries; i++) {
            const Entry *e = &entries[i];
            Tensor *t = &sf->tensors[i];
            size_t len = strlen(e->name) + 1;
            memcpy(np, e->name, len);
            t->name = np;
            np += len;
            t->dtype = e->dtype;
            t->ndim = e->ndim;
            memcpy(t->shape, e->shape, sizeof e->shape);
            tensor_set_contiguous_strides(t);
            const uint8_t *p = base + sf->buffer_offset + e->begin;
            size_t es = dtype_size(e->dtype);
            if ((uintptr_t)p % es != 0) {
                // Old writers did not pad the header to 8 bytes: copy so that readers may load elements directly.
                size_t nb = (size_t)(e->end - e->begin);
                void *copy = xmalloc(nb);
                memcpy(copy, p, nb);
                sf->copies = xrealloc(sf->copies, (size_t)(sf->n_copies + 1) * sizeof(void *));
                sf->copies[sf->n_copies++] = copy;
                p = copy;
            }
            t->data = p;
        }
    }
    free(entries);
    json_decref(root);  // the names were copied out before this
    if (!ok) {
        free(sf->metadata_format);
        sf->metadata_format = NULL;
    }
    return ok;
}

void safetensors_open(SafetensorsFile *sf, const char *path) {
    memset(sf, 0, sizeof *sf);
    mapped_file_open(&sf->file, path);
    char err[512];
    if (!safetensors_parse_try(sf, sf->file.data, sf->file.size, err, sizeof err)) input_error(path, "%s", err);
}

void safetensors_close(SafetensorsFile *sf) {
    for (int i = 0; i < sf->n_copies; i++) free(sf->copies[i]);
    free(sf->copies);
    free(sf->tensors);
    free(sf->names);
    free(sf->metadata_format);
    mapped_file_close(&sf->file);
    memset(sf, 0, sizeof *sf);
}

const Tensor *safetensors_find(const SafetensorsFile *sf, const char *name) {
    for (int i = 0; i < sf->n_tensors; i++)
        if (strcmp(sf->tensors[i].name, name) == 0) return &sf->tensors[i];
    return NULL;
}

// ---- writer -------------------------------------------------------------------------------------------------------
struct SafetensorsWriter {
    AtomicFile out;
    int n;
    size_t buffer_offset;  // 8 + padded header length
    size_t *offset;        // [n] byte offset of tensor i in the buffer
    size_t *nbytes;        // [n]
    bool *written;         // [n]
};

static const SafetensorsSpec *sort_specs_;
static int compare_layout(const void *a, const void *b) {
    // The reference writer's order: larger alignment (element size) first, then by name.
    const SafetensorsSpec *x = &sort_specs_[*(const int *)a], *y = &sort_specs_[*(const int *)b];
    size_t sx = dtype_size(x->dtype), sy = dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

SafetensorsWriter *safetensors_writer_open(const char *path, const SafetensorsSpec *specs, int n) {
    SafetensorsWriter *w = xcalloc(1, sizeof *w);
    w->n = n;
    w->offset = xcalloc((size_t)(n ? n : 1), sizeof(size_t));
    w->nbytes = xcalloc((size_t)(n ? n : 1), sizeof(size_t));
    w->written = xcalloc((size_t)(n ? n : 1), sizeof(bool));
    int *order = xmalloc((size_t)(n ? n : 1) * sizeof(int));
    for (int i = 0; i < n; i++) order[i] = i;
    sort_specs_ = specs;
    qsort(order, (size_t)n, sizeof(int), compare_layout);
    sort_specs_ = NULL;

    json_t *root = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "format", json_string("pt"));
    json_object_set_new(root, "__metadata__", meta);  // Jansson keeps insertion order: metadata, then layout order
    size_t pos = 0;
    for (int k = 0; k < n; k++) {
        int i = order[k];
        const SafetensorsSpec *s = &specs[i];
        const char *ds = safetensors_dtype_string(s->dtype);
        if (!ds) fatal("safetensors_writer_open: %s: dtype %s cannot be written", s->name, dtype_name(s->dtype));
        if (json_object_get(root, s->name)) fatal("safetensors_writer_open: duplicate tensor name %s", s->name);
        size_t nb = dtype_size(s->dtype);
        json_t *shape = json_array();
        for (int d = 0; d < s->ndim; d++) {
            nb *= (size_t)s->shape[d];
            json_array_append_new(shape, json_integer(s->shape[d]));
        }
        json_t *info = json_object();
        json_object_set_new(info, "dtype", json_string(ds));
        json_object_set_new(info, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)pos));
        json_array_append_new(offs, json_integer((json_int_t)(pos + nb)));
        json_object_set_new(info, "data_offsets", offs);
        json_object_set_new(root, s->name, info);
        w->offset[i] = pos;
        w->nbytes[i] = nb;
        pos += nb;
    }
    free(order);
    char *header = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(root);
    if (!header) fatal("safetensors_writer_open: cannot serialize the header of %s", path);
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) / 8 * 8;  // so that the byte buffer starts 8-aligned
    w->buffer_offset = 8 + padded;

    atomic_open(&w->out, path);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    xfwrite(len8, 8, w->out.f, w->out.tmp_path);
    xfwrite(header, hlen, w->out.f, w->out.tmp_path);
    for (size_t i = hlen; i < padded; i++) fputc(' ', w->out.f);
    free(header);
    return w;
}

void safetensors_writer_write(SafetensorsWriter *w, int index, const void *bytes) {
    if (index < 0 || index >= w->n) fatal("safetensors_writer_write: index %d out of range [0, %d)", index, w->n);
    if (w->written[index]) fatal("safetensors_writer_write: tensor %d written twice", index);
    if (fseeko(w->out.f, (off_t)(w->buffer_offset + w->offset[index]), SEEK_SET) != 0)
        fatal("%s: seek failed: %s", w->out.tmp_path, strerror(errno));
    xfwrite(bytes, w->nbytes[index], w->out.f, w->out.tmp_path);
    w->written[index] = true;
}

void safetensors_writer_close(SafetensorsWriter *w) {
    for (int i = 0; i < w->n; i++)
        if (!w->written[i]) fatal("safetensors_writer_close: %s: tensor %d was never written", w->out.path, i);
    atomic_commit(&w->out);
    free(w->offset);
    free(w->nbytes);
    free(w->written);
    free(w);
}

// ---- q/k row order ------------------------------------------------------------------------------------------------
int64_t qk_hf_row_to_meta_row(int64_t r, int head_dim) {
    int64_t half = head_dim / 2;
    int64_t h = r / head_dim, q = r % head_dim;
    int64_t j = q / half, i = q % half;  // HF keeps pair member j of pair i at j*Dh/2 + i
    return h * head_dim + 2 * i + j;     // Meta keeps it at 2i + j
}

void qk_rows_hf_to_meta(const void *hf, void *meta, int n_heads, int head_dim, size_t row_bytes) {
    if (head_dim <= 0 || head_dim % 2) fatal("qk_rows_hf_to_meta: head_dim %d must be even", head_dim);
    int64_t rows = (int64_t)n_heads * head_dim;
    for (int64_t r = 0; r < rows; r++)
        memcpy((uint8_t *)meta + (size_t)qk_hf_row_to_meta_row(r, head_dim) * row_bytes,
               (const uint8_t *)hf + (size_t)r * row_bytes, row_bytes);
}

void qk_rows_meta_to_hf(const void *meta, void *hf, int n_heads, int head_dim, size_t row_bytes) {
    if (head_dim <= 0 || head_dim % 2) fatal("qk_rows_meta_to_hf: head_dim %d must be even", head_dim);
    int64_t rows = (int64_t)n_heads * head_dim;
    for (int64_t r = 0; r < rows; r++)
        memcpy((uint8_t *)hf + (size_t)r * row_bytes,
               (const uint8_t *)meta + (size_t)qk_hf_row_to_meta_row(r, head_dim) * row_bytes, row_bytes);
}

// pth_write.c: a torch.save-compatible checkpoint writer (see pth_write.h and formats.md §2).
//
// The file, in the order it is written:
//   <a>/data.pkl      the pickle: a dict name -> _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
//   <a>/byteorder     "little" (unless PthWriterOptions.no_byteorder)
//   <a>/data/0 ...    the raw bytes of each tensor, streamed by pth_writer_append in declaration order
//   <a>/version       "3\n"
//   (PthWriterOptions may add records after data.pkl and after version, as newer torch.save does)
//   central directory, zip64 end-of-central-directory record, zip64 locator, end-of-central-directory record
// Every entry is STORED with general-purpose flags 0x0808 (a data descriptor follows the data; UTF-8 names; an empty
// entry has 0x0800 and no descriptor). Its local header holds crc = sizes = 0, an optional zip64 extra (0x0001) and a
// padding record (0x4246 "FB" + 'Z' bytes) that puts the data at a multiple of 64 bytes, so a reader can mmap a tensor
// and use it in place. Values past 32 bits (offsets beyond 4 GiB: the 8B model) go into zip64 extras, and the zip64
// end records are always written. This is what PyTorch's miniz-based PyTorchStreamWriter does, byte for byte; the
// tests compare our output with Debian's torch.save.
//
// Use:
//   PthTensorSpec specs[2] = {{"a", DT_BF16, 2, {3, 4}}, {"b", DT_F32, 1, {5}}};
//   PthWriter *w = pth_writer_open("x.pth", specs, 2);
//   pth_writer_append(w, a_bytes, 24);  pth_writer_append(w, b_bytes, 20);   // any chunking
//   pth_writer_close(w);                                                       // x.pth.partial -> x.pth
#include "formats/pth_write.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "formats/zip.h"
#include "util.h"

#define ZIP_ALIGNMENT 64          // PyTorch's kFieldAlignment
#define ZIP_LIMIT32 0xFFFFFFFFull // a 32-bit zip field this large means "see the zip64 extra"
#define PICKLE_BATCH 1000         // Python's C pickler writes dict items in SETITEMS batches of this many

// ---- little-endian byte buffer ---------------------------------------------------------------------------------------

typedef struct {
    uint8_t *data;
    size_t len, cap;
} ByteBuf;

static void buf_put(ByteBuf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}
static void buf_u8(ByteBuf *b, uint8_t v) { buf_put(b, &v, 1); }
static void buf_u16(ByteBuf *b, uint16_t v) {
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_put(b, x, 2);
}
static void buf_u32(ByteBuf *b, uint32_t v) {
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, x, 4);
}
static void buf_u64(ByteBuf *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    buf_put(b, x, 8);
}

// ---- the pickle (protocol 2, as Python's C pickler writes it for torch.save) -----------------------------------------

enum {
    OP_PROTO = 0x80, OP_EMPTY_DICT = '}', OP_MARK = '(', OP_BINUNICODE = 'X', OP_GLOBAL = 'c',
    OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_BINGET = 'h', OP_LONG_BINGET = 'j',
    OP_BININT1 = 'K', OP_BININT2 = 'M', OP_BININT = 'J', OP_LONG1 = 0x8A,
    OP_EMPTY_TUPLE = ')', OP_TUPLE = 't', OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
    OP_NEWFALSE = 0x89, OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_SETITEM = 's', OP_SETITEMS = 'u', OP_STOP = '.',
};

typedef struct {
    ByteBuf out;
    uint32_t memo_len;  // the pickler numbers memoized objects 0, 1, 2, ... in the order it first writes them
} Pickle;

// Memoizes the object on top of the stack; returns its memo index.
static uint32_t pk_put(Pickle *p) {
    uint32_t i = p->memo_len++;
    if (i < 256) { buf_u8(&p->out, OP_BINPUT); buf_u8(&p->out, (uint8_t)i); }
    else { buf_u8(&p->out, OP_LONG_BINPUT); buf_u32(&p->out, i); }
    return i;
}
static void pk_get(Pickle *p, uint32_t i) {
    if (i < 256) { buf_u8(&p->out, OP_BINGET); buf_u8(&p->out, (uint8_t)i); }
    else { buf_u8(&p->out, OP_LONG_BINGET); buf_u32(&p->out, i); }
}
// A str: BINUNICODE, then memoized (Python memoizes every str it writes).
static uint32_t pk_str(Pickle *p, const char *s) {
    size_t n = strlen(s);
    if (n > 0xFFFFFFFFu) fatal("pickle: string of %zu bytes is too long for BINUNICODE", n);
    buf_u8(&p->out, OP_BINUNICODE);
    buf_u32(&p->out, (uint32_t)n);
    buf_put(&p->out, s, n);
    return pk_put(p);
}
// A str that is the same Python object every time ("storage", "cpu"): written once, then fetched from the memo.
static void pk_str_once(Pickle *p, const char *s, int64_t *memo_index) {
    if (*memo_index >= 0) pk_get(p, (uint32_t)*memo_index);
    else *memo_index = pk_str(p, s);
}
// A global (a class or function): GLOBAL "module\nname\n", memoized; later uses fetch it from the memo.
static void pk_global_once(Pickle *p, const char *module, const char *name, int64_t *memo_index) {
    if (*memo_index >= 0) { pk_get(p, (uint32_t)*memo_index); return; }
    buf_u8(&p->out, OP_GLOBAL);
    buf_put(&p->out, module, strlen(module));
    buf_u8(&p->out, '\n');
    buf_put(&p->out, name, strlen(name));
    buf_u8(&p->out, '\n');
    *memo_index = pk_put(p);
}
// An int with the smallest opcode that holds it, as Python's save_long chooses (ints are never memoized).
static void pk_int(Pickle *p, int64_t v) {
    if (v >= 0 && v <= 0xFF) { buf_u8(&p->out, OP_BININT1); buf_u8(&p->out, (uint8_t)v); }
    else if (v >= 0 && v <= 0xFFFF) { buf_u8(&p->out, OP_BININT2); buf_u16(&p->out, (uint16_t)v); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { buf_u8(&p->out, OP_BININT); buf_u32(&p->out, (uint32_t)(int32_t)v); }
    else {
        // LONG1: n little-endian two's-complement bytes with n = bit_length/8 + 1, as Python's encode_long. Only
        // non-negative values reach here (sizes, strides, element counts).
        if (v < 0) fatal("pickle: negative int %lld has no LONG1 encoding here", (long long)v);
        int bits = 0;
        while (bits < 63 && ((uint64_t)v >> bits) != 0) bits++;
        int n = bits / 8 + 1;
        buf_u8(&p->out, OP_LONG1);
        buf_u8(&p->out, (uint8_t)n);
        for (int i = 0; i < n; i++) buf_u8(&p->out, (uint8_t)((uint64_t)v >> (8 * i)));
    }
}
// A tuple of ints, as save_tuple writes it: () is EMPTY_TUPLE and not memoized; 1..3 items use TUPLE1..3; longer
// ones MARK ... TUPLE. Non-empty tuples are memoized.
static void pk_int_tuple(Pickle *p, const int64_t *v, int n) {
    if (n == 0) { buf_u8(&p->out, OP_EMPTY_TUPLE); return; }
    if (n > 3) buf_u8(&p->out, OP_MARK);
    for (int i = 0; i < n; i++) pk_int(p, v[i]);
    static const uint8_t small_tuple_op[4] = {0, OP_TUPLE1, OP_TUPLE2, OP_TUPLE3};
    buf_u8(&p->out, n > 3 ? OP_TUPLE : small_tuple_op[n]);
    pk_put(p);
}

static const char *storage_class_name(DType t) {
    switch (t) {
    case DT_F32: return "FloatStorage";
    case DT_F16: return "HalfStorage";
    case DT_BF16: return "BFloat16Storage";
    case DT_F64: return "DoubleStorage";
    case DT_I64: return "LongStorage";
    case DT_I32: return "IntStorage";
    case DT_I16: return "ShortStorage";
    case DT_I8: return "CharStorage";
    case DT_U8: return "ByteStorage";
    case DT_BOOL: return "BoolStorage";
    default: fatal("pth_write: dtype %d has no torch storage class", (int)t);
    }
}

// Memo indices of the objects a torch.save pickle refers to again and again (-1: not written yet).
typedef struct {
    int64_t rebuild, storage_str, cpu_str, ordered_dict;
    int64_t storage_class[DT_COUNT];
} PickleMemo;

// One dict item: the tensor's name, then _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), whose
// storage is the persistent id ('storage', torch.<Dtype>Storage, "i", 'cpu', numel) -> entry <archive>/data/i.
static void pickle_tensor_item(Pickle *pk, const PthTensorSpec *s, int i, PickleMemo *memo) {
    int64_t numel = 1, stride[MAX_DIMS];
    for (int d = s->ndim - 1; d >= 0; d--) {
        // torch's contiguous strides treat a 0-sized dim as 1 (zeros(2,0,3).stride() == (3,3,1))
        stride[d] = numel;
        numel *= s->shape[d] > 0 ? s->shape[d] : 1;
    }
    for (int d = 0; d < s->ndim; d++)
        if (s->shape[d] == 0) numel = 0;
    char key[24];
    snprintf(key, sizeof key, "%d", i);

    pk_str(pk, s->name);                                                         // dict key
    pk_global_once(pk, "torch._utils", "_rebuild_tensor_v2", &memo->rebuild);    // callable
    buf_u8(&pk->out, OP_MARK);                                                   // its 6 arguments:
    buf_u8(&pk->out, OP_MARK);                                                   //  persistent id
    pk_str_once(pk, "storage", &memo->storage_str);
    pk_global_once(pk, "torch", storage_class_name(s->dtype), &memo->storage_class[s->dtype]);
    pk_str(pk, key);
    pk_str_once(pk, "cpu", &memo->cpu_str);
    pk_int(pk, numel);
    buf_u8(&pk->out, OP_TUPLE);
    pk_put(pk);
    buf_u8(&pk->out, OP_BINPERSID);                                              //  -> storage
    pk_int(pk, 0);                                                               //  storage_offset
    pk_int_tuple(pk, s->shape, s->ndim);                                         //  size
    pk_int_tuple(pk, stride, s->ndim);                                           //  stride
    buf_u8(&pk->out, OP_NEWFALSE);                                               //  requires_grad
    pk_global_once(pk, "collections", "OrderedDict", &memo->ordered_dict);       //  backward_hooks
    buf_u8(&pk->out, OP_EMPTY_TUPLE);
    buf_u8(&pk->out, OP_REDUCE);
    pk_put(pk);
    buf_u8(&pk->out, OP_TUPLE);
    pk_put(pk);
    buf_u8(&pk->out, OP_REDUCE);                                                 // -> the tensor
    pk_put(pk);
}

// The whole data.pkl for a dict of contiguous tensors, tensor i stored under key "i" (formats.md §2.4).
static ByteBuf pickle_state_dict(const PthTensorSpec *specs, int n) {
    Pickle p = {0};
    PickleMemo memo = {.rebuild = -1, .storage_str = -1, .cpu_str = -1, .ordered_dict = -1};
    for (int t = 0; t < DT_COUNT; t++) memo.storage_class[t] = -1;

    buf_u8(&p.out, OP_PROTO);
    buf_u8(&p.out, 2);
    buf_u8(&p.out, OP_EMPTY_DICT);
    pk_put(&p);
    // Python's C pickler (batch_dict_exact): one item is a plain SETITEM; otherwise MARK ... SETITEMS batches of up
    // to 1000 items, and after a full batch always one more batch, even an empty one (1000 items end "u(u").
    int i = 0;
    if (n == 1) {
        pickle_tensor_item(&p, &specs[0], 0, &memo);
        buf_u8(&p.out, OP_SETITEM);
    } else if (n > 1) {
        int batch_len;
        do {
            buf_u8(&p.out, OP_MARK);
            for (batch_len = 0; batch_len < PICKLE_BATCH && i < n; batch_len++, i++)
                pickle_tensor_item(&p, &specs[i], i, &memo);
            buf_u8(&p.out, OP_SETITEMS);
        } while (batch_len == PICKLE_BATCH);
    }
    buf_u8(&p.out, OP_STOP);
    return p.out;
}

// ---- the zip container -----------------------------------------------------------------------------------------------

typedef struct {
    char *name;
    uint64_t lho;      // offset of its local header
    uint64_t size;     // bytes of data (STORED: compressed = uncompressed)
    uint32_t crc;
} WrittenEntry;

struct PthWriter {
    AtomicFile file;
    char *archive;             // "consolidated.00"
    uint64_t zip64_threshold;  // values >= this go to zip64 extras
    bool write_byteorder;
    const PthRecord *records_after;  // written after "version" (the caller keeps them alive until close)
    int n_records_after;
    uint64_t offset;           // bytes written so far = offset of the next byte
    WrittenEntry *entries;
    int n_entries;
    int n_tensors;
    uint64_t *tensor_bytes;    // byte count of tensor i
    int *order;                // the tensors in the order their entries are written (see keys_in_text_order)
    int current;               // position in order[] of the tensor being streamed (n_tensors when all are done)
    uint64_t current_done;     // its bytes written so far
    uint32_t current_crc;
    bool entry_open;           // a local header was written and its data descriptor is still due
    bool local_zip64;          // the open entry's local header had a zip64 extra (then the descriptor uses u64 sizes)
};

static void out_bytes(PthWriter *w, const void *p, size_t n) {
    xfwrite(p, n, w->file.f, w->file.tmp_path);
    w->offset += n;
}

// General-purpose flags: bit 11, UTF-8 names; bit 3, a data descriptor follows the data. miniz (and so torch) leaves
// bit 3 and the descriptor out for an empty entry.
static uint16_t entry_flags(uint64_t size) { return size > 0 ? 0x0808 : 0x0800; }

static void zip_begin_entry(PthWriter *w, const char *short_name, uint64_t size) {
    if (w->entry_open) fatal("pth_write: entry begun while another is open");
    WrittenEntry *e = &w->entries[w->n_entries++];
    e->name = xasprintf("%s/%s", w->archive, short_name);
    e->lho = w->offset;
    e->size = size;
    e->crc = 0;
    size_t name_len = strlen(e->name);
    if (name_len > 0xFFFF) fatal("pth_write: entry name too long: %s", e->name);

    // Local zip64 extra, as miniz writes it: [usize, csize=0] if the size overflows, [lho] if the offset does.
    bool big_size = size >= w->zip64_threshold, big_offset = e->lho >= w->zip64_threshold;
    ByteBuf extra = {0};
    if (big_size || big_offset) {
        buf_u16(&extra, 0x0001);
        buf_u16(&extra, (uint16_t)((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
        if (big_size) { buf_u64(&extra, size); buf_u64(&extra, 0); }
        if (big_offset) buf_u64(&extra, e->lho);
    }
    // The "FB" padding record: always present (possibly 0 bytes of padding), ending where the data is 64-aligned.
    uint64_t data_start = e->lho + 30 + name_len + extra.len + 4;
    size_t pad = (size_t)((ZIP_ALIGNMENT - data_start % ZIP_ALIGNMENT) % ZIP_ALIGNMENT);
    buf_u16(&extra, 0x4246);
    buf_u16(&extra, (uint16_t)pad);
    for (size_t i = 0; i < pad; i++) buf_u8(&extra, 'Z');

    ByteBuf h = {0};
    buf_u32(&h, 0x04034b50);
    buf_u16(&h, 0);       // version needed
    buf_u16(&h, entry_flags(size));
    buf_u16(&h, 0);       // method: stored
    buf_u16(&h, 0);       // time
    buf_u16(&h, 0);       // date
    buf_u32(&h, 0);       // crc, csize, usize: in the data descriptor and the central directory instead
    buf_u32(&h, 0);
    buf_u32(&h, 0);
    buf_u16(&h, (uint16_t)name_len);
    buf_u16(&h, (uint16_t)extra.len);
    buf_put(&h, e->name, name_len);
    buf_put(&h, extra.data, extra.len);
    out_bytes(w, h.data, h.len);
    if (w->offset % ZIP_ALIGNMENT != 0) fatal("pth_write: data of %s is not %d-byte aligned", e->name, ZIP_ALIGNMENT);
    free(h.data);
    free(extra.data);
    w->entry_open = true;
    w->local_zip64 = big_size || big_offset;
}

static void zip_end_entry(PthWriter *w, uint32_t crc) {
    WrittenEntry *e = &w->entries[w->n_entries - 1];
    if (!w->entry_open) fatal("pth_write: no open entry");
    e->crc = crc;
    w->entry_open = false;
    if (e->size == 0) return;
    ByteBuf d = {0};
    buf_u32(&d, 0x08074b50);
    buf_u32(&d, crc);
    if (w->local_zip64) { buf_u64(&d, e->size); buf_u64(&d, e->size); }
    else { buf_u32(&d, (uint32_t)e->size); buf_u32(&d, (uint32_t)e->size); }
    out_bytes(w, d.data, d.len);
    free(d.data);
}

static void zip_add_small_entry(PthWriter *w, const char *short_name, const void *data, size_t n) {
    zip_begin_entry(w, short_name, n);
    out_bytes(w, data, n);
    zip_end_entry(w, (uint32_t)crc32_z(0, data, n));
}

// Opens the entry of the next tensor that still needs bytes; empty tensors get their (empty) entry on the way.
static void begin_next_tensors(PthWriter *w) {
    while (w->current < w->n_tensors) {
        char key[32];
        snprintf(key, sizeof key, "data/%d", w->order[w->current]);
        zip_begin_entry(w, key, w->tensor_bytes[w->order[w->current]]);
        w->current_done = 0;
        w->current_crc = 0;
        if (w->tensor_bytes[w->order[w->current]] > 0) return;
        zip_end_entry(w, 0);
        w->current++;
    }
}

// Storage keys "0", "1", ... compared as text, as torch <= 1.13's sorted(serialized_storages.keys()): "10" < "2".
static int cmp_key_text(const void *a, const void *b) {
    char ka[16], kb[16];
    snprintf(ka, sizeof ka, "%d", *(const int *)a);
    snprintf(kb, sizeof kb, "%d", *(const int *)b);
    return strcmp(ka, kb);
}

char *pth_archive_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot ? (size_t)(dot - base) : strlen(base);
    if (len == 0) return xstrdup("archive");
    char *s = xmalloc(len + 1);
    memcpy(s, base, len);
    s[len] = 0;
    return s;
}

PthWriter *pth_writer_open_opts(const char *path, const PthTensorSpec *specs, int n, const PthWriterOptions *opt) {
    if (n < 0) fatal("pth_writer_open: negative tensor count");
    PthWriter *w = xcalloc(1, sizeof *w);
    w->archive = opt && opt->archive_name ? xstrdup(opt->archive_name) : pth_archive_name(path);
    w->zip64_threshold = opt && opt->zip64_threshold ? opt->zip64_threshold : ZIP_LIMIT32;
    w->write_byteorder = !(opt && opt->no_byteorder);
    w->n_tensors = n;
    w->tensor_bytes = xcalloc((size_t)n + 1, sizeof *w->tensor_bytes);
    if (opt) w->records_after = opt->records_after, w->n_records_after = opt->n_records_after;
    int n_records = opt ? opt->n_records_before + opt->n_records_after : 0;
    w->entries = xcalloc((size_t)n + 3 + (size_t)n_records, sizeof *w->entries);
    for (int i = 0; i < n; i++) {
        const PthTensorSpec *s = &specs[i];
        if (!s->name || !s->name[0]) fatal("pth_writer_open: tensor %d has no name", i);
        if (s->ndim < 0 || s->ndim > MAX_DIMS) fatal("pth_writer_open: %s: ndim %d out of range", s->name, s->ndim);
        if ((unsigned)s->dtype >= DT_COUNT) fatal("pth_writer_open: %s: bad dtype", s->name);
        uint64_t numel = 1;
        for (int d = 0; d < s->ndim; d++) {
            if (s->shape[d] < 0) fatal("pth_writer_open: %s: negative dim %d", s->name, d);
            numel *= (uint64_t)s->shape[d];
        }
        w->tensor_bytes[i] = numel * dtype_size(s->dtype);
        for (int j = 0; j < i; j++)
            if (strcmp(specs[j].name, s->name) == 0) fatal("pth_writer_open: tensor name %s appears twice", s->name);
    }
    atomic_open(&w->file, path);

    if (opt && opt->raw_pickle) {
        zip_add_small_entry(w, "data.pkl", opt->raw_pickle, opt->raw_pickle_len);
    } else {
        ByteBuf pkl = pickle_state_dict(specs, n);
        zip_add_small_entry(w, "data.pkl", pkl.data, pkl.len);
        free(pkl.data);
    }
    if (w->write_byteorder) zip_add_small_entry(w, "byteorder", "little", 6);
    for (int i = 0; opt && i < opt->n_records_before; i++)
        zip_add_small_entry(w, opt->records_before[i].name, opt->records_before[i].data, opt->records_before[i].size);
    w->order = xcalloc((size_t)n + 1, sizeof *w->order);
    for (int i = 0; i < n; i++) w->order[i] = i;
    if (opt && opt->keys_in_text_order) qsort(w->order, (size_t)n, sizeof *w->order, cmp_key_text);
    w->current = 0;
    begin_next_tensors(w);
    return w;
}

int pth_writer_next_tensor(const PthWriter *w) { return w->current < w->n_tensors ? w->order[w->current] : -1; }

PthWriter *pth_writer_open(const char *path, const PthTensorSpec *specs, int n) {
    return pth_writer_open_opts(path, specs, n, NULL);
}

void pth_writer_append(PthWriter *w, const void *bytes, size_t nbytes) {
    const uint8_t *p = bytes;
    while (nbytes > 0) {
        if (w->current >= w->n_tensors)
            fatal("pth_writer_append: %zu bytes more than the declared tensors hold", nbytes);
        uint64_t room = w->tensor_bytes[w->order[w->current]] - w->current_done;
        size_t n = nbytes < room ? nbytes : (size_t)room;
        w->current_crc = zip_crc32(w->current_crc, p, n);
        out_bytes(w, p, n);
        w->current_done += n;
        p += n;
        nbytes -= n;
        if (w->current_done == w->tensor_bytes[w->order[w->current]]) {
            zip_end_entry(w, w->current_crc);
            w->current++;
            begin_next_tensors(w);
        }
    }
}

uint64_t pth_writer_bytes_written(const PthWriter *w) { return w->offset; }

static void writer_free(PthWriter *w) {
    for (int i = 0; i < w->n_entries; i++) free(w->entries[i].name);
    free(w->entries);
    free(w->tensor_bytes);
    free(w->order);
    free(w->archive);
    free(w);
}

void pth_writer_close(PthWriter *w) {
    if (w->current < w->n_tensors)
        fatal("pth_writer_close: tensor %d of %d has %llu of %llu bytes", w->order[w->current], w->n_tensors,
              (unsigned long long)w->current_done, (unsigned long long)w->tensor_bytes[w->order[w->current]]);
    zip_add_small_entry(w, "version", "3\n", 2);
    for (int i = 0; i < w->n_records_after; i++)
        zip_add_small_entry(w, w->records_after[i].name, w->records_after[i].data, w->records_after[i].size);

    // Central directory: one header per entry; 32-bit fields that overflow hold 0xFFFFFFFF and the real values go
    // into a zip64 extra holding only those fields, in the order usize, csize, lho.
    uint64_t cd_offset = w->offset;
    ByteBuf cd = {0};
    for (int i = 0; i < w->n_entries; i++) {
        const WrittenEntry *e = &w->entries[i];
        bool big_size = e->size >= w->zip64_threshold, big_offset = e->lho >= w->zip64_threshold;
        size_t name_len = strlen(e->name);
        buf_u32(&cd, 0x02014b50);
        buf_u16(&cd, 0);  // version made by
        buf_u16(&cd, 0);  // version needed
        buf_u16(&cd, entry_flags(e->size));
        buf_u16(&cd, 0);  // stored
        buf_u16(&cd, 0);  // time
        buf_u16(&cd, 0);  // date
        buf_u32(&cd, e->crc);
        buf_u32(&cd, big_size ? (uint32_t)ZIP_LIMIT32 : (uint32_t)e->size);
        buf_u32(&cd, big_size ? (uint32_t)ZIP_LIMIT32 : (uint32_t)e->size);
        buf_u16(&cd, (uint16_t)name_len);
        buf_u16(&cd, (uint16_t)((big_size || big_offset ? 4 : 0) + (big_size ? 16 : 0) + (big_offset ? 8 : 0)));
        buf_u16(&cd, 0);  // comment length
        buf_u16(&cd, 0);  // disk
        buf_u16(&cd, 0);  // internal attributes
        buf_u32(&cd, 0);  // external attributes
        buf_u32(&cd, big_offset ? (uint32_t)ZIP_LIMIT32 : (uint32_t)e->lho);
        buf_put(&cd, e->name, name_len);
        if (big_size || big_offset) {
            buf_u16(&cd, 0x0001);
            buf_u16(&cd, (uint16_t)((big_size ? 16 : 0) + (big_offset ? 8 : 0)));
            if (big_size) { buf_u64(&cd, e->size); buf_u64(&cd, e->size); }
            if (big_offset) buf_u64(&cd, e->lho);
        }
    }
    uint64_t cd_size = cd.len;
    uint64_t z64_eocd_offset = cd_offset + cd_size;
    uint64_t n = (uint64_t)w->n_entries;
    // zip64 end of central directory record (always written, as torch does)
    buf_u32(&cd, 0x06064b50);
    buf_u64(&cd, 44);      // size of the rest of this record
    buf_u16(&cd, 0x031e);  // made by (as miniz writes it)
    buf_u16(&cd, 0x002d);  // needed: 4.5, zip64
    buf_u32(&cd, 0);
    buf_u32(&cd, 0);
    buf_u64(&cd, n);
    buf_u64(&cd, n);
    buf_u64(&cd, cd_size);
    buf_u64(&cd, cd_offset);
    // zip64 locator
    buf_u32(&cd, 0x07064b50);
    buf_u32(&cd, 0);
    buf_u64(&cd, z64_eocd_offset);
    buf_u32(&cd, 1);
    // end of central directory record
    buf_u32(&cd, 0x06054b50);
    buf_u16(&cd, 0);
    buf_u16(&cd, 0);
    buf_u16(&cd, (uint16_t)(n < 0xFFFF ? n : 0xFFFF));
    buf_u16(&cd, (uint16_t)(n < 0xFFFF ? n : 0xFFFF));
    buf_u32(&cd, cd_size >= w->zip64_threshold ? (uint32_t)ZIP_LIMIT32 : (uint32_t)cd_size);
    buf_u32(&cd, cd_offset >= w->zip64_threshold ? (uint32_t)ZIP_LIMIT32 : (uint32_t)cd_offset);
    buf_u16(&cd, 0);  // comment length
    out_bytes(w, cd.data, cd.len);
    free(cd.data);

    atomic_commit(&w->file);
    writer_free(w);
}

void pth_writer_abort(PthWriter *w) {
    atomic_abort(&w->file);
    writer_free(w);
}

// pickle_build.h: byte strings for the tests of the readers: a growable buffer with little-endian writers, and
// pickles written opcode by opcode as Python's pickler (protocol 2) writes them for torch.save, including records
// the project's own writer never makes (views, odd names). Used by tests/unit/test_zip_pickle.c and by
// tests/fuzz/make_corpus.c (the reproducers of issue 12).
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// ---- a byte buffer ------------------------------------------------------------------------------------------------
typedef struct {
    uint8_t *p;
    size_t len, cap;
} Buf;

static inline void put(Buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
static inline void u8(Buf *b, unsigned v) { uint8_t c = (uint8_t)v; put(b, &c, 1); }
static inline void u16(Buf *b, unsigned v) { u8(b, v & 0xff); u8(b, (v >> 8) & 0xff); }
static inline void u32(Buf *b, uint32_t v) { u16(b, v & 0xffff); u16(b, v >> 16); }
static inline void u64(Buf *b, uint64_t v) { u32(b, (uint32_t)v); u32(b, (uint32_t)(v >> 32)); }
static inline void set32(Buf *b, size_t at, uint32_t v) { for (int k = 0; k < 4; k++) b->p[at + (size_t)k] = (uint8_t)(v >> (8 * k)); }

// ---- pickle writing, as Python's pickler does it ------------------------------------------------------------------
static inline void p_str(Buf *b, const char *s) { u8(b, 'X'); u32(b, (uint32_t)strlen(s)); put(b, s, strlen(s)); }
static inline void p_int(Buf *b, int64_t v) {  // the smallest opcode that fits, as the pickler chooses
    if (v >= 0 && v < 256) { u8(b, 'K'); u8(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { u8(b, 'M'); u16(b, (unsigned)v); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { u8(b, 'J'); u32(b, (uint32_t)(int32_t)v); }
    else { u8(b, 0x8a); u8(b, 8); u64(b, (uint64_t)v); }
}
static inline void p_global(Buf *b, const char *module, const char *name) {
    u8(b, 'c');
    put(b, module, strlen(module)); u8(b, '\n');
    put(b, name, strlen(name)); u8(b, '\n');
}
static inline void p_ints_tuple(Buf *b, const int64_t *v, int n) {
    u8(b, '(');
    for (int k = 0; k < n; k++) p_int(b, v[k]);
    u8(b, 't');
}
// One entry of a state dict: key, then _rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict()).
static inline void p_tensor(Buf *b, const char *name, const char *storage_class, const char *key, int64_t numel, int64_t offset,
                     int ndim, const int64_t *shape, const int64_t *stride) {
    p_str(b, name);
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    u8(b, '(');
    u8(b, '(');
    p_str(b, "storage");
    p_global(b, "torch", storage_class);
    p_str(b, key);
    p_str(b, "cpu");
    p_int(b, numel);
    u8(b, 't');
    u8(b, 'Q');
    p_int(b, offset);
    p_ints_tuple(b, shape, ndim);
    p_ints_tuple(b, stride, ndim);
    u8(b, 0x89);
    p_global(b, "collections", "OrderedDict");
    u8(b, ')');
    u8(b, 'R');
    u8(b, 't');
    u8(b, 'R');
}
static inline void p_begin_dict(Buf *b) { u8(b, 0x80); u8(b, 2); u8(b, '}'); u8(b, '('); }
static inline void p_end_dict(Buf *b) { u8(b, 'u'); u8(b, '.'); }
// A whole state-dict pickle of one tensor: {name: a view of storage "0" holding numel elements}.
static inline Buf p_one_tensor(const char *name, const char *storage_class, int64_t numel, int64_t offset, int ndim,
                               const int64_t *shape, const int64_t *stride) {
    Buf b = {0};
    p_begin_dict(&b);
    p_tensor(&b, name, storage_class, "0", numel, offset, ndim, shape, stride);
    p_end_dict(&b);
    return b;
}

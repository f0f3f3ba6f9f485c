// test_zip_pickle.c: the zip index (common/formats/zip.c), the safe pickle VM (common/formats/pickle.c) and the .pth index
// (common/formats/pth.c) on byte strings built here: each opcode, the memo, LONG1, protocol-4 frames, torch's tensor
// records, the forbidden globals and opcodes, the caps, and every truncation of valid inputs.
//
// Build and run: make build/tests/test_zip_pickle && build/tests/test_zip_pickle   (ends with "N passed, N failed")
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/pickle.h"
#include "formats/pth.h"
#include "formats/zip.h"
#include "util.h"

#include "pickle_build.h"

// Runs pickle_to_text on raw bytes given as a C string literal (with its length).
static char text[4096], err[512];
static bool run_text(const void *bytes, size_t n) { return pickle_to_text(bytes, n, text, sizeof text, err, sizeof err); }
#define TEXT_IS(lit, want)                                                                              \
    do {                                                                                                \
        bool ok_ = run_text(lit, sizeof(lit) - 1);                                                      \
        CHECK(ok_, "%s", err);                                                                          \
        if (ok_) CHECK_EQ_STR(text, want);                                                              \
    } while (0)
#define TEXT_FAILS(lit, pattern)                                                                        \
    do {                                                                                                \
        bool ok_ = run_text(lit, sizeof(lit) - 1);                                                      \
        CHECK(!ok_ && strstr(err, pattern), "want failure with '%s', got ok=%d err='%s'", pattern, ok_, err); \
    } while (0)

static void test_opcodes(void) {
    TEXT_IS("\x80\x02}.", "{}");
    TEXT_IS("\x80\x02).", "()");
    TEXT_IS("\x80\x02].", "[]");
    TEXT_IS("\x80\x02N.", "None");
    TEXT_IS("\x80\x02(\x88\x89t.", "(True, False)");
    // ints: BININT1, BININT2, BININT (signed), LONG1 of 5 bytes, LONG1 negative, LONG1 of zero bytes
    TEXT_IS("(K\x05M\x34\x12J\xff\xff\xff\xff\x8a\x05\x00\x00\x00\x00\x01\x8a\x01\xff\x8a\x00t.", "(5, 4660, -1, 4294967296, -1, 0)");
    TEXT_IS("J\x00\xf5\x01\x00.", "128256");  // the 8B vocab size as torch writes it
    TEXT_IS("\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7f.", "9223372036854775807");
    TEXT_FAILS("\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.", "64 bits");
    // BINFLOAT is big-endian: 2.5 = 0x4004000000000000; 0.1 prints as Python does
    TEXT_IS("G\x40\x04\x00\x00\x00\x00\x00\x00.", "2.5");
    TEXT_IS("G\x3f\xb9\x99\x99\x99\x99\x99\x9a.", "0.1");
    TEXT_IS("G\x40\x08\x00\x00\x00\x00\x00\x00.", "3.0");
    // strings: BINUNICODE, SHORT_BINUNICODE, SHORT_BINSTRING, BINSTRING
    TEXT_IS("(X\x03\x00\x00\x00" "abc\x8c\x02hiU\x01zT\x02\x00\x00\x00ok\x8c\x00t.", "('abc', 'hi', 'z', 'ok', '')");
    // tuples
    TEXT_IS("K\x01\x85.", "(1,)");
    TEXT_IS("K\x01K\x02\x86.", "(1, 2)");
    TEXT_IS("K\x01K\x02K\x03\x87.", "(1, 2, 3)");
    TEXT_IS("(K\x01K\x02K\x03K\x04t.", "(1, 2, 3, 4)");
    // lists: APPEND, APPENDS, LIST; dicts: SETITEM, SETITEMS, DICT
    TEXT_IS("]K\x01" "a(K\x02K\x03" "e.", "[1, 2, 3]");
    TEXT_IS("(K\x07K\x08l.", "[7, 8]");
    TEXT_IS("}\x8c\x01" "aK\x01s(\x8c\x01" "bK\x02\x8c\x01" "cK\x03u.", "{'a': 1, 'b': 2, 'c': 3}");
    TEXT_IS("(\x8c\x01kN\x8c\x01j\x88" "d.", "{'k': None, 'j': True}");
    // the memo shares objects: append to a list through one reference, see it through the other
    TEXT_IS("]q\x00h\x00K\x01" "a\x86.", "([1], [1])");
    TEXT_IS("]r\x2c\x01\x00\x00j\x2c\x01\x00\x00K\x09" "a\x86.", "([9], [9])");  // LONG_BINPUT / LONG_BINGET 300
    TEXT_IS("\x8c\x01x\x94" "0\x8c\x01y\x94" "0h\x01h\x00\x86.", "('y', 'x')");  // MEMOIZE numbers 0, 1
    // POP, POP_MARK, DUP
    TEXT_IS("K\x01K\x02" "0.", "1");
    TEXT_IS("K\x05(K\x01K\x02" "1.", "5");
    TEXT_IS("K\x04" "2\x86.", "(4, 4)");
    // protocol 4: FRAME, STACK_GLOBAL of an allowed global, REDUCE with no arguments
    TEXT_IS("\x80\x04\x95\x1b\x00\x00\x00\x00\x00\x00\x00\x8c\x0b" "collections\x8c\x0bOrderedDict\x93)R.", "{}");
    TEXT_IS("ccollections\nOrderedDict\n.", "<global collections.OrderedDict>");
    // BUILD on a dict (a state_dict's _metadata) is accepted and ignored
    TEXT_IS("}K\x01K\x02s}b.", "{1: 2}");
    // self-reference does not hang the printer
    TEXT_IS("]q\x00h\x00" "a.", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
}

static void test_rejections(void) {
    // the allow-list: these would run code in Python
    TEXT_FAILS("cos\nsystem\n(X\x02\x00\x00\x00idtR.", "forbidden global os.system");
    TEXT_FAILS("cposix\nsystem\n.", "forbidden global posix.system");
    TEXT_FAILS("cbuiltins\neval\n.", "forbidden global builtins.eval");
    TEXT_FAILS("c__builtin__\neval\n.", "forbidden global __builtin__.eval");
    TEXT_FAILS("\x8c\x05posix\x8c\x06system\x93.", "forbidden global posix.system");
    TEXT_FAILS("ctorch._utils\n_rebuild_qtensor\n.", "forbidden global torch._utils._rebuild_qtensor");
    TEXT_FAILS("ctorch\nload\n.", "forbidden global torch.load");
    TEXT_FAILS("ctorch\nFloatStorage\n)R.", "calling torch.FloatStorage");
    TEXT_FAILS("cos\nsys\x01tem\n.", "forbidden global os.sys?tem");
    // opcodes that build arbitrary objects, or text-protocol ones
    TEXT_FAILS("(ios\nsystem\n.", "INST");
    TEXT_FAILS("(o.", "OBJ");
    TEXT_FAILS(")\x81.", "NEWOBJ");
    TEXT_FAILS("\x82\x01.", "EXT1");
    TEXT_FAILS("Pabc\n.", "PERSID");
    TEXT_FAILS("I1\n.", "INT");
    TEXT_FAILS("\x8b\x01\x00\x00\x00\x01.", "LONG4");
    TEXT_FAILS("\xff.", "unknown opcode");
    TEXT_FAILS("\x80\x06}.", "protocol 6");
    // stack and memo discipline
    TEXT_FAILS("\x85.", "stack underflow");
    TEXT_IS("K\x01(0.", "1");  // POP of a MARK removes the mark, as CPython does
    TEXT_FAILS("K\x01(\x85.", "stack underflow");  // TUPLE1 may not reach below a MARK
    TEXT_FAILS("t.", "no MARK");
    TEXT_FAILS("h\x05.", "never set");
    TEXT_FAILS("K\x01r\xff\xff\xff\xff.", "out of range");
    TEXT_FAILS("K\x01K\x02.", "values left on the stack");
    TEXT_FAILS("K\x01", "without STOP");
    TEXT_FAILS("K\x01.K\x02", "follow STOP");
    TEXT_FAILS("K\x01K\x02" "a.", "not a list");
    TEXT_FAILS("K\x01" "a.", "stack underflow");
    TEXT_FAILS("K\x01K\x02K\x03s.", "not a dict");
    TEXT_FAILS("}]K\x01s.", "dict key of kind list");
    TEXT_FAILS("\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", "frame");
    TEXT_FAILS("X\x05\x00\x00\x00" "ab.", "truncated");
    TEXT_FAILS("X\x00\x00\x20\x00.", "longer than the limit");  // 2 MiB string
    TEXT_FAILS("cos\nsystem", "newline");
    TEXT_FAILS("K\x01K\x02R.", "not on a global");
}

// A state dict of tensors, by pickle_read_tensors
static void test_tensors(void) {
    Buf b = {0};
    int64_t shape2[2] = {3, 4}, stride2[2] = {4, 1};
    p_begin_dict(&b);
    p_tensor(&b, "tok_embeddings.weight", "BFloat16Storage", "0", 12, 0, 2, shape2, stride2);
    int64_t shape_v[2] = {2, 2}, stride_v[2] = {4, 2};  // t[1:, ::2] of a 3x4: offset 4, strides (4, 2)
    p_tensor(&b, "view", "BFloat16Storage", "0", 12, 4, 2, shape_v, stride_v);
    int64_t shape0[1] = {0};
    p_tensor(&b, "scalar", "FloatStorage", "1", 1, 0, 0, shape0, shape0);
    int64_t big[1] = {128256};
    int64_t one[1] = {1};
    p_tensor(&b, "big", "HalfStorage", "2", 128256, 0, 1, big, one);
    p_tensor(&b, "empty", "LongStorage", "3", 0, 0, 1, shape0, one);
    p_end_dict(&b);
    PickleTensorList list;
    bool ok = pickle_read_tensors(b.p, b.len, &list, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) {
        CHECK_EQ_INT(list.n, 5);
        CHECK_EQ_STR(list.tensors[0].name, "tok_embeddings.weight");
        CHECK_EQ_INT(list.tensors[0].dtype, DT_BF16);
        CHECK_EQ_STR(list.tensors[0].storage_key, "0");
        CHECK_EQ_INT(list.tensors[0].ndim, 2);
        CHECK_EQ_INT(list.tensors[0].shape[1], 4);
        CHECK_EQ_INT(list.tensors[1].storage_offset, 4);
        CHECK_EQ_INT(list.tensors[1].stride[1], 2);
        CHECK_EQ_INT(list.tensors[2].ndim, 0);
        CHECK_EQ_INT(list.tensors[2].dtype, DT_F32);
        CHECK_EQ_INT(list.tensors[3].shape[0], 128256);
        CHECK_EQ_INT(list.tensors[3].dtype, DT_F16);
        CHECK_EQ_INT(list.tensors[4].dtype, DT_I64);
        pickle_tensor_list_free(&list);
    }
    // Every truncation of a valid pickle fails cleanly (the sanitizer build checks "cleanly").
    int truncations_failed = 0;
    for (size_t n = 0; n < b.len; n++) truncations_failed += !pickle_read_tensors(b.p, n, &list, err, sizeof err);
    CHECK_EQ_INT(truncations_failed, (int64_t)b.len);
    // Every single-byte change either loads or fails with a message; none crashes.
    int survived = 0;
    for (size_t i = 0; i < b.len; i++) {
        uint8_t saved = b.p[i];
        b.p[i] ^= 0x5a;
        if (pickle_read_tensors(b.p, b.len, &list, err, sizeof err)) pickle_tensor_list_free(&list);
        b.p[i] = saved;
        survived++;
    }
    CHECK_EQ_INT(survived, (int64_t)b.len);
    free(b.p);

    // A tensor that reaches past its storage: 3x4 needs 12 elements, storage has 11.
    b = (Buf){0};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 11, 0, 2, shape2, stride2);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "reaches element 11"), "%s", err);
    free(b.p);
    // The same with a storage offset: 12 elements from offset 1 need 13.
    b = (Buf){0};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 12, 1, 2, shape2, stride2);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "storage '0' holds 12"), "%s", err);
    free(b.p);
    // size * stride overflowing 64 bits
    b = (Buf){0};
    int64_t huge_shape[2] = {INT64_C(1) << 40, INT64_C(1) << 40}, huge_stride[2] = {INT64_C(1) << 40, 1};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 12, 0, 2, huge_shape, huge_stride);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "overflow"), "%s", err);
    free(b.p);
    // negative stride
    b = (Buf){0};
    int64_t neg_stride[2] = {4, -1};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 12, 3, 2, shape2, neg_stride);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "stride[1]"), "%s", err);
    free(b.p);
    // rank 9
    b = (Buf){0};
    int64_t ones9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 1, 0, 9, ones9, ones9);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "limit of 8"), "%s", err);
    free(b.p);
    // unknown storage class
    b = (Buf){0};
    p_begin_dict(&b);
    p_tensor(&b, "w", "QUInt8Storage", "0", 12, 0, 2, shape2, stride2);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "forbidden global torch.QUInt8Storage"), "%s", err);
    free(b.p);
    // a storage key that could escape the archive's data/ folder
    b = (Buf){0};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "../x", 12, 0, 2, shape2, stride2);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "storage key"), "%s", err);
    free(b.p);
    // the same name twice
    b = (Buf){0};
    p_begin_dict(&b);
    p_tensor(&b, "w", "FloatStorage", "0", 12, 0, 2, shape2, stride2);
    p_tensor(&b, "w", "FloatStorage", "1", 12, 0, 2, shape2, stride2);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "'w' appears twice"), "%s", err);
    free(b.p);
    // a value that is not a tensor
    b = (Buf){0};
    p_begin_dict(&b);
    p_str(&b, "step");
    p_int(&b, 7);
    p_end_dict(&b);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "'step' is a int"), "%s", err);
    free(b.p);
    // {"model": {...}, "step": 7}: the tensors are taken from "model"; the same for "state_dict"
    const char *wrappers[] = {"model", "state_dict", 0};
    for (int w = 0; w < 2; w++) {
        b = (Buf){0};
        u8(&b, 0x80); u8(&b, 2); u8(&b, '}'); u8(&b, '(');
        p_str(&b, wrappers[w]);
        u8(&b, '}'); u8(&b, '(');
        p_tensor(&b, "w", "FloatStorage", "0", 12, 0, 2, shape2, stride2);
        u8(&b, 'u');
        p_str(&b, "step");
        p_int(&b, 7);
        p_end_dict(&b);
        ok = pickle_read_tensors(b.p, b.len, &list, err, sizeof err);
        CHECK(ok && list.n == 1 && strcmp(list.tensors[0].name, "w") == 0, "%s: %s", wrappers[w], err);
        if (ok) pickle_tensor_list_free(&list);
        free(b.p);
    }
    // nn.Parameter: _rebuild_parameter(tensor, requires_grad, OrderedDict())
    b = (Buf){0};
    p_begin_dict(&b);
    size_t mark = b.len;
    p_tensor(&b, "p", "FloatStorage", "0", 12, 0, 2, shape2, stride2);
    // rewrite: key, then GLOBAL _rebuild_parameter, MARK, <tensor record without its key>, NEWTRUE, OrderedDict(), TUPLE, REDUCE
    Buf rec = {0};
    put(&rec, b.p + mark, b.len - mark);
    b.len = mark;
    p_str(&b, "p");
    p_global(&b, "torch._utils", "_rebuild_parameter");
    u8(&b, '(');
    put(&b, rec.p + 5 + 1, rec.len - 5 - 1);  // drop the key's BINUNICODE (5 bytes of header + "p")
    u8(&b, 0x88);
    p_global(&b, "collections", "OrderedDict");
    u8(&b, ')'); u8(&b, 'R'); u8(&b, 't'); u8(&b, 'R');
    p_end_dict(&b);
    ok = pickle_read_tensors(b.p, b.len, &list, err, sizeof err);
    CHECK(ok && list.n == 1 && list.tensors[0].shape[0] == 3, "%s", err);
    if (ok) pickle_tensor_list_free(&list);
    free(rec.p);
    free(b.p);
    // a top level that is not a dict
    CHECK(!pickle_read_tensors((const uint8_t *)"]." , 2, &list, err, sizeof err) && strstr(err, "not a dict"), "%s", err);
}

// ---- zip ----------------------------------------------------------------------------------------------------------
typedef struct {
    const char *name;
    const char *data;
    size_t len;  // 0: strlen(data)
} ZEntry;
static size_t zlen(const ZEntry *e) { return e->len ? e->len : strlen(e->data); }
enum { ZIP64_RECORDS = 1, ZIP64_EXTRA = 2, PAD64 = 4 };

// A stored zip as torch writes it (PAD64: the local "FB" extra aligns data to 64 bytes; ZIP64_*: the zip64 end
// records and CD extras with 0xFFFFFFFF in the 32-bit fields), or as Python's zipfile does (no flags).
static Buf build_zip(const ZEntry *e, int n, int flags, uint64_t *data_offsets) {
    Buf b = {0};
    uint64_t lho[16];
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name), dl = zlen(&e[i]);
        lho[i] = b.len;
        size_t extra = 0;
        if (flags & PAD64) {
            size_t pos = b.len + 30 + nl + 4;
            extra = 4 + (64 - pos % 64) % 64;
        }
        u32(&b, 0x04034b50); u16(&b, 0); u16(&b, 0x0808); u16(&b, 0); u16(&b, 0); u16(&b, 0);
        u32(&b, 0); u32(&b, 0); u32(&b, 0);  // crc and sizes are 0 in torch's local headers
        u16(&b, (unsigned)nl); u16(&b, (unsigned)extra);
        put(&b, e[i].name, nl);
        if (extra) {
            u16(&b, 0x4246); u16(&b, (unsigned)(extra - 4));
            for (size_t k = 4; k < extra; k++) u8(&b, 'Z');
        }
        data_offsets[i] = b.len;
        put(&b, e[i].data, dl);
    }
    uint64_t cd_off = b.len;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name), dl = zlen(&e[i]);
        bool z = flags & ZIP64_EXTRA;
        u32(&b, 0x02014b50); u16(&b, 0); u16(&b, 0); u16(&b, 0x0808); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0);
        u32(&b, z ? 0xFFFFFFFFu : (uint32_t)dl); u32(&b, z ? 0xFFFFFFFFu : (uint32_t)dl);
        u16(&b, (unsigned)nl); u16(&b, z ? 4 + 24 : 0); u16(&b, 0); u16(&b, 0); u16(&b, 0); u32(&b, 0);
        u32(&b, z ? 0xFFFFFFFFu : (uint32_t)lho[i]);
        put(&b, e[i].name, nl);
        if (z) { u16(&b, 1); u16(&b, 24); u64(&b, dl); u64(&b, dl); u64(&b, lho[i]); }
    }
    uint64_t cd_size = b.len - cd_off;
    bool z64 = flags & ZIP64_RECORDS;
    if (z64) {
        uint64_t rec = b.len;
        u32(&b, 0x06064b50); u64(&b, 44); u16(&b, 0); u16(&b, 0); u32(&b, 0); u32(&b, 0);
        u64(&b, (uint64_t)n); u64(&b, (uint64_t)n); u64(&b, cd_size); u64(&b, cd_off);
        u32(&b, 0x07064b50); u32(&b, 0); u64(&b, rec); u32(&b, 1);
    }
    u32(&b, 0x06054b50); u16(&b, 0); u16(&b, 0);
    u16(&b, z64 ? 0xFFFF : (unsigned)n); u16(&b, z64 ? 0xFFFF : (unsigned)n);
    u32(&b, z64 ? 0xFFFFFFFFu : (uint32_t)cd_size); u32(&b, z64 ? 0xFFFFFFFFu : (uint32_t)cd_off); u16(&b, 0);
    return b;
}

static void test_zip(void) {
    ZEntry entries[] = {{"archive/data.pkl", "pickle bytes", 0}, {"archive/data/0", "0123456789abcdef", 0}, {"archive/version", "3\n", 0}};
    int flag_sets[] = {0, PAD64 | ZIP64_RECORDS, PAD64 | ZIP64_RECORDS | ZIP64_EXTRA, ZIP64_EXTRA};
    for (int f = 0; f < 4; f++) {
        uint64_t offs[3];
        Buf b = build_zip(entries, 3, flag_sets[f], offs);
        ZipArchive z;
        bool ok = zip_index(&z, b.p, b.len, err, sizeof err);
        CHECK(ok, "flags %d: %s", flag_sets[f], err);
        if (ok) {
            CHECK_EQ_INT(z.n_entries, 3);
            const ZipEntry *e = zip_find(&z, "archive/data/0");
            CHECK(e && e->data_offset == offs[1] && e->size == 16 && memcmp(b.p + e->data_offset, "0123456789abcdef", 16) == 0, "flags %d", flag_sets[f]);
            if (flag_sets[f] & PAD64) CHECK(e && e->data_offset % 64 == 0, "aligned data");
            CHECK(zip_find(&z, "archive/nothing") == NULL, "absent name");
            zip_free(&z);
        }
        // every truncation fails
        int failed = 0;
        for (size_t n = 0; n < b.len; n++) failed += !zip_index(&z, b.p, n, err, sizeof err);
        CHECK_EQ_INT(failed, (int64_t)b.len);
        // every single-byte change loads or fails, never crashes (checked by the sanitizer build)
        int survived = 0;
        for (size_t i = 0; i < b.len; i++) {
            uint8_t saved = b.p[i];
            b.p[i] ^= 0xff;
            if (zip_index(&z, b.p, b.len, err, sizeof err)) zip_free(&z);
            b.p[i] = saved;
            survived++;
        }
        CHECK_EQ_INT(survived, (int64_t)b.len);
        free(b.p);
    }
    uint64_t offs[3];
    ZipArchive z;
    // corrupt central directory signature
    Buf b = build_zip(entries, 3, PAD64 | ZIP64_RECORDS, offs);
    for (size_t i = 0; i + 4 <= b.len; i++)
        if (memcmp(b.p + i, "PK\1\2", 4) == 0) { b.p[i + 2] = 9; break; }
    CHECK(!zip_index(&z, b.p, b.len, err, sizeof err) && strstr(err, "central directory"), "%s", err);
    free(b.p);
    // a stored entry whose sizes differ
    b = build_zip(entries, 3, 0, offs);
    size_t cd = 0;
    for (size_t i = 0; i + 4 <= b.len; i++)
        if (memcmp(b.p + i, "PK\1\2", 4) == 0) { cd = i; break; }
    set32(&b, cd + 20, 5);
    CHECK(!zip_index(&z, b.p, b.len, err, sizeof err) && strstr(err, "sizes differ"), "%s", err);
    // compressed entries are listed with their method
    set32(&b, cd + 20, 12);
    b.p[cd + 10] = 8;
    CHECK(zip_index(&z, b.p, b.len, err, sizeof err) && z.entries[0].method == 8, "%s", err);
    zip_free(&z);
    // an entry larger than the space before the central directory
    b.p[cd + 10] = 0;
    set32(&b, cd + 20, 1000);
    set32(&b, cd + 24, 1000);
    CHECK(!zip_index(&z, b.p, b.len, err, sizeof err) && strstr(err, "runs past"), "%s", err);
    free(b.p);
    // duplicate names
    ZEntry dup[] = {{"a/data.pkl", "x", 0}, {"a/data.pkl", "y", 0}};
    b = build_zip(dup, 2, 0, offs);
    CHECK(!zip_index(&z, b.p, b.len, err, sizeof err) && strstr(err, "appears twice"), "%s", err);
    free(b.p);
    // EOCD saturated but no zip64 locator
    b = build_zip(entries, 3, 0, offs);
    set32(&b, b.len - 22 + 16, 0xFFFFFFFFu);
    CHECK(!zip_index(&z, b.p, b.len, err, sizeof err) && strstr(err, "zip64 locator is missing"), "%s", err);
    free(b.p);
    // not a zip at all
    CHECK(!zip_index(&z, (const uint8_t *)"hello world, not a zip", 22, err, sizeof err) && strstr(err, "not a zip"), "%s", err);
}

// ---- the .pth index on a hand-made archive ------------------------------------------------------------------------
static void test_pth(void) {
    // data.pkl: {"w": 2x2 f32 view at offset 1 of a 5-element storage, "s": the same storage, whole}
    Buf pk = {0};
    int64_t shape[2] = {2, 2}, stride[2] = {2, 1}, shape5[1] = {5}, one[1] = {1};
    p_begin_dict(&pk);
    p_tensor(&pk, "w", "FloatStorage", "0", 5, 1, 2, shape, stride);
    p_tensor(&pk, "s", "FloatStorage", "0", 5, 0, 1, shape5, one);
    p_end_dict(&pk);
    float values[5] = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f};
    ZEntry entries[] = {{"ckpt/data.pkl", (const char *)pk.p, pk.len}, {"ckpt/byteorder", "little", 0},
                        {"ckpt/data/0", (const char *)values, sizeof values}, {"ckpt/version", "3\n", 0}};
    uint64_t offs[4];
    Buf b = build_zip(entries, 4, PAD64 | ZIP64_RECORDS, offs);
    PthIndex ix;
    bool ok = pth_index_try(&ix, b.p, b.len, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) {
        CHECK_EQ_STR(ix.archive_prefix, "ckpt/");
        CHECK_EQ_INT(ix.n_tensors, 2);
        const float *w = ix.tensors[0].data;
        CHECK(w[0] == 1.5f && w[3] == 4.5f, "w starts at storage element 1");
        CHECK_EQ_INT(ix.file_offsets[0], offs[2] + 4);
        CHECK_EQ_INT(ix.storage_ids[0], ix.storage_ids[1]);
        pth_index_free(&ix);
    }
    free(b.p);
    // byteorder "big" is refused
    entries[1].data = "big";
    b = build_zip(entries, 4, PAD64 | ZIP64_RECORDS, offs);
    CHECK(!pth_index_try(&ix, b.p, b.len, err, sizeof err) && strstr(err, "big-endian"), "%s", err);
    free(b.p);
    entries[1].data = "little";
    // the storage entry missing
    entries[2].name = "ckpt/data/7";
    b = build_zip(entries, 4, PAD64 | ZIP64_RECORDS, offs);
    CHECK(!pth_index_try(&ix, b.p, b.len, err, sizeof err) && strstr(err, "ckpt/data/0 is missing"), "%s", err);
    free(b.p);
    entries[2].name = "ckpt/data/0";
    // the storage entry one element short
    entries[2].len = 16;
    b = build_zip(entries, 4, PAD64 | ZIP64_RECORDS, offs);
    CHECK(!pth_index_try(&ix, b.p, b.len, err, sizeof err) && strstr(err, "has 16 bytes"), "%s", err);
    free(b.p);
    // a TorchScript archive
    ZEntry ts[] = {{"m/data.pkl", "x", 0}, {"m/code/__torch__.py", "def f(): pass", 0}, {"m/constants.pkl", "x", 0}};
    b = build_zip(ts, 3, 0, offs);
    CHECK(!pth_index_try(&ix, b.p, b.len, err, sizeof err) && strstr(err, "TorchScript"), "%s", err);
    free(b.p);
    // the legacy format
    const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    CHECK(!pth_index_try(&ix, legacy, sizeof legacy, err, sizeof err) && strstr(err, "legacy"), "%s", err);
    CHECK(pth_looks_like_torch(legacy, sizeof legacy), "legacy magic");
    // no data.pkl
    ZEntry none[] = {{"m/other", "x", 0}};
    b = build_zip(none, 1, 0, offs);
    CHECK(!pth_index_try(&ix, b.p, b.len, err, sizeof err) && strstr(err, "data.pkl"), "%s", err);
    free(b.p);
    free(pk.p);
}

// Issue 12: the inputs that hung, overflowed or hit undefined behaviour (tests/fuzz/make_corpus.c writes them as files
// for the sanitizer replay; here their messages and running times are checked).
static void test_issue12(void) {
    PickleTensorList list;
    // stride 0 claiming 2^62 elements on one element (torch's expand()): the extent exceeds the storage
    int64_t huge[2] = {INT64_C(1) << 31, INT64_C(1) << 31}, zero[3] = {0, 0, 0};
    Buf b = p_one_tensor("expanded", "BFloat16Storage", 1, 0, 2, huge, zero);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "a view of 4611686018427387904 elements") &&
              strstr(err, "extent exceeds the storage"), "%s", err);
    free(b.p);
    // an element count of 2^96
    int64_t over[3] = {INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32};
    b = p_one_tensor("over", "FloatStorage", 1, 0, 3, over, zero);
    CHECK(!pickle_read_tensors(b.p, b.len, &list, err, sizeof err) && strstr(err, "overflows 64 bits"), "%s", err);
    free(b.p);
    // a legal view at the very end of its storage still loads: 3 elements from offset 9 of 12
    int64_t three[1] = {3}, one[1] = {1};
    b = p_one_tensor("tail", "FloatStorage", 12, 9, 1, three, one);
    bool ok = pickle_read_tensors(b.p, b.len, &list, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) pickle_tensor_list_free(&list);
    free(b.p);
    // "(d": a MARK on an empty stack, then DICT (pointer arithmetic on a NULL stack and a memcpy from NULL before)
    TEXT_IS("(d.", "{}");
    TEXT_FAILS("(d", "without STOP");
    // shared nested tuples, 2^40 leaves in 84 bytes: the printer stops when its buffer is full
    b = (Buf){0};
    u8(&b, 0x80); u8(&b, 2); u8(&b, 'N');
    for (int i = 0; i < 40; i++) { u8(&b, '2'); u8(&b, 0x86); }
    u8(&b, '.');
    double t0 = now_seconds();
    ok = run_text(b.p, b.len);
    double dt = now_seconds() - t0;
    CHECK(!ok && strstr(err, "needs more than 4096 bytes"), "%s", err);
    CHECK(dt < 0.5, "84 bytes of nested shared tuples took %.3f s to print", dt);
    free(b.p);
}

int main(void) {
    test_issue12();
    test_opcodes();
    test_rejections();
    test_tensors();
    test_zip();
    test_pth();
    TEST_SUMMARY();
}

// pickle.c: the safe pickle VM (see pickle.h; opcode list and semantics in formats.md §2.3-2.5 and cpython's
// Lib/pickletools.py).
//
// The machine has a value stack, a stack of MARK positions and a memo (an array of remembered values). Values are
// shared by pointer, as in Python: a BINGET of a memoized dict gives the same dict. Every value made during one run
// is recorded in `all` and freed at the end, so no reference counting is needed and cycles are harmless.
// Each opcode handler returns false after writing a message; the main loop stops at the first false.
#include "formats/pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

typedef enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE, V_TENSOR } ValueKind;
static const char *KIND_NAMES[] = {"None", "bool", "int", "float", "str", "tuple", "list", "dict", "global", "storage", "tensor"};

// The allowed globals. Anything not in the allow-list is never turned into a value: the load stops instead.
typedef enum { G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_ORDERED_DICT, G_STORAGE_TYPE } GlobalKind;

typedef struct Value Value;
struct Value {
    ValueKind kind;
    union {
        bool b;
        int64_t i;
        double f;
        struct { char *bytes; size_t len; } str;                      // NUL-terminated copy
        struct { Value **items; size_t n, cap; } seq;                 // tuple, list
        struct { Value **keys, **vals; size_t n, cap; } dict;         // insertion order kept
        struct { GlobalKind which; DType dtype; const char *qualname; } global;  // dtype for storage types
        struct { DType dtype; char *key; int64_t numel; } storage;
        struct { const Value *storage; int64_t offset; int ndim; int64_t shape[MAX_DIMS], stride[MAX_DIMS]; } tensor;
    };
};

typedef struct {
    const uint8_t *data;
    size_t len, pos;
    size_t op_pos;        // where the current opcode starts, for messages
    uint8_t op;
    Value **stack;
    size_t n_stack, cap_stack;
    size_t *marks;        // stack heights at each MARK
    size_t n_marks, cap_marks;
    Value **memo;         // memo[i] == NULL: slot i not set
    size_t cap_memo, memo_count;
    Value **all;          // every value made, for freeing
    size_t n_all, cap_all;
    char *err;
    size_t errlen;
} VM;

// ---- opcodes ------------------------------------------------------------------------------------------------------
enum {
    OP_MARK = '(', OP_STOP = '.', OP_POP = '0', OP_POP_MARK = '1', OP_DUP = '2', OP_BINFLOAT = 'G', OP_BININT = 'J',
    OP_BININT1 = 'K', OP_BININT2 = 'M', OP_NONE = 'N', OP_BINPERSID = 'Q', OP_REDUCE = 'R', OP_BINSTRING = 'T',
    OP_SHORT_BINSTRING = 'U', OP_BINUNICODE = 'X', OP_APPEND = 'a', OP_BUILD = 'b', OP_GLOBAL = 'c', OP_DICT = 'd',
    OP_EMPTY_DICT = '}', OP_APPENDS = 'e', OP_BINGET = 'h', OP_LONG_BINGET = 'j', OP_LIST = 'l', OP_EMPTY_LIST = ']',
    OP_BINPUT = 'q', OP_LONG_BINPUT = 'r', OP_SETITEM = 's', OP_TUPLE = 't', OP_EMPTY_TUPLE = ')', OP_SETITEMS = 'u',
    OP_PROTO = 0x80, OP_LONG1 = 0x8a, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87, OP_NEWTRUE = 0x88,
    OP_NEWFALSE = 0x89, OP_SHORT_BINUNICODE = 0x8c, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94, OP_FRAME = 0x95,
};

static const char *opcode_name(uint8_t op) {
    switch (op) {
    case OP_MARK: return "MARK"; case OP_STOP: return "STOP"; case OP_POP: return "POP"; case OP_POP_MARK: return "POP_MARK";
    case OP_DUP: return "DUP"; case OP_BINFLOAT: return "BINFLOAT"; case OP_BININT: return "BININT";
    case OP_BININT1: return "BININT1"; case OP_BININT2: return "BININT2"; case OP_NONE: return "NONE";
    case OP_BINPERSID: return "BINPERSID"; case OP_REDUCE: return "REDUCE"; case OP_BINSTRING: return "BINSTRING";
    case OP_SHORT_BINSTRING: return "SHORT_BINSTRING"; case OP_BINUNICODE: return "BINUNICODE"; case OP_APPEND: return "APPEND";
    case OP_BUILD: return "BUILD"; case OP_GLOBAL: return "GLOBAL"; case OP_DICT: return "DICT"; case OP_EMPTY_DICT: return "EMPTY_DICT";
    case OP_APPENDS: return "APPENDS"; case OP_BINGET: return "BINGET"; case OP_LONG_BINGET: return "LONG_BINGET";
    case OP_LIST: return "LIST"; case OP_EMPTY_LIST: return "EMPTY_LIST"; case OP_BINPUT: return "BINPUT";
    case OP_LONG_BINPUT: return "LONG_BINPUT"; case OP_SETITEM: return "SETITEM"; case OP_TUPLE: return "TUPLE";
    case OP_EMPTY_TUPLE: return "EMPTY_TUPLE"; case OP_SETITEMS: return "SETITEMS"; case OP_PROTO: return "PROTO";
    case OP_LONG1: return "LONG1"; case OP_TUPLE1: return "TUPLE1"; case OP_TUPLE2: return "TUPLE2"; case OP_TUPLE3: return "TUPLE3";
    case OP_NEWTRUE: return "NEWTRUE"; case OP_NEWFALSE: return "NEWFALSE"; case OP_SHORT_BINUNICODE: return "SHORT_BINUNICODE";
    case OP_STACK_GLOBAL: return "STACK_GLOBAL"; case OP_MEMOIZE: return "MEMOIZE"; case OP_FRAME: return "FRAME";
    // Known but refused: they construct arbitrary objects, or belong to protocols torch does not write.
    case 'i': return "INST"; case 'o': return "OBJ"; case 0x81: return "NEWOBJ"; case 0x92: return "NEWOBJ_EX";
    case 0x82: return "EXT1"; case 0x83: return "EXT2"; case 0x84: return "EXT4"; case 'P': return "PERSID";
    case 0x8b: return "LONG4"; case 'B': return "BINBYTES"; case 'C': return "SHORT_BINBYTES"; case 0x8e: return "BINBYTES8";
    case 0x8d: return "BINUNICODE8"; case 0x8f: return "EMPTY_SET"; case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET";
    case 0x96: return "BYTEARRAY8"; case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    case 'I': return "INT"; case 'L': return "LONG"; case 'F': return "FLOAT"; case 'S': return "STRING"; case 'V': return "UNICODE";
    case 'g': return "GET"; case 'p': return "PUT";
    default: return "unknown opcode";
    }
}

static bool vm_fail(VM *vm, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool vm_fail(VM *vm, const char *fmt, ...) {
    int k = snprintf(vm->err, vm->errlen, "pickle byte %zu, opcode 0x%02x %s: ", vm->op_pos, vm->op, opcode_name(vm->op));
    if (k < 0 || (size_t)k >= vm->errlen) return false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(vm->err + k, vm->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return false;
}

// ---- values -------------------------------------------------------------------------------------------------------
static Value *new_value(VM *vm, ValueKind kind) {
    if (vm->n_all == vm->cap_all) vm->all = xrealloc(vm->all, (vm->cap_all = vm->cap_all ? 2 * vm->cap_all : 256) * sizeof *vm->all);
    Value *v = xcalloc(1, sizeof *v);
    v->kind = kind;
    vm->all[vm->n_all++] = v;
    return v;
}

static void free_value(Value *v) {
    switch (v->kind) {
    case V_STR: free(v->str.bytes); break;
    case V_TUPLE: case V_LIST: free(v->seq.items); break;
    case V_DICT: free(v->dict.keys); free(v->dict.vals); break;
    case V_STORAGE: free(v->storage.key); break;
    default: break;
    }
    free(v);
}

static void seq_append(Value *seq, Value *item) {
    if (seq->seq.n == seq->seq.cap) seq->seq.items = xrealloc(seq->seq.items, (seq->seq.cap = seq->seq.cap ? 2 * seq->seq.cap : 4) * sizeof(Value *));
    seq->seq.items[seq->seq.n++] = item;
}

// Keys are appended in order; duplicates are looked for once, when the tensor list is made (a linear search here
// would make a hostile dict of a million items quadratic).
static void dict_set(Value *d, Value *key, Value *val) {
    if (d->dict.n == d->dict.cap) {
        d->dict.cap = d->dict.cap ? 2 * d->dict.cap : 8;
        d->dict.keys = xrealloc(d->dict.keys, d->dict.cap * sizeof(Value *));
        d->dict.vals = xrealloc(d->dict.vals, d->dict.cap * sizeof(Value *));
    }
    d->dict.keys[d->dict.n] = key;
    d->dict.vals[d->dict.n++] = val;
}

static const Value *dict_get_str(const Value *d, const char *key) {
    const Value *found = NULL;  // the last one wins, as in Python
    for (size_t i = 0; i < d->dict.n; i++)
        if (d->dict.keys[i]->kind == V_STR && strcmp(d->dict.keys[i]->str.bytes, key) == 0) found = d->dict.vals[i];
    return found;
}

// ---- stack, marks, memo -------------------------------------------------------------------------------------------
static bool push(VM *vm, Value *v) {
    if (vm->n_stack >= PICKLE_MAX_STACK) return vm_fail(vm, "stack deeper than %d values", PICKLE_MAX_STACK);
    if (vm->n_stack == vm->cap_stack) vm->stack = xrealloc(vm->stack, (vm->cap_stack = vm->cap_stack ? 2 * vm->cap_stack : 64) * sizeof *vm->stack);
    vm->stack[vm->n_stack++] = v;
    return true;
}

// The values above the topmost MARK belong to that mark: pop() may not reach below it.
static size_t stack_floor(const VM *vm) { return vm->n_marks ? vm->marks[vm->n_marks - 1] : 0; }

static Value *pop(VM *vm) {
    if (vm->n_stack <= stack_floor(vm)) { vm_fail(vm, "stack underflow"); return NULL; }
    return vm->stack[--vm->n_stack];
}
static Value *top(VM *vm) {
    if (vm->n_stack <= stack_floor(vm)) { vm_fail(vm, "stack underflow"); return NULL; }
    return vm->stack[vm->n_stack - 1];
}

static bool push_mark(VM *vm) {
    if (vm->n_marks >= PICKLE_MAX_STACK) return vm_fail(vm, "more than %d nested marks", PICKLE_MAX_STACK);
    if (vm->n_marks == vm->cap_marks) vm->marks = xrealloc(vm->marks, (vm->cap_marks = vm->cap_marks ? 2 * vm->cap_marks : 16) * sizeof *vm->marks);
    vm->marks[vm->n_marks++] = vm->n_stack;
    return true;
}

// Removes the topmost mark; *items and *n get the values that were above it (still valid until the next push).
static bool pop_to_mark(VM *vm, Value ***items, size_t *n) {
    if (vm->n_marks == 0) return vm_fail(vm, "no MARK on the stack");
    size_t start = vm->marks[--vm->n_marks];
    *items = start < vm->n_stack ? vm->stack + start : NULL;  // never arithmetic on a stack not yet allocated ("(d")
    *n = vm->n_stack - start;
    vm->n_stack = start;
    return true;
}

static bool memo_put(VM *vm, uint64_t index) {
    // The pickler numbers memo slots 0, 1, 2, ..., so an index is below the number of bytes in the pickle; allowing
    // 65536 more keeps hand-written pickles legal while a hostile index cannot make the memo much larger than the input.
    if (index >= PICKLE_MAX_MEMO || index > (uint64_t)vm->len + 65536) return vm_fail(vm, "memo index %llu is out of range", (unsigned long long)index);
    Value *v = top(vm);
    if (!v) return false;
    if (index >= vm->cap_memo) {
        size_t cap = vm->cap_memo ? vm->cap_memo : 64;
        while (cap <= index) cap *= 2;
        vm->memo = xrealloc(vm->memo, cap * sizeof *vm->memo);
        memset(vm->memo + vm->cap_memo, 0, (cap - vm->cap_memo) * sizeof *vm->memo);
        vm->cap_memo = cap;
    }
    if (!vm->memo[index]) vm->memo_count++;
    vm->memo[index] = v;
    return true;
}

static bool memo_get(VM *vm, uint64_t index) {
    if (index >= vm->cap_memo || !vm->memo[index]) return vm_fail(vm, "memo slot %llu was never set", (unsigned long long)index);
    return push(vm, vm->memo[index]);
}

// ---- reading arguments --------------------------------------------------------------------------------------------
static bool need(VM *vm, size_t n) {
    if (n > vm->len - vm->pos) return vm_fail(vm, "truncated: %zu more bytes needed, %zu left", n, vm->len - vm->pos);
    return true;
}
static uint64_t rd_le(VM *vm, int n) {  // caller has checked need(n)
    uint64_t v = 0;
    for (int k = 0; k < n; k++) v |= (uint64_t)vm->data[vm->pos + (size_t)k] << (8 * k);
    vm->pos += (size_t)n;
    return v;
}

static bool push_int(VM *vm, int64_t i) {
    Value *v = new_value(vm, V_INT);
    v->i = i;
    return push(vm, v);
}

static bool push_string(VM *vm, uint64_t n) {
    if (n > PICKLE_MAX_STRING) return vm_fail(vm, "string of %llu bytes is longer than the limit of %d", (unsigned long long)n, PICKLE_MAX_STRING);
    if (!need(vm, (size_t)n)) return false;
    Value *v = new_value(vm, V_STR);
    v->str.bytes = xmalloc((size_t)n + 1);
    memcpy(v->str.bytes, vm->data + vm->pos, (size_t)n);
    v->str.bytes[n] = 0;
    v->str.len = (size_t)n;
    vm->pos += (size_t)n;
    return push(vm, v);
}

// ---- globals: the allow-list --------------------------------------------------------------------------------------
static const struct { const char *class_name; DType dtype; } STORAGE_TYPES[] = {
    {"FloatStorage", DT_F32}, {"DoubleStorage", DT_F64}, {"HalfStorage", DT_F16}, {"BFloat16Storage", DT_BF16},
    {"LongStorage", DT_I64},  {"IntStorage", DT_I32},    {"ShortStorage", DT_I16}, {"CharStorage", DT_I8},
    {"ByteStorage", DT_U8},   {"BoolStorage", DT_BOOL},
};

// Copies s into out for an error message, with anything unprintable shown as '?'.
static void printable(const char *s, size_t n, char *out, size_t outlen) {
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outlen; i++) out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[k] = 0;
}

static bool push_global(VM *vm, const char *module, size_t module_len, const char *name, size_t name_len) {
    Value *g = new_value(vm, V_GLOBAL);
    bool known = false;
    if (module_len == strlen("torch._utils") && memcmp(module, "torch._utils", module_len) == 0) {
        if (name_len == strlen("_rebuild_tensor_v2") && memcmp(name, "_rebuild_tensor_v2", name_len) == 0)
            g->global.which = G_REBUILD_TENSOR_V2, g->global.qualname = "torch._utils._rebuild_tensor_v2", known = true;
        else if (name_len == strlen("_rebuild_parameter") && memcmp(name, "_rebuild_parameter", name_len) == 0)
            g->global.which = G_REBUILD_PARAMETER, g->global.qualname = "torch._utils._rebuild_parameter", known = true;
    } else if (module_len == strlen("collections") && memcmp(module, "collections", module_len) == 0) {
        if (name_len == strlen("OrderedDict") && memcmp(name, "OrderedDict", name_len) == 0)
            g->global.which = G_ORDERED_DICT, g->global.qualname = "collections.OrderedDict", known = true;
    } else if (module_len == strlen("torch") && memcmp(module, "torch", module_len) == 0) {
        for (size_t k = 0; k < sizeof STORAGE_TYPES / sizeof STORAGE_TYPES[0]; k++)
            if (name_len == strlen(STORAGE_TYPES[k].class_name) && memcmp(name, STORAGE_TYPES[k].class_name, name_len) == 0) {
                g->global.which = G_STORAGE_TYPE;
                g->global.dtype = STORAGE_TYPES[k].dtype;
                g->global.qualname = STORAGE_TYPES[k].class_name;
                known = true;
            }
    }
    if (!known) {
        char m[80], n[80];
        printable(module, module_len, m, sizeof m);
        printable(name, name_len, n, sizeof n);
        return vm_fail(vm, "forbidden global %s.%s: only torch tensor rebuilding is allowed, nothing was run", m, n);
    }
    return push(vm, g);
}

// GLOBAL: "module\nname\n" in ASCII.
static bool op_global(VM *vm) {
    const char *parts[2];
    size_t lens[2];
    for (int k = 0; k < 2; k++) {
        size_t left = vm->len - vm->pos, max = left < 257 ? left : 257;
        const uint8_t *nl = memchr(vm->data + vm->pos, '\n', max);
        if (!nl) return vm_fail(vm, "GLOBAL argument without a newline within 256 bytes");
        parts[k] = (const char *)vm->data + vm->pos;
        lens[k] = (size_t)(nl - (vm->data + vm->pos));
        vm->pos += lens[k] + 1;
    }
    return push_global(vm, parts[0], lens[0], parts[1], lens[1]);
}

static bool op_stack_global(VM *vm) {
    Value *name = pop(vm);
    if (!name) return false;
    Value *module = pop(vm);
    if (!module) return false;
    if (name->kind != V_STR || module->kind != V_STR) return vm_fail(vm, "module and name must be strings");
    return push_global(vm, module->str.bytes, module->str.len, name->str.bytes, name->str.len);
}

// ---- torch's objects ----------------------------------------------------------------------------------------------
// BINPERSID: the persistent id ('storage', <StorageClass>, key, location, numel) names a zip entry data/<key>.
static bool op_binpersid(VM *vm) {
    Value *pid = pop(vm);
    if (!pid) return false;
    if (pid->kind != V_TUPLE || pid->seq.n != 5) return vm_fail(vm, "persistent id must be a 5-tuple ('storage', type, key, location, numel)");
    Value **a = pid->seq.items;
    if (a[0]->kind != V_STR || strcmp(a[0]->str.bytes, "storage") != 0) return vm_fail(vm, "persistent id does not start with 'storage'");
    if (a[1]->kind != V_GLOBAL || a[1]->global.which != G_STORAGE_TYPE) return vm_fail(vm, "persistent id: second item is not a torch storage class");
    if (a[2]->kind != V_STR || a[2]->str.len == 0 || a[2]->str.len > 64) return vm_fail(vm, "persistent id: storage key must be a short string");
    for (size_t k = 0; k < a[2]->str.len; k++) {
        char c = a[2]->str.bytes[k];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '.' || c == '-') || (k == 0 && c == '.'))
            return vm_fail(vm, "persistent id: storage key has a character that cannot name a zip entry");
    }
    if (a[3]->kind != V_STR) return vm_fail(vm, "persistent id: location must be a string");
    if (a[4]->kind != V_INT || a[4]->i < 0 || a[4]->i > INT64_MAX / 8) return vm_fail(vm, "persistent id: numel must be a non-negative int");
    Value *s = new_value(vm, V_STORAGE);
    s->storage.dtype = a[1]->global.dtype;
    s->storage.key = xstrdup(a[2]->str.bytes);
    s->storage.numel = a[4]->i;
    return push(vm, s);
}

// "[2, 3]" for messages (MAX_DIMS numbers of at most 20 digits fit).
typedef struct { char s[8 + MAX_DIMS * 22]; } ShapeText;
static ShapeText shape_text(const int64_t *v, int n) {
    ShapeText t;
    shape_str(v, n, t.s, sizeof t.s);
    return t;
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
static bool rebuild_tensor(VM *vm, const Value *args) {
    size_t n = args->seq.n;
    Value **a = args->seq.items;
    if (n != 6 && n != 7) return vm_fail(vm, "_rebuild_tensor_v2 takes 6 or 7 arguments, got %zu", n);
    if (n == 7 && !(a[6]->kind == V_NONE || (a[6]->kind == V_DICT && a[6]->dict.n == 0)))
        return vm_fail(vm, "_rebuild_tensor_v2: tensor metadata (conjugate or negative bit) is not supported");
    if (a[0]->kind != V_STORAGE) return vm_fail(vm, "_rebuild_tensor_v2: first argument is a %s, not a storage", KIND_NAMES[a[0]->kind]);
    if (a[1]->kind != V_INT || a[1]->i < 0) return vm_fail(vm, "_rebuild_tensor_v2: storage offset must be a non-negative int");
    if (a[2]->kind != V_TUPLE || a[3]->kind != V_TUPLE) return vm_fail(vm, "_rebuild_tensor_v2: size and stride must be tuples");
    if (a[2]->seq.n != a[3]->seq.n) return vm_fail(vm, "_rebuild_tensor_v2: size has %zu dims, stride %zu", a[2]->seq.n, a[3]->seq.n);
    if (a[2]->seq.n > MAX_DIMS) return vm_fail(vm, "_rebuild_tensor_v2: %zu dims, more than the limit of %d", a[2]->seq.n, MAX_DIMS);
    if (a[4]->kind != V_BOOL) return vm_fail(vm, "_rebuild_tensor_v2: requires_grad must be a bool");
    if (a[5]->kind != V_DICT) return vm_fail(vm, "_rebuild_tensor_v2: backward_hooks must be a dict");
    Value *t = new_value(vm, V_TENSOR);
    const Value *storage = a[0];
    t->tensor.storage = storage;
    t->tensor.offset = a[1]->i;
    t->tensor.ndim = (int)a[2]->seq.n;
    // The largest element index the view can reach must lie inside the storage. Products are checked for overflow.
    bool empty = false;
    int64_t last = a[1]->i;
    for (int d = 0; d < t->tensor.ndim; d++) {
        const Value *size = a[2]->seq.items[d], *stride = a[3]->seq.items[d];
        if (size->kind != V_INT || size->i < 0) return vm_fail(vm, "_rebuild_tensor_v2: size[%d] must be a non-negative int", d);
        if (stride->kind != V_INT || stride->i < 0) return vm_fail(vm, "_rebuild_tensor_v2: stride[%d] must be a non-negative int", d);
        t->tensor.shape[d] = size->i;
        t->tensor.stride[d] = stride->i;
        if (size->i == 0) empty = true;
        int64_t reach;
        if (size->i > 0 && (__builtin_mul_overflow(size->i - 1, stride->i, &reach) || __builtin_add_overflow(last, reach, &last)))
            return vm_fail(vm, "_rebuild_tensor_v2: size times stride overflows");
    }
    if (empty ? a[1]->i > storage->storage.numel : last >= storage->storage.numel)
        return vm_fail(vm, "tensor reaches element %lld but its storage '%s' holds %lld elements", (long long)last,
                       storage->storage.key, (long long)storage->storage.numel);
    // Its element count must be no more than the storage elements from the offset on. Every view that gives each
    // element its own place (slices, transposes) passes; a view that repeats elements (stride 0, as torch saves an
    // expand()) does not: it would let a 500-byte file claim 2^62 elements, and every byte count computed from the
    // shape (checksums, a .npy dump, a copy) would wrap or run for ever. Weights never are such views.
    int64_t numel;
    if (!shape_numel_checked(t->tensor.shape, t->tensor.ndim, &numel))
        return vm_fail(vm, "_rebuild_tensor_v2: the element count of size %s overflows 64 bits", shape_text(t->tensor.shape, t->tensor.ndim).s);
    if (numel > storage->storage.numel - a[1]->i)
        return vm_fail(vm, "_rebuild_tensor_v2: a view of %lld elements (size %s, stride %s) on storage '%s' of %lld elements "
                       "from offset %lld: its extent exceeds the storage (stride 0, as torch saves expand(), is not supported)",
                       (long long)numel, shape_text(t->tensor.shape, t->tensor.ndim).s, shape_text(t->tensor.stride, t->tensor.ndim).s,
                       storage->storage.key, (long long)storage->storage.numel, (long long)a[1]->i);
    return push(vm, t);
}

static bool op_reduce(VM *vm) {
    Value *args = pop(vm);
    if (!args) return false;
    Value *f = pop(vm);
    if (!f) return false;
    if (f->kind != V_GLOBAL) return vm_fail(vm, "REDUCE on a %s, not on a global", KIND_NAMES[f->kind]);
    if (args->kind != V_TUPLE) return vm_fail(vm, "REDUCE arguments are a %s, not a tuple", KIND_NAMES[args->kind]);
    switch (f->global.which) {
    case G_REBUILD_TENSOR_V2: return rebuild_tensor(vm, args);
    case G_REBUILD_PARAMETER:  // _rebuild_parameter(data, requires_grad, backward_hooks): the Parameter is its data
        if (args->seq.n != 3 || args->seq.items[0]->kind != V_TENSOR) return vm_fail(vm, "_rebuild_parameter wants (tensor, bool, dict)");
        return push(vm, args->seq.items[0]);
    case G_ORDERED_DICT:
        if (args->seq.n != 0) return vm_fail(vm, "OrderedDict() with arguments is not supported");
        return push(vm, new_value(vm, V_DICT));
    case G_STORAGE_TYPE: break;
    }
    return vm_fail(vm, "calling torch.%s is not allowed", f->global.qualname);
}

// ---- the main loop ------------------------------------------------------------------------------------------------
static bool set_items(VM *vm, Value **items, size_t n) {
    if (n % 2) return vm_fail(vm, "odd number of values for key/value pairs");
    Value *d = top(vm);
    if (!d) return false;
    if (d->kind != V_DICT) return vm_fail(vm, "setting items on a %s, not a dict", KIND_NAMES[d->kind]);
    for (size_t k = 0; k < n; k += 2) {
        ValueKind kk = items[k]->kind;
        if (kk != V_STR && kk != V_INT && kk != V_BOOL && kk != V_NONE) return vm_fail(vm, "dict key of kind %s is not supported", KIND_NAMES[kk]);
        dict_set(d, items[k], items[k + 1]);
    }
    return true;
}

static bool make_tuple(VM *vm, ValueKind kind, Value **items, size_t n) {
    Value *t = new_value(vm, kind);
    for (size_t k = 0; k < n; k++) seq_append(t, items[k]);
    return push(vm, t);
}

static bool step(VM *vm, bool *stopped, Value **result) {
    if (!need(vm, 1)) return vm_fail(vm, "the pickle ends without STOP");
    vm->op_pos = vm->pos;
    vm->op = vm->data[vm->pos++];
    Value **items = NULL;
    size_t n = 0;
    switch (vm->op) {
    case OP_PROTO: {
        if (!need(vm, 1)) return false;
        uint64_t p = rd_le(vm, 1);
        if (p > 5) return vm_fail(vm, "protocol %llu is newer than 5", (unsigned long long)p);
        return true;
    }
    case OP_FRAME: {  // protocol 4 framing: only a length hint, the opcodes inside are read as usual
        if (!need(vm, 8)) return false;
        uint64_t frame = rd_le(vm, 8);
        if (frame > vm->len - vm->pos) return vm_fail(vm, "frame of %llu bytes runs past the end", (unsigned long long)frame);
        return true;
    }
    case OP_STOP:
        if (!(*result = pop(vm))) return false;
        if (vm->n_stack || vm->n_marks) return vm_fail(vm, "values left on the stack at STOP");
        *stopped = true;
        return true;
    case OP_EMPTY_DICT: return push(vm, new_value(vm, V_DICT));
    case OP_EMPTY_LIST: return push(vm, new_value(vm, V_LIST));
    case OP_EMPTY_TUPLE: return push(vm, new_value(vm, V_TUPLE));
    case OP_MARK: return push_mark(vm);
    case OP_NONE: return push(vm, new_value(vm, V_NONE));
    case OP_NEWTRUE: case OP_NEWFALSE: {
        Value *v = new_value(vm, V_BOOL);
        v->b = vm->op == OP_NEWTRUE;
        return push(vm, v);
    }
    case OP_BININT1: return need(vm, 1) && push_int(vm, (int64_t)rd_le(vm, 1));
    case OP_BININT2: return need(vm, 2) && push_int(vm, (int64_t)rd_le(vm, 2));
    case OP_BININT: return need(vm, 4) && push_int(vm, (int64_t)(int32_t)(uint32_t)rd_le(vm, 4));  // signed
    case OP_LONG1: {  // n bytes, little-endian two's complement
        if (!need(vm, 1)) return false;
        int nb = (int)rd_le(vm, 1);
        if (nb > 8) return vm_fail(vm, "integer of %d bytes does not fit in 64 bits", nb);
        if (!need(vm, (size_t)nb)) return false;
        uint64_t u = rd_le(vm, nb);
        if (nb > 0 && nb < 8 && (u >> (8 * nb - 1)) & 1) u |= ~(uint64_t)0 << (8 * nb);  // sign-extend
        return push_int(vm, (int64_t)u);
    }
    case OP_BINFLOAT: {  // 8 bytes, BIG-endian IEEE double
        if (!need(vm, 8)) return false;
        uint64_t u = 0;
        for (int k = 0; k < 8; k++) u = u << 8 | vm->data[vm->pos + (size_t)k];
        vm->pos += 8;
        Value *v = new_value(vm, V_FLOAT);
        memcpy(&v->f, &u, 8);
        return push(vm, v);
    }
    case OP_BINUNICODE: return need(vm, 4) && push_string(vm, rd_le(vm, 4));
    case OP_SHORT_BINUNICODE: case OP_SHORT_BINSTRING: return need(vm, 1) && push_string(vm, rd_le(vm, 1));
    case OP_BINSTRING: {
        if (!need(vm, 4)) return false;
        int32_t len = (int32_t)(uint32_t)rd_le(vm, 4);
        if (len < 0) return vm_fail(vm, "negative string length");
        return push_string(vm, (uint64_t)len);
    }
    case OP_BINPUT: return need(vm, 1) && memo_put(vm, rd_le(vm, 1));
    case OP_LONG_BINPUT: return need(vm, 4) && memo_put(vm, rd_le(vm, 4));
    case OP_MEMOIZE: return memo_put(vm, vm->memo_count);
    case OP_BINGET: return need(vm, 1) && memo_get(vm, rd_le(vm, 1));
    case OP_LONG_BINGET: return need(vm, 4) && memo_get(vm, rd_le(vm, 4));
    case OP_TUPLE: return pop_to_mark(vm, &items, &n) && make_tuple(vm, V_TUPLE, items, n);
    case OP_LIST: return pop_to_mark(vm, &items, &n) && make_tuple(vm, V_LIST, items, n);
    case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3: {
        n = (size_t)(vm->op - OP_TUPLE1 + 1);
        if (vm->n_stack < stack_floor(vm) + n) return vm_fail(vm, "stack underflow");
        vm->n_stack -= n;
        return make_tuple(vm, V_TUPLE, vm->stack + vm->n_stack, n);
    }
    case OP_DICT: {
        if (!pop_to_mark(vm, &items, &n)) return false;
        Value *d = new_value(vm, V_DICT);
        Value **copy = xmalloc((n ? n : 1) * sizeof *copy);  // push() below may move the stack
        if (n) memcpy(copy, items, n * sizeof *copy);
        bool ok = push(vm, d) && set_items(vm, copy, n);
        free(copy);
        return ok;
    }
    case OP_APPEND: {
        Value *v = pop(vm);
        if (!v) return false;
        Value *list = top(vm);
        if (!list) return false;
        if (list->kind != V_LIST) return vm_fail(vm, "appending to a %s, not a list", KIND_NAMES[list->kind]);
        seq_append(list, v);
        return true;
    }
    case OP_APPENDS: {
        if (!pop_to_mark(vm, &items, &n)) return false;
        Value *list = top(vm);
        if (!list) return false;
        if (list->kind != V_LIST) return vm_fail(vm, "appending to a %s, not a list", KIND_NAMES[list->kind]);
        for (size_t k = 0; k < n; k++) seq_append(list, items[k]);
        return true;
    }
    case OP_SETITEM: {
        Value *pair[2];
        if (!(pair[1] = pop(vm)) || !(pair[0] = pop(vm))) return false;
        return set_items(vm, pair, 2);
    }
    case OP_SETITEMS: return pop_to_mark(vm, &items, &n) && set_items(vm, items, n);
    case OP_GLOBAL: return op_global(vm);
    case OP_STACK_GLOBAL: return op_stack_global(vm);
    case OP_REDUCE: return op_reduce(vm);
    case OP_BINPERSID: return op_binpersid(vm);
    case OP_BUILD: {  // object state: only the `_metadata` of a state_dict's OrderedDict occurs; it is not needed
        Value *state = pop(vm);
        if (!state) return false;
        Value *obj = top(vm);
        if (!obj) return false;
        if (obj->kind != V_DICT) return vm_fail(vm, "BUILD on a %s is not supported", KIND_NAMES[obj->kind]);
        return true;
    }
    case OP_POP:
        if (vm->n_marks && vm->marks[vm->n_marks - 1] == vm->n_stack) { vm->n_marks--; return true; }  // as CPython
        return pop(vm) != NULL;
    case OP_POP_MARK: return pop_to_mark(vm, &items, &n);
    case OP_DUP: {
        Value *v = top(vm);
        return v && push(vm, v);
    }
    default: return vm_fail(vm, "this opcode is not allowed in a checkpoint");
    }
}

// Runs the VM to STOP; the result is left in *result, owned by vm->all.
static bool run(VM *vm, const uint8_t *data, size_t len, char *err, size_t errlen, Value **result) {
    memset(vm, 0, sizeof *vm);
    vm->data = data;
    vm->len = len;
    vm->err = err;
    vm->errlen = errlen;
    if (errlen) err[0] = 0;
    bool stopped = false;
    while (!stopped)
        if (!step(vm, &stopped, result)) return false;
    if (vm->pos != len) {
        vm->op_pos = vm->pos;
        return vm_fail(vm, "%zu bytes follow STOP", len - vm->pos);
    }
    return true;
}

static void vm_free(VM *vm) {
    for (size_t k = 0; k < vm->n_all; k++) free_value(vm->all[k]);
    free(vm->all);
    free(vm->stack);
    free(vm->marks);
    free(vm->memo);
}

// ---- results ------------------------------------------------------------------------------------------------------
static int compare_tensor_names(const void *a, const void *b) {
    return strcmp((*(const PickleTensor *const *)a)->name, (*(const PickleTensor *const *)b)->name);
}

bool pickle_read_tensors(const uint8_t *data, size_t len, PickleTensorList *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    VM vm;
    Value *result = NULL;
    bool ok = run(&vm, data, len, err, errlen, &result);
    if (ok && result->kind != V_DICT) ok = fail_msg(err, errlen, "the pickle holds a %s, not a dict of tensors", KIND_NAMES[result->kind]);
    // Training scripts often save {"model": state_dict, "optimizer": ...}; llama.cpp looks inside the same way.
    for (int depth = 0; ok && depth < 4; depth++) {
        const Value *inner = dict_get_str(result, "model");
        if (!inner || inner->kind != V_DICT) inner = dict_get_str(result, "state_dict");
        if (!inner || inner->kind != V_DICT) break;
        result = (Value *)inner;
    }
    if (ok) {
        out->tensors = xcalloc(result->dict.n ? result->dict.n : 1, sizeof *out->tensors);
        for (size_t k = 0; k < result->dict.n && ok; k++) {
            const Value *key = result->dict.keys[k], *val = result->dict.vals[k];
            if (key->kind != V_STR || key->str.len == 0 || strlen(key->str.bytes) != key->str.len) {
                ok = fail_msg(err, errlen, "entry %zu of the dict: the name is not a non-empty string", k);
                break;
            }
            if (val->kind != V_TENSOR) {
                ok = fail_msg(err, errlen, "'%.200s' is a %s, not a tensor", key->str.bytes, KIND_NAMES[val->kind]);
                break;
            }
            PickleTensor *t = &out->tensors[out->n++];
            const Value *s = val->tensor.storage;
            t->name = xstrdup(key->str.bytes);
            t->dtype = s->storage.dtype;
            t->storage_key = xstrdup(s->storage.key);
            t->storage_numel = s->storage.numel;
            t->storage_offset = val->tensor.offset;
            t->ndim = val->tensor.ndim;
            memcpy(t->shape, val->tensor.shape, sizeof t->shape);
            memcpy(t->stride, val->tensor.stride, sizeof t->stride);
        }
    }
    if (ok && out->n > 1) {  // two tensors with one name: which one is meant?
        const PickleTensor **sorted = xmalloc((size_t)out->n * sizeof *sorted);
        for (int k = 0; k < out->n; k++) sorted[k] = &out->tensors[k];
        qsort(sorted, (size_t)out->n, sizeof *sorted, compare_tensor_names);
        for (int k = 1; k < out->n && ok; k++)
            if (strcmp(sorted[k - 1]->name, sorted[k]->name) == 0) ok = fail_msg(err, errlen, "tensor '%.200s' appears twice", sorted[k]->name);
        free(sorted);
    }
    if (!ok) pickle_tensor_list_free(out);
    vm_free(&vm);
    return ok;
}

void pickle_tensor_list_free(PickleTensorList *list) {
    for (int k = 0; k < list->n; k++) {
        free(list->tensors[k].name);
        free(list->tensors[k].storage_key);
    }
    free(list->tensors);
    memset(list, 0, sizeof *list);
}

// ---- text form ----------------------------------------------------------------------------------------------------
typedef struct { char *buf; size_t cap, len; } Text;

static void text_add(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(Text *t, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf + t->len, t->len < t->cap ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (k > 0) t->len += (size_t)k;
    if (t->len >= t->cap) t->len = t->cap;  // truncated; the caller sees a full buffer
}

static void text_ints(Text *t, const int64_t *v, int n) {
    text_add(t, "(");
    for (int k = 0; k < n; k++) text_add(t, "%s%lld", k ? ", " : "", (long long)v[k]);
    text_add(t, n == 1 ? ",)" : ")");
}

// Stops as soon as the buffer is full: every call that goes on writes at least one byte, so the work is linear in
// outlen even when shared tuples nest (85 bytes of ((a, a), (a, a))... would otherwise print 2^32 leaves).
static void text_value(Text *t, const Value *v, int depth) {
    if (t->len >= t->cap) return;
    if (depth > 32) { text_add(t, "..."); return; }  // self-referencing containers
    switch (v->kind) {
    case V_NONE: text_add(t, "None"); break;
    case V_BOOL: text_add(t, v->b ? "True" : "False"); break;
    case V_INT: text_add(t, "%lld", (long long)v->i); break;
    case V_FLOAT: {  // Python's repr: the shortest text that reads back to the same double, with ".0" if integral
        char s[40];
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(s, sizeof s, "%.*g", prec, v->f);
            if (strtod(s, NULL) == v->f) break;
        }
        text_add(t, "%s%s", s, strpbrk(s, ".eni") ? "" : ".0");
        break;
    }
    case V_STR: text_add(t, "'%s'", v->str.bytes); break;
    case V_TUPLE: case V_LIST:
        text_add(t, v->kind == V_TUPLE ? "(" : "[");
        for (size_t k = 0; k < v->seq.n; k++) {
            if (k) text_add(t, ", ");
            text_value(t, v->seq.items[k], depth + 1);
        }
        text_add(t, v->kind == V_TUPLE ? (v->seq.n == 1 ? ",)" : ")") : "]");
        break;
    case V_DICT:
        text_add(t, "{");
        for (size_t k = 0; k < v->dict.n; k++) {
            if (k) text_add(t, ", ");
            text_value(t, v->dict.keys[k], depth + 1);
            text_add(t, ": ");
            text_value(t, v->dict.vals[k], depth + 1);
        }
        text_add(t, "}");
        break;
    case V_GLOBAL: text_add(t, "<global %s>", v->global.qualname); break;
    case V_STORAGE: text_add(t, "<storage %s key=%s numel=%lld>", dtype_name(v->storage.dtype), v->storage.key, (long long)v->storage.numel); break;
    case V_TENSOR:
        text_add(t, "<tensor %s storage=%s offset=%lld shape=", dtype_name(v->tensor.storage->storage.dtype),
                 v->tensor.storage->storage.key, (long long)v->tensor.offset);
        text_ints(t, v->tensor.shape, v->tensor.ndim);
        text_add(t, " stride=");
        text_ints(t, v->tensor.stride, v->tensor.ndim);
        text_add(t, ">");
        break;
    }
}

bool pickle_to_text(const uint8_t *data, size_t len, char *out, size_t outlen, char *err, size_t errlen) {
    VM vm;
    Value *result = NULL;
    bool ok = run(&vm, data, len, err, errlen, &result);
    if (outlen) out[0] = 0;
    if (ok && outlen) {
        Text t = {out, outlen, 0};
        text_value(&t, result, 0);
        if (t.len >= outlen) ok = fail_msg(err, errlen, "the text form needs more than %zu bytes", outlen);
    }
    vm_free(&vm);
    return ok;
}

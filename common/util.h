// util.h: checked allocation, file I/O, memory maps, errors and timing, shared by every program.
//
// Two kinds of failure, two exit codes (DESIGN.md "Bad input"), and one style of line for every program:
// "SEVERITY: WHERE: WHAT", where SEVERITY is "error" (the user's input or command line, exit 2) or "fatal" (the
// program or the machine, exit 1), WHERE the file (and field) or the option, WHAT what was expected:
//   input_error(file, ...)  the user's input is wrong (a corrupt zip, a bad params.json): one line naming the file,
//                           the field and what was expected, exit status 2.
//   usage_error(prog, ...)  the command line is wrong: "error: --lang: expected en or zh (see walkthrough --help)".
//   fatal(...)              the program or the machine failed (out of memory, a CUDA error): exit status 1.
// Notes that are not failures start with "note: ". (tp_ranks, kernels/engine_ranks.c, relays a rank's "error: " or
// "fatal: " line with the rank in front.)
#pragma once
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

#define EXIT_INPUT 2  // bad input: the interface says 2

// "error: FILE: message" on stderr, then exit(2). file may be NULL.
_Noreturn void input_error(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// "fatal: message" on stderr, then exit(1).
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// Usage error of a command line: "error: message (see PROG --help)", exit(2).
_Noreturn void usage_error(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// All three print ONE line: control characters in the message or the file name (a tensor name read from a file may
// hold "\n") are written as \n, \r, \t or \xNN. escape_controls() does the same into buf (n bytes, always
// NUL-terminated, cut short if it does not fit) for names printed elsewhere; returns buf.
char *escape_controls(const char *s, char *buf, size_t n);
// How the non-exiting readers (the `_try` functions) fail: the message goes into err (errlen bytes, always
// NUL-terminated) and false comes back, so that each check reads `if (bad) return fail_msg(err, errlen, ...);`.
bool fail_msg(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

// Checked allocation: exits with a message naming the call site's size on failure.
#define xmalloc(n) xmalloc_at((n), __FILE__, __LINE__)
#define xcalloc(n, s) xcalloc_at((n), (s), __FILE__, __LINE__)
#define xrealloc(p, n) xrealloc_at((p), (n), __FILE__, __LINE__)
void *xmalloc_at(size_t n, const char *file, int line);
void *xcalloc_at(size_t n, size_t size, const char *file, int line);
void *xrealloc_at(void *p, size_t n, const char *file, int line);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Files. xfopen exits 2 ("error: PATH: cannot open: reason") when a file to read is missing.
FILE *xfopen(const char *path, const char *mode);
void xfwrite(const void *p, size_t n, FILE *f, const char *path);
void xfclose(FILE *f, const char *path);
// Reads a whole file into a malloc'd, NUL-terminated buffer; *len gets the byte count (not counting the NUL).
char *read_whole_file(const char *path, size_t *len);
bool file_exists(const char *path);
bool dir_exists(const char *path);
void mkdir_p(const char *path);  // like mkdir -p; exits 1 on failure
char *path_join(const char *a, const char *b);  // malloc'd "a/b"
// The repository root: two folders above the executable (build/steps/NN_name, build/bin/generate); malloc'd.
char *repo_root(void);
// The model `make demo` prepares, the default of the chapters and of generate: the small trained model (committed
// under models/, unpacked by `make models`), else the synthetic tiny model `make models` makes, looked for under the
// repository root, then (a build in build/asan/) under the current directory; malloc'd.
char *default_model_dir(void);
// "s" unless n is 1: printf("%d token%s", n, plural(n)).
static inline const char *plural(long long n) { return n == 1 ? "" : "s"; }

// A read-only memory map of a whole file, used in place (the checkpoint is never copied into malloc'd memory).
typedef struct {
    const uint8_t *data;
    size_t size;
    char *path;
} MappedFile;
void mapped_file_open(MappedFile *m, const char *path);  // exits 2 if the file cannot be opened or mapped
void mapped_file_close(MappedFile *m);

// Writing a file so that a reader never sees it half done: write to PATH.partial, then rename on commit.
typedef struct {
    FILE *f;
    char *path, *tmp_path;
} AtomicFile;
void atomic_open(AtomicFile *a, const char *path);
void atomic_commit(AtomicFile *a);  // fclose + rename
void atomic_abort(AtomicFile *a);   // fclose + unlink

// A growable byte string: data is NUL-terminated after the first append (bytes may include NULs; len counts them).
typedef struct {
    char *data;
    size_t len, cap;
} StrBuf;
void strbuf_add(StrBuf *b, const void *bytes, size_t n);
void strbuf_addf(StrBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *strbuf_take(StrBuf *b);  // the string (never NULL; "" when empty), ownership to the caller; b is emptied

// base64 of n bytes (RFC 4648, with padding), malloc'd and NUL-terminated: how notebooks and data: URIs carry bytes.
char *base64_encode(const unsigned char *data, size_t n);

// FNV-1a 64 of n bytes, continuing from h (start with FNV1A64_INIT): checksums of tensors and of a model's identity.
#define FNV1A64_INIT 0xcbf29ce484222325ull
static inline uint64_t fnv1a64(uint64_t h, const void *bytes, size_t n) {
    const unsigned char *b = (const unsigned char *)bytes;  // (the cast: kernels/*.cu include this header as C++)
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

double now_seconds(void);  // monotonic clock
size_t host_rss_bytes(void);  // resident set of this process (VmRSS), 0 if unknown
size_t proc_status_bytes(const char *key);  // a "Key: N kB" field of /proc/self/status (e.g. "RssAnon"), 0 if unknown

// util.c: see util.h.
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// A message is one line whatever the input held: names read from a file (a tensor called "a\nb", a zip entry with
// an escape sequence) have their control characters written as \n, \r, \t or \xNN.
static size_t escape_char(unsigned char c, char out[5]) {
    if (c >= 0x20 && c != 0x7f) return out[0] = (char)c, 1;
    if (c == '\n' || c == '\r' || c == '\t') return out[0] = '\\', out[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't', 2;
    return (size_t)snprintf(out, 5, "\\x%02x", c);
}
static void put_escaped(FILE *f, const char *s) {
    char e[5];
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) fwrite(e, 1, escape_char(*p, e), f);
}
static void vreport(const char *prefix, const char *file, const char *fmt, va_list ap, const char *suffix) {
    fflush(stdout);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0) msg = NULL;
    fputs(prefix, stderr);
    if (file) {
        put_escaped(stderr, file);
        fputs(": ", stderr);
    }
    put_escaped(stderr, msg ? msg : fmt);
    fputs(suffix, stderr);
    fputc('\n', stderr);
    free(msg);
}

void input_error(const char *file, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("error: ", file, fmt, ap, "");
    va_end(ap);
    exit(EXIT_INPUT);
}

void fatal(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport("fatal: ", NULL, fmt, ap, "");
    va_end(ap);
    exit(1);
}

void usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *suffix = xasprintf(" (see %s --help)", prog);
    vreport("error: ", NULL, fmt, ap, suffix);
    va_end(ap);
    exit(EXIT_INPUT);
}

char *escape_controls(const char *s, char *buf, size_t n) {
    size_t k = 0;
    char e[5];
    for (const unsigned char *p = (const unsigned char *)s; n && *p; p++) {
        size_t m = escape_char(*p, e);
        if (k + m + 1 > n) break;
        memcpy(buf + k, e, m);
        k += m;
    }
    if (n) buf[k] = 0;
    return buf;
}

bool fail_msg(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

void *xmalloc_at(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) fatal("%s:%d: out of memory allocating %zu bytes", file, line, n);
    return p;
}
void *xcalloc_at(size_t n, size_t size, const char *file, int line) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) fatal("%s:%d: out of memory allocating %zu x %zu bytes", file, line, n, size);
    return p;
}
void *xrealloc_at(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) fatal("%s:%d: out of memory reallocating to %zu bytes", file, line, n);
    return q;
}
char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}
char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) fatal("out of memory in xasprintf");
    va_end(ap);
    return s;
}

FILE *xfopen(const char *path, const char *mode) {
    FILE *f = fopen(path, mode);
    if (!f) {
        if (mode[0] == 'r') input_error(path, "cannot open: %s", strerror(errno));
        fatal("%s: cannot open for writing: %s", path, strerror(errno));
    }
    return f;
}
void xfwrite(const void *p, size_t n, FILE *f, const char *path) {
    if (n && fwrite(p, 1, n, f) != n) fatal("%s: write failed: %s", path, strerror(errno));
}
void xfclose(FILE *f, const char *path) {
    if (fclose(f) != 0) fatal("%s: close failed: %s", path, strerror(errno));
}

char *read_whole_file(const char *path, size_t *len) {
    FILE *f = xfopen(path, "rb");
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) input_error(path, "read failed: %s", strerror(errno));
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
bool dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}
void mkdir_p(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) fatal("%s: cannot create directory: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST) fatal("%s: cannot create directory: %s", p, strerror(errno));
    free(p);
}
char *path_join(const char *a, const char *b) {
    size_t la = strlen(a);
    return xasprintf("%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
}

char *repo_root(void) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return xstrdup(".");
    exe[n] = 0;
    char *root = xstrdup(dirname(exe));  // build/steps
    for (int up = 0; up < 2; up++) {     // -> build -> root
        char *slash = strrchr(root, '/');
        if (slash && slash != root) *slash = 0;
    }
    return root;
}

char *default_model_dir(void) {
    char *root = repo_root();
    const char *candidates[] = {"build/models/llama3-tiny-trained", "build/models/tiny"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++) {
        char *p = path_join(root, candidates[i]);
        char *params = path_join(p, "params.json");
        bool ok = file_exists(params);
        free(params);
        if (ok) {
            free(root);
            return p;
        }
        free(p);
    }
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)  // a build in build/asan/: from the cwd
        if (dir_exists(candidates[i])) {
            free(root);
            return xstrdup(candidates[i]);
        }
    char *p = path_join(root, "build/models/tiny");
    free(root);
    return p;
}

void mapped_file_open(MappedFile *m, const char *path) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) input_error(path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) input_error(path, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode)) input_error(path, "not a regular file");
    m->size = (size_t)st.st_size;
    m->path = xstrdup(path);
    if (m->size == 0) {
        m->data = NULL;
        close(fd);
        return;
    }
    void *p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) input_error(path, "cannot mmap %zu bytes: %s", m->size, strerror(errno));
    m->data = p;
}
void mapped_file_close(MappedFile *m) {
    if (m->data) munmap((void *)m->data, m->size);
    free(m->path);
    memset(m, 0, sizeof *m);
}

void atomic_open(AtomicFile *a, const char *path) {
    a->path = xstrdup(path);
    a->tmp_path = xasprintf("%s.partial", path);
    a->f = fopen(a->tmp_path, "wb");
    if (!a->f) fatal("%s: cannot open for writing: %s", a->tmp_path, strerror(errno));
}
void atomic_commit(AtomicFile *a) {
    if (fclose(a->f) != 0) fatal("%s: close failed: %s", a->tmp_path, strerror(errno));
    if (rename(a->tmp_path, a->path) != 0) fatal("%s: rename failed: %s", a->path, strerror(errno));
    free(a->path);
    free(a->tmp_path);
    a->f = NULL;
}
void atomic_abort(AtomicFile *a) {
    if (a->f) fclose(a->f);
    unlink(a->tmp_path);
    free(a->path);
    free(a->tmp_path);
    a->f = NULL;
}

void strbuf_add(StrBuf *b, const void *bytes, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + n + 1 > cap) cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = 0;
}
void strbuf_addf(StrBuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) fatal("out of memory in strbuf_addf");
    strbuf_add(b, s, (size_t)n);
    free(s);
}
char *strbuf_take(StrBuf *b) {
    char *s = b->data ? b->data : xstrdup("");
    b->data = NULL, b->len = b->cap = 0;
    return s;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// A "Key:   N kB" line of /proc/self/status in bytes, 0 if unknown.
size_t proc_status_bytes(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':' && sscanf(line + n + 1, " %zu kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

size_t host_rss_bytes(void) { return proc_status_bytes("VmRSS"); }

// ---- base64 (RFC 4648, with padding) ---------------------------------------------------------------------------------

char *base64_encode(const unsigned char *data, size_t n) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {  // 3 bytes -> 4 characters of 6 bits
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        *o++ = alphabet[v >> 18 & 63], *o++ = alphabet[v >> 12 & 63], *o++ = alphabet[v >> 6 & 63], *o++ = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        *o++ = alphabet[v >> 18 & 63], *o++ = alphabet[v >> 12 & 63], *o++ = '=', *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        *o++ = alphabet[v >> 18 & 63], *o++ = alphabet[v >> 12 & 63], *o++ = alphabet[v >> 6 & 63], *o++ = '=';
    }
    *o = 0;
    return out;
}

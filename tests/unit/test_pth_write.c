// test_pth_write.c: checks the structure of the files pth_writer writes, with a small zip parser of its own (not the
// project's reader): every data offset a multiple of 64, the local headers as torch writes them (flags 0x0808, crc and
// sizes 0, the "FB" padding record), data descriptors, the central directory, the zip64 records (always present;
// with every value in zip64 extras when the threshold is lowered), CRC-32 of every entry, the entry names and order,
// the exact pickle bytes of a tensor (formats.md §2.4) and the errors for too many or too few bytes. Also the other
// writer of a Meta checkpoint directory, config_write_params_json: its exact text and a round trip through the reader.
//
//   build/tests/test_pth_write                        runs the checks in a temporary folder
//   build/tests/test_pth_write --write-fixtures DIR   writes the files tests/reference/check_torch_load.py loads with
//                                                     torch (mixed.pth, many.pth, z64.pth, and under nbo/ without
//                                                     the byteorder entry: mixed.pth, many.pth, thousand.pth, one.pth)
//
// Fixture values: element k of tensor t is ((k*37) % 101 - 50) / 4 + t (exact in bf16, f16 and f32; integer
// tensors hold (k*37) % 101 - 50 + t). The Python check recomputes the same formula.
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "config.h"
#include "formats/pth_write.h"
#include "tensor.h"
#include "util.h"

// ---- fixtures -------------------------------------------------------------------------------------------------------

static double fixture_value(int tensor, int64_t k) { return (double)((k * 37) % 101 - 50) / 4.0 + tensor; }

static void fixture_bytes(const PthTensorSpec *s, int tensor, uint8_t *out) {
    int64_t numel = 1;
    for (int d = 0; d < s->ndim; d++) numel *= s->shape[d];
    for (int64_t k = 0; k < numel; k++) {
        double v = fixture_value(tensor, k);
        switch (s->dtype) {
        case DT_F32: { float f = (float)v; memcpy(out + 4 * k, &f, 4); break; }
        case DT_BF16: { uint16_t h = f32_to_bf16((float)v); memcpy(out + 2 * k, &h, 2); break; }
        case DT_F16: { uint16_t h = f32_to_f16((float)v); memcpy(out + 2 * k, &h, 2); break; }
        case DT_I64: { int64_t i = (k * 37) % 101 - 50 + tensor; memcpy(out + 8 * k, &i, 8); break; }
        default: fatal("fixture: dtype %s not used", dtype_name(s->dtype));
        }
    }
}

static size_t spec_bytes(const PthTensorSpec *s) {
    size_t n = dtype_size(s->dtype);
    for (int d = 0; d < s->ndim; d++) n *= (size_t)s->shape[d];
    return n;
}

// The "mixed" set: bf16/f16/f32/i64, 0-d to 4-D, an empty tensor, and dims that need BININT2 and BININT.
static const PthTensorSpec MIXED[] = {
    {"tok_embeddings.weight", DT_BF16, 2, {3, 5}},
    {"layers.0.attention.wq.weight", DT_F16, 3, {2, 3, 4}},
    {"norm.weight", DT_F32, 1, {7}},
    {"scalar", DT_F32, 0, {0}},
    {"four_d", DT_BF16, 4, {2, 1, 3, 2}},
    {"empty", DT_F32, 3, {2, 0, 3}},
    {"ids", DT_I64, 1, {4}},
    {"wide", DT_BF16, 2, {2, 70000}},
};
#define N_MIXED ((int)(sizeof MIXED / sizeof MIXED[0]))
#define N_MANY 1001  // two SETITEMS batches (1000 + a last single SETITEM) and memo indices past 255

static PthTensorSpec *many_specs(void) {
    static PthTensorSpec specs[N_MANY];
    static char names[N_MANY][32];
    for (int i = 0; i < N_MANY; i++) {
        snprintf(names[i], sizeof names[i], "layers.%d.w", i);
        specs[i] = (PthTensorSpec){names[i], i % 3 == 0 ? DT_F32 : i % 3 == 1 ? DT_BF16 : DT_F16, 1, {i % 5 + 1}};
    }
    return specs;
}

// Writes the tensors, appending `chunk` bytes at a time across tensor boundaries (0: one append per tensor).
static void write_set(const char *path, const PthTensorSpec *specs, int n, const PthWriterOptions *opt, size_t chunk) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += spec_bytes(&specs[i]);
    uint8_t *all = xmalloc(total);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        fixture_bytes(&specs[i], i, all + pos);
        pos += spec_bytes(&specs[i]);
    }
    PthWriter *w = pth_writer_open_opts(path, specs, n, opt);
    if (chunk == 0) {
        pos = 0;
        for (int i = 0; i < n; i++) {
            pth_writer_append(w, all + pos, spec_bytes(&specs[i]));
            pos += spec_bytes(&specs[i]);
        }
    } else {
        for (pos = 0; pos < total; pos += chunk) pth_writer_append(w, all + pos, total - pos < chunk ? total - pos : chunk);
    }
    pth_writer_close(w);
    free(all);
}

static void write_fixtures(const char *dir) {
    mkdir_p(dir);
    char *nbo = path_join(dir, "nbo");
    mkdir_p(nbo);
    PthWriterOptions plain = {0}, no_byteorder = {.no_byteorder = true}, low_zip64 = {.zip64_threshold = 64};
    char *p;
    write_set(p = path_join(dir, "mixed.pth"), MIXED, N_MIXED, &plain, 7), free(p);
    write_set(p = path_join(dir, "many.pth"), many_specs(), N_MANY, &plain, 0), free(p);
    write_set(p = path_join(dir, "z64.pth"), MIXED, N_MIXED, &low_zip64, 4096), free(p);
    write_set(p = path_join(nbo, "mixed.pth"), MIXED, N_MIXED, &no_byteorder, 0), free(p);
    write_set(p = path_join(nbo, "many.pth"), many_specs(), N_MANY, &no_byteorder, 0), free(p);
    write_set(p = path_join(nbo, "thousand.pth"), many_specs(), 1000, &no_byteorder, 0), free(p);
    write_set(p = path_join(nbo, "one.pth"), many_specs(), 1, &no_byteorder, 0), free(p);
    free(nbo);
}

// ---- an independent little zip parser -------------------------------------------------------------------------------

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

typedef struct {
    char name[128];
    uint64_t lho, data_offset, size;
    uint32_t crc;
    bool cd_zip64_size, cd_zip64_offset;
} Entry;

typedef struct {
    uint8_t *bytes;
    size_t size;
    int n;
    Entry e[N_MANY + 8];
    uint32_t eocd_cd_offset;
} Zip;

// Parses and checks everything that does not depend on the contents; each finding is one CHECK.
static void parse_zip(Zip *z, const char *path, uint64_t zip64_threshold) {
    z->bytes = (uint8_t *)read_whole_file(path, &z->size);
    const uint8_t *b = z->bytes;
    size_t size = z->size;
    CHECK(size >= 22 + 20 + 56, "%s too small", path);
    const uint8_t *eocd = b + size - 22;
    CHECK(rd32(eocd) == 0x06054b50, "%s: no EOCD at the end", path);
    const uint8_t *loc = eocd - 20;
    CHECK(rd32(loc) == 0x07064b50, "%s: no zip64 locator before the EOCD", path);
    uint64_t z64_off = rd64(loc + 8);
    CHECK(rd32(loc + 16) == 1, "%s: locator must say 1 disk", path);
    CHECK(z64_off == size - 22 - 20 - 56, "%s: zip64 EOCD at %llu", path, (unsigned long long)z64_off);
    const uint8_t *z64 = b + z64_off;
    CHECK(rd32(z64) == 0x06064b50, "%s: zip64 EOCD signature", path);
    CHECK(rd64(z64 + 4) == 44, "%s: zip64 EOCD record size", path);
    uint64_t n = rd64(z64 + 24), cd_size = rd64(z64 + 40), cd_off = rd64(z64 + 48);
    CHECK(rd64(z64 + 32) == n, "%s: entries on this disk vs total", path);
    CHECK(cd_off + cd_size == z64_off, "central directory must end where the zip64 EOCD begins");
    CHECK(rd16(eocd + 8) == (n < 0xFFFF ? n : 0xFFFF) && rd16(eocd + 10) == rd16(eocd + 8), "%s: EOCD entry counts", path);
    z->eocd_cd_offset = rd32(eocd + 16);
    CHECK(z->eocd_cd_offset == (cd_off >= zip64_threshold ? 0xFFFFFFFFu : (uint32_t)cd_off), "%s: EOCD cd offset %u", path, z->eocd_cd_offset);
    CHECK(n <= N_MANY + 8, "%s: %llu entries", path, (unsigned long long)n);
    z->n = (int)n;

    const uint8_t *c = b + cd_off;
    int bad_cd = 0, bad_local = 0, bad_align = 0, bad_crc = 0, bad_desc = 0;
    uint64_t expected_next_lho = 0;
    for (int i = 0; i < z->n; i++) {
        Entry *e = &z->e[i];
        if (rd32(c) != 0x02014b50 || rd16(c + 10) != 0 || rd16(c + 32) != 0) bad_cd++;
        uint32_t crc = rd32(c + 16), csize = rd32(c + 20), usize = rd32(c + 24), lho32 = rd32(c + 42);
        uint16_t name_len = rd16(c + 28), extra_len = rd16(c + 30);
        snprintf(e->name, sizeof e->name, "%.*s", (int)name_len, (const char *)c + 46);
        e->crc = crc;
        e->size = usize;
        e->lho = lho32;
        // zip64 extra: only the fields whose 32-bit value is 0xFFFFFFFF, in the order usize, csize, lho
        const uint8_t *x = c + 46 + name_len;
        e->cd_zip64_size = usize == 0xFFFFFFFFu;
        e->cd_zip64_offset = lho32 == 0xFFFFFFFFu;
        if (e->cd_zip64_size || e->cd_zip64_offset) {
            int want = (e->cd_zip64_size ? 16 : 0) + (e->cd_zip64_offset ? 8 : 0);
            if (extra_len != want + 4 || rd16(x) != 0x0001 || rd16(x + 2) != want) bad_cd++;
            const uint8_t *f = x + 4;
            if (e->cd_zip64_size) {
                e->size = rd64(f);
                if (rd64(f + 8) != e->size || csize != 0xFFFFFFFFu) bad_cd++;
                f += 16;
            }
            if (e->cd_zip64_offset) e->lho = rd64(f);
        } else if (extra_len != 0 || csize != usize) bad_cd++;
        // flags: UTF-8 names, and a data descriptor unless the entry is empty (as miniz writes them)
        uint16_t flags = e->size > 0 ? 0x0808 : 0x0800;
        if (rd16(c + 8) != flags) bad_cd++;
        // the threshold decides which values are in the extra
        if (e->cd_zip64_size != (e->size >= zip64_threshold) || e->cd_zip64_offset != (e->lho >= zip64_threshold)) bad_cd++;
        c += 46 + name_len + extra_len;

        // local header: sizes and crc 0, same name, optional zip64 extra, then the FB padding record
        const uint8_t *l = b + e->lho;
        if (e->lho != expected_next_lho) bad_local++;
        if (rd32(l) != 0x04034b50 || rd16(l + 4) != 0 || rd16(l + 6) != flags || rd16(l + 8) != 0 || rd32(l + 14) != 0 ||
            rd32(l + 18) != 0 || rd32(l + 22) != 0 || rd16(l + 26) != name_len || memcmp(l + 30, e->name, name_len) != 0)
            bad_local++;
        uint16_t lextra = rd16(l + 28);
        const uint8_t *lx = l + 30 + name_len;
        bool local_zip64 = e->size >= zip64_threshold || e->lho >= zip64_threshold;
        if (local_zip64) {
            if (rd16(lx) != 0x0001) bad_local++;
            lx += 4 + rd16(lx + 2);
        }
        if (rd16(lx) != 0x4246 || (size_t)(lx + 4 + rd16(lx + 2) - (l + 30 + name_len)) != lextra) bad_local++;
        for (int k = 0; k < rd16(lx + 2); k++)
            if (lx[4 + k] != 'Z') { bad_local++; break; }
        e->data_offset = e->lho + 30 + name_len + lextra;
        if (e->data_offset % 64 != 0) bad_align++;
        if (e->data_offset + e->size > cd_off) { bad_local++; continue; }
        if ((uint32_t)crc32_z(0, b + e->data_offset, e->size) != crc) bad_crc++;
        if (e->size == 0) {  // no data descriptor
            expected_next_lho = e->data_offset;
            continue;
        }
        // data descriptor: u64 sizes exactly when the local header had a zip64 extra
        const uint8_t *d = b + e->data_offset + e->size;
        size_t dlen = local_zip64 ? 24 : 16;
        if (rd32(d) != 0x08074b50 || rd32(d + 4) != crc) bad_desc++;
        if (local_zip64 ? (rd64(d + 8) != e->size || rd64(d + 16) != e->size)
                        : (rd32(d + 8) != e->size || rd32(d + 12) != e->size))
            bad_desc++;
        expected_next_lho = e->data_offset + e->size + dlen;
    }
    CHECK(expected_next_lho == cd_off, "%s: entries must tile the file up to the central directory", path);
    CHECK((size_t)(c - (b + cd_off)) == cd_size, "%s: central directory size", path);
    CHECK(bad_cd == 0, "%s: %d central directory problems", path, bad_cd);
    CHECK(bad_local == 0, "%s: %d local header problems", path, bad_local);
    CHECK(bad_align == 0, "%s: %d data offsets not multiples of 64", path, bad_align);
    CHECK(bad_crc == 0, "%s: %d CRC mismatches", path, bad_crc);
    CHECK(bad_desc == 0, "%s: %d bad data descriptors", path, bad_desc);
}

static const Entry *find_entry(const Zip *z, const char *name) {
    for (int i = 0; i < z->n; i++)
        if (strcmp(z->e[i].name, name) == 0) return &z->e[i];
    return NULL;
}

// Entry names and order (data.pkl, [byteorder], data/0.., version) and the tensor bytes.
static void check_entries(const Zip *z, const char *archive, const PthTensorSpec *specs, int n, bool byteorder) {
    char want[160];
    int i = 0;
    snprintf(want, sizeof want, "%s/data.pkl", archive);
    CHECK(z->n == n + 2 + byteorder, "%d entries", z->n);
    if (z->n != n + 2 + byteorder) return;
    CHECK_EQ_STR(z->e[i++].name, want);
    if (byteorder) {
        snprintf(want, sizeof want, "%s/byteorder", archive);
        CHECK_EQ_STR(z->e[i].name, want);
        CHECK(z->e[i].size == 6 && memcmp(z->bytes + z->e[i].data_offset, "little", 6) == 0, "byteorder must be \"little\"");
        i++;
    }
    int bad_name = 0, bad_bytes = 0;
    for (int t = 0; t < n; t++, i++) {
        snprintf(want, sizeof want, "%s/data/%d", archive, t);
        if (strcmp(z->e[i].name, want) != 0) bad_name++;
        size_t nb = spec_bytes(&specs[t]);
        uint8_t *expect = xmalloc(nb);
        fixture_bytes(&specs[t], t, expect);
        if (z->e[i].size != nb || memcmp(z->bytes + z->e[i].data_offset, expect, nb) != 0) bad_bytes++;
        free(expect);
    }
    CHECK(bad_name == 0, "%d data entries misnamed", bad_name);
    CHECK(bad_bytes == 0, "%d tensors with wrong bytes", bad_bytes);
    snprintf(want, sizeof want, "%s/version", archive);
    CHECK_EQ_STR(z->e[i].name, want);
    CHECK(z->e[i].size == 2 && memcmp(z->bytes + z->e[i].data_offset, "3\n", 2) == 0, "version must be \"3\\n\"");
}

// The pickle of MIXED up to the end of its first tensor, byte by byte as torch 1.13 writes it (formats.md §2.4).
static void check_pickle_prefix(const Zip *z, const char *archive) {
    static const uint8_t golden[] = {
        0x80, 0x02, '}', 'q', 0x00, '(',                                                  // PROTO 2, {}, memo 0, MARK
        'X', 21, 0, 0, 0, 't', 'o', 'k', '_', 'e', 'm', 'b', 'e', 'd', 'd', 'i', 'n', 'g', 's', '.', 'w', 'e', 'i', 'g',
        'h', 't', 'q', 0x01,                                                             // key
        'c', 't', 'o', 'r', 'c', 'h', '.', '_', 'u', 't', 'i', 'l', 's', '\n', '_', 'r', 'e', 'b', 'u', 'i', 'l', 'd',
        '_', 't', 'e', 'n', 's', 'o', 'r', '_', 'v', '2', '\n', 'q', 0x02,               // callable
        '(', '(', 'X', 7, 0, 0, 0, 's', 't', 'o', 'r', 'a', 'g', 'e', 'q', 0x03,
        'c', 't', 'o', 'r', 'c', 'h', '\n', 'B', 'F', 'l', 'o', 'a', 't', '1', '6', 'S', 't', 'o', 'r', 'a', 'g', 'e',
        '\n', 'q', 0x04, 'X', 1, 0, 0, 0, '0', 'q', 0x05, 'X', 3, 0, 0, 0, 'c', 'p', 'u', 'q', 0x06,
        'K', 15, 't', 'q', 0x07, 'Q',                                                    // numel 15, pid, BINPERSID
        'K', 0, 'K', 3, 'K', 5, 0x86, 'q', 0x08, 'K', 5, 'K', 1, 0x86, 'q', 0x09, 0x89,  // offset, size, stride, False
        'c', 'c', 'o', 'l', 'l', 'e', 'c', 't', 'i', 'o', 'n', 's', '\n', 'O', 'r', 'd', 'e', 'r', 'e', 'd', 'D', 'i',
        'c', 't', '\n', 'q', 0x0A, ')', 'R', 'q', 0x0B,                                  // OrderedDict()
        't', 'q', 0x0C, 'R', 'q', 0x0D,                                                  // args, REDUCE
        // second tensor: fetched callable, "storage" and (later) "cpu" from the memo
        'X', 28, 0, 0, 0, 'l', 'a', 'y', 'e', 'r', 's', '.', '0', '.', 'a', 't', 't', 'e', 'n', 't', 'i', 'o', 'n', '.',
        'w', 'q', '.', 'w', 'e', 'i', 'g', 'h', 't', 'q', 0x0E, 'h', 0x02, '(', '(', 'h', 0x03,
    };
    char name[160];
    snprintf(name, sizeof name, "%s/data.pkl", archive);
    const Entry *e = find_entry(z, name);
    CHECK(e != NULL, "%s missing", name);
    if (!e) return;
    const uint8_t *pkl = z->bytes + e->data_offset;
    CHECK(e->size > sizeof golden && memcmp(pkl, golden, sizeof golden) == 0, "data.pkl differs from torch's bytes");
    CHECK(pkl[e->size - 2] == 'u' && pkl[e->size - 1] == '.', "ends with SETITEMS STOP");
    // "wide" [2, 70000]: size (BININT1 2, BININT 70000), stride (BININT 70000, BININT1 1)
    static const uint8_t wide_dims[] = {'K', 2, 'J', 0x70, 0x11, 0x01, 0x00, 0x86};
    static const uint8_t wide_strides[] = {'J', 0x70, 0x11, 0x01, 0x00, 'K', 1, 0x86};
    CHECK(memmem(pkl, e->size, wide_dims, sizeof wide_dims) != NULL, "size (2, 70000) not found");
    CHECK(memmem(pkl, e->size, wide_strides, sizeof wide_strides) != NULL, "stride (70000, 1) not found");
    // "empty" [2, 0, 3]: torch's strides (3, 3, 1) and numel 0
    static const uint8_t empty_strides[] = {'K', 3, 'K', 3, 'K', 1, 0x87};
    CHECK(memmem(pkl, e->size, empty_strides, sizeof empty_strides) != NULL, "stride (3, 3, 1) of the empty tensor not found");
    // "four_d": MARK, 4 ints, TUPLE for the size (2, 1, 3, 2)
    static const uint8_t four_d[] = {'(', 'K', 2, 'K', 1, 'K', 3, 'K', 2, 't'};
    CHECK(memmem(pkl, e->size, four_d, sizeof four_d) != NULL, "size (2, 1, 3, 2) as MARK..TUPLE not found");
}

// Runs f in a child process and returns its exit status (-1 if it did not exit normally).
static int exit_status_of(void (*f)(const char *), const char *arg) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        f(arg);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
static const PthTensorSpec ONE[] = {{"w", DT_F32, 1, {4}}};
static void too_many_bytes(const char *path) {
    float v[5] = {0};
    PthWriter *w = pth_writer_open(path, ONE, 1);
    pth_writer_append(w, v, sizeof v);
    pth_writer_close(w);
}
static void too_few_bytes(const char *path) {
    float v[3] = {0};
    PthWriter *w = pth_writer_open(path, ONE, 1);
    pth_writer_append(w, v, sizeof v);
    pth_writer_close(w);
}

// params.json: Meta's key names and order, the shortest form of each real, optional keys only when set.
static void check_params_json(const char *dir) {
    char *path = path_join(dir, "params.json");
    Config c = {.dim = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 8, .vocab_size = 128256, .multiple_of = 1024,
                .has_ffn_dim_multiplier = true, .ffn_dim_multiplier = 1.3, .norm_eps = 1e-5, .rope_theta = 500000.0};
    config_write_params_json(&c, path);
    char *text = read_whole_file(path, NULL);
    CHECK_EQ_STR(text, "{\"dim\": 4096, \"n_layers\": 32, \"n_heads\": 32, \"n_kv_heads\": 8, \"vocab_size\": 128256, "
                       "\"multiple_of\": 1024, \"ffn_dim_multiplier\": 1.3, \"norm_eps\": 1e-5, \"rope_theta\": 500000.0}\n");
    free(text);
    Config back;
    config_from_params_json(&back, path);
    CHECK(back.dim == 4096 && back.n_kv_heads == 8 && back.has_ffn_dim_multiplier && back.ffn_dim_multiplier == 1.3 &&
              back.norm_eps == 1e-5 && back.rope_theta == 500000.0 && !back.use_scaled_rope && back.ffn_hidden == 14336,
          "8B params.json read back");

    // Llama-3.1 style: use_scaled_rope; no multiplier; reals that need more digits
    Config d = {.dim = 512, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .vocab_size = 1000, .multiple_of = 256,
                .norm_eps = 1e-6, .rope_theta = 123456.789, .use_scaled_rope = true};
    config_write_params_json(&d, path);
    text = read_whole_file(path, NULL);
    CHECK(strstr(text, "ffn_dim_multiplier") == NULL, "no ffn_dim_multiplier key when the config has none: %s", text);
    CHECK(strstr(text, "\"rope_theta\": 123456.789, \"use_scaled_rope\": true}") != NULL, "%s", text);
    free(text);
    config_from_params_json(&back, path);
    CHECK(back.use_scaled_rope && back.norm_eps == 1e-6 && back.rope_theta == 123456.789 && !back.has_ffn_dim_multiplier,
          "3.1-style params.json read back");
    free(path);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--write-fixtures") == 0) {
        write_fixtures(argv[2]);
        return 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--write-fixtures DIR]\n", argv[0]);
        return 2;
    }
    char dir[] = "/tmp/test_pth_write.XXXXXX";
    if (!mkdtemp(dir)) fatal("mkdtemp failed");
    write_fixtures(dir);
    char path[256];

    {  // archive names as torch's basename(): last extension dropped, folders dropped
        char *a = pth_archive_name("some/dir/consolidated.00.pth");
        CHECK_EQ_STR(a, "consolidated.00");
        free(a);
        a = pth_archive_name("model");
        CHECK_EQ_STR(a, "model");
        free(a);
        a = pth_archive_name("x/.pth");
        CHECK_EQ_STR(a, "archive");
        free(a);
    }
    static Zip z;  // large (one Entry per tensor of the 1001-tensor file)
    {
        snprintf(path, sizeof path, "%s/mixed.pth", dir);
        parse_zip(&z, path, 0xFFFFFFFFull);
        check_entries(&z, "mixed", MIXED, N_MIXED, true);
        check_pickle_prefix(&z, "mixed");
        CHECK(z.e[0].data_offset == 64, "data.pkl's data starts at 64 as in torch's files");
        CHECK(!z.e[0].cd_zip64_offset && !z.e[0].cd_zip64_size, "no zip64 extras in a small file");
        free(z.bytes);
    }
    {
        snprintf(path, sizeof path, "%s/nbo/mixed.pth", dir);
        parse_zip(&z, path, 0xFFFFFFFFull);
        check_entries(&z, "mixed", MIXED, N_MIXED, false);
        free(z.bytes);
    }
    {  // every offset and size >= 64 in zip64 extras, the EOCD's cd offset 0xFFFFFFFF
        snprintf(path, sizeof path, "%s/z64.pth", dir);
        parse_zip(&z, path, 64);
        check_entries(&z, "z64", MIXED, N_MIXED, true);
        int with_offset_extra = 0, with_size_extra = 0;
        for (int i = 0; i < z.n; i++) with_offset_extra += z.e[i].cd_zip64_offset, with_size_extra += z.e[i].cd_zip64_size;
        CHECK_EQ_INT(with_offset_extra, z.n - 1);  // all but data.pkl at offset 0
        CHECK_EQ_INT(with_size_extra, 2);  // data.pkl and "wide" are the entries of 64 bytes or more
        CHECK(z.eocd_cd_offset == 0xFFFFFFFFu, "EOCD cd offset must be 0xFFFFFFFF past the threshold");
        free(z.bytes);
    }
    {  // 1001 tensors: LONG_BINPUT/LONG_BINGET, a batch of 1000 items and a batch of 1 (both MARK ... SETITEMS)
        snprintf(path, sizeof path, "%s/many.pth", dir);
        parse_zip(&z, path, 0xFFFFFFFFull);
        check_entries(&z, "many", many_specs(), N_MANY, true);
        const Entry *e = &z.e[0];
        const uint8_t *pkl = z.bytes + e->data_offset;
        CHECK(pkl[e->size - 2] == 'u' && pkl[e->size - 1] == '.', "ends with SETITEMS STOP");
        static const uint8_t long_binput_256[] = {'r', 0x00, 0x01, 0x00, 0x00};
        CHECK(memmem(pkl, e->size, long_binput_256, sizeof long_binput_256) != NULL, "LONG_BINPUT 256");
        static const uint8_t long_binget_2[] = {'h', 0x02};  // the callable, fetched by every later tensor
        CHECK(memmem(pkl + e->size / 2, e->size / 2, long_binget_2, sizeof long_binget_2) != NULL, "BINGET 2 late");
        int batch_breaks = 0;  // SETITEMS then MARK then a key: where the first batch of 1000 ends
        for (size_t k = 0; k + 2 < e->size; k++)
            if (pkl[k] == 'u' && pkl[k + 1] == '(' && pkl[k + 2] == 'X') batch_breaks++;
        CHECK_EQ_INT(batch_breaks, 1);
        free(z.bytes);
    }
    {  // exactly 1000 tensors: a full batch is followed by an empty one, as Python's C pickler writes it
        snprintf(path, sizeof path, "%s/nbo/thousand.pth", dir);
        parse_zip(&z, path, 0xFFFFFFFFull);
        const uint8_t *pkl = z.bytes + z.e[0].data_offset;
        CHECK(z.e[0].size > 4 && memcmp(pkl + z.e[0].size - 4, "u(u.", 4) == 0, "1000 items end in SETITEMS MARK SETITEMS STOP");
        free(z.bytes);
    }
    {  // one tensor: SETITEM, no MARK
        snprintf(path, sizeof path, "%s/nbo/one.pth", dir);
        parse_zip(&z, path, 0xFFFFFFFFull);
        const uint8_t *pkl = z.bytes + z.e[0].data_offset;
        CHECK(z.e[0].size > 6 && pkl[5] == 'X' && memcmp(pkl + z.e[0].size - 2, "s.", 2) == 0, "one item: no MARK, SETITEM");
        free(z.bytes);
    }
    {  // an empty dict
        snprintf(path, sizeof path, "%s/empty.pth", dir);
        PthWriter *w = pth_writer_open(path, NULL, 0);
        pth_writer_close(w);
        parse_zip(&z, path, 0xFFFFFFFFull);
        static const uint8_t empty_pkl[] = {0x80, 0x02, '}', 'q', 0x00, '.'};
        CHECK(z.n == 3 && z.e[0].size == sizeof empty_pkl &&
              memcmp(z.bytes + z.e[0].data_offset, empty_pkl, sizeof empty_pkl) == 0, "empty dict pickle");
        free(z.bytes);
    }
    {  // streaming errors are the program's fault: exit 1, and no file under the final name
        snprintf(path, sizeof path, "%s/bad1.pth", dir);
        CHECK_EQ_INT(exit_status_of(too_many_bytes, path), 1);
        CHECK(!file_exists(path), "%s must not exist after a failed write", path);
        snprintf(path, sizeof path, "%s/bad2.pth", dir);
        CHECK_EQ_INT(exit_status_of(too_few_bytes, path), 1);
        CHECK(!file_exists(path), "%s must not exist after a failed write", path);
        snprintf(path, sizeof path, "%s/aborted.pth", dir);
        PthWriter *w = pth_writer_open(path, ONE, 1);
        pth_writer_abort(w);
        char partial[300];
        snprintf(partial, sizeof partial, "%s.partial", path);
        CHECK(!file_exists(path) && !file_exists(partial), "abort must remove both files");
    }
    check_params_json(dir);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    TEST_SUMMARY();
}

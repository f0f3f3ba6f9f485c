// zip.c: the index of a stored zip archive in memory (see zip.h and formats.md §2.2).
//
// Every number read from the file is checked against the file size before it is used as an offset, so a
// truncated or hostile file gives an error message, never a read outside the buffer.
#include "formats/zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "util.h"

enum {
    SIG_LOCAL = 0x04034b50,        // "PK\3\4"
    SIG_CENTRAL = 0x02014b50,      // "PK\1\2"
    SIG_EOCD = 0x06054b50,         // "PK\5\6"
    SIG_ZIP64_EOCD = 0x06064b50,   // "PK\6\6"
    SIG_ZIP64_LOCATOR = 0x07064b50,// "PK\6\7"
    LOCAL_HEADER_SIZE = 30,
    CENTRAL_HEADER_SIZE = 46,
    EOCD_SIZE = 22,
    ZIP64_EOCD_SIZE = 56,
    ZIP64_LOCATOR_SIZE = 20,
    EXTRA_ZIP64 = 0x0001,
    MAX_ENTRIES = 1 << 24,         // far above any checkpoint (Meta's 8B file has 295 entries)
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// True when [offset, offset + len) lies inside [0, limit), without overflowing.
static bool in_range(uint64_t offset, uint64_t len, uint64_t limit) { return offset <= limit && len <= limit - offset; }

// The end-of-central-directory record: the last 22 bytes unless the archive has a comment (torch writes none, but
// other zip writers may). Returns its offset or -1.
static int64_t find_eocd(const uint8_t *data, size_t size) {
    if (size < EOCD_SIZE) return -1;
    size_t lowest = size > EOCD_SIZE + 65535 ? size - EOCD_SIZE - 65535 : 0;
    for (size_t pos = size - EOCD_SIZE + 1; pos-- > lowest;) {
        if (rd32(data + pos) != SIG_EOCD) continue;
        if (pos + EOCD_SIZE + rd16(data + pos + 20) == size) return (int64_t)pos;  // the comment reaches the end exactly
    }
    return -1;
}

// Applies the zip64 extra field (ID 0x0001) of a central directory entry: it holds, in this order, only those of
// usize, csize and the local header offset whose 32-bit field is 0xFFFFFFFF.
static bool apply_zip64_extra(const uint8_t *extra, size_t extra_len, uint64_t *usize, uint64_t *csize, uint64_t *lho,
                              const char *name, char *err, size_t errlen) {
    bool need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu, need_o = *lho == 0xFFFFFFFFu;
    size_t pos = 0;
    while (pos + 4 <= extra_len) {
        uint16_t id = rd16(extra + pos), len = rd16(extra + pos + 2);
        if (pos + 4 + len > extra_len) return fail_msg(err, errlen, "central directory: entry %s: extra field runs past its end", name);
        if (id == EXTRA_ZIP64) {
            const uint8_t *f = extra + pos + 4;
            size_t need = 8u * (need_u + need_c + need_o);
            if (len < need) return fail_msg(err, errlen, "central directory: entry %s: zip64 extra field has %u bytes, needs %zu", name, len, need);
            if (need_u) { *usize = rd64(f); f += 8; }
            if (need_c) { *csize = rd64(f); f += 8; }
            if (need_o) { *lho = rd64(f); }
            return true;
        }
        pos += 4u + len;
    }
    if (need_u || need_c || need_o) return fail_msg(err, errlen, "central directory: entry %s: a size or offset is 0xFFFFFFFF but there is no zip64 extra field", name);
    return true;
}

static int compare_names(const void *a, const void *b) {
    return strcmp((*(const ZipEntry *const *)a)->name, (*(const ZipEntry *const *)b)->name);
}

bool zip_index(ZipArchive *z, const uint8_t *data, size_t size, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    if (size < 4 || rd32(data) != SIG_LOCAL) return fail_msg(err, errlen, "not a zip archive (it does not start with PK\\3\\4)");
    int64_t eocd_pos = find_eocd(data, size);
    if (eocd_pos < 0) return fail_msg(err, errlen, "no end-of-central-directory record: the zip is truncated or corrupt");
    const uint8_t *eocd = data + eocd_pos;
    uint64_t n_total = rd16(eocd + 10), cd_size = rd32(eocd + 12), cd_offset = rd32(eocd + 16);
    uint64_t cd_end_limit = (uint64_t)eocd_pos;  // the central directory must end before the end records

    // Zip64: torch writes the locator and record always; their values win over the (possibly saturated) EOCD.
    if (eocd_pos >= ZIP64_LOCATOR_SIZE && rd32(eocd - ZIP64_LOCATOR_SIZE) == SIG_ZIP64_LOCATOR) {
        uint64_t rec_off = rd64(eocd - ZIP64_LOCATOR_SIZE + 8);
        uint64_t locator_pos = (uint64_t)eocd_pos - ZIP64_LOCATOR_SIZE;
        if (!in_range(rec_off, ZIP64_EOCD_SIZE, locator_pos))
            return fail_msg(err, errlen, "zip64 locator points to offset %llu, outside the file", (unsigned long long)rec_off);
        const uint8_t *rec = data + rec_off;
        if (rd32(rec) != SIG_ZIP64_EOCD) return fail_msg(err, errlen, "zip64 end record at offset %llu has a bad signature", (unsigned long long)rec_off);
        n_total = rd64(rec + 32);
        cd_size = rd64(rec + 40);
        cd_offset = rd64(rec + 48);
        cd_end_limit = rec_off;
    } else if (n_total == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_offset == 0xFFFFFFFFu) {
        return fail_msg(err, errlen, "the end record says zip64 but the zip64 locator is missing");
    }
    if (!in_range(cd_offset, cd_size, cd_end_limit))
        return fail_msg(err, errlen, "central directory (offset %llu, %llu bytes) lies outside the file of %zu bytes: truncated or corrupt",
                    (unsigned long long)cd_offset, (unsigned long long)cd_size, size);
    if (n_total > MAX_ENTRIES || n_total * CENTRAL_HEADER_SIZE > cd_size)
        return fail_msg(err, errlen, "central directory claims %llu entries in %llu bytes", (unsigned long long)n_total, (unsigned long long)cd_size);

    ZipEntry *entries = xcalloc(n_total ? n_total : 1, sizeof *entries);
    int n_done = 0;
    bool ok = true;
    uint64_t pos = cd_offset, cd_end = cd_offset + cd_size;
    for (uint64_t i = 0; i < n_total && ok; i++) {
        if (!in_range(pos, CENTRAL_HEADER_SIZE, cd_end) || rd32(data + pos) != SIG_CENTRAL) {
            ok = fail_msg(err, errlen, "central directory entry %llu (offset %llu): bad signature, the directory is corrupt", (unsigned long long)i, (unsigned long long)pos);
            break;
        }
        const uint8_t *h = data + pos;
        uint16_t flags = rd16(h + 8), method = rd16(h + 10);
        uint64_t csize = rd32(h + 20), usize = rd32(h + 24), lho = rd32(h + 42);
        size_t name_len = rd16(h + 28), extra_len = rd16(h + 30), comment_len = rd16(h + 32);
        if (!in_range(pos + CENTRAL_HEADER_SIZE, name_len + extra_len + comment_len, cd_end)) {
            ok = fail_msg(err, errlen, "central directory entry %llu runs past the end of the directory", (unsigned long long)i);
            break;
        }
        const char *name_bytes = (const char *)h + CENTRAL_HEADER_SIZE;
        if (name_len == 0 || memchr(name_bytes, 0, name_len)) {
            ok = fail_msg(err, errlen, "central directory entry %llu has an empty name or a NUL byte in its name", (unsigned long long)i);
            break;
        }
        char *name = xmalloc(name_len + 1);
        memcpy(name, name_bytes, name_len);
        name[name_len] = 0;
        entries[n_done].name = name;  // owned from here on, freed with the rest on failure
        n_done++;
        if (!apply_zip64_extra(h + CENTRAL_HEADER_SIZE + name_len, extra_len, &usize, &csize, &lho, name, err, errlen)) { ok = false; break; }
        if (flags & 1) { ok = fail_msg(err, errlen, "entry %s is encrypted", name); break; }
        if (method == 0 && csize != usize) { ok = fail_msg(err, errlen, "entry %s: stored, but its sizes differ (%llu vs %llu)", name, (unsigned long long)csize, (unsigned long long)usize); break; }
        // The local header: its own name and extra lengths decide where the data starts.
        if (!in_range(lho, LOCAL_HEADER_SIZE, cd_offset) || rd32(data + lho) != SIG_LOCAL) {
            ok = fail_msg(err, errlen, "entry %s: no local header at offset %llu", name, (unsigned long long)lho);
            break;
        }
        const uint8_t *lh = data + lho;
        uint64_t local_name_len = rd16(lh + 26), local_extra_len = rd16(lh + 28);
        uint64_t data_offset = lho + LOCAL_HEADER_SIZE + local_name_len + local_extra_len;
        if (local_name_len != name_len || memcmp(lh + LOCAL_HEADER_SIZE, name_bytes, name_len) != 0) {
            ok = fail_msg(err, errlen, "entry %s: the local header names a different entry", name);
            break;
        }
        if (!in_range(data_offset, csize, cd_offset)) {
            ok = fail_msg(err, errlen, "entry %s: data (offset %llu, %llu bytes) runs past the central directory at %llu: truncated or corrupt",
                      name, (unsigned long long)data_offset, (unsigned long long)csize, (unsigned long long)cd_offset);
            break;
        }
        entries[n_done - 1].data_offset = data_offset;
        entries[n_done - 1].size = csize;
        entries[n_done - 1].method = method;
        entries[n_done - 1].crc32 = rd32(h + 16);
        pos += CENTRAL_HEADER_SIZE + name_len + extra_len + comment_len;
    }
    if (ok) {  // duplicate names would make "the entry called X" ambiguous
        const ZipEntry **sorted = xmalloc((size_t)(n_done ? n_done : 1) * sizeof *sorted);
        for (int i = 0; i < n_done; i++) sorted[i] = &entries[i];
        qsort(sorted, (size_t)n_done, sizeof *sorted, compare_names);
        for (int i = 1; i < n_done && ok; i++)
            if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0) ok = fail_msg(err, errlen, "entry %s appears twice", sorted[i]->name);
        free(sorted);
    }
    if (!ok) {
        for (int i = 0; i < n_done; i++) free(entries[i].name);
        free(entries);
        return false;
    }
    z->n_entries = n_done;
    z->entries = entries;
    return true;
}

void zip_free(ZipArchive *z) {
    for (int i = 0; i < z->n_entries; i++) free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}

const ZipEntry *zip_find(const ZipArchive *z, const char *name) {
    for (int i = 0; i < z->n_entries; i++)
        if (strcmp(z->entries[i].name, name) == 0) return &z->entries[i];
    return NULL;
}

uint32_t zip_crc32(uint32_t crc, const uint8_t *p, size_t n) {
    const size_t min_piece = (size_t)4 << 20;
    int pieces = 1;
#ifdef _OPENMP
    pieces = omp_get_max_threads();
#endif
    if (pieces > (int)(n / min_piece)) pieces = (int)(n / min_piece);
    if (pieces <= 1) return (uint32_t)crc32_z(crc, p, n);
    uLong piece_crc[256];
    if (pieces > 256) pieces = 256;
    size_t piece_len = n / (size_t)pieces;
#pragma omp parallel for num_threads(pieces) schedule(static, 1)
    for (int i = 0; i < pieces; i++) {
        size_t begin = (size_t)i * piece_len, end = i == pieces - 1 ? n : begin + piece_len;
        piece_crc[i] = crc32_z(0, p + begin, end - begin);
    }
    uLong total = crc;
    for (int i = 0; i < pieces; i++) {
        size_t begin = (size_t)i * piece_len, end = i == pieces - 1 ? n : begin + piece_len;
        total = crc32_combine64(total, piece_crc[i], (z_off64_t)(end - begin));
    }
    return (uint32_t)total;
}

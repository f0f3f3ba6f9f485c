// pth.c: a torch.save zip checkpoint as Tensor views into its bytes (see pth.h, formats.md §2).
#include "formats/pth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/pickle.h"
#include "formats/zip.h"

// torch.save before 1.6 (or with _use_new_zipfile_serialization=False) starts with a pickled magic number:
// PROTO 2, LONG1 of 10 bytes = 0x1950a86a20f9469cfc6c.
static const uint8_t LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }
static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

bool pth_looks_like_torch(const uint8_t *data, size_t size) {
    if (size >= 4 && data[0] == 'P' && data[1] == 'K' && data[2] == 3 && data[3] == 4) return true;
    return size >= sizeof LEGACY_MAGIC && memcmp(data, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0;
}

// Finds the pickle: the one entry "<archive>/data.pkl". Rejects TorchScript archives, which also hold a data.pkl
// (the module's attributes) next to code/ and constants.pkl, but are programs rather than a dict of tensors.
static bool find_pickle(const ZipArchive *z, const ZipEntry **pkl, char **prefix, char *err, size_t errlen) {
    *pkl = NULL;
    for (int i = 0; i < z->n_entries; i++) {
        const char *name = z->entries[i].name;
        if (ends_with(name, "/constants.pkl") || strstr(name, "/code/") || starts_with(name, "code/"))
            return fail_msg(err, errlen, "a TorchScript archive (torch.jit.save), not a state dict: save model.state_dict() with torch.save instead");
        const char *slash = strchr(name, '/');
        if (slash && strcmp(slash, "/data.pkl") == 0) {
            if (*pkl) return fail_msg(err, errlen, "two pickles (%s and %s) in one archive", (*pkl)->name, name);
            *pkl = &z->entries[i];
        }
    }
    if (!*pkl) return fail_msg(err, errlen, "a zip without <archive>/data.pkl: not a torch.save checkpoint");
    for (int i = 0; i < z->n_entries; i++)
        if (z->entries[i].method != 0)
            return fail_msg(err, errlen, "zip: entry %s is compressed (method %d); torch.save stores every entry uncompressed", z->entries[i].name,
                        z->entries[i].method);
    size_t prefix_len = strlen((*pkl)->name) - strlen("data.pkl");
    *prefix = xmalloc(prefix_len + 1);
    memcpy(*prefix, (*pkl)->name, prefix_len);
    (*prefix)[prefix_len] = 0;
    return true;
}

static bool check_byteorder(const ZipArchive *z, const uint8_t *data, const char *prefix, char *err, size_t errlen) {
    char *name = xasprintf("%sbyteorder", prefix);
    const ZipEntry *e = zip_find(z, name);
    free(name);
    if (!e) return true;  // torch before 2.1 does not write it: little-endian
    const char *text = (const char *)data + e->data_offset;
    size_t n = (size_t)e->size;
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) n--;
    if (n == 6 && memcmp(text, "little", 6) == 0) return true;
    if (n == 3 && memcmp(text, "big", 3) == 0) return fail_msg(err, errlen, "byteorder: the tensors are big-endian; only little-endian checkpoints are read");
    return fail_msg(err, errlen, "byteorder: expected 'little', found %zu other bytes", (size_t)e->size);
}

bool pth_index_try(PthIndex *ix, const uint8_t *data, size_t size, char *err, size_t errlen) {
    memset(ix, 0, sizeof *ix);
    if (size >= sizeof LEGACY_MAGIC && memcmp(data, LEGACY_MAGIC, sizeof LEGACY_MAGIC) == 0)
        return fail_msg(err, errlen, "a legacy torch.save file (PyTorch < 1.6 or _use_new_zipfile_serialization=False): "
                                 "load it in Python and torch.save it again");
    if (size >= 1 && data[0] == 0x80) return fail_msg(err, errlen, "a bare pickle, not a torch.save zip checkpoint");
    ZipArchive z;
    char zip_err[256];
    if (!zip_index(&z, data, size, zip_err, sizeof zip_err)) return fail_msg(err, errlen, "zip: %s", zip_err);

    const ZipEntry *pkl;
    char *prefix = NULL;
    PickleTensorList list = {0};
    bool ok = find_pickle(&z, &pkl, &prefix, err, errlen) && check_byteorder(&z, data, prefix, err, errlen);
    if (ok) {
        char pickle_err[256];
        ok = pickle_read_tensors(data + pkl->data_offset, (size_t)pkl->size, &list, pickle_err, sizeof pickle_err);
        if (!ok) fail_msg(err, errlen, "%s: %s", pkl->name, pickle_err);
    }
    if (ok) {
        ix->archive_prefix = prefix;
        prefix = NULL;
        ix->tensors = xcalloc((size_t)(list.n ? list.n : 1), sizeof *ix->tensors);
        ix->file_offsets = xcalloc((size_t)(list.n ? list.n : 1), sizeof *ix->file_offsets);
        ix->storage_ids = xcalloc((size_t)(list.n ? list.n : 1), sizeof *ix->storage_ids);
        for (int i = 0; i < list.n && ok; i++) {
            const PickleTensor *p = &list.tensors[i];
            char *entry_name = xasprintf("%sdata/%s", ix->archive_prefix, p->storage_key);
            const ZipEntry *e = zip_find(&z, entry_name);
            size_t elsize = dtype_size(p->dtype);
            if (!e) ok = fail_msg(err, errlen, "tensor %s: its storage entry %s is missing", p->name, entry_name);
            else if (e->size / elsize != (uint64_t)p->storage_numel || e->size % elsize)
                ok = fail_msg(err, errlen, "tensor %s: storage %s has %llu bytes, but the pickle says %lld elements of %zu bytes",
                          p->name, entry_name, (unsigned long long)e->size, (long long)p->storage_numel, elsize);
            free(entry_name);
            if (!ok) break;
            Tensor *t = &ix->tensors[ix->n_tensors];
            t->name = xstrdup(p->name);
            ix->n_tensors++;
            t->dtype = p->dtype;
            t->ndim = p->ndim;
            memcpy(t->shape, p->shape, sizeof t->shape);
            memcpy(t->stride, p->stride, sizeof t->stride);
            // The pickle checked offset + reach < storage_numel, and the entry holds storage_numel elements.
            ix->file_offsets[i] = e->data_offset + (uint64_t)p->storage_offset * elsize;
            t->data = data + ix->file_offsets[i];
            ix->storage_ids[i] = e - z.entries;
        }
    }
    pickle_tensor_list_free(&list);
    free(prefix);
    if (ok) {
        ix->zip = z;
    } else {
        zip_free(&z);
        pth_index_free(ix);
    }
    return ok;
}

void pth_index_read(PthIndex *ix, const MappedFile *m) {
    char err[512];
    if (!pth_index_try(ix, m->data, m->size, err, sizeof err)) input_error(m->path, "%s", err);
}

void pth_index_free(PthIndex *ix) {
    for (int i = 0; i < ix->n_tensors; i++) free((char *)ix->tensors[i].name);
    free(ix->tensors);
    free(ix->file_offsets);
    free(ix->storage_ids);
    free(ix->archive_prefix);
    zip_free(&ix->zip);
    memset(ix, 0, sizeof *ix);
}

void pth_open(PthFile *f, const char *path) {
    mapped_file_open(&f->file, path);
    pth_index_read(&f->index, &f->file);
}

void pth_close(PthFile *f) {
    pth_index_free(&f->index);
    mapped_file_close(&f->file);
}

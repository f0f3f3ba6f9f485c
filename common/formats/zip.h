// zip.h: the index of a STORED (uncompressed) zip archive that lies in memory, as torch.save writes it
// (formats.md §2.2). Nothing is copied or decompressed: each entry is a byte range of the mapped file.
//
// How the index is found: scan back from the end for the end-of-central-directory record (EOCD); if the zip64
// locator sits just before it, take the entry count and the central directory's place from the zip64 record
// (torch always writes it, and the 32-bit EOCD fields hold 0xFFFFFFFF once a file passes 4 GiB). Each central
// directory (CD) entry gives name, sizes and the local header offset (with the zip64 extra field 0x0001 applied);
// the data starts after the LOCAL header's name and extra field, whose length differs from the CD copy because
// torch pads it so that every entry's data is 64-byte aligned.
//
// Use:
//   ZipArchive z; char err[256];
//   if (!zip_index(&z, map.data, map.size, err, sizeof err)) input_error(path, "%s", err);
//   const ZipEntry *e = zip_find(&z, "consolidated/data.pkl");   // e->data_offset, e->size
//   zip_free(&z);
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;            // NUL-terminated copy of the entry's name
    uint64_t data_offset;  // offset of the first data byte from the start of the file
    uint64_t size;         // bytes of data as stored in the file (for method 0, the entry's size)
    int method;            // 0 = stored; anything else is compressed, and its bytes cannot be used in place
    uint32_t crc32;        // CRC-32 of the (uncompressed) data, as the central directory states it
} ZipEntry;

typedef struct {
    int n_entries;
    ZipEntry *entries;     // in central directory order
} ZipArchive;

// Builds the index of the archive in data[0 .. size). On success returns true. On any problem (not a zip, truncated,
// a corrupt record, an encrypted entry, a stored entry whose two sizes differ, a range outside the file, a duplicate
// name) returns false with a one-line description in err, and leaves z empty (nothing to free). Compressed entries
// are listed with their method: the caller decides (torch checkpoints store everything, TorchScript archives don't).
bool zip_index(ZipArchive *z, const uint8_t *data, size_t size, char *err, size_t errlen);
void zip_free(ZipArchive *z);
const ZipEntry *zip_find(const ZipArchive *z, const char *name);  // NULL if there is no entry of that name

// zlib's CRC-32 of n bytes continuing crc (0 to start). Buffers of several MB are cut into pieces hashed by the
// OpenMP threads and joined with crc32_combine: the same value, faster (a CRC is a function of the bytes alone).
uint32_t zip_crc32(uint32_t crc, const uint8_t *p, size_t n);

// checkpoint.h: a model on disk as a set of named tensors in Meta's naming and layout, read in place.
//
// checkpoint_open() accepts
//   - a Meta directory: params.json + consolidated.NN.pth (one or several model-parallel shards) [+ tokenizer.model]
//   - an HF directory:  config.json + model.safetensors or model-*.safetensors (+ index) [+ tokenizer.json]
//   - a single .pth or .safetensors file (tensors only; cfg is left zeroed and has_config false)
// Whatever the source, the tensors are presented with Meta's names (tok_embeddings.weight,
// layers.L.attention.wq.weight, ...) and Meta's interleaved-pair RoPE row order: HF q/k rows are un-permuted
// (formats.md §5). Tensors are views into the memory maps where possible; only tensors that had to be rebuilt
// (joined shards, un-permuted rows) live in malloc'd memory, owned by the Checkpoint.
#pragma once
#include "config.h"
#include "tensor.h"
#include "util.h"

typedef enum { CKPT_META_DIR, CKPT_HF_DIR, CKPT_PTH_FILE, CKPT_SAFETENSORS_FILE } CheckpointKind;

// Bytes of a file whose CRC-32 the file itself states: each zip entry of a .pth (torch.save writes the CRC-32 of
// every entry into the central directory). safetensors has no checksum: its tiling is checked on open instead.
typedef struct {
    int file;               // index into Checkpoint.files
    char *entry;            // the zip entry's name, e.g. "consolidated/data/3"
    uint64_t offset, size;  // its data in the file
    uint32_t crc32;         // what the central directory says
    const char *tensor;     // the first tensor whose bytes lie in it (NULL: data.pkl, version, ...)
} CheckedBytes;

typedef struct {
    CheckpointKind kind;
    char *path;             // what was opened
    bool has_config;
    Config cfg;
    int n_tensors;
    Tensor *tensors;        // sorted by name as in the source order (Meta: pickle order; HF: mapped names, file order)
    int n_files;
    MappedFile *files;      // every mapped file, kept open while the tensors are used
    int n_owned;
    void **owned;           // buffers of rebuilt tensors
    char *tokenizer_path;   // tokenizer.model if present beside the weights, else NULL
    char *hf_tokenizer_json;// tokenizer.json if present (HF directory), else NULL
    int n_checked;
    CheckedBytes *checked;  // every zip entry of every .pth (none for safetensors)
} Checkpoint;

void checkpoint_open(Checkpoint *ck, const char *path);  // exits 2 on any bad input
void checkpoint_close(Checkpoint *ck);
const Tensor *checkpoint_find(const Checkpoint *ck, const char *name);  // NULL if absent
// A weight as contiguous bf16, what every forward pass reads: the checkpoint's own bytes when it holds the tensor so
// (memory-mapped, no copy), else a converted copy (f32/f16 rounded to nearest even, a strided view made contiguous)
// appended to the caller's list *owned (*n_owned entries, each to free). Exits 2 naming the tensor when absent.
const uint16_t *checkpoint_weight_bf16(const Checkpoint *ck, const char *name, void ***owned, int *n_owned);
// Requires every tensor the config implies with the right shape (tied embeddings: output.weight may be absent and
// then aliases tok_embeddings.weight). Exits 2 naming the first missing tensor or wrong shape.
void checkpoint_check_against_config(const Checkpoint *ck);

// The model's identity as "fnv1a64:<16 hex digits>": a hash of the config file's bytes (params.json or config.json;
// none for a lone weights file) and of the tensor index (each tensor's name, dtype and shape, and the CRC-32 every zip
// entry states). Reads no weight bytes: two checkpoints of the same shapes with other weights differ by the stated
// CRC-32 of a .pth; safetensors states none, so there only the config and the shapes count. out: 32 bytes or more.
void checkpoint_fingerprint(const Checkpoint *ck, char *out, size_t n);
// Reads every byte of every zip entry and compares its CRC-32 with the one the zip states: eight flipped bytes in
// a tensor of the right size are found here, not as NaN logits later. The work is cut into pieces of at most 64 MB
// hashed by the OpenMP threads. Returns false with one line in err, "FILE: tensor NAME (zip entry E): ...", naming
// the first bad tensor in the checkpoint's order (or the entry) and how many entries differ. *bytes_read (may be
// NULL) gets the number of bytes hashed.
bool checkpoint_verify(const Checkpoint *ck, uint64_t *bytes_read, char *err, size_t errlen);
// The same for a program: on a mismatch, "error: FILE: ..." and exit 2. Prints a progress line on stderr when the
// checkpoint holds more than 1 GiB (unless quiet).
void checkpoint_verify_or_exit(const Checkpoint *ck, bool quiet);

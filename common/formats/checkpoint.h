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
} Checkpoint;

void checkpoint_open(Checkpoint *ck, const char *path);  // exits 2 on any bad input
void checkpoint_close(Checkpoint *ck);
const Tensor *checkpoint_find(const Checkpoint *ck, const char *name);  // NULL if absent
// Requires every tensor the config implies with the right shape (tied embeddings: output.weight may be absent and
// then aliases tok_embeddings.weight). Exits 2 naming the first missing tensor or wrong shape.
void checkpoint_check_against_config(const Checkpoint *ck);

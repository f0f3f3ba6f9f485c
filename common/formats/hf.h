// hf.h: Hugging Face checkpoints (config.json + safetensors) presented in Meta's names and layout.
#pragma once
#include "formats/checkpoint.h"

// Fills ck from an HF directory: config.json, model.safetensors or the shards of model.safetensors.index.json.
// q/k rows are un-permuted (formats.md §5) into owned buffers; names are mapped to Meta's.
void checkpoint_open_hf(Checkpoint *ck, const char *dir);
// Fills ck with the tensors of one .safetensors file, names as stored (no mapping, no config).
void checkpoint_open_safetensors_file(Checkpoint *ck, const char *path);

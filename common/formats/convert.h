// convert.h: whole-checkpoint conversions between Hugging Face and Meta layouts (what build/bin/wt-convert runs).
//
//   HF directory   config.json, model.safetensors (or shards + index), tokenizer.json
//   Meta directory params.json, consolidated.00.pth (or .00 .. .NN: model parallelism), tokenizer.model
//
// The tensors keep their dtype and bytes; only names change and the rows of wq [H*Dh, D] and wk [Hkv*Dh, D] are
// reordered between Meta's interleaved RoPE pairs and HF's rotate_half halves (formats.md §5). Each output file is
// written as NAME.partial and renamed when complete; the config file (params.json / config.json) is written last,
// so a directory with a config is a finished one. Bad input exits 2 naming the file and the field.
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "tensor.h"

// HF_DIR -> OUT_DIR/params.json, consolidated.00.pth, tokenizer.model (from tokenizer.json, when present).
void convert_hf_to_meta(const char *hf_dir, const char *out_dir);
// META_DIR -> OUT_DIR/config.json, generation_config.json, model.safetensors (+ original/tokenizer.model when the
// Meta directory has one: the place HF repos of Meta's models keep it).
void convert_meta_to_hf(const char *meta_dir, const char *out_dir);

// META_DIR (any number of consolidated.NN.pth) -> OUT_DIR with mp files consolidated.00.pth .. in Meta's
// model-parallel layout (common/tp.h: wq/wk/wv/w1/w3/output/tok_embeddings cut along dim 0, wo/w2 along dim 1, the
// norms copied; wk/wv repeated when mp > n_kv_heads), plus params.json and tokenizer.model copied. mp = 1 joins the
// shards back into one file, byte-identical to the file they were cut from when our writer or torch.save made it.
// OUT_DIR must hold no checkpoint yet. An mp that does not split the model exits 2 saying why.
void convert_reshard(const char *in_dir, int mp, const char *out_dir);

// config.json for transformers' LlamaForCausalLM (4.x and 5.x): dtype is the dtype of the weights.
void hf_config_write_json(const Config *c, DType dtype, bool tied_embeddings, const char *path);

// Meta name -> HF name in out. *permute_heads gets the head count whose rows must be permuted (n_heads for wq,
// n_kv_heads for wk, 0 otherwise). Returns false for a name that has no HF counterpart.
bool meta_to_hf_name(const char *meta, const Config *c, char *out, size_t n, int *permute_heads);

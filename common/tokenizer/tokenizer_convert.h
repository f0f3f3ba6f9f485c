// tokenizer_convert.h: HF tokenizer.json (byte-level BPE) -> Meta's tokenizer.model (tiktoken), formats.md §4.
#pragma once

// Writes out_path (atomically). Exits 2 naming the file and the field on bad input.
void tokenizer_json_to_model(const char *json_path, const char *out_path);

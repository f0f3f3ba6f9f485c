// tokenizer_internal.h: what tokenizer.c (the tiktoken file, encode/decode) and tokenizer_bpe.c (an HF tokenizer.json
// byte-level BPE) share. Not for callers outside common/tokenizer/.
#pragma once
#include "tokenizer/tokenizer.h"
#include "util.h"

// The longest token either loader accepts (Llama 3's longest has 128 bytes; MiniMind's 30). It bounds TokenStream.out.
#define MAX_TOKEN_BYTES 256

// One UTF-8 sequence at s[0] (avail bytes): n > 0 a valid character of n bytes (*cp), -n n invalid bytes, 0 cut short.
int tokenizer_utf8_next(const uint8_t *s, size_t avail, uint32_t *cp);

// Compiles the pre-tokenizer regex of t->kind (PCRE2, UTF + UCP, JIT when it can) into t->pattern; exits on a PCRE2
// error (the patterns are ours, not the user's).
void tokenizer_compile_pattern(Tokenizer *t);

// The bytes -> id map over ids 0..n-1 whose bytes are t->token_bytes[t->token_start[id] ..), skipping ids for which
// skip[id] is true (skip may be NULL). Returns -1, or the first id whose bytes an earlier id already has (*other gets that
// earlier id). Also fills t->byte_rank from the one-byte tokens (-1 where a byte has none).
int32_t tokenizer_index_tokens(Tokenizer *t, int32_t n, const bool *skip, int32_t *other);

typedef struct {
    int32_t *data;
    size_t len, cap;
} IdBuf;
void tokenizer_ids_push(IdBuf *b, int32_t id);

// TOKENIZER_HF_BPE: the ids of one pre-tokenizer piece (tokenizer_bpe.c).
void tokenizer_bpe_piece(const Tokenizer *t, const uint8_t *piece, size_t n, IdBuf *out);

// ---- tokenizer.json (tokenizer_convert.c) ----
// GPT-2's bytes_to_unicode() inverted: byte_of_codepoint[c] is the byte that code point c stands for, -1 for none.
#define BYTE_LEVEL_CODEPOINTS 0x144
void tokenizer_byte_level_inverse(int byte_of_codepoint[BYTE_LEVEL_CODEPOINTS]);
// One code point of a JSON string (valid UTF-8, checked by Jansson); returns its length.
int tokenizer_utf8_decode_one(const uint8_t *s, size_t avail, uint32_t *cp);
// A token string for an error message: "at most 40 bytes..." (malloc'd).
char *tokenizer_short_repr(const char *s, size_t n);
struct json_t;
// Loads PATH as a JSON object (exits 2 on anything else); json_decref() it.
struct json_t *tokenizer_json_load(const char *json_path);
// Llama 3's tokenizer.json: its pre-tokenizer's Split regex is Meta's pat_str.
bool tokenizer_json_is_llama3(const struct json_t *root);
// The tokenizer.model lines that Llama 3's tokenizer.json stands for (malloc'd, *len bytes); exits 2 on bad input.
char *tokenizer_json_model_text(const struct json_t *root, const char *json_path, size_t *len);

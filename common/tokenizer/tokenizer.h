// tokenizer.h: the Llama-3 tokenizer (tiktoken byte-level BPE), text <-> token ids. formats.md §3. The same struct
// also holds an HF `tokenizers` byte-level BPE read from its tokenizer.json (MiniMind's: GPT-2's pre-tokenizer, merges
// applied by merge rank): see tokenizer_init_json and tokenizer_bpe.c.
//
// What it computes
//   encode: UTF-8 text -> ids. The text is cut into pieces by the pre-tokenizer regex (run by PCRE2), each piece's
//           bytes are looked up whole, and pieces not in the vocabulary are built by rank-based pair merging.
//   decode: ids -> the concatenated bytes of the tokens (special ids give their names, e.g. "<|eot_id|>").
// Sizes: V = vocab_size = n_base + 256 = 128256 for Llama 3 (n_base = 128000 lines in tokenizer.model).
//
// Use
//   Tokenizer tok;
//   tokenizer_init(&tok, "build/models/tokenizer.model");   // exits 2 naming the file and line on bad input
//   int32_t *ids; size_t n;
//   tokenizer_encode(&tok, text, strlen(text), true, false, &ids, &n);   // bos=true, eos=false
//   ... free(ids); tokenizer_free(&tok);
//
// Llama 3: special-token text typed into the input ("<|eot_id|>") is encoded as ordinary text, as Meta's encode() does
// by default; special ids enter only through bos/eos and the chat helper. An HF BPE (MiniMind) matches its added
// tokens ("<|im_start|>") whole in the text, as HF's tokenizer(text) does.
// A loaded Tokenizer is read-only: encode/decode may run from several threads at once.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKENIZER_NUM_SPECIAL 256          // special ids n_base .. n_base+255
#define TOKENIZER_LLAMA3_N_BASE 128000     // lines in Meta's tokenizer.model
#define TOKENIZER_LLAMA3_VOCAB 128256      // params.json vocab_size

// Llama-3 special ids (n_base = 128000). Names as in meta-llama/llama3 tokenizer.py.
enum {
    TOKEN_BEGIN_OF_TEXT = 128000,   // <|begin_of_text|>  (BOS)
    TOKEN_END_OF_TEXT = 128001,     // <|end_of_text|>    (EOS)
    TOKEN_START_HEADER_ID = 128006, // <|start_header_id|>
    TOKEN_END_HEADER_ID = 128007,   // <|end_header_id|>
    TOKEN_EOM_ID = 128008,          // <|reserved_special_token_4|> in Llama 3; <|eom_id|> in Llama 3.1
    TOKEN_EOT_ID = 128009,          // <|eot_id|>         (end of a chat turn)
};

typedef enum {
    TOKENIZER_TIKTOKEN = 0,    // Meta's tokenizer.model: merges by the rank of the joined bytes, Llama 3's regex
    TOKENIZER_HF_BPE,          // an HF tokenizer.json byte-level BPE: merges by the rank of the pair, GPT-2's regex
} TokenizerKind;

// One added token of a tokenizer.json ("<|im_start|>"): matched whole in the text before the pre-tokenizer.
typedef struct {
    int32_t id;
    bool special;              // "special": true (a control token; false for e.g. MiniMind's <think>)
    bool normalized;           // matched in a second pass, in the text between the normalized=false ones
} AddedToken;

typedef struct {
    TokenizerKind kind;
    char *path;                // the file it was loaded from
    int32_t n_base;            // tokens read from the file (128000); special ids start here
    int32_t vocab_size;        // n_base + 256
    // Bytes of every token, rank -> bytes: token id's bytes are token_bytes[token_start[id] .. token_start[id+1]).
    // Special tokens hold their names. token_start has vocab_size + 1 entries.
    uint8_t *token_bytes;
    size_t *token_start;
    // Open-addressing hash map bytes -> rank for the n_base ordinary tokens. A slot holds rank + 1 (0 = empty).
    uint32_t *hash_slots;
    size_t hash_mask;          // number of slots - 1 (a power of two)
    int32_t byte_rank[256];    // rank of each single byte (every byte is a token in a byte-level BPE)
    // The pre-tokenizer regex, compiled once by PCRE2 (pcre2_code_8*, kept opaque so callers need no pcre2.h).
    void *pattern;
    bool pattern_jit;          // true when PCRE2's JIT compiled it
    // Ids that end generation: <|end_of_text|> and <|eot_id|> (Llama 3). Llama 3.1 adds <|eom_id|> (128008):
    // append it with tokenizer_add_stop_token() for a 3.1 model.
    int32_t stop_ids[8];
    int n_stop;
    int32_t bos_id, eos_id;    // what encode(bos, eos) adds; -1 when the tokenizer has none (tokenizer.json without
                               // tokenizer_config.json beside it)
    // TOKENIZER_HF_BPE only (tokenizer_bpe.c). Ordinary ids are in hash_slots (slot = id + 1); n_base = vocab_size.
    AddedToken *added;         // [n_added], longest content first (so that the first match at a position is the longest)
    int n_added;
    uint64_t *merge_keys;      // open-addressing map (left id, right id) -> rank, joined id: key = left << 32 | right,
    uint32_t *merge_rank;      //   0 = empty slot (ids are < 2^31 so a pair of ids is never 0 unless both are 0:
    int32_t *merge_joined;     //   keys are stored + 1); merge_mask = slots - 1
    size_t merge_mask;
    int32_t n_merges;          // model.merges entries
    bool ignore_merges;        // model.ignore_merges: a piece that is a token stays whole
} Tokenizer;

// Loads tokenizer.model (lines "BASE64 RANK\n"). Exits 2 with "error: PATH: line N: ..." on a malformed line, a
// duplicate rank or token, ranks that are not 0..N-1, or a missing single byte.
void tokenizer_init(Tokenizer *t, const char *path);
// The same on the file's bytes (name is kept as t->path): false with "line N: ..." in err, and nothing to free.
bool tokenizer_init_try(Tokenizer *t, const char *name, const uint8_t *bytes, size_t len, char *err, size_t errlen);
void tokenizer_free(Tokenizer *t);

// An HF tokenizer.json. Llama 3's (its pre-tokenizer regex is Meta's pat_str) is converted in memory to the
// tokenizer.model it stands for (tokenizer_convert.c) and loaded as above. Any other must be a byte-level BPE as MiniMind's:
// model.type "BPE", pre_tokenizer ByteLevel (use_regex true, add_prefix_space false), decoder ByteLevel, no normalizer;
// BOS/EOS are the bos_token/eos_token of tokenizer_config.json beside it (none without that file). Exits 2 with
// "error: PATH: FIELD: expected ..., found ..." on anything else.
void tokenizer_init_json(Tokenizer *t, const char *path);
// The byte-level BPE part on the file's bytes (no tokenizer_config.json): false with "FIELD: ..." in err.
bool tokenizer_init_bpe_try(Tokenizer *t, const char *name, const uint8_t *bytes, size_t len, char *err, size_t errlen);
// Either kind by what the file holds: a JSON object -> tokenizer_init_json, otherwise tokenizer_init.
void tokenizer_load(Tokenizer *t, const char *path);

// Encodes len bytes of UTF-8 text. *ids is malloc'd (caller frees), *n_ids its length. Text that is not valid UTF-8
// exits 2 with "error: prompt: invalid UTF-8 at byte N" (use utf8_first_invalid() to check first if you must not exit).
void tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool bos, bool eos, int32_t **ids, size_t *n_ids);

// The pre-tokenizer alone: the regex pieces of text, as byte offsets. piece i is text[starts[i] .. ends[i]).
// Both arrays are malloc'd (caller frees); returns the number of pieces. Exits 2 on invalid UTF-8 like encode.
size_t tokenizer_split(const Tokenizer *t, const char *text, size_t len, size_t **starts, size_t **ends);

// Bytes of one token (not NUL-terminated; the name for a special id); NULL if id is out of range.
const uint8_t *tokenizer_token_bytes(const Tokenizer *t, int32_t id, size_t *len);
// Id of a token given by its exact bytes (ordinary tokens, then special names); -1 if there is none.
int32_t tokenizer_token_id(const Tokenizer *t, const void *bytes, size_t len);
bool tokenizer_is_special(const Tokenizer *t, int32_t id);

// Concatenated bytes of the ids, malloc'd and NUL-terminated; *len gets the byte count. These are raw bytes and may
// be invalid UTF-8 (a token can hold half a character). Exits 2 ("decode: id N is not in 0..V-1") on a bad id.
char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, size_t *len);
// The same, made valid UTF-8 the way Python's bytes.decode("utf-8", errors="replace") does it (each invalid
// sequence becomes U+FFFD). This is what Meta's Tokenizer.decode returns.
char *tokenizer_decode_text(const Tokenizer *t, const int32_t *ids, size_t n, size_t *len);

// A printable form of one token for plots and printouts: the Python repr of its text, e.g. 'the', ' answer', '\n\n',
// "'s". Bytes that are not valid UTF-8 on their own are shown as \xNN. Writes at most n bytes including the NUL;
// returns the length it needed (like snprintf).
size_t tokenizer_piece_display(const Tokenizer *t, int32_t id, char *buf, size_t n);

// Streaming decoder for generation: feed ids one at a time and print what comes back. Bytes of a character that is
// split across tokens are held until the character is complete; invalid bytes become U+FFFD.
typedef struct {
    uint8_t pending[4];        // the start of an incomplete UTF-8 character
    int n_pending;
    char out[1024];            // text returned by the last push/flush (NUL-terminated)
} TokenStream;
void token_stream_init(TokenStream *s);
// Returns the text that is complete after this id (may be ""); valid until the next call. *len may be NULL.
const char *token_stream_push(TokenStream *s, const Tokenizer *t, int32_t id, size_t *len);
// At the end of generation: whatever is still held, as U+FFFD.
const char *token_stream_flush(TokenStream *s, size_t *len);

// Chat format for Instruct models (Meta's ChatFormat.encode_dialog_prompt):
//   <|begin_of_text|> then per message <|start_header_id|> role <|end_header_id|> "\n\n" content.strip() <|eot_id|>,
//   then <|start_header_id|> assistant <|end_header_id|> "\n\n" so that the model writes the answer.
// Llama 3 only: with an HF BPE tokenizer (MiniMind's ChatML template is not read here) it exits 2.
typedef struct {
    const char *role;     // "system", "user", "assistant"
    const char *content;  // UTF-8
} ChatMessage;
void tokenizer_encode_chat(const Tokenizer *t, const ChatMessage *messages, size_t n_messages, int32_t **ids, size_t *n_ids);

bool tokenizer_is_stop_token(const Tokenizer *t, int32_t id);
void tokenizer_add_stop_token(Tokenizer *t, int32_t id);

// Offset of the first byte that is not part of valid UTF-8 (overlong forms, surrogates and code points above
// U+10FFFF are invalid, as in Python), or -1 when all len bytes are valid.
int64_t utf8_first_invalid(const void *text, size_t len);

// The Llama-3 pre-tokenizer regex exactly as Meta writes it (pat_str), for printing and for checking tokenizer.json.
extern const char *const TOKENIZER_PAT_STR;

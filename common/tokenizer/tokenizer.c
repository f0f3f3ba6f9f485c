// tokenizer.c: the Llama-3 tokenizer (tiktoken byte-level BPE). See tokenizer.h for the API, formats.md §3 for
// the file format and the algorithm. Encoding and decoding here serve the HF byte-level BPE of tokenizer_bpe.c too
// (MiniMind's): its added tokens are cut out of the text first, its pieces come from GPT-2's regex, and each piece is
// merged by tokenizer_bpe_piece().
//
// The pipeline of encode(), in the order Meta's Tokenizer.encode and tiktoken's CoreBPE::encode run it:
//   1. check the text is UTF-8;
//   2. cut it into chunks of at most 400,000 characters, and those into slices with at most 25,000 consecutive
//      whitespace or non-whitespace characters (this only changes anything for huge inputs);
//   3. run the pre-tokenizer regex over each slice (PCRE2, UTF + UCP mode) to get the pieces;
//   4. a piece whose bytes are a token becomes that token; any other piece is built by byte_pair_merge().
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/tokenizer.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"
#include "util.h"

// Meta's pat_str, character for character (meta-llama/llama3 llama/tokenizer.py).
const char *const TOKENIZER_PAT_STR =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";

// The same regex as PCRE2 runs it. In tiktoken (Rust regex) \s is the Unicode White_Space property. PCRE2's \s in
// UCP mode also matches U+180E MONGOLIAN VOWEL SEPARATOR, which Unicode took out of White_Space in version 6.3, so
// here \s is spelled out as the White_Space set and \S as its complement; everything else is unchanged.
#define WHITE_SPACE "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"
static const char *const PCRE2_PATTERN =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)"           // (1) English contractions, any case
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+"          // (2) a letter run, with at most one leading non-letter (a space)
    "|\\p{N}{1,3}"                            // (3) numbers, 1 to 3 digits at a time
    "| ?[^" WHITE_SPACE "\\p{L}\\p{N}]+[\\r\\n]*"  // (4) punctuation run, optional leading space, trailing newlines
    "|[" WHITE_SPACE "]*[\\r\\n]+"            // (5) whitespace up to the last newline
    "|[" WHITE_SPACE "]+(?![^" WHITE_SPACE "])"  // (6) whitespace not followed by a non-space: \s+(?!\S)
    "|[" WHITE_SPACE "]+";                    // (7) any other whitespace

// GPT-2's pre-tokenizer regex, which HF's ByteLevel pre-tokenizer runs when use_regex is true (MiniMind's):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with \s spelled out as Unicode's White_Space, as above (HF runs it with Oniguruma, whose \s is White_Space).
static const char *const GPT2_PCRE2_PATTERN =
    "'s|'t|'re|'ve|'m|'ll|'d"                 // contractions, lower case only (no (?i) here, unlike Llama 3)
    "| ?\\p{L}+"                              // a letter run with at most one leading space
    "| ?\\p{N}+"                              // a digit run of any length (Llama 3 cuts numbers into 1-3 digits)
    "| ?[^" WHITE_SPACE "\\p{L}\\p{N}]+"        // punctuation and symbols, with at most one leading space
    "|[" WHITE_SPACE "]+(?![^" WHITE_SPACE "])"  // whitespace not followed by a non-space: \s+(?!\S)
    "|[" WHITE_SPACE "]+";                    // any other whitespace

// Meta's limits (llama/tokenizer.py): TIKTOKEN_MAX_ENCODE_CHARS and MAX_NO_WHITESPACES_CHARS.
#define MAX_ENCODE_CHARS 400000
#define MAX_SAME_KIND_RUN 25000

// ---- UTF-8 --------------------------------------------------------------------------------------------------------

// Looks at the UTF-8 sequence starting at s[0] with avail bytes available. Returns
//   n > 0  a valid character of n bytes (its code point in *cp),
//   -n     n invalid bytes to replace by one U+FFFD (the "maximal subpart" rule Python's decoder follows),
//   0      a valid start that the end of the input cuts short (a streaming decoder waits for more bytes).
int tokenizer_utf8_next(const uint8_t *s, size_t avail, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int need;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte (excludes overlongs, surrogates, > U+10FFFF)
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else return -1;
    uint32_t c = b & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (int k = 1; k < need; k++) {
        if ((size_t)k >= avail) return 0;
        uint8_t x = s[k];
        if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) return -k;
        c = (c << 6) | (x & 0x3F);
    }
    *cp = c;
    return need;
}

int64_t utf8_first_invalid(const void *text, size_t len) {
    const uint8_t *s = text;
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        int n = tokenizer_utf8_next(s + i, len - i, &cp);
        if (n <= 0) return (int64_t)i;
        i += (size_t)n;
    }
    return -1;
}

static const char REPLACEMENT_CHAR[] = "\xEF\xBF\xBD";  // U+FFFD

// Copies s to out, replacing each invalid sequence by U+FFFD. If keep_tail, a cut-short sequence at the end is not
// written and its length is returned (the caller keeps those bytes); otherwise it is replaced and 0 is returned.
static size_t utf8_replace_invalid(const uint8_t *s, size_t len, StrBuf *out, bool keep_tail) {
    size_t i = 0;
    uint32_t cp;
    while (i < len) {
        int n = tokenizer_utf8_next(s + i, len - i, &cp);
        if (n > 0) {
            strbuf_add(out, s + i, (size_t)n);
            i += (size_t)n;
        } else if (n < 0) {
            strbuf_add(out, REPLACEMENT_CHAR, 3);
            i += (size_t)(-n);
        } else {
            if (keep_tail) return len - i;
            strbuf_add(out, REPLACEMENT_CHAR, 3);  // an incomplete sequence at the very end: one U+FFFD
            break;
        }
    }
    return 0;
}

// Python's str.isspace(), which Meta's encode() uses to split long runs (not the same set as the regex's \s:
// it adds U+001C..U+001F).
static bool python_isspace(uint32_t c) {
    if ((c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680) return true;
    if ((c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
        return true;
    return false;
}

// ---- loading tokenizer.model --------------------------------------------------------------------------------------

static int base64_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

// Strict standard base64 (length a multiple of 4, '=' only as padding at the end). Writes to out (room for
// 3*len/4 bytes) and returns the byte count, or -1 if the text is not base64.
static int64_t base64_decode(const uint8_t *s, size_t len, uint8_t *out) {
    if (len == 0 || len % 4 != 0) return -1;
    size_t pad = 0;
    if (s[len - 1] == '=') pad++;
    if (s[len - 2] == '=') pad++;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        for (int k = 0; k < 4; k++) {
            bool is_pad = i + (size_t)k >= len - pad;
            v[k] = is_pad ? 0 : base64_value(s[i + (size_t)k]);
            if (v[k] < 0) return -1;
        }
        uint32_t triple = ((uint32_t)v[0] << 18) | ((uint32_t)v[1] << 12) | ((uint32_t)v[2] << 6) | (uint32_t)v[3];
        size_t keep = (i + 4 == len) ? 3 - pad : 3;
        // The bits under the padding must be zero, otherwise two texts would decode to the same bytes.
        if (i + 4 == len && pad == 2 && (triple & 0xFFFF)) return -1;
        if (i + 4 == len && pad == 1 && (triple & 0xFF)) return -1;
        for (size_t k = 0; k < keep; k++) out[n++] = (uint8_t)(triple >> (16 - 8 * k));
    }
    return (int64_t)n;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {  // FNV-1a, 64-bit
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static size_t token_len(const Tokenizer *t, int32_t id) { return t->token_start[id + 1] - t->token_start[id]; }

// Rank of an ordinary token given by its bytes, or -1.
static int32_t lookup_rank(const Tokenizer *t, const uint8_t *p, size_t n) {
    if (n == 1) return t->byte_rank[p[0]];
    for (size_t slot = hash_bytes(p, n) & t->hash_mask;; slot = (slot + 1) & t->hash_mask) {
        uint32_t v = t->hash_slots[slot];
        if (v == 0) return -1;
        int32_t rank = (int32_t)(v - 1);
        if (token_len(t, rank) == n && memcmp(t->token_bytes + t->token_start[rank], p, n) == 0) return rank;
    }
}

// Names of the 256 special tokens (meta-llama/llama3 tokenizer.py): index i is id n_base + i.
static char *special_token_name(int i) {
    switch (i) {
    case 0: return xstrdup("<|begin_of_text|>");
    case 1: return xstrdup("<|end_of_text|>");
    case 2: case 3: case 4: case 5: return xasprintf("<|reserved_special_token_%d|>", i - 2);
    case 6: return xstrdup("<|start_header_id|>");
    case 7: return xstrdup("<|end_header_id|>");
    case 8: return xstrdup("<|reserved_special_token_4|>");
    case 9: return xstrdup("<|eot_id|>");
    default: return xasprintf("<|reserved_special_token_%d|>", i - 5);  // 10 -> _5, ..., 255 -> _250
    }
}

void tokenizer_compile_pattern(Tokenizer *t) {
    const char *pattern = t->kind == TOKENIZER_HF_BPE ? GPT2_PCRE2_PATTERN : PCRE2_PATTERN;
    int err;
    PCRE2_SIZE err_offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err,
                                     &err_offset, NULL);
    if (!code) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        fatal("PCRE2 cannot compile the pre-tokenizer regex at offset %zu: %s", (size_t)err_offset, (char *)msg);
    }
    // JIT makes matching several times faster; without it (a PCRE2 built without JIT) the interpreter gives the same
    // matches.
    t->pattern_jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    t->pattern = code;
}

// Pass 2 of loading: the lines "BASE64 RANK\n" into decoded[] and, per rank, where its bytes start, how many there are
// and the line that gave it.
static bool parse_lines(const uint8_t *s, size_t file_len, int32_t n_base, uint8_t *decoded, size_t *decoded_len,
                        size_t *start_of_rank, size_t *len_of_rank, int64_t *line_of_rank, char *err, size_t errlen) {
    size_t pos = 0;
    for (int64_t line = 1; pos < file_len; line++) {
        size_t end = pos;
        while (end < file_len && s[end] != '\n') end++;
        size_t space = pos;
        while (space < end && s[space] != ' ') space++;
        if (space == end || space == pos) return fail_msg(err, errlen, "line %lld: expected \"BASE64 RANK\" (one space between them)", (long long)line);
        int64_t nbytes = base64_decode(s + pos, space - pos, decoded + *decoded_len);
        if (nbytes <= 0)
            return fail_msg(err, errlen, "line %lld: \"%.*s\" is not base64", (long long)line, (int)(space - pos < 60 ? space - pos : 60), s + pos);
        if (nbytes > MAX_TOKEN_BYTES) return fail_msg(err, errlen, "line %lld: token of %lld bytes, longer than %d", (long long)line, (long long)nbytes, MAX_TOKEN_BYTES);
        if (space + 1 == end) return fail_msg(err, errlen, "line %lld: missing rank after the space", (long long)line);
        int64_t rank = 0;
        int shown = (int)(end - space - 1 < 40 ? end - space - 1 : 40);
        for (size_t i = space + 1; i < end; i++) {
            if (s[i] < '0' || s[i] > '9')
                return fail_msg(err, errlen, "line %lld: rank: expected a decimal number, found \"%.*s\"", (long long)line, shown, s + space + 1);
            rank = rank * 10 + (s[i] - '0');
            if (rank >= n_base)
                return fail_msg(err, errlen, "line %lld: rank %.*s is out of range: the %d lines must hold ranks 0..%d", (long long)line, shown,
                            s + space + 1, n_base, n_base - 1);
        }
        if (line_of_rank[rank] >= 0)
            return fail_msg(err, errlen, "line %lld: duplicate rank %lld (already on line %lld)", (long long)line, (long long)rank,
                        (long long)line_of_rank[rank]);
        line_of_rank[rank] = line;
        start_of_rank[rank] = *decoded_len;
        len_of_rank[rank] = (size_t)nbytes;
        *decoded_len += (size_t)nbytes;
        pos = end + 1;
    }
    return true;  // n_lines ranks, all distinct and all below n_lines: every rank 0..n_base-1 is present
}

int32_t tokenizer_index_tokens(Tokenizer *t, int32_t n, const bool *skip, int32_t *other) {
    size_t slots = 1024;  // at most half full, so that probe chains stay short
    while (slots < 2 * (size_t)n) slots *= 2;
    t->hash_slots = xcalloc(slots, sizeof(uint32_t));
    t->hash_mask = slots - 1;
    for (int b = 0; b < 256; b++) t->byte_rank[b] = -1;
    for (int32_t r = 0; r < n; r++) {
        if (skip && skip[r]) continue;
        const uint8_t *p = t->token_bytes + t->token_start[r];
        size_t len = token_len(t, r);
        size_t slot = hash_bytes(p, len) & t->hash_mask;
        for (; t->hash_slots[slot]; slot = (slot + 1) & t->hash_mask) {
            int32_t o = (int32_t)t->hash_slots[slot] - 1;
            if (token_len(t, o) == len && memcmp(t->token_bytes + t->token_start[o], p, len) == 0) {
                *other = o;
                return r;
            }
        }
        t->hash_slots[slot] = (uint32_t)r + 1;
        if (len == 1) t->byte_rank[p[0]] = r;
    }
    return -1;
}

// The hash map and the single bytes of a tokenizer.model; false on a token that appears twice or a byte that has no
// token.
static bool index_tokens(Tokenizer *t, const int64_t *line_of_rank, char *err, size_t errlen) {
    int32_t other, dup = tokenizer_index_tokens(t, t->n_base, NULL, &other);
    if (dup >= 0)
        return fail_msg(err, errlen, "line %lld: duplicate token: the same bytes as line %lld", (long long)line_of_rank[dup],
                        (long long)line_of_rank[other]);
    // Byte-level BPE needs every single byte as a token: any text must be expressible.
    for (int b = 0; b < 256; b++)
        if (t->byte_rank[b] < 0) return fail_msg(err, errlen, "byte 0x%02X has no token: not a byte-level BPE vocabulary", b);
    return true;
}

bool tokenizer_init_try(Tokenizer *t, const char *name, const uint8_t *s, size_t file_len, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    // Pass 1: count lines, so that every array is allocated once.
    size_t n_lines = 0;
    for (size_t i = 0; i < file_len; i++) n_lines += s[i] == '\n';
    if (file_len > 0 && s[file_len - 1] != '\n') n_lines++;  // a last line without its newline
    if (n_lines == 0) return fail_msg(err, errlen, "empty file: expected lines \"BASE64 RANK\"");
    if (n_lines > (size_t)INT32_MAX - TOKENIZER_NUM_SPECIAL) return fail_msg(err, errlen, "too many lines (%zu)", n_lines);

    int32_t n_base = (int32_t)n_lines;
    int32_t vocab = n_base + TOKENIZER_NUM_SPECIAL;
    size_t *start_of_rank = xmalloc((size_t)n_base * sizeof(size_t));  // into decoded[], in file order
    size_t *len_of_rank = xmalloc((size_t)n_base * sizeof(size_t));
    int64_t *line_of_rank = xmalloc((size_t)n_base * sizeof(int64_t));
    for (int32_t r = 0; r < n_base; r++) line_of_rank[r] = -1;
    uint8_t *decoded = xmalloc(file_len + 1);  // base64 is longer than its bytes: this always suffices
    size_t decoded_len = 0;
    bool ok = parse_lines(s, file_len, n_base, decoded, &decoded_len, start_of_rank, len_of_rank, line_of_rank, err, errlen);
    if (ok) {
        // Token bytes in rank order, then the special names.
        char *names[TOKENIZER_NUM_SPECIAL];
        size_t names_len = 0;
        for (int i = 0; i < TOKENIZER_NUM_SPECIAL; i++) {
            names[i] = special_token_name(i);
            names_len += strlen(names[i]);
        }
        t->path = xstrdup(name);
        t->n_base = n_base;
        t->vocab_size = vocab;
        t->token_bytes = xmalloc(decoded_len + names_len + 1);
        t->token_start = xmalloc(((size_t)vocab + 1) * sizeof(size_t));
        size_t at = 0;
        for (int32_t r = 0; r < n_base; r++) {
            t->token_start[r] = at;
            memcpy(t->token_bytes + at, decoded + start_of_rank[r], len_of_rank[r]);
            at += len_of_rank[r];
        }
        for (int i = 0; i < TOKENIZER_NUM_SPECIAL; i++) {
            t->token_start[n_base + i] = at;
            size_t n = strlen(names[i]);
            memcpy(t->token_bytes + at, names[i], n);
            at += n;
            free(names[i]);
        }
        t->token_start[vocab] = at;
        ok = index_tokens(t, line_of_rank, err, errlen);
    }
    free(start_of_rank);
    free(len_of_rank);
    free(line_of_rank);
    free(decoded);
    if (!ok) {
        tokenizer_free(t);
        return false;
    }
    t->stop_ids[t->n_stop++] = n_base + 1;  // <|end_of_text|>
    t->stop_ids[t->n_stop++] = n_base + 9;  // <|eot_id|>
    t->kind = TOKENIZER_TIKTOKEN;
    t->bos_id = n_base + 0;  // <|begin_of_text|>
    t->eos_id = n_base + 1;  // <|end_of_text|>
    tokenizer_compile_pattern(t);
    return true;
}

void tokenizer_init(Tokenizer *t, const char *path) {
    size_t len;
    char *file = read_whole_file(path, &len);
    char err[512];
    bool ok = tokenizer_init_try(t, path, (const uint8_t *)file, len, err, sizeof err);
    free(file);
    if (!ok) input_error(path, "%s", err);
}

void tokenizer_free(Tokenizer *t) {
    if (t->pattern) pcre2_code_free((pcre2_code *)t->pattern);
    free(t->path);
    free(t->token_bytes);
    free(t->token_start);
    free(t->hash_slots);
    free(t->added);
    free(t->merge_keys);
    free(t->merge_rank);
    free(t->merge_joined);
    memset(t, 0, sizeof *t);
}

// ---- encoding -----------------------------------------------------------------------------------------------------

void tokenizer_ids_push(IdBuf *b, int32_t id) {
    if (b->len == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 64;
        b->data = xrealloc(b->data, b->cap * sizeof(int32_t));
    }
    b->data[b->len++] = id;
}

// Scratch space for byte_pair_merge, reused across pieces.
typedef struct {
    size_t *part_start;   // [n+1] the parts are piece[part_start[i] .. part_start[i+1])
    int32_t *pair_rank;   // [n+1] rank of parts i and i+1 joined, or INT32_MAX when that is no token
    size_t cap;
} MergeScratch;

// rank of parts i and i+1 joined (they exist when i + 2 < n_bounds)
static int32_t joined_rank(const Tokenizer *t, const uint8_t *piece, const size_t *part_start, size_t n_bounds, size_t i) {
    if (i + 2 >= n_bounds) return INT32_MAX;
    int32_t r = lookup_rank(t, piece + part_start[i], part_start[i + 2] - part_start[i]);
    return r < 0 ? INT32_MAX : r;
}

// tiktoken's _byte_pair_merge: start from single bytes; repeatedly join the adjacent pair whose joined bytes have the
// lowest rank (the leftmost one on ties) until no adjacent pair is a token. The pair ranks are cached and only the
// two next to a join are looked up again, which gives the same result as rescanning every pair (formats.md §3).
static void byte_pair_merge(const Tokenizer *t, const uint8_t *piece, size_t n, MergeScratch *m, IdBuf *out) {
    if (n + 1 > m->cap) {
        m->cap = n + 1;
        m->part_start = xrealloc(m->part_start, m->cap * sizeof(size_t));
        m->pair_rank = xrealloc(m->pair_rank, m->cap * sizeof(int32_t));
    }
    size_t *start = m->part_start;
    int32_t *rank = m->pair_rank;
    size_t n_bounds = n + 1;
    for (size_t i = 0; i < n_bounds; i++) start[i] = i;
    for (size_t i = 0; i < n_bounds; i++) rank[i] = joined_rank(t, piece, start, n_bounds, i);
    for (;;) {
        int32_t best_rank = INT32_MAX;
        size_t best = 0;
        for (size_t i = 0; i + 1 < n_bounds; i++)
            if (rank[i] < best_rank) {  // strict: the leftmost pair wins a tie
                best_rank = rank[i];
                best = i;
            }
        if (best_rank == INT32_MAX) break;
        // Join parts best and best+1: remove boundary best+1.
        memmove(start + best + 1, start + best + 2, (n_bounds - best - 2) * sizeof(size_t));
        memmove(rank + best + 1, rank + best + 2, (n_bounds - best - 2) * sizeof(int32_t));
        n_bounds--;
        rank[best] = joined_rank(t, piece, start, n_bounds, best);
        if (best > 0) rank[best - 1] = joined_rank(t, piece, start, n_bounds, best - 1);
    }
    for (size_t i = 0; i + 1 < n_bounds; i++) {
        int32_t r = lookup_rank(t, piece + start[i], start[i + 1] - start[i]);
        if (r < 0) fatal("byte_pair_merge: a part is not a token (cannot happen: every byte is one)");
        tokenizer_ids_push(out, r);
    }
}

// Runs the regex over one slice and calls on_piece for each match, as tiktoken's find_iter loop does. added_id is -1
// for a piece of the regex, or the id of an added token that was cut out whole (HF BPE only).
typedef void (*PieceFn)(void *ctx, const uint8_t *text, size_t start, size_t end, int32_t added_id);
static void regex_pieces(const Tokenizer *t, const uint8_t *text, size_t slice_start, size_t slice_end,
                         pcre2_match_data *md, PieceFn on_piece, void *ctx) {
    const uint8_t *subject = text + slice_start;
    size_t len = slice_end - slice_start;
    size_t pos = 0;
    while (pos < len) {
        // NO_UTF_CHECK: the whole text was checked once; without it PCRE2 would re-check the rest at every call.
        int rc = pcre2_match((const pcre2_code *)t->pattern, subject, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            fatal("PCRE2 match failed at byte %zu: %s", slice_start + pos, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        if (ov[1] <= ov[0]) fatal("pre-tokenizer regex matched an empty string at byte %zu", slice_start + (size_t)ov[0]);
        on_piece(ctx, text, slice_start + (size_t)ov[0], slice_start + (size_t)ov[1], -1);
        pos = (size_t)ov[1];
    }
}

// HF's AddedVocabulary: the added tokens are found in text[start, end) leftmost first, the longest at a position
// (t->added is sorted longest first), and each is a piece of its own; the normalized=false ones first (pass 0), then,
// in the text between them, the normalized=true ones (pass 1: with no normalizer the text is the same); what is left
// goes to the pre-tokenizer regex.
static void split_added(const Tokenizer *t, const uint8_t *text, size_t start, size_t end, int pass,
                        pcre2_match_data *md, PieceFn on_piece, void *ctx) {
    if (pass == 2) {
        if (end > start) regex_pieces(t, text, start, end, md, on_piece, ctx);
        return;
    }
    size_t gap = start;
    for (size_t i = start; i < end;) {
        int found = -1;
        size_t found_len = 0;
        for (int k = 0; k < t->n_added && found < 0; k++) {
            const AddedToken *a = &t->added[k];
            if (a->normalized != (pass == 1)) continue;
            size_t n;
            const uint8_t *p = tokenizer_token_bytes(t, a->id, &n);
            if (n <= end - i && p[0] == text[i] && memcmp(p, text + i, n) == 0) found = k, found_len = n;
        }
        if (found < 0) {
            i++;
            continue;
        }
        split_added(t, text, gap, i, pass + 1, md, on_piece, ctx);
        on_piece(ctx, text, i, i + found_len, t->added[found].id);
        i += found_len;
        gap = i;
    }
    split_added(t, text, gap, end, pass + 1, md, on_piece, ctx);
}

// Meta's encode(): chunks of MAX_ENCODE_CHARS characters, each cut so that no slice holds more than
// MAX_SAME_KIND_RUN consecutive whitespace (or non-whitespace) characters; the regex runs on each slice alone.
static void for_each_piece(const Tokenizer *t, const char *text_in, size_t len, PieceFn on_piece, void *ctx) {
    const uint8_t *text = (const uint8_t *)text_in;
    int64_t bad = utf8_first_invalid(text, len);
    if (bad >= 0) input_error("prompt", "invalid UTF-8 at byte %lld", (long long)bad);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern((const pcre2_code *)t->pattern, NULL);
    if (!md) fatal("out of memory creating PCRE2 match data");
    if (t->kind == TOKENIZER_HF_BPE) {  // HF runs its regex over the whole text between added tokens: no chunks
        split_added(t, text, 0, len, 0, md, on_piece, ctx);
        pcre2_match_data_free(md);
        return;
    }

    size_t pos = 0;
    while (pos < len) {
        // One chunk: up to MAX_ENCODE_CHARS code points starting at pos.
        size_t slice_start = pos, run_len = 0;
        bool run_is_space = false;
        for (size_t chars = 0; pos < len && chars < MAX_ENCODE_CHARS; chars++) {
            uint32_t cp;
            int n = tokenizer_utf8_next(text + pos, len - pos, &cp);
            bool is_space = python_isspace(cp);
            if (chars == 0 || is_space != run_is_space) {
                run_is_space = is_space;
                run_len = 1;
            } else if (++run_len > MAX_SAME_KIND_RUN) {
                regex_pieces(t, text, slice_start, pos, md, on_piece, ctx);
                slice_start = pos;
                run_len = 1;
            }
            pos += (size_t)n;
        }
        regex_pieces(t, text, slice_start, pos, md, on_piece, ctx);
    }
    pcre2_match_data_free(md);
}

typedef struct {
    const Tokenizer *t;
    IdBuf ids;
    MergeScratch scratch;
} EncodeCtx;

static void encode_piece(void *vctx, const uint8_t *text, size_t start, size_t end, int32_t added_id) {
    EncodeCtx *c = vctx;
    const uint8_t *piece = text + start;
    size_t n = end - start;
    if (added_id >= 0) {
        tokenizer_ids_push(&c->ids, added_id);
        return;
    }
    if (c->t->kind == TOKENIZER_HF_BPE) {
        tokenizer_bpe_piece(c->t, piece, n, &c->ids);
        return;
    }
    int32_t whole = lookup_rank(c->t, piece, n);  // the shortcut tiktoken keeps: a piece that is a token stays whole
    if (whole >= 0) tokenizer_ids_push(&c->ids, whole);
    else byte_pair_merge(c->t, piece, n, &c->scratch, &c->ids);
}

static void encode_into(const char *text, size_t len, EncodeCtx *c) { for_each_piece(c->t, text, len, encode_piece, c); }

void tokenizer_encode(const Tokenizer *t, const char *text, size_t len, bool bos, bool eos, int32_t **ids, size_t *n_ids) {
    EncodeCtx c = {.t = t};
    if (bos && t->bos_id >= 0) tokenizer_ids_push(&c.ids, t->bos_id);
    encode_into(text, len, &c);
    if (eos && t->eos_id >= 0) tokenizer_ids_push(&c.ids, t->eos_id);
    free(c.scratch.part_start);
    free(c.scratch.pair_rank);
    if (!c.ids.data) c.ids.data = xmalloc(sizeof(int32_t));  // never NULL, even for no ids
    *ids = c.ids.data;
    *n_ids = c.ids.len;
}

typedef struct {
    size_t *starts, *ends;
    size_t n, cap;
} SplitCtx;
static void split_piece(void *vctx, const uint8_t *text, size_t start, size_t end, int32_t added_id) {
    (void)text, (void)added_id;
    SplitCtx *c = vctx;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        c->starts = xrealloc(c->starts, c->cap * sizeof(size_t));
        c->ends = xrealloc(c->ends, c->cap * sizeof(size_t));
    }
    c->starts[c->n] = start;
    c->ends[c->n] = end;
    c->n++;
}

size_t tokenizer_split(const Tokenizer *t, const char *text, size_t len, size_t **starts, size_t **ends) {
    SplitCtx c = {0};
    for_each_piece(t, text, len, split_piece, &c);
    *starts = c.starts ? c.starts : xmalloc(sizeof(size_t));
    *ends = c.ends ? c.ends : xmalloc(sizeof(size_t));
    return c.n;
}

// ---- tokens and decoding ------------------------------------------------------------------------------------------

const uint8_t *tokenizer_token_bytes(const Tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->vocab_size) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = token_len(t, id);
    return t->token_bytes + t->token_start[id];
}

int32_t tokenizer_token_id(const Tokenizer *t, const void *bytes, size_t len) {
    if (len == 0) return -1;
    int32_t r = lookup_rank(t, bytes, len);
    if (r >= 0) return r;
    if (t->kind == TOKENIZER_HF_BPE) {
        for (int k = 0; k < t->n_added; k++) {
            int32_t id = t->added[k].id;
            if (token_len(t, id) == len && memcmp(t->token_bytes + t->token_start[id], bytes, len) == 0) return id;
        }
        return -1;
    }
    for (int32_t id = t->n_base; id < t->vocab_size; id++)
        if (token_len(t, id) == len && memcmp(t->token_bytes + t->token_start[id], bytes, len) == 0) return id;
    return -1;
}

bool tokenizer_is_special(const Tokenizer *t, int32_t id) {
    if (t->kind == TOKENIZER_HF_BPE) {
        for (int k = 0; k < t->n_added; k++)
            if (t->added[k].id == id) return t->added[k].special;
        return false;
    }
    return id >= t->n_base && id < t->vocab_size;
}

char *tokenizer_decode(const Tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    StrBuf out = {0};
    strbuf_add(&out, "", 0);
    for (size_t i = 0; i < n; i++) {
        size_t tl;
        const uint8_t *p = tokenizer_token_bytes(t, ids[i], &tl);
        if (!p) input_error("decode", "id %d is not in 0..%d", ids[i], t->vocab_size - 1);
        strbuf_add(&out, p, tl);
    }
    if (len) *len = out.len;
    return out.data;
}

char *tokenizer_decode_text(const Tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t raw_len;
    char *raw = tokenizer_decode(t, ids, n, &raw_len);
    StrBuf out = {0};
    strbuf_add(&out, "", 0);
    utf8_replace_invalid((const uint8_t *)raw, raw_len, &out, false);
    free(raw);
    if (len) *len = out.len;
    return out.data;
}

// Characters Python's repr() escapes because str.isprintable() is false for them: controls (Cc), separators other
// than the space (Zs, Zl, Zp), and the format characters (Cf) and private-use/non-character code points a learner may
// meet. (Python has the full Unicode tables; this list covers what tokens of this vocabulary contain.)
static bool python_unprintable(uint32_t c) {
    if (c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD) return true;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F))
        return true;
    if (c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB) || c == 0xFFFE || c == 0xFFFF) return true;
    if ((c >= 0x0600 && c <= 0x0605) || c == 0x061C || c == 0x06DD || c == 0x070F || c == 0x180E) return true;
    if ((c >= 0xD800 && c <= 0xF8FF) || c >= 0xF0000 || (c >= 0xE0000 && c <= 0xE007F)) return true;
    return false;
}

size_t tokenizer_piece_display(const Tokenizer *t, int32_t id, char *buf, size_t n) {
    size_t len;
    const uint8_t *p = tokenizer_token_bytes(t, id, &len);
    StrBuf out = {0};
    if (!p) {
        char tmp[48];
        snprintf(tmp, sizeof tmp, "<bad id %d>", id);
        strbuf_add(&out, tmp, strlen(tmp));
    } else {
        // Python picks single quotes unless the text has a ' and no ".
        bool has_single = memchr(p, '\'', len) != NULL, has_double = memchr(p, '"', len) != NULL;
        char quote = (has_single && !has_double) ? '"' : '\'';
        strbuf_add(&out, &quote, 1);
        size_t i = 0;
        while (i < len) {
            uint32_t c;
            int k = tokenizer_utf8_next(p + i, len - i, &c);
            char esc[16];
            if (k <= 0) {  // bytes that are not a character on their own (part of a split character)
                size_t bad = k < 0 ? (size_t)(-k) : len - i;
                for (size_t j = 0; j < bad; j++) {
                    snprintf(esc, sizeof esc, "\\x%02x", p[i + j]);
                    strbuf_add(&out, esc, 4);
                }
                i += bad;
                continue;
            }
            if (c == '\\' || c == (uint32_t)quote) {
                esc[0] = '\\';
                esc[1] = (char)c;
                strbuf_add(&out, esc, 2);
            } else if (c == '\n') strbuf_add(&out, "\\n", 2);
            else if (c == '\r') strbuf_add(&out, "\\r", 2);
            else if (c == '\t') strbuf_add(&out, "\\t", 2);
            else if (python_unprintable(c)) {
                int m = c <= 0xFF ? snprintf(esc, sizeof esc, "\\x%02x", c)
                        : c <= 0xFFFF ? snprintf(esc, sizeof esc, "\\u%04x", c)
                                      : snprintf(esc, sizeof esc, "\\U%08x", c);
                strbuf_add(&out, esc, (size_t)m);
            } else strbuf_add(&out, p + i, (size_t)k);
            i += (size_t)k;
        }
        strbuf_add(&out, &quote, 1);
    }
    if (n > 0) {
        size_t copy = out.len < n - 1 ? out.len : n - 1;
        memcpy(buf, out.data, copy);
        buf[copy] = 0;
    }
    size_t need = out.len;
    free(out.data);
    return need;
}

// ---- streaming decoder --------------------------------------------------------------------------------------------

void token_stream_init(TokenStream *s) { memset(s, 0, sizeof *s); }

static const char *stream_emit(TokenStream *s, StrBuf *text, size_t *len) {
    // Bounded: pending (<= 3) + one token (<= MAX_TOKEN_BYTES, or a special name) -> at most 3 output bytes each.
    size_t n = text->len < sizeof s->out - 1 ? text->len : sizeof s->out - 1;
    if (n) memcpy(s->out, text->data, n);
    s->out[n] = 0;
    free(text->data);
    if (len) *len = n;
    return s->out;
}

const char *token_stream_push(TokenStream *s, const Tokenizer *t, int32_t id, size_t *len) {
    size_t tl;
    const uint8_t *p = tokenizer_token_bytes(t, id, &tl);
    if (!p) input_error("decode", "id %d is not in 0..%d", id, t->vocab_size - 1);
    uint8_t joined[4 + MAX_TOKEN_BYTES + 64];  // both loaders keep every token (special names too) within MAX_TOKEN_BYTES
    size_t n = 0;
    memcpy(joined, s->pending, (size_t)s->n_pending);
    n = (size_t)s->n_pending;
    if (tl > sizeof joined - n) fatal("token %d is too long for the stream decoder", id);
    memcpy(joined + n, p, tl);
    n += tl;
    StrBuf text = {0};
    size_t held = utf8_replace_invalid(joined, n, &text, true);
    memcpy(s->pending, joined + n - held, held);  // held <= 3: a cut-short character is at most 3 bytes
    s->n_pending = (int)held;
    return stream_emit(s, &text, len);
}

const char *token_stream_flush(TokenStream *s, size_t *len) {
    StrBuf text = {0};
    utf8_replace_invalid(s->pending, (size_t)s->n_pending, &text, false);
    s->n_pending = 0;
    return stream_emit(s, &text, len);
}

// ---- chat format and stop tokens ----------------------------------------------------------------------------------

// Python's str.strip(): drop leading and trailing characters for which isspace() is true.
static void strip_python_space(const char *text, size_t *start, size_t *end) {
    const uint8_t *s = (const uint8_t *)text;
    size_t len = *end, i = 0, last_non_space = 0;
    bool seen = false;
    *start = len;
    while (i < len) {
        uint32_t c;
        int n = tokenizer_utf8_next(s + i, len - i, &c);
        if (n <= 0) n = 1, c = 0xFFFD;  // invalid bytes are caught by encode(); here they just count as text
        if (!python_isspace(c)) {
            if (!seen) *start = i;
            seen = true;
            last_non_space = i + (size_t)n;
        }
        i += (size_t)n;
    }
    *end = seen ? last_non_space : len;
}

static void encode_header(const Tokenizer *t, const char *role, EncodeCtx *c) {
    tokenizer_ids_push(&c->ids, TOKEN_START_HEADER_ID - TOKENIZER_LLAMA3_N_BASE + t->n_base);
    encode_into(role, strlen(role), c);
    tokenizer_ids_push(&c->ids, TOKEN_END_HEADER_ID - TOKENIZER_LLAMA3_N_BASE + t->n_base);
    encode_into("\n\n", 2, c);
}

void tokenizer_encode_chat(const Tokenizer *t, const ChatMessage *messages, size_t n_messages, int32_t **ids, size_t *n_ids) {
    if (t->kind != TOKENIZER_TIKTOKEN)
        input_error(t->path, "the chat format is Llama 3's; this tokenizer.json's model uses another one (ChatML) that "
                             "is not built here: give the prompt text itself");
    EncodeCtx c = {.t = t};
    tokenizer_ids_push(&c.ids, t->n_base + 0);  // <|begin_of_text|>
    for (size_t i = 0; i < n_messages; i++) {
        encode_header(t, messages[i].role, &c);
        size_t start, end = strlen(messages[i].content);
        strip_python_space(messages[i].content, &start, &end);
        encode_into(messages[i].content + start, end - start, &c);
        tokenizer_ids_push(&c.ids, TOKEN_EOT_ID - TOKENIZER_LLAMA3_N_BASE + t->n_base);
    }
    encode_header(t, "assistant", &c);  // the model continues from here with the answer
    free(c.scratch.part_start);
    free(c.scratch.pair_rank);
    *ids = c.ids.data;
    *n_ids = c.ids.len;
}

bool tokenizer_is_stop_token(const Tokenizer *t, int32_t id) {
    for (int i = 0; i < t->n_stop; i++)
        if (t->stop_ids[i] == id) return true;
    return false;
}

void tokenizer_add_stop_token(Tokenizer *t, int32_t id) {
    if (tokenizer_is_stop_token(t, id)) return;
    if (t->n_stop == (int)(sizeof t->stop_ids / sizeof t->stop_ids[0])) fatal("too many stop tokens");
    t->stop_ids[t->n_stop++] = id;
}

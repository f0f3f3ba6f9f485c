// tokenizer_convert.c: HF tokenizer.json (byte-level BPE) -> Meta's tokenizer.model (tiktoken). formats.md §4.
//
// tokenizer.json keeps every token as a string in which each BYTE is shown as one printable code point
// (GPT-2's bytes_to_unicode: ' ' is 'Ġ' U+0120, '\n' is 'Ċ' U+010A). Undoing that map gives the token's bytes;
// tokenizer.model is then one line per token, sorted by id: base64(bytes) + " " + id + "\n".
// For the Llama 3 tokenizer.json this reproduces Meta's file byte for byte (md5 08292403f8b173e7524d7fba7bbbd2d3).
// No merges are needed: tiktoken merges by the rank (= id) of the joined bytes.
//
// Use: tokenizer_json_to_model("tokenizer.json", "tokenizer.model");   (wt-convert tokenizer IN.json OUT.model)
#include "tokenizer/tokenizer_convert.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_internal.h"
#include "util.h"

// GPT-2's bytes_to_unicode(): the 188 printable bytes (0x21-0x7E, 0xA1-0xAC, 0xAE-0xFF) stand for themselves; the
// other 68 bytes, in increasing order, become U+0100, U+0101, ... U+0143. byte_of_codepoint is its inverse (-1 where
// a code point stands for no byte).
void tokenizer_byte_level_inverse(int byte_of_codepoint[BYTE_LEVEL_CODEPOINTS]) {
    for (int c = 0; c < BYTE_LEVEL_CODEPOINTS; c++) byte_of_codepoint[c] = -1;
    int next = 0x100;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_of_codepoint[printable ? b : next++] = b;
    }
}

int tokenizer_utf8_decode_one(const uint8_t *s, size_t avail, uint32_t *cp) {
    uint8_t b = s[0];
    int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    if ((size_t)n > avail) n = (int)avail;
    uint32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; k++) c = (c << 6) | (s[k] & 0x3F);
    *cp = c;
    return n;
}

static int compare_json_int(const void *a, const void *b) {
    json_int_t x = *(const json_int_t *)a, y = *(const json_int_t *)b;
    return (x > y) - (x < y);
}

char *tokenizer_short_repr(const char *s, size_t n) { return xasprintf("\"%.*s\"%s", (int)(n < 40 ? n : 40), s, n > 40 ? "..." : ""); }

json_t *tokenizer_json_load(const char *json_path) {
    json_error_t jerr;
    // ALLOW_NUL: a vocabulary string may hold "\u0000" (it never does for Llama 3, but it is valid JSON).
    json_t *root = json_load_file(json_path, JSON_ALLOW_NUL, &jerr);
    if (!root) {
        if (!file_exists(json_path)) input_error(json_path, "cannot open: %s", jerr.text);
        input_error(json_path, "not valid JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    }
    if (!json_is_object(root)) input_error(json_path, "expected a JSON object at the top (a HF tokenizer.json)");
    return root;
}

bool tokenizer_json_is_llama3(const json_t *root) {
    json_t *steps = json_object_get(json_object_get(root, "pre_tokenizer"), "pretokenizers");
    for (size_t i = 0; json_is_array(steps) && i < json_array_size(steps); i++) {
        json_t *regex = json_object_get(json_object_get(json_array_get(steps, i), "pattern"), "Regex");
        if (json_is_string(regex) && strcmp(json_string_value(regex), TOKENIZER_PAT_STR) == 0) return true;
    }
    return false;
}

void tokenizer_json_to_model(const char *json_path, const char *out_path) {
    json_t *root = tokenizer_json_load(json_path);
    size_t len;
    char *text = tokenizer_json_model_text(root, json_path, &len);
    AtomicFile out;  // written in one go, through a .partial file renamed at the end
    atomic_open(&out, out_path);
    fwrite(text, 1, len, out.f);
    if (ferror(out.f)) fatal("%s: write failed", out.tmp_path);
    atomic_commit(&out);
    free(text);
    json_decref(root);
}

char *tokenizer_json_model_text(const json_t *root, const char *json_path, size_t *text_len) {
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) input_error(json_path, "model: expected an object (is this a HF tokenizer.json?)");
    json_t *type = json_object_get(model, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), "BPE") != 0)
        input_error(json_path, "model.type: expected \"BPE\" (a byte-level BPE like Llama 3), found %s",
                    json_is_string(type) ? json_string_value(type) : "no string");
    json_t *byte_fallback = json_object_get(model, "byte_fallback");
    if (json_is_true(byte_fallback))
        input_error(json_path, "model.byte_fallback: expected false: this is a SentencePiece-style BPE (Llama 2), "
                               "not a byte-level one");
    // The pre-tokenizer regex is fixed in tokenizer.c; a different one would silently change the pieces.
    json_t *pre = json_object_get(root, "pre_tokenizer");
    json_t *steps = json_object_get(pre, "pretokenizers");
    for (size_t i = 0; json_is_array(steps) && i < json_array_size(steps); i++) {
        json_t *regex = json_object_get(json_object_get(json_array_get(steps, i), "pattern"), "Regex");
        if (json_is_string(regex) && strcmp(json_string_value(regex), TOKENIZER_PAT_STR) != 0)
            input_error(json_path, "pre_tokenizer.pretokenizers[%zu].pattern.Regex: expected Llama 3's pat_str, found "
                                   "another regex", i);
    }

    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab)) input_error(json_path, "model.vocab: expected an object {token: id}");

    // Ids of the special tokens (added_tokens): they belong to the tokenizer, not to the .model file.
    json_t *added = json_object_get(root, "added_tokens");
    if (added && !json_is_array(added)) input_error(json_path, "added_tokens: expected an array");
    size_t n_entries = json_object_size(vocab);
    if (n_entries == 0) input_error(json_path, "model.vocab: empty");

    int byte_of_cp[BYTE_LEVEL_CODEPOINTS];
    tokenizer_byte_level_inverse(byte_of_cp);

    // Ordinary ids must be 0..N-1, each once. N = the entries that are not added tokens.
    size_t n_added = added ? json_array_size(added) : 0;
    json_int_t *added_ids = xmalloc((n_added + 1) * sizeof(json_int_t));
    for (size_t i = 0; i < n_added; i++) {
        json_t *aid = json_object_get(json_array_get(added, i), "id");
        if (!json_is_integer(aid)) input_error(json_path, "added_tokens[%zu].id: expected an integer", i);
        added_ids[i] = json_integer_value(aid);
    }
    qsort(added_ids, n_added, sizeof(json_int_t), compare_json_int);

    size_t n_ordinary = 0;
    uint8_t **bytes_of_id = xcalloc(n_entries, sizeof(uint8_t *));
    size_t *len_of_id = xcalloc(n_entries, sizeof(size_t));
    const char *key;
    size_t key_len;  // from the iterator: a key may contain "\u0000", so strlen() could be short
    json_t *value;
    json_object_keylen_foreach(vocab, key, key_len, value) {
        if (!json_is_integer(value))
            input_error(json_path, "model.vocab[\"%.40s\"]: expected an integer id", key);
        json_int_t id = json_integer_value(value);
        if (bsearch(&id, added_ids, n_added, sizeof(json_int_t), compare_json_int)) continue;
        if (id < 0 || (size_t)id >= n_entries)
            input_error(json_path, "model.vocab[\"%.40s\"]: id %lld is out of range 0..%zu", key, (long long)id,
                        n_entries - 1);
        if (bytes_of_id[id])
            input_error(json_path, "model.vocab: id %lld appears twice (\"%.40s\")", (long long)id, key);
        uint8_t *bytes = xmalloc(key_len + 1);
        size_t n = 0;
        for (size_t i = 0; i < key_len;) {
            uint32_t cp;
            i += (size_t)tokenizer_utf8_decode_one((const uint8_t *)key + i, key_len - i, &cp);
            if (cp >= BYTE_LEVEL_CODEPOINTS || byte_of_cp[cp] < 0) {
                char *shown = tokenizer_short_repr(key, key_len);
                input_error(json_path, "model.vocab[%s]: code point U+%04X is not in the byte-level alphabet "
                                       "(bytes_to_unicode): not a byte-level BPE", shown, (unsigned)cp);
            }
            bytes[n++] = (uint8_t)byte_of_cp[cp];
        }
        if (n == 0) input_error(json_path, "model.vocab: an empty token string (id %lld)", (long long)id);
        if (n > MAX_TOKEN_BYTES)
            input_error(json_path, "model.vocab: id %lld has %zu bytes, more than the %d tokenizer.c accepts",
                        (long long)id, n, MAX_TOKEN_BYTES);
        bytes_of_id[id] = bytes;
        len_of_id[id] = n;
        n_ordinary++;
    }
    for (size_t id = 0; id < n_ordinary; id++)
        if (!bytes_of_id[id])
            input_error(json_path, "model.vocab: id %zu is missing (ids must be 0..%zu, each once)", id, n_ordinary - 1);

    StrBuf out = {0};
    for (size_t id = 0; id < n_ordinary; id++) {
        char *b64 = base64_encode(bytes_of_id[id], len_of_id[id]);  // util.h
        strbuf_addf(&out, "%s %zu\n", b64, id);
        free(b64);
        free(bytes_of_id[id]);
    }
    free(bytes_of_id);
    free(len_of_id);
    free(added_ids);
    *text_len = out.len;
    return strbuf_take(&out);
}

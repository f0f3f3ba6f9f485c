// tokenizer_bpe.c: an HF `tokenizers` byte-level BPE read from its tokenizer.json (MiniMind's). formats.md §4 has
// the file and bytes_to_unicode (for Llama 3's, which tokenizer_convert.c turns into a tokenizer.model instead).
//
// What the file holds and what is taken from it
//   model.vocab       {token string: id}, V entries (MiniMind: 6400). Each string shows one BYTE per code point
//                     (GPT-2's bytes_to_unicode: ' ' is 'Ġ', '\n' is 'Ċ'); undoing that map gives the token's bytes.
//   model.merges      M pairs, in merge order: merges[r] = (left, right) joins two tokens into left+right, which
//                     must be in the vocab too; r is the pair's rank. Either "left right" strings or [left, right]
//                     arrays (newer files).
//   added_tokens      [{id, content, special, normalized, ...}]: control tokens ("<|im_start|>") cut out whole
//                     from the text before the pre-tokenizer (tokenizer.c, split_added); their bytes are the content.
//   pre_tokenizer     ByteLevel: GPT-2's regex cuts the text into pieces (tokenizer.c, GPT2_PCRE2_PATTERN).
//   decoder           ByteLevel: ids -> the concatenated bytes of the tokens.
// Encoding one piece (tokenizer_bpe_piece): start from its single bytes (every byte is a token); repeatedly join the
// adjacent pair with the LOWEST MERGE RANK, the leftmost one on ties, until no adjacent pair is in merges. This is
// HF's BPE::merge_word. It differs from tiktoken (tokenizer.c, byte_pair_merge), which joins the pair whose joined
// bytes have the lowest token rank, whether or not that pair is a merge.
// Sizes: V ids 0..V-1, each either a vocab entry or an added token; M merges; a piece of n bytes costs O(n log n).
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_internal.h"
#include "util.h"

// Bounds that keep a hostile file from asking for huge allocations (MiniMind: 6400 ids, 6108 merges).
#define MAX_BPE_IDS (1 << 22)
#define MAX_BPE_MERGES (1 << 22)
#define MAX_ADDED 4096  // each is looked for at every byte of the text (Llama 3 has 256)

// ---- the merge table: (left id, right id) -> rank and joined id ---------------------------------------------------

static uint64_t mix64(uint64_t x) {  // splitmix64's finaliser: spreads the two ids over the slots
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}
static uint64_t pair_key(int32_t left, int32_t right) { return (((uint64_t)(uint32_t)left << 32) | (uint32_t)right) + 1; }

// The slot of the pair: where it is, or the empty slot where it would go.
static size_t merge_slot(const Tokenizer *t, uint64_t key) {
    size_t slot = mix64(key) & t->merge_mask;
    while (t->merge_keys[slot] && t->merge_keys[slot] != key) slot = (slot + 1) & t->merge_mask;
    return slot;
}

static bool merge_find(const Tokenizer *t, int32_t left, int32_t right, uint32_t *rank, int32_t *joined) {
    size_t slot = merge_slot(t, pair_key(left, right));
    if (!t->merge_keys[slot]) return false;
    *rank = t->merge_rank[slot];
    *joined = t->merge_joined[slot];
    return true;
}

// ---- encoding one piece ---------------------------------------------------------------------------------------------

typedef struct {
    uint32_t rank, pos;  // a candidate join of the symbol at pos with the next one
} Candidate;

static bool cand_less(Candidate a, Candidate b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

static void heap_push(Candidate *h, size_t *n, Candidate c) {
    size_t i = (*n)++;
    while (i > 0 && cand_less(c, h[(i - 1) / 2])) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = c;
}

static Candidate heap_pop(Candidate *h, size_t *n) {
    Candidate top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && cand_less(h[c + 1], h[c])) c++;
        if (!cand_less(h[c], last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = last;
    return top;
}

void tokenizer_bpe_piece(const Tokenizer *t, const uint8_t *piece, size_t n, IdBuf *out) {
    if (n == 0) return;
    if (t->ignore_merges) {  // model.ignore_merges: a piece that is a token is taken whole
        // (an added token's text never reaches here: it was cut out of the text before the pre-tokenizer)
        int32_t whole = tokenizer_token_id(t, piece, n);
        if (whole >= 0) {
            tokenizer_ids_push(out, whole);
            return;
        }
    }
    // The symbols form a linked list over the piece's bytes; a joined symbol keeps the position of its left part.
    int32_t *id = xmalloc(n * sizeof(int32_t));
    size_t *next = xmalloc(n * sizeof(size_t)), *prev = xmalloc(n * sizeof(size_t));  // n / SIZE_MAX = none
    bool *alive = xmalloc(n);
    Candidate *heap = xmalloc(3 * n * sizeof(Candidate));  // n - 1 at the start, at most 2 more per join
    size_t n_heap = 0;
    for (size_t i = 0; i < n; i++) {
        id[i] = t->byte_rank[piece[i]];
        next[i] = i + 1;
        prev[i] = i == 0 ? SIZE_MAX : i - 1;
        alive[i] = true;
    }
    uint32_t rank;
    int32_t joined;
    for (size_t i = 0; i + 1 < n; i++)
        if (merge_find(t, id[i], id[i + 1], &rank, &joined)) heap_push(heap, &n_heap, (Candidate){rank, (uint32_t)i});
    while (n_heap) {
        Candidate c = heap_pop(heap, &n_heap);
        size_t i = c.pos, j = next[i];
        // A stale candidate: its left symbol was joined into its neighbour, or either side changed since it was pushed
        // (the pair now there has another rank, or none). A pair's rank names the pair, so an equal rank is this pair.
        if (!alive[i] || j >= n || !merge_find(t, id[i], id[j], &rank, &joined) || rank != c.rank) continue;
        id[i] = joined;
        alive[j] = false;
        next[i] = next[j];
        if (next[j] < n) prev[next[j]] = i;
        if (prev[i] != SIZE_MAX && merge_find(t, id[prev[i]], id[i], &rank, &joined))
            heap_push(heap, &n_heap, (Candidate){rank, (uint32_t)prev[i]});
        if (next[i] < n && merge_find(t, id[i], id[next[i]], &rank, &joined))
            heap_push(heap, &n_heap, (Candidate){rank, (uint32_t)i});
    }
    for (size_t i = 0; i < n; i = next[i]) tokenizer_ids_push(out, id[i]);
    free(id), free(next), free(prev), free(alive), free(heap);
}

// ---- loading ----------------------------------------------------------------------------------------------------------

// The "type" of an optional component, for messages: "null" when absent or null.
static const char *type_of(const json_t *component) {
    if (!component || json_is_null(component)) return "null";
    const char *s = json_string_value(json_object_get(component, "type"));
    return s ? s : "an object without a string \"type\"";
}

// A boolean field of obj: absent -> dflt; false (message in err) when present and not a boolean.
static bool get_bool(const json_t *obj, const char *key, bool dflt, bool *value, const char *where, char *err, size_t errlen) {
    const json_t *v = json_object_get(obj, key);
    if (!v) {
        *value = dflt;
        return true;
    }
    if (!json_is_boolean(v)) return fail_msg(err, errlen, "%s.%s: expected true or false", where, key);
    *value = json_is_true(v);
    return true;
}

// The components around the model: only what MiniMind's file uses is accepted, anything else is named.
static bool check_pipeline(const json_t *root, char *err, size_t errlen) {
    const json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm))
        return fail_msg(err, errlen, "normalizer: expected null (a byte-level BPE sees the text as it is), found %s", type_of(norm));
    const json_t *pre = json_object_get(root, "pre_tokenizer");
    if (!json_is_object(pre) || strcmp(type_of(pre), "ByteLevel") != 0)
        return fail_msg(err, errlen, "pre_tokenizer: expected ByteLevel (GPT-2's regex, as MiniMind's), found %s", type_of(pre));
    bool prefix_space = false, use_regex = true;
    // HF's defaults when a key is absent: add_prefix_space true, use_regex true.
    if (!get_bool(pre, "add_prefix_space", true, &prefix_space, "pre_tokenizer", err, errlen)) return false;
    if (!get_bool(pre, "use_regex", true, &use_regex, "pre_tokenizer", err, errlen)) return false;
    if (prefix_space) return fail_msg(err, errlen, "pre_tokenizer.add_prefix_space: expected false (MiniMind's), found true: not supported here");
    if (!use_regex) return fail_msg(err, errlen, "pre_tokenizer.use_regex: expected true (GPT-2's regex), found false: not supported here");
    const json_t *dec = json_object_get(root, "decoder");
    if (!json_is_object(dec) || strcmp(type_of(dec), "ByteLevel") != 0)
        return fail_msg(err, errlen, "decoder: expected ByteLevel, found %s", type_of(dec));
    const json_t *post = json_object_get(root, "post_processor");
    if (post && !json_is_null(post) && strcmp(type_of(post), "ByteLevel") != 0)
        return fail_msg(err, errlen, "post_processor: expected null or ByteLevel (BOS comes from tokenizer_config.json), found %s",
                        type_of(post));
    return true;
}

// model.*: the BPE options that would change the result must be off.
static bool check_model_options(const json_t *model, bool *ignore_merges, char *err, size_t errlen) {
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!type || strcmp(type, "BPE") != 0)
        return fail_msg(err, errlen, "model.type: expected \"BPE\", found %s%s%s", type ? "\"" : "", type ? type : "no string", type ? "\"" : "");
    const json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && !(json_is_number(dropout) && json_number_value(dropout) == 0))
        return fail_msg(err, errlen, "model.dropout: expected null (BPE-dropout skips merges at random)");
    const char *affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const json_t *v = json_object_get(model, affixes[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0))
            return fail_msg(err, errlen, "model.%s: expected null (a byte-level BPE has no word affixes)", affixes[k]);
    }
    bool byte_fallback = false;
    if (!get_bool(model, "byte_fallback", false, &byte_fallback, "model", err, errlen)) return false;
    if (byte_fallback) return fail_msg(err, errlen, "model.byte_fallback: expected false: this is a SentencePiece-style BPE, not a byte-level one");
    const json_t *unk = json_object_get(model, "unk_token");  // never used: every byte is a token
    if (unk && !json_is_null(unk) && !json_is_string(unk)) return fail_msg(err, errlen, "model.unk_token: expected a string or null");
    return get_bool(model, "ignore_merges", false, ignore_merges, "model", err, errlen);
}

// The added tokens: ids, contents (their bytes), flags. Sorted longest first afterwards.
static bool read_added(const json_t *added, Tokenizer *t, char *err, size_t errlen) {
    if (added && !json_is_array(added)) return fail_msg(err, errlen, "added_tokens: expected an array");
    size_t n = added ? json_array_size(added) : 0;
    if (n > MAX_ADDED) return fail_msg(err, errlen, "added_tokens: %zu entries, more than the %d accepted", n, MAX_ADDED);
    t->added = xcalloc(n + 1, sizeof(AddedToken));
    t->n_added = (int)n;
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(added, i);
        if (!json_is_object(a)) return fail_msg(err, errlen, "added_tokens[%zu]: expected an object", i);
        const json_t *jid = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(jid) || json_integer_value(jid) < 0 || json_integer_value(jid) >= MAX_BPE_IDS)
            return fail_msg(err, errlen, "added_tokens[%zu].id: expected an integer 0..%d", i, MAX_BPE_IDS - 1);
        if (!json_is_string(content) || json_string_length(content) == 0 || json_string_length(content) > MAX_TOKEN_BYTES)
            return fail_msg(err, errlen, "added_tokens[%zu].content: expected a string of 1..%d bytes", i, MAX_TOKEN_BYTES);
        char where[48];
        snprintf(where, sizeof where, "added_tokens[%zu]", i);
        bool special = false, normalized = false, flag = false;
        if (!get_bool(a, "special", false, &special, where, err, errlen)) return false;
        if (!get_bool(a, "normalized", !special, &normalized, where, err, errlen)) return false;
        const char *unsupported[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3; k++) {
            if (!get_bool(a, unsupported[k], false, &flag, where, err, errlen)) return false;
            if (flag) return fail_msg(err, errlen, "%s.%s: expected false (not supported here), found true", where, unsupported[k]);
        }
        t->added[i] = (AddedToken){(int32_t)json_integer_value(jid), special, normalized};
    }
    return true;
}

// Sorts t->added longest first (then by bytes, so that equal contents are neighbours); false if two added tokens are
// the same text.
typedef struct {
    const uint8_t *bytes;
    size_t len;
    AddedToken a;
} AddedSort;
static int longest_first(const void *pa, const void *pb) {
    const AddedSort *a = pa, *b = pb;
    if (a->len != b->len) return a->len < b->len ? 1 : -1;
    int c = memcmp(a->bytes, b->bytes, a->len);
    return c ? c : (a->a.id > b->a.id) - (a->a.id < b->a.id);
}
static bool sort_added(Tokenizer *t, char *err, size_t errlen) {
    AddedSort *v = xmalloc(((size_t)t->n_added + 1) * sizeof *v);
    for (int k = 0; k < t->n_added; k++) {
        v[k].a = t->added[k];
        v[k].bytes = tokenizer_token_bytes(t, t->added[k].id, &v[k].len);
    }
    qsort(v, (size_t)t->n_added, sizeof *v, longest_first);
    bool ok = true;
    for (int k = 0; k < t->n_added; k++) {
        t->added[k] = v[k].a;
        if (k && ok && v[k].len == v[k - 1].len && memcmp(v[k].bytes, v[k - 1].bytes, v[k].len) == 0)
            ok = fail_msg(err, errlen, "added_tokens: ids %d and %d are the same text \"%.40s\"", v[k - 1].a.id, v[k].a.id,
                          (const char *)v[k].bytes);
    }
    free(v);
    return ok;
}

// The model.vocab entry of a token string, or -1.
static int32_t vocab_id(const json_t *vocab, const char *s, size_t n) {
    const json_t *v = json_object_getn(vocab, s, n);
    return json_is_integer(v) ? (int32_t)json_integer_value(v) : -1;
}

// merges[i] as its two token strings: "left right" or ["left", "right"].
static bool merge_parts(const json_t *m, size_t i, const char **l, size_t *nl, const char **r, size_t *nr, char *err, size_t errlen) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *space = memchr(s, ' ', json_string_length(m));
        size_t n = json_string_length(m);
        if (!space || space == s || space + 1 == s + n || memchr(space + 1, ' ', (size_t)(s + n - space - 1)))
            return fail_msg(err, errlen, "model.merges[%zu]: expected \"LEFT RIGHT\" (two tokens, one space)", i);
        *l = s, *nl = (size_t)(space - s), *r = space + 1, *nr = (size_t)(s + n - space - 1);
        return true;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) && json_is_string(json_array_get(m, 1))) {
        *l = json_string_value(json_array_get(m, 0)), *nl = json_string_length(json_array_get(m, 0));
        *r = json_string_value(json_array_get(m, 1)), *nr = json_string_length(json_array_get(m, 1));
        return true;
    }
    return fail_msg(err, errlen, "model.merges[%zu]: expected \"LEFT RIGHT\" or [\"LEFT\", \"RIGHT\"]", i);
}

// The merge table; every part and every joined token must be in model.vocab, and no pair may come twice.
static bool read_merges(const json_t *vocab, const json_t *merges, Tokenizer *t, char *err, size_t errlen) {
    if (!json_is_array(merges)) return fail_msg(err, errlen, "model.merges: expected an array of pairs");
    size_t n = json_array_size(merges);
    if (n > MAX_BPE_MERGES) return fail_msg(err, errlen, "model.merges: %zu pairs, more than the %d accepted", n, MAX_BPE_MERGES);
    size_t slots = 1024;
    while (slots < 2 * n) slots *= 2;
    t->merge_keys = xcalloc(slots, sizeof(uint64_t));
    t->merge_rank = xcalloc(slots, sizeof(uint32_t));
    t->merge_joined = xcalloc(slots, sizeof(int32_t));
    t->merge_mask = slots - 1;
    char joined[2 * MAX_TOKEN_BYTES * 4 + 1];  // two token strings, each at most 4 UTF-8 bytes per token byte
    for (size_t i = 0; i < n; i++) {
        const char *l = NULL, *r = NULL;
        size_t nl = 0, nr = 0;
        if (!merge_parts(json_array_get(merges, i), i, &l, &nl, &r, &nr, err, errlen)) return false;
        int32_t left = vocab_id(vocab, l, nl), right = vocab_id(vocab, r, nr);
        const char *missing = left < 0 ? l : right < 0 ? r : NULL;
        if (missing) {
            size_t nm = left < 0 ? nl : nr;
            char *shown = tokenizer_short_repr(missing, nm);
            bool ok = fail_msg(err, errlen, "model.merges[%zu]: %s is not in model.vocab", i, shown);
            free(shown);
            return ok;
        }
        int32_t to = -1;
        if (nl + nr < sizeof joined) {
            memcpy(joined, l, nl);
            memcpy(joined + nl, r, nr);
            to = vocab_id(vocab, joined, nl + nr);
        }
        if (to < 0) {
            char *sl = tokenizer_short_repr(l, nl), *sr = tokenizer_short_repr(r, nr);
            bool ok = fail_msg(err, errlen, "model.merges[%zu]: the joined token %s + %s is not in model.vocab", i, sl, sr);
            free(sl), free(sr);
            return ok;
        }
        uint64_t key = pair_key(left, right);
        size_t slot = merge_slot(t, key);
        if (t->merge_keys[slot])
            return fail_msg(err, errlen, "model.merges[%zu]: the same pair as merges[%u]", i, t->merge_rank[slot]);
        t->merge_keys[slot] = key;
        t->merge_rank[slot] = (uint32_t)i;
        t->merge_joined[slot] = to;
    }
    t->n_merges = (int32_t)n;
    return true;
}

// Ids, bytes and the index: every id 0..V-1 is a vocab entry (bytes = the string through bytes_to_unicode) or an added
// token (bytes = its content, added_content[k]), the same id never twice.
static bool read_vocab(const json_t *vocab, const json_t *added_json, Tokenizer *t, char *err, size_t errlen) {
    if (!json_is_object(vocab)) return fail_msg(err, errlen, "model.vocab: expected an object {token: id}");
    size_t n_entries = json_object_size(vocab);
    if (n_entries == 0) return fail_msg(err, errlen, "model.vocab: empty");
    int64_t max_id = -1;
    const char *key;
    size_t key_len;
    json_t *value;
    json_object_keylen_foreach((json_t *)vocab, key, key_len, value) {
        if (!json_is_integer(value) || json_integer_value(value) < 0 || json_integer_value(value) >= MAX_BPE_IDS) {
            char *shown = tokenizer_short_repr(key, key_len);
            bool ok = fail_msg(err, errlen, "model.vocab[%s]: expected an integer id 0..%d", shown, MAX_BPE_IDS - 1);
            free(shown);
            return ok;
        }
        if (json_integer_value(value) > max_id) max_id = json_integer_value(value);
    }
    for (int k = 0; k < t->n_added; k++)
        if (t->added[k].id > max_id) max_id = t->added[k].id;
    // Every id below V must be present, so V cannot exceed the entries: checked before anything of size V is allocated.
    if ((size_t)max_id >= n_entries + (size_t)t->n_added)
        return fail_msg(err, errlen, "model.vocab: id %lld, but only %zu entries and %d added tokens: ids must be 0..V-1, each once",
                        (long long)max_id, n_entries, t->n_added);
    int32_t V = (int32_t)max_id + 1;
    const char **src = xcalloc((size_t)V, sizeof(char *));  // the vocab string of each id, or the added content
    size_t *src_len = xcalloc((size_t)V, sizeof(size_t));
    bool *is_added = xcalloc((size_t)V, sizeof(bool));
    int byte_of_cp[BYTE_LEVEL_CODEPOINTS];
    tokenizer_byte_level_inverse(byte_of_cp);
    bool ok = true;
    json_object_keylen_foreach((json_t *)vocab, key, key_len, value) {
        int32_t id = (int32_t)json_integer_value(value);
        if (src[id]) {
            char *a = tokenizer_short_repr(src[id], src_len[id]), *b = tokenizer_short_repr(key, key_len);
            ok = fail_msg(err, errlen, "model.vocab: id %d appears twice (%s and %s)", id, a, b);
            free(a), free(b);
            break;
        }
        src[id] = key, src_len[id] = key_len;
    }
    // Added tokens: their content is their text. One that is also in the vocab must be the same string with the same id.
    for (int k = 0; k < t->n_added && ok; k++) {
        int32_t id = t->added[k].id;
        const json_t *content = json_object_get(json_array_get(added_json, (size_t)k), "content");
        const char *c = json_string_value(content);
        size_t n = json_string_length(content);
        int32_t in_vocab = vocab_id(vocab, c, n);
        char *shown = tokenizer_short_repr(c, n);
        if (is_added[id]) ok = fail_msg(err, errlen, "added_tokens[%d].id: id %d appears twice", k, id);
        else if (src[id] && (src_len[id] != n || memcmp(src[id], c, n) != 0))
            ok = fail_msg(err, errlen, "added_tokens[%d]: id %d is %s, but another string in model.vocab", k, id, shown);
        else if (in_vocab >= 0 && in_vocab != id)
            ok = fail_msg(err, errlen, "added_tokens[%d]: %s has id %d, but %d in model.vocab", k, shown, id, in_vocab);
        free(shown);
        is_added[id] = true;
        src[id] = c, src_len[id] = n;
    }
    for (int32_t id = 0; id < V && ok; id++)
        if (!src[id]) ok = fail_msg(err, errlen, "model.vocab: id %d is missing (ids must be 0..%d, each once)", id, V - 1);
    // The bytes of every id, in id order.
    size_t total = 0;
    for (int32_t id = 0; id < V && ok; id++) total += src_len[id];  // bytes <= UTF-8 bytes of the string
    if (ok) {
        t->vocab_size = V;
        t->n_base = V;
        t->token_bytes = xmalloc(total + 1);
        t->token_start = xmalloc(((size_t)V + 1) * sizeof(size_t));
    }
    size_t at = 0;
    for (int32_t id = 0; id < V && ok; id++) {
        t->token_start[id] = at;
        size_t start = at;
        if (is_added[id]) {
            memcpy(t->token_bytes + at, src[id], src_len[id]);
            at += src_len[id];
            continue;
        }
        for (size_t i = 0; i < src_len[id] && ok;) {
            uint32_t cp;
            i += (size_t)tokenizer_utf8_decode_one((const uint8_t *)src[id] + i, src_len[id] - i, &cp);
            if (cp >= BYTE_LEVEL_CODEPOINTS || byte_of_cp[cp] < 0) {
                char *shown = tokenizer_short_repr(src[id], src_len[id]);
                ok = fail_msg(err, errlen, "model.vocab[%s]: code point U+%04X is not in the byte-level alphabet "
                                           "(bytes_to_unicode): not a byte-level BPE", shown, (unsigned)cp);
                free(shown);
            } else t->token_bytes[at++] = (uint8_t)byte_of_cp[cp];
        }
        if (ok && at - start > MAX_TOKEN_BYTES)
            ok = fail_msg(err, errlen, "model.vocab: id %d has %zu bytes, more than the %d accepted", id, at - start, MAX_TOKEN_BYTES);
        if (ok && at == start) ok = fail_msg(err, errlen, "model.vocab: id %d is an empty string", id);
    }
    if (ok) {
        t->token_start[V] = at;
        int32_t other, dup = tokenizer_index_tokens(t, V, is_added, &other);
        if (dup >= 0) ok = fail_msg(err, errlen, "model.vocab: ids %d and %d are the same bytes", other, dup);
    }
    for (int b = 0; b < 256 && ok; b++)
        if (t->byte_rank[b] < 0)
            ok = fail_msg(err, errlen, "model.vocab: byte 0x%02X has no token of its own: not a byte-level BPE (every byte must be one)", b);
    free(src), free(src_len), free(is_added);
    return ok;
}

bool tokenizer_init_bpe_try(Tokenizer *t, const char *name, const uint8_t *bytes, size_t len, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)bytes, len, JSON_ALLOW_NUL, &jerr);
    if (!root) return fail_msg(err, errlen, "not valid JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    t->kind = TOKENIZER_HF_BPE;
    t->path = xstrdup(name);
    t->bos_id = t->eos_id = -1;
    const json_t *model = json_object_get(root, "model");
    bool ok;
    if (!json_is_object(root)) ok = fail_msg(err, errlen, "expected a JSON object at the top (an HF tokenizer.json)");
    else if (!json_is_object(model)) ok = fail_msg(err, errlen, "model: expected an object (is this an HF tokenizer.json?)");
    else ok = check_model_options(model, &t->ignore_merges, err, errlen) && check_pipeline(root, err, errlen) &&
              read_added(json_object_get(root, "added_tokens"), t, err, errlen) &&
              read_vocab(json_object_get(model, "vocab"), json_object_get(root, "added_tokens"), t, err, errlen) &&
              read_merges(json_object_get(model, "vocab"), json_object_get(model, "merges"), t, err, errlen) &&
              sort_added(t, err, errlen);
    json_decref(root);
    if (!ok) {
        tokenizer_free(t);
        return false;
    }
    tokenizer_compile_pattern(t);  // GPT-2's regex (tokenizer.c)
    return true;
}

// tokenizer_config.json's bos_token / eos_token: a string, {"content": string}, null or absent. Returns the id, -1 for none.
static int32_t config_token(const Tokenizer *t, const json_t *cfg, const char *key, const char *cfg_path) {
    const json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) return -1;
    if (!json_is_string(v)) input_error(cfg_path, "%s: expected a token string (or {\"content\": string})", key);
    int32_t id = tokenizer_token_id(t, json_string_value(v), json_string_length(v));
    if (id < 0) input_error(cfg_path, "%s: \"%.40s\" is not a token of %s", key, json_string_value(v), t->path);
    return id;
}

void tokenizer_init_json(Tokenizer *t, const char *path) {
    json_t *root = tokenizer_json_load(path);
    if (tokenizer_json_is_llama3(root)) {  // Llama 3's: the tokenizer.model it stands for
        size_t len;
        char *text = tokenizer_json_model_text(root, path, &len);
        json_decref(root);
        char err[512];
        bool ok = tokenizer_init_try(t, path, (const uint8_t *)text, len, err, sizeof err);
        free(text);
        if (!ok) input_error(path, "as a tokenizer.model: %s", err);
        return;
    }
    json_decref(root);
    size_t len;
    char *file = read_whole_file(path, &len);
    char err[512];
    bool ok = tokenizer_init_bpe_try(t, path, (const uint8_t *)file, len, err, sizeof err);
    free(file);
    if (!ok) input_error(path, "%s", err);
    // BOS and EOS as HF's AutoTokenizer knows them (MiniMind: <|im_start|> and <|im_end|>, which its pretraining put
    // around every text); without tokenizer_config.json there are none.
    char *dir = xstrdup(path), *slash = strrchr(dir, '/');
    if (slash) slash[1] = 0;
    else dir[0] = 0;
    char *cfg_path = xasprintf("%stokenizer_config.json", dir);
    if (file_exists(cfg_path)) {
        json_error_t jerr;
        json_t *cfg = json_load_file(cfg_path, 0, &jerr);
        if (!cfg) input_error(cfg_path, "not valid JSON: line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        if (!json_is_object(cfg)) input_error(cfg_path, "expected a JSON object at the top");
        t->bos_id = config_token(t, cfg, "bos_token", cfg_path);
        t->eos_id = config_token(t, cfg, "eos_token", cfg_path);
        json_decref(cfg);
    }
    if (t->eos_id >= 0) tokenizer_add_stop_token(t, t->eos_id);
    free(dir), free(cfg_path);
}

void tokenizer_load(Tokenizer *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) input_error(path, "cannot open");
    int c;
    do c = fgetc(f);
    while (c == ' ' || c == '\t' || c == '\r' || c == '\n');
    fclose(f);
    if (c == '{') tokenizer_init_json(t, path);  // a tokenizer.model line never starts with '{' (base64)
    else tokenizer_init(t, path);
}

// bpe_seed.h: a small MiniMind-shaped tokenizer.json (an HF byte-level BPE, tokenizer_bpe.c) for the fuzzers:
// make_corpus writes it as seeds of fuzz_tokenizer_bpe (merges as "a b" strings and as [a, b] arrays), and the
// harness encodes with it every input that is not a tokenizer file.
//
// Ids: 0-2 the special added tokens <|endoftext|> <|im_start|> <|im_end|>, 3-4 the non-special <think> </think>
// (as MiniMind-3's), 5-260 the 256 bytes, then one id per merge result.
#pragma once
#include <jansson.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

// n bytes as a token string of the byte-level alphabet (GPT-2's bytes_to_unicode: ' ' -> "Ġ").
static inline char *bpe_seed_token(const char *bytes, size_t n) {
    int inv[BYTE_LEVEL_CODEPOINTS], fwd[256];
    tokenizer_byte_level_inverse(inv);
    for (int c = 0; c < BYTE_LEVEL_CODEPOINTS; c++)
        if (inv[c] >= 0) fwd[inv[c]] = c;
    char *s = xmalloc(2 * n + 1), *p = s;
    for (size_t i = 0; i < n; i++) {
        int c = fwd[(uint8_t)bytes[i]];
        if (c < 0x80) *p++ = (char)c;
        else *p++ = (char)(0xC0 | (c >> 6)), *p++ = (char)(0x80 | (c & 0x3F));
    }
    *p = 0;
    return s;
}

static inline char *bpe_seed_json(bool arrays, size_t *len) {
    static const char *const added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"};
    static const char *const merges[][2] = {
        {" ", "t"}, {"h", "e"}, {" t", "he"}, {"i", "n"}, {" ", "a"}, {" a", "n"}, {"e", "r"}, {"'", "s"},
        {"\n", "\n"}, {" ", " "}, {"1", "2"}, {"12", "3"}, {"\xe4", "\xbd"}, {"\xe4\xbd", "\xa0"}, {"\xe5", "\xa5"},
        {"\xe5\xa5", "\xbd"}, {"\xe4\xbd\xa0", "\xe5\xa5\xbd"}, {" an", "s"}, {"w", "er"}, {" ans", "wer"}, {"n", "s"}, {" a", "ns"},
    };
    json_t *vocab = json_object(), *added_json = json_array(), *merges_json = json_array();
    for (int i = 0; i < 5; i++) {
        json_object_set_new(vocab, added[i], json_integer(i));
        json_array_append_new(added_json, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", i, "content", added[i],
                                                    "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", i < 3));
    }
    for (int b = 0; b < 256; b++) {
        char byte = (char)b, *s = bpe_seed_token(&byte, 1);
        json_object_set_new(vocab, s, json_integer(5 + b));
        free(s);
    }
    for (size_t m = 0; m < sizeof merges / sizeof merges[0]; m++) {
        char *l = bpe_seed_token(merges[m][0], strlen(merges[m][0])), *r = bpe_seed_token(merges[m][1], strlen(merges[m][1]));
        char *joined = xasprintf("%s%s", l, r);
        if (!json_object_get(vocab, joined)) json_object_set_new(vocab, joined, json_integer((json_int_t)json_object_size(vocab)));
        if (arrays) json_array_append_new(merges_json, json_pack("[s, s]", l, r));
        else json_array_append_new(merges_json, json_sprintf("%s %s", l, r));
        free(l), free(r), free(joined);
    }
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:n, s:{s:s, s:b, s:b, s:b}, s:n, s:{s:s, s:b, s:b, s:b}, "
                             "s:{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}}",
                             "version", "1.0", "truncation", "padding", "added_tokens", added_json, "normalizer",
                             "pre_tokenizer", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1,
                             "post_processor", "decoder", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                             "use_regex", 1, "model", "type", "BPE", "dropout", "unk_token", "continuing_subword_prefix",
                             "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab,
                             "merges", merges_json);
    if (!root) fatal("bpe_seed_json: json_pack failed");
    char *text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    *len = strlen(text);
    return text;
}

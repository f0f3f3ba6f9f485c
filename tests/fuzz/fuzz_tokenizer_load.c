// fuzz_tokenizer_load.c: loading a tokenizer.model (common/tokenizer/tokenizer.c: lines "BASE64 RANK"), then using
// what was loaded.
//
// Input: the file's bytes. Promise of an accepted file: vocab_size = lines + 256 specials, every id decodes, and
// text made of the file's own bytes encodes and decodes back to itself.
#include "fuzz.h"
#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Tokenizer tok;
    char err[512];
    if (!tokenizer_init_try(&tok, "fuzz", data, size, err, sizeof err)) {
        fuzz_check_message(err, sizeof err);
        return 0;
    }
    FUZZ_REQUIRE(tok.vocab_size == tok.n_base + TOKENIZER_NUM_SPECIAL && tok.n_base >= 256, "n_base %d, vocab %d", tok.n_base, tok.vocab_size);
    for (int32_t id = 0; id < tok.vocab_size; id++) {
        size_t n;
        FUZZ_REQUIRE(tokenizer_token_bytes(&tok, id, &n) != NULL, "id %d has no bytes", id);
    }
    // The longest prefix of the input that is valid UTF-8 is a text every byte-level BPE must round-trip.
    int64_t bad = utf8_first_invalid(data, size);
    size_t len = bad < 0 ? size : (size_t)bad;
    int32_t *ids;
    size_t n_ids, back_len;
    tokenizer_encode(&tok, (const char *)data, len, false, false, &ids, &n_ids);
    char *back = tokenizer_decode(&tok, ids, n_ids, &back_len);
    FUZZ_REQUIRE(back_len == len && memcmp(back, data, len) == 0, "decode(encode(text)) differs: %zu bytes back from %zu", back_len, len);
    free(back);
    free(ids);
    tokenizer_free(&tok);
    return 0;
}

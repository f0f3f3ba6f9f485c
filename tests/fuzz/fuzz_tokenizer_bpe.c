// fuzz_tokenizer_bpe.c: loading an HF byte-level BPE tokenizer.json (common/tokenizer/tokenizer_bpe.c, MiniMind's
// kind), then encoding and decoding with it.
//
// Input: the file's bytes. Promises of an accepted file: at least the 256 bytes as tokens, every id has its bytes
// (at most MAX_TOKEN_BYTES), and text made of the file's own bytes (its longest valid UTF-8 prefix: JSON, so quotes,
// spaces, newlines, added-token names) encodes to ids in range whose pre-tokenizer pieces tile the text and which decode
// back to the text. An input that is not accepted must come with a message, and is then encoded as text with the
// seed tokenizer of bpe_seed.h under the same promises (this reaches the added-token matching and the merge heap with
// any bytes).
#include "fuzz.h"
#include "bpe_seed.h"
#include "tokenizer/tokenizer.h"

static Tokenizer seed;

static void check_text(const Tokenizer *t, const uint8_t *data, size_t size) {
    int64_t bad = utf8_first_invalid(data, size);
    size_t len = bad < 0 ? size : (size_t)bad;
    int32_t *ids;
    size_t n_ids, back_len;
    tokenizer_encode(t, (const char *)data, len, true, true, &ids, &n_ids);
    for (size_t i = 0; i < n_ids; i++) FUZZ_REQUIRE(ids[i] >= 0 && ids[i] < t->vocab_size, "id %d of %d", ids[i], t->vocab_size);
    size_t skip = t->bos_id >= 0, drop = t->eos_id >= 0;
    FUZZ_REQUIRE(n_ids >= skip + drop, "BOS/EOS missing");
    char *back = tokenizer_decode(t, ids + skip, n_ids - skip - drop, &back_len);
    FUZZ_REQUIRE(back_len == len && memcmp(back, data, len) == 0, "decode(encode(text)) differs: %zu bytes back from %zu", back_len, len);
    free(back);
    free(ids);
    size_t *starts, *ends;
    size_t n = tokenizer_split(t, (const char *)data, len, &starts, &ends);
    fuzz_check_tiling(starts, ends, n, len);
    free(starts);
    free(ends);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!seed.vocab_size) {
        size_t len;
        char *json = bpe_seed_json(false, &len), err[512];
        if (!tokenizer_init_bpe_try(&seed, "seed", (const uint8_t *)json, len, err, sizeof err)) fatal("the seed tokenizer: %s", err);
        seed.bos_id = 1, seed.eos_id = 2;  // as MiniMind's tokenizer_config.json says
        free(json);
    }
    Tokenizer tok;
    char err[512];
    if (!tokenizer_init_bpe_try(&tok, "fuzz", data, size, err, sizeof err)) {
        fuzz_check_message(err, sizeof err);
        check_text(&seed, data, size);
        return 0;
    }
    FUZZ_REQUIRE(tok.kind == TOKENIZER_HF_BPE && tok.vocab_size >= 256 && tok.n_base == tok.vocab_size, "vocab %d", tok.vocab_size);
    for (int b = 0; b < 256; b++) FUZZ_REQUIRE(tok.byte_rank[b] >= 0 && tok.byte_rank[b] < tok.vocab_size, "byte %d", b);
    for (int32_t id = 0; id < tok.vocab_size; id++) {
        size_t n;
        FUZZ_REQUIRE(tokenizer_token_bytes(&tok, id, &n) != NULL && n >= 1 && n <= MAX_TOKEN_BYTES, "id %d: %zu bytes", id, n);
    }
    for (size_t s = 0; s <= tok.merge_mask; s++)
        if (tok.merge_keys[s]) FUZZ_REQUIRE(tok.merge_joined[s] >= 0 && tok.merge_joined[s] < tok.vocab_size, "merge to %d", tok.merge_joined[s]);
    check_text(&tok, data, size);
    tokenizer_free(&tok);
    return 0;
}

// fuzz_tokenizer_encode.c: encode and decode with the real Llama-3 tokenizer (build/models/tokenizer.model, or the
// file named by L3T_TOKENIZER), loaded once.
//
// Input: any bytes. Promises: valid UTF-8 round-trips exactly (decode(encode(text)) == text) and the pre-tokenizer's
// pieces tile the text; any bytes read as token ids (4 at a time, modulo the vocabulary) decode, through
// decode_text (valid UTF-8 out), the streaming decoder (the same text as decode_text) and the printable form.
#include "fuzz.h"
#include "tokenizer/tokenizer.h"
#include "util.h"

static Tokenizer tok;

static void load_once(void) {
    if (tok.vocab_size) return;
    const char *path = getenv("L3T_TOKENIZER");
    if (!path) path = "build/models/tokenizer.model";
    if (!file_exists(path)) fatal("%s: missing; run `make models` (or set L3T_TOKENIZER)", path);
    tokenizer_init(&tok, path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_once();
    int64_t bad = utf8_first_invalid(data, size);
    if (bad < 0) {
        int32_t *ids;
        size_t n_ids, back_len;
        tokenizer_encode(&tok, (const char *)data, size, true, false, &ids, &n_ids);
        FUZZ_REQUIRE(n_ids >= 1 && ids[0] == TOKEN_BEGIN_OF_TEXT, "no BOS");
        char *back = tokenizer_decode(&tok, ids + 1, n_ids - 1, &back_len);
        FUZZ_REQUIRE(back_len == size && memcmp(back, data, size) == 0, "decode(encode(text)) differs: %zu bytes back from %zu", back_len, size);
        free(back);
        free(ids);
        size_t *starts, *ends;
        size_t n = tokenizer_split(&tok, (const char *)data, size, &starts, &ends);
        fuzz_check_tiling(starts, ends, n, size);
        free(starts);
        free(ends);
    }
    size_t n_ids = size / 4;
    int32_t *ids = malloc((n_ids ? n_ids : 1) * sizeof *ids);
    for (size_t i = 0; i < n_ids; i++) {
        uint32_t v;
        memcpy(&v, data + 4 * i, 4);
        ids[i] = (int32_t)(v % (uint32_t)tok.vocab_size);
    }
    size_t len;
    char *text = tokenizer_decode_text(&tok, ids, n_ids, &len);
    FUZZ_REQUIRE(utf8_first_invalid(text, len) < 0, "decode_text gave invalid UTF-8");
    StrBuf streamed = {0};
    TokenStream ts;
    token_stream_init(&ts);
    char shown[64];
    for (size_t i = 0; i < n_ids; i++) {
        size_t piece_len;
        const char *piece = token_stream_push(&ts, &tok, ids[i], &piece_len);
        strbuf_add(&streamed, piece, piece_len);
        FUZZ_REQUIRE(tokenizer_piece_display(&tok, ids[i], shown, sizeof shown) > 0, "id %d: empty display", ids[i]);
    }
    size_t tail_len;
    const char *tail = token_stream_flush(&ts, &tail_len);
    strbuf_add(&streamed, tail, tail_len);
    FUZZ_REQUIRE(streamed.len == len && (len == 0 || memcmp(streamed.data, text, len) == 0), "streamed %zu bytes, decode_text %zu", streamed.len, len);
    free(streamed.data);
    free(text);
    free(ids);
    return 0;
}

// test_tokenizer.c: the Llama-3 tokenizer (common/tokenizer/tokenizer.c) against golden ids and round trips.
//
// Needs build/models/tokenizer.model (made by `make models`: Meta's file, md5 08292403f8b173e7524d7fba7bbbd2d3).
// Golden ids come from the tutorial, from Meta's test_tokenizer.py and from formats.md §3; two longer ones were made
// by tests/reference/tiktoken_ref.py (an independent Python implementation). A small hand-made vocabulary checks the
// merge rules themselves (rank order, leftmost pair first, the whole-piece shortcut).
// Run from the repository root: build/tests/test_tokenizer
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chapters.h"  // steps/: the chapter texts, a long English and Chinese text in the build
#include "check.h"
#include "tokenizer/tokenizer.h"
#include "util.h"

#define MODEL_PATH "build/models/tokenizer.model"

static Tokenizer tok;

// Encodes text and compares with the expected ids; prints both on a mismatch.
static void check_ids(const char *text, bool bos, bool eos, const int32_t *want, size_t n_want) {
    int32_t *ids;
    size_t n;
    tokenizer_encode(&tok, text, strlen(text), bos, eos, &ids, &n);
    bool same = n == n_want && memcmp(ids, want, n * sizeof(int32_t)) == 0;
    CHECK(same, "encode(\"%s\"): got %zu ids, want %zu", text, n, n_want);
    if (!same) {
        fprintf(stderr, "  got: ");
        for (size_t i = 0; i < n; i++) fprintf(stderr, "%d ", ids[i]);
        fprintf(stderr, "\n  want:");
        for (size_t i = 0; i < n_want; i++) fprintf(stderr, " %d", want[i]);
        fputc('\n', stderr);
    }
    free(ids);
}
#define CHECK_IDS(text, bos, eos, ...)                                                       \
    do {                                                                                     \
        static const int32_t want_[] = {__VA_ARGS__};                                        \
        check_ids((text), (bos), (eos), want_, sizeof want_ / sizeof want_[0]);              \
    } while (0)

// The regex pieces of text joined by '|', e.g. "Hello| world".
static char *pieces_joined(const Tokenizer *t, const char *text) {
    size_t *starts, *ends;
    size_t n = tokenizer_split(t, text, strlen(text), &starts, &ends);
    char *out = xmalloc(2 * strlen(text) + 2);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) out[k++] = '|';
        memcpy(out + k, text + starts[i], ends[i] - starts[i]);
        k += ends[i] - starts[i];
    }
    out[k] = 0;
    free(starts);
    free(ends);
    return out;
}
static void check_split(const char *text, const char *want) {
    char *got = pieces_joined(&tok, text);
    CHECK(strcmp(got, want) == 0, "split(\"%s\") = \"%s\", want \"%s\"", text, got, want);
    free(got);
}

// decode(encode(text)) must give text back, byte for byte; returns the number of ids.
static size_t check_round_trip(const char *text, size_t len) {
    int32_t *ids;
    size_t n;
    tokenizer_encode(&tok, text, len, false, false, &ids, &n);
    size_t back_len;
    char *back = tokenizer_decode(&tok, ids, n, &back_len);
    CHECK(back_len == len && memcmp(back, text, len) == 0, "round trip of \"%.60s\" (%zu bytes) gave %zu bytes", text,
          len, back_len);
    size_t n_special = 0;  // text never encodes to a special id, not even "<|eot_id|>" typed as text
    for (size_t i = 0; i < n; i++) n_special += !(ids[i] >= 0 && ids[i] < tok.n_base);
    CHECK(n_special == 0, "\"%.60s\" gave %zu ids outside the ordinary vocabulary", text, n_special);
    free(back);
    free(ids);
    return n;
}

static void check_display(int32_t id, const char *want) {
    char buf[256];
    size_t need = tokenizer_piece_display(&tok, id, buf, sizeof buf);
    CHECK(need == strlen(want) && strcmp(buf, want) == 0, "display(%d) = %s, want %s", id, buf, want);
}

static void test_golden(void) {
    // The tutorial's prompt (note the trailing space) with BOS: 17 ids, and the answer 2983 = "42".
    CHECK_IDS("the answer to the ultimate question of life, the universe, and everything is ", true, false, 128000, 1820,
              4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220);
    // meta-llama/llama3 llama/test_tokenizer.py
    CHECK_IDS("This is a test sentence.", true, true, 128000, 2028, 374, 264, 1296, 11914, 13, 128001);
    CHECK_IDS("Hello world!\n\n  foo123456 don't", false, false, 9906, 1917, 2268, 220, 15586, 4513, 10961, 1541, 956);
    CHECK_IDS("user", false, false, 882);
    CHECK_IDS("system", false, false, 9125);
    CHECK_IDS("assistant", false, false, 78191);
    CHECK_IDS("\n\n", false, false, 271);
    CHECK_IDS("", false, false);
    CHECK_IDS("", true, true, 128000, 128001);
    // From the independent Python reference: a sentence of the Chinese edition of the tutorial, and mixed scripts with
    // an emoji split across three tokens, CRLF, a tab, digits in groups of three, No/Nl/Arabic-Indic/fullwidth chars.
    CHECK_IDS("无论你是机器学习初学者，还是深度学习爱好者，都可以在本文中找到详细且易于上手的指导内容。", true, false,
              128000, 43292, 68931, 57668, 21043, 33748, 32648, 111478, 85707, 48864, 30046, 3922, 106302, 102987, 27479,
              111478, 103312, 53901, 30046, 120241, 74770, 19000, 22656, 17161, 16325, 125414, 67933, 105986, 103786,
              87844, 35304, 17905, 46034, 9554, 127400, 44915, 1811);
    CHECK_IDS("Hi 🦙🦙!\r\n\tcafé 12345 ½ Ⅻ ٣٤٥ ＡＢＣ", true, false, 128000, 13347, 11410, 99, 247, 9468, 99, 247, 46726,
              197, 936, 59958, 220, 4513, 1774, 220, 27154, 220, 71567, 104, 220, 117413, 124079, 124043, 63923, 94,
              124944, 117812);

    size_t len;
    int32_t answer = 2983;
    char *text = tokenizer_decode(&tok, &answer, 1, &len);
    CHECK_EQ_STR(text, "42");
    free(text);
}

static void test_vocab(void) {
    CHECK_EQ_INT(tok.n_base, 128000);
    CHECK_EQ_INT(tok.vocab_size, 128256);
    // Ranks 0..255 are the single bytes in bytes_to_unicode order (formats.md §3).
    struct { uint8_t byte; int32_t rank; } bytes[] = {{'!', 0}, {'"', 1}, {'A', 32}, {'a', 64}, {0xFF, 187},
                                                       {0x00, 188}, {'\t', 197}, {'\n', 198}, {' ', 220}};
    for (size_t i = 0; i < sizeof bytes / sizeof bytes[0]; i++)
        CHECK_EQ_INT(tokenizer_token_id(&tok, &bytes[i].byte, 1), bytes[i].rank);
    // The special names, ids n_base + i.
    struct { int32_t id; const char *name; } specials[] = {
        {128000, "<|begin_of_text|>"}, {128001, "<|end_of_text|>"}, {128002, "<|reserved_special_token_0|>"},
        {128005, "<|reserved_special_token_3|>"}, {128006, "<|start_header_id|>"}, {128007, "<|end_header_id|>"},
        {128008, "<|reserved_special_token_4|>"}, {128009, "<|eot_id|>"}, {128010, "<|reserved_special_token_5|>"},
        {128255, "<|reserved_special_token_250|>"}};
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++) {
        size_t n;
        const uint8_t *p = tokenizer_token_bytes(&tok, specials[i].id, &n);
        CHECK(p && n == strlen(specials[i].name) && memcmp(p, specials[i].name, n) == 0, "name of %d", specials[i].id);
        CHECK(tokenizer_is_special(&tok, specials[i].id), "%d is special", specials[i].id);
        CHECK_EQ_INT(tokenizer_token_id(&tok, specials[i].name, strlen(specials[i].name)), specials[i].id);
    }
    CHECK(!tokenizer_is_special(&tok, 127999), "127999 is an ordinary token");
    CHECK(tokenizer_token_bytes(&tok, 128256, NULL) == NULL, "128256 is out of range");
    CHECK(tokenizer_token_bytes(&tok, -1, NULL) == NULL, "-1 is out of range");
    // Every ordinary token maps back to its own id (the hash map holds all 128000), lengths 1..128.
    int bad = 0;
    size_t longest = 0;
    for (int32_t id = 0; id < tok.n_base; id++) {
        size_t n;
        const uint8_t *p = tokenizer_token_bytes(&tok, id, &n);
        if (tokenizer_token_id(&tok, p, n) != id) bad++;
        if (n > longest) longest = n;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(longest, 128);
}

static void test_split(void) {
    // formats.md §3 examples.
    check_split("  foo", " | foo");
    check_split(" 123", " |123");
    check_split("!\n\n", "!\n\n");
    check_split("Hello world!\n\n  foo123456 don't", "Hello| world|!\n\n| | foo|123|456| don|'t");
    check_split("the answer to the ultimate question of life, the universe, and everything is ",
                "the| answer| to| the| ultimate| question| of| life|,| the| universe|,| and| everything| is| ");
    check_split("I'M HE'LL", "I|'M| HE|'LL");  // contractions, any case
    check_split("a  \n\n b", "a|  \n\n| b");      // whitespace run up to the last newline
    check_split("x   ", "x|   ");                 // trailing whitespace stays whole at the end
    check_split("1234567", "123|456|7");
    check_split("a\xe1\xa0\x8e" "b", "a|\xe1\xa0\x8e" "b");  // U+180E is not White_Space (see tokenizer.c) ...
    check_split("x \xe1\xa0\x8e" "1", "x| \xe1\xa0\x8e|1");   // ... so it is punctuation: PCRE2's \s would give "x| |\u180e|1"
    check_split("", "");
}

static void test_round_trips(void) {
    const char *texts[] = {
        "The quick brown fox jumps over the lazy dog. It's 3.14159 o'clock!",
        "本文旨在全面解析并从零开始实现 LLaMA 3 模型。通过结合理论讲解与实践代码示例，带你深入理解 LLaMA 3 的模型架构、核心原理及关键实现细节。",
        "词汇表大小，代表模型可识别的单词或符号总数。",
        "🦙🦙🦙 👩‍👩‍👧‍👦 👍🏽 ❤️ 🇯🇵",
        "    \t\t  \n\n\n   \r\n\r\n \u00a0\u3000\u2003 ",
        "0 12 345 6789 01234567890123456789 ٣٤٥ ½ Ⅻ",
        "Ελληνικά, русский, עברית, العربية, हिन्दी, 日本語のテキスト, 한국어",
        "line one\r\nline two\r\n\r\nline four\r\n",
        "<|begin_of_text|><|eot_id|> are ordinary text here",
        "e\u0301 a\u0308 combining marks; \x01\x02\x7f control chars; \u200b\ufeff invisible",
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) check_round_trip(texts[i], strlen(texts[i]));
    // Special-token text in the input is not a special token (Meta's default).
    int32_t *ids;
    size_t n;
    tokenizer_encode(&tok, "<|eot_id|>", 10, false, false, &ids, &n);
    CHECK(n > 1 && ids[0] < tok.n_base, "\"<|eot_id|>\" typed as text is %zu ordinary tokens", n);
    free(ids);
    // Meta's slicing: 25,001 digits are a 25,000-char run and a 1-char run: 8333 "111" + "1" | "1" (not 8333 + "11").
    char *run = xmalloc(30001);
    memset(run, '1', 25001);
    size_t *starts, *ends;
    size_t n_pieces = tokenizer_split(&tok, run, 25001, &starts, &ends);
    CHECK(n_pieces == 8335 && ends[8333] - starts[8333] == 1 && ends[8334] - starts[8334] == 1,
          "25001 digits: %zu pieces", n_pieces);
    free(starts);
    free(ends);
    // Python's isspace() (used for the slicing) counts U+001C as a space, unlike the regex: 20,000 letters then
    // 10,000 U+001C are two runs, so no slice is cut and the regex sees both whole.
    memset(run, 'a', 20000);
    memset(run + 20000, 0x1c, 10000);
    n_pieces = tokenizer_split(&tok, run, 30000, &starts, &ends);
    CHECK(n_pieces == 2 && ends[0] == 20000, "letters then U+001C: %zu pieces", n_pieces);
    free(starts);
    free(ends);
    free(run);
    // A NUL byte is text too.
    check_round_trip("a\0b", 3);
    // Long runs cross Meta's 25,000-character slices: 30,001 digits become 8333 "111" + "1" | 1667 "111".
    size_t long_len = 30001;
    char *digits = xmalloc(long_len + 1);
    memset(digits, '1', long_len);
    digits[long_len] = 0;
    CHECK_EQ_INT(check_round_trip(digits, long_len), 8333 + 1 + 1667);
    free(digits);
    // Every text of the chapter table (steps/chapters.c), English, Chinese and the tutorial's Python, as one text.
    StrBuf all = {0};
    for (int i = 0; i < N_CHAPTERS; i++) {
        const Chapter *c = &CHAPTERS[i];
        const char *texts[] = {c->title_en, c->title_zh, c->intro_en, c->intro_zh, c->notebook_en, c->notebook_zh,
                               c->tutorial_code};
        for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++)
            if (texts[k]) strbuf_add(&all, texts[k], strlen(texts[k])), strbuf_add(&all, "\n\n", 2);
    }
    size_t n_ids = check_round_trip(all.data, all.len);
    CHECK(n_ids > 5000 && n_ids < all.len / 2, "the chapter texts gave %zu ids for %zu bytes", n_ids, all.len);
    free(strbuf_take(&all));
}

static void test_decode_and_display(void) {
    // 2983 = "42" shown as the tutorial shows it, and other pieces as Python's repr() prints them.
    check_display(128000, "'<|begin_of_text|>'");
    check_display(1820, "'the'");
    check_display(4320, "' answer'");
    check_display(220, "' '");
    check_display(271, "'\\n\\n'");
    check_display(956, "\"'t\"");
    check_display(11410, "' \\xf0\\x9f'");  // the first third of an emoji: invalid UTF-8 alone
    check_display(99, "'\\xa6'");
    check_display(188, "'\\x00'");           // byte 0 is a real character: Python shows it as \x00 too
    check_display(197, "'\\t'");
    int32_t backslash = tokenizer_token_id(&tok, "\\", 1);
    check_display(backslash, "'\\\\'");
    char small[4];
    size_t need = tokenizer_piece_display(&tok, 4320, small, sizeof small);
    CHECK(need == 9 && strcmp(small, "' a") == 0, "truncated display: need %zu, got %s", need, small);

    // Invalid UTF-8 becomes U+FFFD in decode_text (Meta's decode), but stays raw in decode.
    int32_t half[] = {11410, 99};  // " \xf0\x9f" "\xa6": an emoji without its last byte
    size_t len;
    char *raw = tokenizer_decode(&tok, half, 2, &len);
    CHECK(len == 4 && memcmp(raw, " \xf0\x9f\xa6", 4) == 0, "raw decode");
    free(raw);
    char *text = tokenizer_decode_text(&tok, half, 2, &len);
    CHECK_EQ_STR(text, " \xef\xbf\xbd");  // the cut-short sequence is one U+FFFD, as in Python
    free(text);
    int32_t lone[] = {99, 64};  // "\xa6" "a": a lone continuation byte, then a letter
    text = tokenizer_decode_text(&tok, lone, 2, &len);
    CHECK_EQ_STR(text, "\xef\xbf\xbd" "a");
    free(text);
}

static void test_stream(void) {
    // " 🦙" is three tokens: " \xf0\x9f", "\xa6", "\x99". The llama appears only when its last byte arrives.
    TokenStream s;
    token_stream_init(&s);
    size_t len;
    CHECK_EQ_STR(token_stream_push(&s, &tok, 11410, &len), " ");
    CHECK_EQ_INT(len, 1);
    CHECK_EQ_STR(token_stream_push(&s, &tok, 99, &len), "");
    CHECK_EQ_STR(token_stream_push(&s, &tok, 247, &len), "\xf0\x9f\xa6\x99");
    CHECK_EQ_STR(token_stream_push(&s, &tok, 1820, &len), "the");
    CHECK_EQ_STR(token_stream_flush(&s, &len), "");
    // A character cut short by the end of generation is flushed as U+FFFD; a lone continuation byte is U+FFFD at once.
    CHECK_EQ_STR(token_stream_push(&s, &tok, 11410, &len), " ");
    CHECK_EQ_STR(token_stream_flush(&s, &len), "\xef\xbf\xbd");
    CHECK_EQ_STR(token_stream_push(&s, &tok, 99, &len), "\xef\xbf\xbd");
    CHECK_EQ_STR(token_stream_push(&s, &tok, 128009, &len), "<|eot_id|>");
    // Streaming the ids of a long mixed text gives exactly the text.
    const char *mixed = "模型的隐藏层维度 🦙🦙 emoji, ＡＢＣ and الع ربية\r\n";
    int32_t *ids;
    size_t n;
    tokenizer_encode(&tok, mixed, strlen(mixed), false, false, &ids, &n);
    char out[512] = "";
    for (size_t i = 0; i < n; i++) strcat(out, token_stream_push(&s, &tok, ids[i], NULL));
    strcat(out, token_stream_flush(&s, NULL));
    CHECK_EQ_STR(out, mixed);
    free(ids);
}

static void test_chat(void) {
    ChatMessage dialog[] = {{"system", "You are a helpful assistant."}, {"user", "  What is 6 x 7?\n"}};
    int32_t *ids;
    size_t n;
    tokenizer_encode_chat(&tok, dialog, 2, &ids, &n);
    // <|begin_of_text|> <|start_header_id|> system <|end_header_id|> \n\n ... <|eot_id|> ... assistant header
    int32_t *sys, *usr;
    size_t n_sys, n_usr;
    tokenizer_encode(&tok, dialog[0].content, strlen(dialog[0].content), false, false, &sys, &n_sys);
    const char *stripped = "What is 6 x 7?";  // content.strip()
    tokenizer_encode(&tok, stripped, strlen(stripped), false, false, &usr, &n_usr);
    int32_t want[64];
    size_t k = 0;
    want[k++] = 128000;
    want[k++] = 128006, want[k++] = 9125, want[k++] = 128007, want[k++] = 271;
    for (size_t i = 0; i < n_sys; i++) want[k++] = sys[i];
    want[k++] = 128009;
    want[k++] = 128006, want[k++] = 882, want[k++] = 128007, want[k++] = 271;
    for (size_t i = 0; i < n_usr; i++) want[k++] = usr[i];
    want[k++] = 128009;
    want[k++] = 128006, want[k++] = 78191, want[k++] = 128007, want[k++] = 271;
    CHECK(n == k && memcmp(ids, want, k * sizeof(int32_t)) == 0, "chat ids: got %zu, want %zu", n, k);
    free(ids);
    free(sys);
    free(usr);

    CHECK(tokenizer_is_stop_token(&tok, 128001), "<|end_of_text|> stops");
    CHECK(tokenizer_is_stop_token(&tok, 128009), "<|eot_id|> stops");
    CHECK(!tokenizer_is_stop_token(&tok, 128008), "128008 is only a stop token for Llama 3.1");
    CHECK(!tokenizer_is_stop_token(&tok, 220), "' ' does not stop");
}

static void test_utf8(void) {
    CHECK_EQ_INT(utf8_first_invalid("abc", 3), -1);
    CHECK_EQ_INT(utf8_first_invalid("\xe4\xb8\xad\xf0\x9f\xa6\x99", 7), -1);
    CHECK_EQ_INT(utf8_first_invalid("a\xff", 2), 1);
    CHECK_EQ_INT(utf8_first_invalid("\xc0\xaf", 2), 0);          // overlong '/'
    CHECK_EQ_INT(utf8_first_invalid("ab\xed\xa0\x80", 5), 2);    // surrogate U+D800
    CHECK_EQ_INT(utf8_first_invalid("\xe4\xb8", 2), 0);          // cut short
    CHECK_EQ_INT(utf8_first_invalid("\xf4\x90\x80\x80", 4), 0);  // above U+10FFFF
    CHECK_EQ_INT(utf8_first_invalid("\xf4\x8f\xbf\xbf", 4), -1); // U+10FFFF itself
}

// A vocabulary of 256 bytes (rank = byte value) plus a few merges, written to a temporary tokenizer.model.
static void test_merge_rules(void) {
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *merges[] = {"aa", "ab", "bc", "abc", "xyz", "cd"};  // ranks 256..261 in this order
    const int n_merges = 6;
    char path[] = "/tmp/test_tokenizer_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    FILE *f = fdopen(fd, "w");
    for (int r = 0; r < 256 + n_merges; r++) {
        uint8_t bytes[8];
        size_t n;
        if (r < 256) bytes[0] = (uint8_t)r, n = 1;
        else n = strlen(merges[r - 256]), memcpy(bytes, merges[r - 256], n);
        char b64[16];
        size_t o = 0;
        for (size_t i = 0; i < n; i += 3) {
            uint32_t v = (uint32_t)bytes[i] << 16 | (i + 1 < n ? (uint32_t)bytes[i + 1] << 8 : 0) | (i + 2 < n ? bytes[i + 2] : 0);
            b64[o++] = B64[v >> 18 & 63], b64[o++] = B64[v >> 12 & 63];
            b64[o++] = i + 1 < n ? B64[v >> 6 & 63] : '=', b64[o++] = i + 2 < n ? B64[v & 63] : '=';
        }
        fprintf(f, "%.*s %d\n", (int)o, b64, r);
    }
    fclose(f);
    Tokenizer small;
    tokenizer_init(&small, path);
    unlink(path);
    CHECK_EQ_INT(small.n_base, 262);
    CHECK_EQ_INT(small.vocab_size, 262 + 256);
    struct { const char *text; int32_t ids[4]; size_t n; } cases[] = {
        {"aaa", {256, 'a'}, 2},          // equal ranks: the leftmost pair merges first ("aa" + "a", not "a" + "aa")
        {"aaaa", {256, 256}, 2},
        {"abc", {259}, 1},               // the whole piece is a token: taken as is
        {"xabc", {'x', 259}, 2},         // ab (257) before bc (258), then abc
        {"bcd", {258, 'd'}, 2},          // the lower rank wins: bc (258) before cd (261)
        {"abcd", {259, 'd'}, 2},
        {"xyz", {260}, 1},               // the whole-piece shortcut: no pair leads to "xyz", yet the piece is a token
        {"xyzz", {'x', 'y', 'z', 'z'}, 4},  // ... and without the shortcut "xyz" is never reached
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int32_t *ids;
        size_t n;
        tokenizer_encode(&small, cases[i].text, strlen(cases[i].text), false, false, &ids, &n);
        CHECK(n == cases[i].n && memcmp(ids, cases[i].ids, n * sizeof(int32_t)) == 0, "merge of \"%s\" (%zu ids)",
              cases[i].text, n);
        free(ids);
    }
    int32_t *ids;
    size_t n;
    tokenizer_encode(&small, "ab", 2, true, true, &ids, &n);
    CHECK(n == 3 && ids[0] == 262 && ids[1] == 257 && ids[2] == 263, "bos/eos are n_base and n_base+1");
    free(ids);
    tokenizer_free(&small);
}

int main(void) {
    if (!file_exists(MODEL_PATH)) {
        fprintf(stderr, "FAIL: %s is missing: run `make models` (tools/fetch_tokenizer.sh build/models) first\n", MODEL_PATH);
        printf("0 passed, 1 failed\n");
        return 1;
    }
    double t0 = now_seconds();
    tokenizer_init(&tok, MODEL_PATH);
    printf("loaded %s in %.3f s (PCRE2 JIT %s)\n", MODEL_PATH, now_seconds() - t0, tok.pattern_jit ? "on" : "off");
    test_golden();
    test_vocab();
    test_split();
    test_round_trips();
    test_decode_and_display();
    test_stream();
    test_chat();
    test_utf8();
    test_merge_rules();
    tokenizer_free(&tok);
    TEST_SUMMARY();
}

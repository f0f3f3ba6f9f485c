// wt-tokenize: text -> Llama-3 token ids, or ids -> text, with Meta's tokenizer.model (common/tokenizer/tokenizer.c),
// or with an HF tokenizer.json: Llama 3's, or a byte-level BPE such as MiniMind's (common/tokenizer/tokenizer_bpe.c).
//
//   build/bin/wt-tokenize --tokenizer build/models/tokenizer.model --bos "the answer to ..."
//       128000 1820 4320 ...                        (the ids on one line, space separated: nothing else on stdout)
//   ... --pieces adds a second line with each token as the tutorial prints it:
//       ['<|begin_of_text|>', 'the', ' answer', ...]
//   build/bin/wt-tokenize --tokenizer FILE --decode 2983        -> 42
//   build/bin/wt-tokenize --tokenizer FILE --bos --jsonl < texts.jsonl
//       one JSON string per input line -> one line of ids per input line (for batches and cross-checks)
//   build/bin/wt-tokenize --tokenizer FILE --bos --lines texts.txt
//       each line of texts.txt (without its newline) is one text -> one line of ids per line
//
// Exit status: 0 on success, 2 on bad input (unknown flag, invalid UTF-8 text, a bad id, a bad tokenizer file).
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"
#include "util.h"

#define PROG "wt-tokenize"
#define DEFAULT_TOKENIZER "build/models/tokenizer.model"

static void print_help(void) {
    printf("usage: " PROG " [--tokenizer FILE] [--bos] [--eos] [--pieces] TEXT\n"
           "       " PROG " [--tokenizer FILE] [--bos] [--eos] [--pieces] --stdin\n"
           "       " PROG " [--tokenizer FILE] [--bos] [--eos] --jsonl < TEXTS.jsonl\n"
           "       " PROG " [--tokenizer FILE] [--bos] [--eos] --lines FILE\n"
           "       " PROG " [--tokenizer FILE] --decode ID...\n"
           "\n"
           "Encodes TEXT (UTF-8) with the Llama-3 tokenizer (or the one given) and prints the token ids on one line,\n"
           "space separated.\n"
           "\n"
           "  --tokenizer FILE  Meta's tokenizer.model (default " DEFAULT_TOKENIZER ", made by `make models`), or\n"
           "                    an HF tokenizer.json: Llama 3's, or a byte-level BPE such as MiniMind's\n"
           "  --bos             start with <|begin_of_text|> (128000), as text completion does; for a tokenizer.json\n"
           "                    the bos_token of tokenizer_config.json beside it (MiniMind: <|im_start|>), none without\n"
           "  --eos             end with <|end_of_text|> (128001), or tokenizer_config.json's eos_token\n"
           "  --pieces          add a second line with each token's text, as a Python list: ['the', ' answer']\n"
           "  --stdin           read the text from standard input instead of the command line\n"
           "  --jsonl           read standard input as lines that each hold one JSON string; print one line of ids\n"
           "                    for each\n"
           "  --lines FILE      each line of FILE (\"-\": standard input), without its newline, is one text; print one\n"
           "                    line of ids for each\n"
           "  --decode ID...    print the text of the ids instead (invalid UTF-8 shown as U+FFFD, like Meta's decode)\n"
           "  --help            this text\n"
           "\n"
           "Special-token text in TEXT (\"<|eot_id|>\") is encoded as ordinary text, as Meta's encode() does; a\n"
           "tokenizer.json's added tokens (MiniMind's \"<|im_start|>\") are matched whole, as HF's tokenizer does.\n"
           "Exit status: 0 ok, 2 bad input.\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = xmalloc(cap);
    for (;;) {
        if (n + 1 >= cap) buf = xrealloc(buf, cap *= 2);
        size_t got = fread(buf + n, 1, cap - n - 1, stdin);
        n += got;
        if (got == 0) break;
    }
    if (ferror(stdin)) input_error("stdin", "read failed: %s", strerror(errno));
    buf[n] = 0;
    *len = n;
    return buf;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t k = 0; k < n; k++) printf(k ? " %d" : "%d", ids[k]);
    putchar('\n');
}

// Calls encode on each line of buf (the newline excluded) and prints one line of ids per line. With json, each line
// holds one JSON string (so that a text can contain newlines).
static void encode_each_line(const Tokenizer *tok, char *buf, size_t len, const char *source, bool json, bool bos, bool eos) {
    long long line_no = 0;
    for (char *line = buf; line < buf + len;) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        size_t line_len = nl ? (size_t)(nl - line) : (size_t)(buf + len - line);
        line_no++;
        const char *text = line;
        size_t text_len = line_len;
        json_t *j = NULL;
        if (json) {
            json_error_t jerr;
            j = json_loadb(line, line_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
            if (!json_is_string(j)) input_error(source, "line %lld: expected one JSON string per line", line_no);
            text = json_string_value(j);
            text_len = json_string_length(j);
        }
        int64_t bad = utf8_first_invalid(text, text_len);
        if (bad >= 0) input_error(source, "line %lld: invalid UTF-8 at byte %lld", line_no, (long long)bad);
        int32_t *ids;
        size_t n;
        tokenizer_encode(tok, text, text_len, bos, eos, &ids, &n);
        print_ids(ids, n);
        free(ids);
        json_decref(j);
        line += line_len + 1;
    }
}


int main(int argc, char **argv) {
    const char *tokenizer_path = DEFAULT_TOKENIZER;
    bool bos = false, eos = false, pieces = false, decode = false, from_stdin = false, jsonl = false;
    const char *text = NULL, *lines_path = NULL;
    int first_id_arg = argc;  // with --decode: the ids are the remaining arguments
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help();
            return 0;
        } else if (!strcmp(a, "--tokenizer")) {
            if (i + 1 >= argc) usage_error(PROG, "--tokenizer needs a FILE");
            tokenizer_path = argv[++i];
        } else if (!strcmp(a, "--bos")) bos = true;
        else if (!strcmp(a, "--eos")) eos = true;
        else if (!strcmp(a, "--pieces")) pieces = true;
        else if (!strcmp(a, "--stdin")) from_stdin = true;
        else if (!strcmp(a, "--jsonl")) jsonl = true;
        else if (!strcmp(a, "--lines")) {
            if (i + 1 >= argc) usage_error(PROG, "--lines needs a FILE (\"-\" for standard input)");
            lines_path = argv[++i];
        }
        else if (!strcmp(a, "--decode")) {
            decode = true;
            first_id_arg = i + 1;
            break;
        } else if (!strcmp(a, "--")) {
            if (i + 2 != argc) usage_error(PROG, "expected exactly one TEXT after --");
            text = argv[i + 1];
            break;
        } else if (a[0] == '-' && a[1] == '-') usage_error(PROG, "unknown flag %s", a);
        else if (text) usage_error(PROG, "expected one TEXT argument (quote it), got a second: %s", a);
        else text = a;
    }
    if (decode && (bos || eos || pieces || from_stdin || jsonl || lines_path || text))
        usage_error(PROG, "--decode takes only ids (and --tokenizer before it)");
    if (decode && first_id_arg >= argc) usage_error(PROG, "--decode needs at least one ID");
    if ((jsonl || lines_path) && (pieces || from_stdin || text || (jsonl && lines_path)))
        usage_error(PROG, "--jsonl and --lines read texts themselves: no TEXT, --stdin or --pieces with them");
    if (!decode && !jsonl && !lines_path && !text && !from_stdin) usage_error(PROG, "missing TEXT");
    if (from_stdin && text) usage_error(PROG, "give TEXT or --stdin, not both");
    if (!file_exists(tokenizer_path))
        input_error(tokenizer_path, "no such file (run `make models` to make build/models/tokenizer.model)");

    Tokenizer tok;
    tokenizer_load(&tok, tokenizer_path);

    if (jsonl || lines_path) {
        size_t len;
        bool from_file = lines_path && strcmp(lines_path, "-") != 0;
        char *all = from_file ? read_whole_file(lines_path, &len) : read_stdin(&len);
        encode_each_line(&tok, all, len, from_file ? lines_path : "stdin", jsonl, bos, eos);
        free(all);
    } else if (decode) {
        size_t n = (size_t)(argc - first_id_arg);
        int32_t *ids = xmalloc(n * sizeof(int32_t));
        for (size_t k = 0; k < n; k++) {
            const char *s = argv[first_id_arg + (int)k];
            char *end;
            errno = 0;
            long v = strtol(s, &end, 10);
            if (errno || end == s || *end || v < 0 || v >= tok.vocab_size)
                input_error("decode", "\"%s\" is not a token id in 0..%d", s, tok.vocab_size - 1);
            ids[k] = (int32_t)v;
        }
        size_t len;
        char *out = tokenizer_decode_text(&tok, ids, n, &len);
        xfwrite(out, len, stdout, "stdout");
        putchar('\n');
        free(out);
        free(ids);
    } else {
        size_t len;
        char *owned = NULL;
        if (from_stdin) text = owned = read_stdin(&len);
        else len = strlen(text);
        int32_t *ids;
        size_t n;
        tokenizer_encode(&tok, text, len, bos, eos, &ids, &n);
        print_ids(ids, n);
        if (pieces) {
            putchar('[');
            for (size_t k = 0; k < n; k++) {
                char buf[2048];
                size_t need = tokenizer_piece_display(&tok, ids[k], buf, sizeof buf);
                if (need >= sizeof buf) fatal("token %d displays longer than %zu bytes", ids[k], sizeof buf);
                printf(k ? ", %s" : "%s", buf);
            }
            printf("]\n");
        }
        free(ids);
        free(owned);
    }
    if (fflush(stdout) != 0) fatal("stdout: write failed: %s", strerror(errno));
    tokenizer_free(&tok);
    return 0;
}

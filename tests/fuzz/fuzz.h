// fuzz.h: what the harnesses in tests/fuzz share.
//
// A harness is one function, LLVMFuzzerTestOneInput(data, size), that hands the bytes to a parser's non-exiting
// entry point (the `_try` functions: they return false with a message instead of calling exit) and then checks
// what an accepted input promises: every tensor inside the bytes, every count within its limits. A broken promise
// aborts, so the fuzzer (and the replay of the regression corpus in `make test`) reports it like a crash.
//
// The same harness is built two ways (Makefile):
//   make fuzz             clang -fsanitize=fuzzer,address,undefined: libFuzzer mutates inputs for FUZZ_SECONDS
//   make / make test      gcc with replay.c as main(): runs the harness on given files once each (the regression
//                         corpus), under AddressSanitizer + UndefinedBehaviorSanitizer in build/asan
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_REQUIRE(cond, ...)                                                      \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "fuzz: promise broken at %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
            abort();                                                                 \
        }                                                                            \
    } while (0)

// A rejection must come with a message: non-empty and NUL-terminated inside the buffer.
static inline void fuzz_check_message(const char *err, size_t errlen) {
    FUZZ_REQUIRE(memchr(err, 0, errlen) != NULL, "the message is not terminated");
    FUZZ_REQUIRE(err[0] != 0, "a rejection without a message");
}

// The pre-tokenizer's pieces (tokenizer_split) must tile text[0, len): each starts where the last ended, none empty.
static inline void fuzz_check_tiling(const size_t *starts, const size_t *ends, size_t n, size_t len) {
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        FUZZ_REQUIRE(starts[i] == at && ends[i] > starts[i], "piece %zu is [%zu, %zu), expected to start at %zu", i, starts[i], ends[i], at);
        at = ends[i];
    }
    FUZZ_REQUIRE(at == len, "the pieces end at %zu of %zu", at, len);
}

// Printing what was parsed (config_print, ...) is part of what is tested; its text goes nowhere.
static inline void fuzz_quiet_stdout(void) {
    static bool done;
    if (!done && freopen("/dev/null", "w", stdout)) done = true;
}

// What an accepted params.json or config.json promises: every size within the CONFIG_MAX_* limits, the derived
// values consistent with the base ones, and config_print (which converts doubles to ints) free of undefined behaviour.
static inline void fuzz_check_config(const Config *c) {
    FUZZ_REQUIRE(c->dim >= 1 && c->dim <= CONFIG_MAX_DIM && c->n_layers >= 1 && c->n_layers <= CONFIG_MAX_LAYERS, "dim %d, layers %d", c->dim, c->n_layers);
    FUZZ_REQUIRE(c->vocab_size >= 1 && c->vocab_size <= CONFIG_MAX_VOCAB, "vocab %d", c->vocab_size);
    FUZZ_REQUIRE(c->head_dim * c->n_heads == c->dim && c->head_dim % 2 == 0, "head_dim %d x %d heads != dim %d", c->head_dim, c->n_heads, c->dim);
    FUZZ_REQUIRE(c->n_rep * c->n_kv_heads == c->n_heads, "n_rep %d", c->n_rep);
    FUZZ_REQUIRE(c->ffn_hidden >= 1 && c->ffn_hidden <= CONFIG_MAX_FFN, "ffn_hidden %d", c->ffn_hidden);
    FUZZ_REQUIRE(c->norm_eps > 0 && c->rope_theta > 0, "eps %g theta %g", c->norm_eps, c->rope_theta);
    fuzz_quiet_stdout();
    config_print(c, 2);
}

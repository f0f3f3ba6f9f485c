// test_model_cpu.c: the full-model CPU reference with its KV cache, on the tiny model (`make models`).
//   - prefill + decode with the cache gives logits bit-identical to a full recompute at every step
//   - a prompt split into chunks (start_pos > 0 with T > 1, the mask offset by start_pos) gives the same bits
//   - cache rows after the current position are never read (they are poisoned with NaN)
//   - all_logits: row t of a T-token call equals the last-token logits of the first t+1 tokens
//   - the result does not depend on the OpenMP thread count
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/checkpoint.h"
#include "ref/model_cpu.h"
#include "util.h"

static int count_diff(const float *a, const float *b, size_t n) {
    int d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
    return d;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "build/models/tiny";
    if (!file_exists("build/models/tiny/params.json") && argc < 2) {
        CHECK(0, "build/models/tiny is missing: run `make models` first");
        TEST_SUMMARY();
    }
    Checkpoint ck;
    checkpoint_open(&ck, dir);
    const int V = ck.cfg.vocab_size, S = 24;
    // the tutorial's 17 tokens, then 4 more
    const int32_t toks[21] = {128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279,
                              15861,  11,   323,  4395, 374, 220,  2983, 13,  578,  4320};
    const int T = 17, N = 21;
    CpuModel cached, full;
    model_cpu_init(&cached, &ck, S, PREC_BF16);
    model_cpu_init(&full, &ck, S, PREC_BF16);
    CHECK_EQ_INT(cached.cfg.n_layers, ck.cfg.n_layers);

    float *lc = xmalloc((size_t)V * sizeof(float)), *lf = xmalloc((size_t)V * sizeof(float));
    // poison the cache: positions that were not written must never be read
    size_t kv = (size_t)ck.cfg.n_kv_heads * ck.cfg.head_dim, all = (size_t)ck.cfg.n_layers * S * kv;
    for (size_t i = 0; i < all; i++) cached.cache_k[i] = cached.cache_v[i] = NAN;

    model_cpu_forward(&cached, toks, T, 0, lc, false);
    model_cpu_forward(&full, toks, T, 0, lf, false);
    CHECK_EQ_INT(count_diff(lc, lf, (size_t)V), 0);
    int finite = 1;
    for (int i = 0; i < V; i++) finite &= isfinite(lc[i]) != 0;
    CHECK(finite, "prefill logits have NaN/Inf: a cache row after the prompt was read");
    for (int n = T; n < N; n++) {
        model_cpu_forward(&cached, &toks[n], 1, n, lc, false);  // one token at position n, keys from the cache
        model_cpu_forward(&full, toks, n + 1, 0, lf, false);    // everything again
        CHECK(count_diff(lc, lf, (size_t)V) == 0, "position %d: cached logits differ from the recompute in %d places", n,
              count_diff(lc, lf, (size_t)V));
    }
    // chunked prefill: 5 tokens, then 12 at start_pos 5, then 4 at start_pos 17
    CpuModel chunked;
    model_cpu_init(&chunked, &ck, S, PREC_BF16);
    model_cpu_forward(&chunked, toks, 5, 0, lc, false);
    model_cpu_forward(&chunked, toks + 5, 12, 5, lc, false);
    model_cpu_forward(&full, toks, 17, 0, lf, false);
    CHECK_EQ_INT(count_diff(lc, lf, (size_t)V), 0);
    model_cpu_forward(&chunked, toks + 17, 4, 17, lc, false);
    model_cpu_forward(&full, toks, 21, 0, lf, false);
    CHECK_EQ_INT(count_diff(lc, lf, (size_t)V), 0);
    // the cache itself: after the same tokens, both hold the same K and V bits in rows 0..20
    CHECK_EQ_INT(count_diff(chunked.cache_k, full.cache_k, all), 0);
    CHECK_EQ_INT(count_diff(chunked.cache_v, full.cache_v, all), 0);

    // all_logits: row t = the last-token logits of toks[0..t]
    float *rows = xmalloc((size_t)4 * V * sizeof(float));
    model_cpu_forward(&full, toks, 4, 0, rows, true);
    for (int t = 0; t < 4; t++) {
        model_cpu_forward(&chunked, toks, t + 1, 0, lc, false);
        CHECK(count_diff(rows + (size_t)t * V, lc, (size_t)V) == 0, "all_logits row %d", t);
    }
    // a different token changes the logits (the test can see a difference)
    int32_t other[17];
    memcpy(other, toks, sizeof other);
    other[5] = 1000;
    model_cpu_forward(&full, toks, 17, 0, lf, false);
    model_cpu_forward(&chunked, other, 17, 0, lc, false);
    CHECK(count_diff(lc, lf, (size_t)V) > 0, "changing a prompt token did not change the logits");

    // thread count: 1 thread gives the same bits as the default
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    model_cpu_forward(&chunked, toks, 17, 0, lc, false);
    omp_set_num_threads(threads);
    CHECK_EQ_INT(count_diff(lc, lf, (size_t)V), 0);

    // fp32 mode differs from bf16 (nothing is rounded) but predicts from the same model
    CpuModel f32;
    model_cpu_init(&f32, &ck, S, PREC_FP32);
    model_cpu_forward(&f32, toks, 17, 0, lc, false);
    CHECK(count_diff(lc, lf, (size_t)V) > 0, "fp32 logits are bit-identical to bf16: nothing was rounded?");
    // K and V, every layer, 10 positions, Hkv x Dh values each: 2 bytes a value in bf16, 4 in fp32
    size_t values = 2 * (size_t)f32.cfg.n_layers * 10 * (size_t)f32.cfg.n_kv_heads * (size_t)f32.cfg.head_dim;
    CHECK(kv_cache_bytes(&f32.cfg, 10, PREC_BF16) == 2 * values, "cache bytes, bf16");
    CHECK(kv_cache_bytes(&f32.cfg, 10, PREC_FP32) == 4 * values, "cache bytes, fp32");
    model_cpu_free(&f32);

    free(rows), free(lc), free(lf);
    model_cpu_free(&cached), model_cpu_free(&full), model_cpu_free(&chunked);
    checkpoint_close(&ck);
    TEST_SUMMARY();
}

// test_tp.c: tensor parallelism's rank -> slice arithmetic (common/tp.c) for N = 1..8 on the Llama-3 8B and 70B
// configs, a tiny model with one kv head (replicated kv heads) and configs that cannot be split.
//
// For every valid N: the ranks' slices tile each weight exactly (contiguous, disjoint, in rank order, whole heads);
// every query head of a rank reads a kv head that the same rank holds (GQA); wo's columns are wq's rows; w2's
// columns are w1's rows; tp_part agrees with tp_slice for every name. The known numbers are Meta's 70B shards
// (consolidated.00-07.pth: wq [1024, 8192], wk [128, 8192], w1 [3584, 8192], w2 [8192, 3584], output [16032, 8192]).
//
// Build and run: make build/tests/test_tp && build/tests/test_tp   (ends with "N passed, N failed")
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "ref/ref_ops.h"
#include "tp.h"

static Config make_config(int dim, int n_layers, int n_heads, int n_kv_heads, int vocab, int multiple_of, double mult) {
    Config c = {.dim = dim, .n_layers = n_layers, .n_heads = n_heads, .n_kv_heads = n_kv_heads, .vocab_size = vocab,
                .multiple_of = multiple_of, .has_ffn_dim_multiplier = mult > 0, .ffn_dim_multiplier = mult,
                .norm_eps = 1e-5, .rope_theta = 500000};
    config_derive(&c, "test");
    return c;
}

// Every property of the split of c over N ranks.
static void check_split(const char *what, const Config *c, int N) {
    const int H = c->n_heads, Hkv = c->n_kv_heads, Dh = c->head_dim;
    int next_head = 0, next_ffn = 0, next_vocab = 0;
    int kv_holders[1024] = {0};
    for (int r = 0; r < N; r++) {
        TpSlice s = tp_slice(c, N, r);
        CHECK(s.n_ranks == N && s.rank == r, "%s N=%d r=%d", what, N, r);
        // query heads: whole, contiguous, in rank order
        CHECK(s.heads == H / N && s.head0 == next_head, "%s N=%d r=%d: heads %d+%d", what, N, r, s.head0, s.heads);
        next_head = s.head0 + s.heads;
        // kv heads: split when N <= Hkv, one replicated kv head otherwise
        if (N <= Hkv) CHECK(s.kv_heads == Hkv / N && s.kv_head0 == r * (Hkv / N) && s.kv_replicas == 1,
                            "%s N=%d r=%d: kv %d+%d x%d", what, N, r, s.kv_head0, s.kv_heads, s.kv_replicas);
        else CHECK(s.kv_heads == 1 && s.kv_replicas == N / Hkv && s.kv_head0 == r / (N / Hkv),
                   "%s N=%d r=%d: kv %d+%d x%d", what, N, r, s.kv_head0, s.kv_heads, s.kv_replicas);
        for (int k = s.kv_head0; k < s.kv_head0 + s.kv_heads; k++) kv_holders[k]++;
        // GQA: every query head of this rank reads a kv head this rank holds, and the local mapping
        // (local head j reads local kv head j / (heads / kv_heads)) is the global one
        bool gqa = s.heads % s.kv_heads == 0;
        for (int j = 0; gqa && j < s.heads; j++) {
            int global_kv = gqa_kv_head(s.head0 + j, H, Hkv);
            gqa = global_kv == s.kv_head0 + j / (s.heads / s.kv_heads);
        }
        CHECK(gqa, "%s N=%d r=%d: a query head reads a kv head the rank lacks", what, N, r);
        // FFN rows and vocabulary rows
        CHECK(s.ffn == c->ffn_hidden / N && s.ffn0 == next_ffn, "%s N=%d r=%d: ffn %d+%d", what, N, r, s.ffn0, s.ffn);
        next_ffn = s.ffn0 + s.ffn;
        CHECK(s.vocab == c->vocab_size / N && s.vocab0 == next_vocab, "%s N=%d r=%d: vocab %d+%d", what, N, r, s.vocab0,
              s.vocab);
        next_vocab = s.vocab0 + s.vocab;

        // tp_part for every kind of tensor agrees with the slice
        TpPart p = tp_part(c, "layers.3.attention.wq.weight", N, r);
        CHECK(p.dim == 0 && p.start == (int64_t)s.head0 * Dh && p.count == (int64_t)s.heads * Dh &&
              p.full == (int64_t)H * Dh, "%s N=%d r=%d wq", what, N, r);
        TpPart po = tp_part(c, "layers.3.attention.wo.weight", N, r);
        CHECK(po.dim == 1 && po.start == p.start && po.count == p.count && po.full == p.full,
              "%s N=%d r=%d: wo's columns are wq's rows", what, N, r);
        const char *kv[2] = {"layers.0.attention.wk.weight", "layers.31.attention.wv.weight"};
        for (int i = 0; i < 2; i++) {
            TpPart pk = tp_part(c, kv[i], N, r);
            CHECK(pk.dim == 0 && pk.start == (int64_t)s.kv_head0 * Dh && pk.count == (int64_t)s.kv_heads * Dh &&
                  pk.full == (int64_t)Hkv * Dh, "%s N=%d r=%d %s", what, N, r, kv[i]);
        }
        TpPart p1 = tp_part(c, "layers.0.feed_forward.w1.weight", N, r);
        TpPart p3 = tp_part(c, "layers.0.feed_forward.w3.weight", N, r);
        TpPart p2 = tp_part(c, "layers.0.feed_forward.w2.weight", N, r);
        CHECK(p1.dim == 0 && p3.dim == 0 && p2.dim == 1 && p1.start == s.ffn0 && p1.count == s.ffn &&
              p1.full == c->ffn_hidden && p3.start == p1.start && p2.start == p1.start && p2.count == p1.count,
              "%s N=%d r=%d: w1/w3 rows, w2 columns", what, N, r);
        const char *vocab[2] = {"tok_embeddings.weight", "output.weight"};
        for (int i = 0; i < 2; i++) {
            TpPart pv = tp_part(c, vocab[i], N, r);
            CHECK(pv.dim == 0 && pv.start == s.vocab0 && pv.count == s.vocab && pv.full == c->vocab_size,
                  "%s N=%d r=%d %s", what, N, r, vocab[i]);
        }
        const char *replicated[3] = {"norm.weight", "layers.2.attention_norm.weight", "layers.2.ffn_norm.weight"};
        for (int i = 0; i < 3; i++) CHECK(tp_part(c, replicated[i], N, r).dim == -1, "%s %s", what, replicated[i]);
    }
    CHECK(next_head == H && next_ffn == c->ffn_hidden && next_vocab == c->vocab_size,
          "%s N=%d: the slices do not cover the weights", what, N);
    int want = N <= Hkv ? 1 : N / Hkv;
    bool even = true;
    for (int k = 0; k < Hkv; k++) even = even && kv_holders[k] == want;
    CHECK(even, "%s N=%d: every kv head must be held by %d rank(s)", what, N, want);
}

// The valid N among 1..8 for a config, as a bit set, and the split checked for each.
static unsigned valid_set(const char *what, const Config *c, int max_n) {
    unsigned set = 0;
    char why[256];
    for (int N = 1; N <= max_n; N++) {
        bool ok = tp_check(c, N, why, sizeof why);
        if (ok) {
            set |= 1u << N;
            check_split(what, c, N);
        } else {
            CHECK(strlen(why) > 20 && !strchr(why, '\n'), "%s N=%d: one-line reason, got '%s'", what, N, why);
        }
    }
    return set;
}

int main(void) {
    // Meta-Llama-3-8B: D 4096, H 32, Hkv 8, F 14336, V 128256
    Config c8 = make_config(4096, 32, 32, 8, 128256, 1024, 1.3);
    CHECK_EQ_INT(c8.ffn_hidden, 14336);
    CHECK_EQ_INT(valid_set("8B", &c8, 8), (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8));
    // Meta-Llama-3-70B: D 8192, H 64, Hkv 8, F 28672, V 128256 (ffn_dim_multiplier 1.3, multiple_of 4096)
    Config c70 = make_config(8192, 80, 64, 8, 128256, 4096, 1.3);
    CHECK_EQ_INT(c70.ffn_hidden, 28672);
    CHECK_EQ_INT(valid_set("70B", &c70, 8), (1u << 1) | (1u << 2) | (1u << 4) | (1u << 8));
    // 70B at N = 8, as Meta ships it (8 files): the shapes of consolidated.NN.pth
    TpSlice s = tp_slice(&c70, 8, 5);
    CHECK_EQ_INT(s.heads * c70.head_dim, 1024);   // wq [1024, 8192]
    CHECK_EQ_INT(s.kv_heads * c70.head_dim, 128); // wk, wv [128, 8192]
    CHECK_EQ_INT(s.ffn, 3584);                    // w1, w3 [3584, 8192], w2 [8192, 3584]
    CHECK_EQ_INT(s.vocab, 16032);                 // output, tok_embeddings [16032, 8192]
    CHECK_EQ_INT(s.head0, 40);
    CHECK_EQ_INT(s.kv_head0, 5);
    CHECK_EQ_INT(s.vocab0, 5 * 16032);
    // 8B at N = 2: heads 16..31, kv heads 4..7
    s = tp_slice(&c8, 2, 1);
    CHECK(s.head0 == 16 && s.heads == 16 && s.kv_head0 == 4 && s.kv_heads == 4 && s.ffn0 == 7168 && s.vocab0 == 64128,
          "8B N=2 rank 1: heads %d+%d kv %d+%d ffn %d vocab %d", s.head0, s.heads, s.kv_head0, s.kv_heads, s.ffn0,
          s.vocab0);

    // The demo model's shape (D 512, H 4, Hkv 1): N = 2 and 4 replicate the one kv head; 3, 5-8 are invalid
    Config tiny = make_config(512, 4, 4, 1, 128256, 256, 0);
    CHECK_EQ_INT(valid_set("tiny", &tiny, 8), (1u << 1) | (1u << 2) | (1u << 4));
    s = tp_slice(&tiny, 4, 3);
    CHECK(s.kv_replicas == 4 && s.kv_head0 == 0 && s.kv_heads == 1 && s.heads == 1 && s.head0 == 3, "tiny N=4 r=3");
    char why[256];
    CHECK(!tp_check(&tiny, 8, why, sizeof why) && strstr(why, "4 query heads") && strstr(why, "8 ranks"), "%s", why);

    // more ranks than kv heads: 8B at N = 16 and 32 (kv heads replicated 2 and 4 times)
    CHECK(tp_check(&c8, 16, why, sizeof why), "8B N=16: %s", why);
    check_split("8B", &c8, 16);
    check_split("8B", &c8, 32);
    s = tp_slice(&c8, 16, 5);
    CHECK(s.kv_replicas == 2 && s.kv_head0 == 2 && s.head0 == 10 && s.heads == 2, "8B N=16 r=5");
    // H 12, Hkv 4: N = 6 divides the heads but not into kv groups (6 is not a multiple of 4)
    Config odd = make_config(768, 2, 12, 4, 1200, 192, 0);
    CHECK(!tp_check(&odd, 6, why, sizeof why) && strstr(why, "multiple of n_kv_heads"), "%s", why);
    CHECK(tp_check(&odd, 4, why, sizeof why) && tp_check(&odd, 12, why, sizeof why), "H12 Hkv4: N=4 and N=12 split");
    check_split("H12", &odd, 12);
    // a vocabulary that does not divide
    Config v = make_config(512, 1, 4, 4, 1001, 256, 0);
    CHECK(!tp_check(&v, 2, why, sizeof why) && strstr(why, "vocabulary of 1001"), "%s", why);
    CHECK(!tp_check(&v, 0, why, sizeof why), "N=0 is invalid");

    // names: split dims without a config; not-a-weight names are replicated
    CHECK_EQ_INT(tp_split_dim("tok_embeddings.weight"), 0);
    CHECK_EQ_INT(tp_split_dim("layers.12.attention.wo.weight"), 1);
    CHECK_EQ_INT(tp_split_dim("layers.12.feed_forward.w2.weight"), 1);
    CHECK_EQ_INT(tp_split_dim("layers.7.feed_forward.w3.weight"), 0);
    CHECK_EQ_INT(tp_split_dim("layers.x.attention.wq.weight"), -1);
    CHECK_EQ_INT(tp_split_dim("rope.freqs"), -1);
    CHECK_EQ_INT(tp_split_dim("xlayers.0.attention.wq.weight"), -1);
    CHECK(tp_is_kv_weight("layers.0.attention.wv.weight") && !tp_is_kv_weight("layers.0.attention.wq.weight"),
          "tp_is_kv_weight");
    TEST_SUMMARY();
}

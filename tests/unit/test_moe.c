// test_moe.c: the CPU reference of the mixture-of-experts feed-forward (common/ref/ref_moe.h, ref/topk_torch.h) on
// cases small enough to work out by hand, and its properties on a random one; params.json's MoE keys.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "ref/ref_moe.h"
#include "ref/topk_torch.h"
#include "tensor.h"
#include "util.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) / (double)(1ull << 53);
}
static uint16_t *random_bf16(size_t n, double scale) {
    uint16_t *w = xmalloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) w[i] = f32_to_bf16((float)((uniform() * 2 - 1) * scale));
    return w;
}

// torch.topk's order with ties, as Debian's torch 1.13.1 returns it on the CPU (tests/reference/moe_reference.py
// --self-test asserts the same cases against torch itself)
static void test_topk_ties(void) {
    struct {
        float x[8];
        int n, k, want[4];
    } cases[] = {
        {{0.25f, 0.25f, 0.25f, 0.25f}, 4, 2, {2, 3}},
        {{0.1f, 0.3f, 0.3f, 0.3f}, 4, 2, {2, 3}},
        {{0.2f, 0.4f, 0.2f, 0.2f}, 4, 3, {1, 3, 0}},
        {{0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f, 0.25f}, 8, 3, {6, 5, 4}},
        {{0.1f, 0.5f, 0.2f, 0.9f}, 4, 2, {3, 1}},  // no ties: the two largest, largest first
    };
    TopkItem buf[8];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        topk_torch_order(buf, cases[c].x, cases[c].n, cases[c].k);
        for (int j = 0; j < cases[c].k; j++)
            CHECK(buf[j].i == cases[c].want[j], "case %zu pick %d: %d, torch gives %d", c, j, buf[j].i, cases[c].want[j]);
    }
    // the router on a row of equal scores picks what torch picks, and renormalises to 1/2 each
    float scores[4] = {0.25f, 0.25f, 0.25f, 0.25f}, w[2];
    int32_t idx[2];
    moe_topk_cpu(idx, w, scores, 1, 4, 2, true);
    CHECK(idx[0] == 2 && idx[1] == 3, "router ties: %d %d", idx[0], idx[1]);
    CHECK_NEAR(w[0], 0.5, 1e-7);
    moe_topk_cpu(idx, w, scores, 1, 4, 2, false);
    CHECK_NEAR(w[0], 0.25, 1e-7);
}

// MiniMind's two aux forms on B = 2 sequences of T = 2 tokens, E = 2, k = 1, worked out by hand:
//   seq 0: scores (0.8, 0.2), (0.6, 0.4), picks 0, 0  ->  ce = (2, 0), mean s = (0.7, 0.3): 1.4
//   seq 1: scores (0.3, 0.7), (0.1, 0.9), picks 1, 1  ->  ce = (0, 2), mean s = (0.2, 0.8): 1.6
//   seq_aux = alpha * mean(1.4, 1.6) = 1.5 alpha;   batch: f = (1, 1), P = (0.45, 0.55): 1.0 alpha
static void test_aux_loss(void) {
    float s[8] = {0.8f, 0.2f, 0.6f, 0.4f, 0.3f, 0.7f, 0.1f, 0.9f};
    int32_t idx[4] = {0, 0, 1, 1};
    CHECK_NEAR(moe_aux_loss_cpu(s, idx, 2, 2, 2, 1, 0.1, true), 0.15, 1e-7);
    CHECK_NEAR(moe_aux_loss_cpu(s, idx, 2, 2, 2, 1, 0.1, false), 0.10, 1e-7);
    // one sequence: both forms are the same number
    CHECK_NEAR(moe_aux_loss_cpu(s, idx, 1, 4, 2, 1, 0.1, true), moe_aux_loss_cpu(s, idx, 1, 4, 2, 1, 0.1, false), 1e-12);
}

static void test_sort(void) {
    int32_t idx[8] = {2, 0, 1, 2, 0, 2, 3, 1};  // T = 4 tokens, k = 2
    int32_t sorted[8], pos[8], off[5];
    moe_sort_cpu(sorted, pos, off, idx, 4, 2, 4);
    int32_t want_off[5] = {0, 2, 4, 7, 8}, want_sorted[8] = {1, 4, 2, 7, 0, 3, 5, 6};
    for (int e = 0; e < 5; e++) CHECK_EQ_INT(off[e], want_off[e]);
    for (int i = 0; i < 8; i++) CHECK_EQ_INT(sorted[i], want_sorted[i]);
    for (int a = 0; a < 8; a++) CHECK_EQ_INT(sorted[pos[a]], a);
}

// A random MoE layer: the sparse path equals the dense evaluation bit for bit, the weights sum to 1, every expert's
// segment holds the tokens that picked it, and the output is the routed sum plus the shared expert.
static void test_random_layer(Precision p) {
    const int T = 9, D = 32, F = 48, E = 4, k = 2, S = 1;
    MoeWeights w = {.E = E, .k = k, .S = S, .norm_topk_prob = true};
    moe_weights_alloc_tables(&w);
    uint16_t *gate = random_bf16((size_t)E * D, 0.5);
    w.gate = gate;
    uint16_t *mats[3 * (E + S)];
    for (int e = 0; e < E + S; e++) {
        mats[3 * e] = random_bf16((size_t)F * D, 0.2), mats[3 * e + 1] = random_bf16((size_t)D * F, 0.2);
        mats[3 * e + 2] = random_bf16((size_t)F * D, 0.2);
        if (e < E) w.w1[e] = mats[3 * e], w.w2[e] = mats[3 * e + 1], w.w3[e] = mats[3 * e + 2];
        else w.shared_w1[e - E] = mats[3 * e], w.shared_w2[e - E] = mats[3 * e + 1], w.shared_w3[e - E] = mats[3 * e + 2];
    }
    float *x = xmalloc((size_t)T * D * sizeof(float));
    for (int i = 0; i < T * D; i++) x[i] = act_round((float)(uniform() * 2 - 1), p);
    MoeTrace tr;
    moe_trace_alloc(&tr, T, D, F, E, k, S);
    moe_forward_cpu(&tr, x, &w, T, D, F, p);
    for (int t = 0; t < T; t++) {
        double ssum = 0;
        for (int e = 0; e < E; e++) ssum += tr.gate_scores[t * E + e];
        CHECK_NEAR(ssum, 1.0, 1e-6);
        CHECK_NEAR(tr.topk_w[t * k] + tr.topk_w[t * k + 1], 1.0, 1e-6);
        CHECK(tr.topk_w[t * k] >= tr.topk_w[t * k + 1], "token %d: largest first", t);
        CHECK(tr.topk_idx[t * k] != tr.topk_idx[t * k + 1], "token %d picks two different experts", t);
    }
    for (int e = 0; e < E; e++)
        for (int i = tr.offsets[e]; i < tr.offsets[e + 1]; i++) CHECK_EQ_INT(tr.topk_idx[tr.sorted[i]], e);
    float *dense = xmalloc((size_t)T * D * sizeof(float));
    moe_dense_routed_cpu(dense, x, &w, tr.topk_idx, tr.topk_w, T, D, F, p);
    CHECK(memcmp(dense, tr.routed_out, (size_t)T * D * sizeof(float)) == 0, "dense evaluation == routed path, bit for bit");
    // moe_out = routed_out + shared expert (one rounding)
    int bad = 0;
    for (int i = 0; i < T * D; i++) bad += tr.moe_out[i] != act_round(tr.routed_out[i] + tr.shared_out[i], p);
    CHECK_EQ_INT(bad, 0);
    // a token's output from its own two experts, recomputed alone
    float one[32], e0[32], e1[32];
    const int t = 4, a = tr.topk_idx[t * k], b = tr.topk_idx[t * k + 1];
    moe_expert_forward_cpu(e0, x + t * D, 1, w.w1[a], w.w2[a], w.w3[a], D, F, p);
    moe_expert_forward_cpu(e1, x + t * D, 1, w.w1[b], w.w2[b], w.w3[b], D, F, p);
    for (int d = 0; d < D; d++) {
        // summed in expert-id order, in double
        double acc = a < b ? (double)tr.topk_w[t * k] * e0[d] + (double)tr.topk_w[t * k + 1] * e1[d]
                           : (double)tr.topk_w[t * k + 1] * e1[d] + (double)tr.topk_w[t * k] * e0[d];
        one[d] = act_round((float)acc, p);
    }
    CHECK(memcmp(one, tr.routed_out + t * D, sizeof one) == 0, "token %d recomputed from its experts", t);
    moe_trace_free(&tr);
    for (int i = 0; i < 3 * (E + S); i++) free(mats[i]);
    free(gate), free(x), free(dense);
    moe_weights_free_tables(&w);
}

static void test_params_json(void) {
    char path[] = "/tmp/test_moe_params_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    const char *text = "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 1, \"vocab_size\": 100, "
                       "\"n_routed_experts\": 8, \"num_experts_per_tok\": 3, \"n_shared_experts\": 0, "
                       "\"aux_loss_alpha\": 0.1, \"seq_aux\": false}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write");
    close(fd);
    Config c;
    config_from_params_json(&c, path);
    CHECK(config_is_moe(&c), "MoE");
    CHECK_EQ_INT(c.n_routed_experts, 8);
    CHECK_EQ_INT(c.num_experts_per_tok, 3);
    CHECK_EQ_INT(c.n_shared_experts, 0);
    CHECK(c.norm_topk_prob, "MiniMind's default norm_topk_prob");
    CHECK(!c.seq_aux, "seq_aux false");
    CHECK_NEAR(c.aux_loss_alpha, 0.1, 1e-12);
    // written back with the same keys
    config_write_params_json(&c, path);
    Config c2;
    config_from_params_json(&c2, path);
    CHECK(c2.n_routed_experts == 8 && c2.num_experts_per_tok == 3 && c2.n_shared_experts == 0 && !c2.seq_aux &&
              c2.aux_loss_alpha == 0.1, "params.json round trip");
    unlink(path);
    // a dense params.json stays dense
    const char *dense = "{\"dim\": 64, \"n_layers\": 2, \"n_heads\": 4, \"vocab_size\": 100}";
    FILE *f = fopen(path, "w");
    fputs(dense, f);
    fclose(f);
    config_from_params_json(&c, path);
    CHECK(!config_is_moe(&c), "dense");
    unlink(path);
}

int main(void) {
    test_topk_ties();
    test_aux_loss();
    test_sort();
    test_random_layer(PREC_BF16);
    test_random_layer(PREC_FP32);
    test_params_json();
    TEST_SUMMARY();
}

// test_sampler.c: greedy, temperature and top-p sampling against their definitions (Meta's sample_top_p).
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "ref/ref_ops.h"
#include "rng.h"
#include "ref/sampler.h"

int main(void) {
    // ---- greedy: argmax, first index on ties
    {
        float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.0f, 0.0f};
        Sampler s;
        sampler_init(&s, 6, 0.0f, 0.9f, 1);
        CHECK_EQ_INT(sampler_sample(&s, logits), 1);
        CHECK_EQ_INT(s.n_draws, 0);  // greedy uses no random numbers
        sampler_free(&s);
    }
    // ---- the nucleus by Meta's rule: keep while the mass before the token is <= p
    {
        double probs[5] = {0.05, 0.5, 0.15, 0.3, 0.0};
        int32_t idx[5];
        double prob[5];
        int k = sampler_nucleus(idx, prob, probs, 5, 0.7f);  // exclusive sums 0, .5, .8: keep 2
        CHECK_EQ_INT(k, 2);
        CHECK_EQ_INT(idx[0], 1);
        CHECK_EQ_INT(idx[1], 3);
        k = sampler_nucleus(idx, prob, probs, 5, 0.85f);  // 0, .5, .8 <= .85: keep 3
        CHECK_EQ_INT(k, 3);
        CHECK_EQ_INT(idx[2], 2);
        k = sampler_nucleus(idx, prob, probs, 5, 0.1f);  // the top token is always kept
        CHECK_EQ_INT(k, 1);
        CHECK_EQ_INT(idx[0], 1);
        k = sampler_nucleus(idx, prob, probs, 5, 1.0f);  // everything (the zero-probability token too)
        CHECK_EQ_INT(k, 5);
        CHECK_EQ_INT(idx[4], 4);
        // ties: equal probabilities by increasing id
        double tied[4] = {0.25, 0.25, 0.25, 0.25};
        k = sampler_nucleus(idx, prob, tied, 4, 0.6f);  // 0, .25, .5 <= .6, .75 > .6: keep 3
        CHECK_EQ_INT(k, 3);
        CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2, "tie order %d %d %d", idx[0], idx[1], idx[2]);
    }
    // ---- the cutoff shortcut never changes the nucleus: compare with a full sort on random distributions
    {
        enum { N = 2000 };
        static double probs[N];
        static int32_t idx[N], idx_full[N];
        static double prob[N];
        int mismatches = 0;
        for (int trial = 0; trial < 20; trial++) {
            uint64_t key = rng_key(99, (uint64_t)trial);
            static float logits[N];
            for (int i = 0; i < N; i++) logits[i] = (float)(rng_normal(key, (uint64_t)i) * (1.0 + trial * 0.5));
            sampler_softmax(probs, logits, N, 1.0f);
            float p = 0.5f + 0.02f * (float)trial;
            int k = sampler_nucleus(idx, prob, probs, N, p);
            // reference: full selection sort, same rule
            static char used[N];
            for (int i = 0; i < N; i++) used[i] = 0;
            double before = 0.0;
            int kf = 0;
            for (int j = 0; j < N; j++) {
                int best = -1;
                for (int i = 0; i < N; i++)
                    if (!used[i] && (best < 0 || probs[i] > probs[best])) best = i;
                if (j > 0 && before > (double)p) break;
                used[best] = 1;
                idx_full[kf++] = best;
                before += probs[best];
            }
            if (k != kf) mismatches++;
            else
                for (int j = 0; j < k; j++) mismatches += idx[j] != idx_full[j];
        }
        CHECK_EQ_INT(mismatches, 0);
    }
    // ---- softmax with temperature
    {
        float logits[3] = {1.0f, 2.0f, 3.0f};
        double probs[3];
        sampler_softmax(probs, logits, 3, 0.5f);
        double z = exp(2.0) + exp(4.0) + exp(6.0);
        CHECK_NEAR(probs[0], exp(2.0) / z, 1e-12);
        CHECK_NEAR(probs[2], exp(6.0) / z, 1e-12);
    }
    // ---- pick: inverse CDF, never a zero-probability entry
    {
        double prob[4] = {0.0, 0.5, 0.0, 0.5};
        CHECK_EQ_INT(sampler_pick(prob, 4, 0.0), 1);
        CHECK_EQ_INT(sampler_pick(prob, 4, 0.49), 1);
        CHECK_EQ_INT(sampler_pick(prob, 4, 0.51), 3);
        CHECK_EQ_INT(sampler_pick(prob, 4, 0.999999), 3);
    }
    // ---- temperature sampling follows the softmax (frequencies within 5 standard deviations), seeded
    {
        float logits[4] = {0.0f, 1.0f, 2.0f, -30.0f};
        Sampler s;
        sampler_init(&s, 4, 1.0f, 1.0f, 1234);
        int counts[4] = {0};
        const int n = 20000;
        for (int i = 0; i < n; i++) counts[sampler_sample(&s, logits)]++;
        double probs[4];
        sampler_softmax(probs, logits, 4, 1.0f);
        for (int i = 0; i < 3; i++) {
            double expect = n * probs[i], sd = sqrt(n * probs[i] * (1 - probs[i]));
            CHECK(fabs(counts[i] - expect) < 5 * sd, "token %d: %d draws, expected %.0f +- %.0f", i, counts[i], expect, sd);
        }
        CHECK_EQ_INT(counts[3], 0);
        CHECK_EQ_INT(s.n_draws, n);
        sampler_free(&s);
        // top-p 0.5 on these logits keeps only token 2 (p 0.665): always 2
        sampler_init(&s, 4, 1.0f, 0.5f, 1234);
        int only2 = 1;
        for (int i = 0; i < 1000; i++) only2 &= sampler_sample(&s, logits) == 2;
        CHECK(only2, "top-p 0.5 drew a token outside the nucleus");
        sampler_free(&s);
        // top-p 0.7: nucleus {2, 1} (exclusive sums 0, .665): token 0 never appears, 1 does
        sampler_init(&s, 4, 1.0f, 0.7f, 5);
        int c[4] = {0};
        for (int i = 0; i < 4000; i++) c[sampler_sample(&s, logits)]++;
        CHECK(c[0] == 0 && c[3] == 0 && c[1] > 0 && c[2] > c[1], "counts %d %d %d %d", c[0], c[1], c[2], c[3]);
        sampler_free(&s);
    }
    // ---- the same seed gives the same tokens; another seed other tokens
    {
        enum { V = 1000 };
        static float logits[V];
        uint64_t key = rng_key(7, 0);
        for (int i = 0; i < V; i++) logits[i] = (float)rng_normal(key, (uint64_t)i) * 2.0f;
        Sampler a, b, c;
        sampler_init(&a, V, 0.8f, 0.95f, 42);
        sampler_init(&b, V, 0.8f, 0.95f, 42);
        sampler_init(&c, V, 0.8f, 0.95f, 43);
        int same = 1, diff = 0;
        for (int i = 0; i < 50; i++) {
            int32_t x = sampler_sample(&a, logits), y = sampler_sample(&b, logits), z = sampler_sample(&c, logits);
            same &= x == y;
            diff += x != z;
        }
        CHECK(same, "seed 42 twice gave different tokens");
        CHECK(diff > 0, "seeds 42 and 43 gave the same 50 tokens");
        sampler_free(&a), sampler_free(&b), sampler_free(&c);
    }
    TEST_SUMMARY();
}

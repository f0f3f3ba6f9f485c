// sampler.c: greedy, temperature and top-p sampling (see sampler.h).
#include "ref/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "ref/ref_ops.h"
#include "rng.h"
#include "util.h"

void sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed) {
    if (vocab_size <= 0) fatal("sampler_init: vocab_size %d", vocab_size);
    if (!(temperature >= 0.0f) || !isfinite(temperature))
        fatal("sampler_init: temperature %g must be >= 0", (double)temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f)) fatal("sampler_init: top_p %g must be in (0, 1]", (double)top_p);
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->top_p = top_p;
    s->seed = seed;
    s->rng_key = rng_key(seed, 0);
    s->n_draws = 0;
    s->cand_idx = xmalloc((size_t)vocab_size * sizeof(int32_t));
    s->cand_prob = xmalloc((size_t)vocab_size * sizeof(double));
}

void sampler_free(Sampler *s) {
    free(s->cand_idx);
    free(s->cand_prob);
    s->cand_idx = NULL;
    s->cand_prob = NULL;
}

void sampler_softmax(double *probs, const float *logits, int n, float temperature) {
    double max = -INFINITY;
    for (int i = 0; i < n; i++) {
        double z = (double)logits[i] / (double)temperature;
        if (z > max) max = z;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        probs[i] = exp((double)logits[i] / (double)temperature - max);
        sum += probs[i];
    }
    for (int i = 0; i < n; i++) probs[i] /= sum;
}

// Descending probability; equal probabilities by increasing id (a stable sort of torch gives the same order).
typedef struct {
    double p;
    int32_t i;
} Cand;
static int cand_cmp(const void *a, const void *b) {
    const Cand *x = a, *y = b;
    if (x->p > y->p) return -1;
    if (x->p < y->p) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

int sampler_nucleus(int32_t *idx, double *prob, const double *probs, int n, float top_p) {
    // Sorting all 128256 probabilities for every token is slow. A token whose probability is below
    // (1 - p) / (n - 1) can never be in the nucleus: all such tokens together hold less than 1 - p, so the
    // larger ones already sum past p before any of them is reached. Sort only the others (llama2.c's trick).
    double cutoff = n > 1 ? (1.0 - (double)top_p) / (double)(n - 1) : 0.0;
    if (top_p >= 1.0f) cutoff = 0.0;
    Cand *c = xmalloc((size_t)n * sizeof(Cand));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (probs[i] >= cutoff) c[m++] = (Cand){probs[i], i};
    qsort(c, (size_t)m, sizeof(Cand), cand_cmp);
    // Meta: mask = cumsum - p_sorted > top_p, i.e. drop a token when the mass BEFORE it already exceeds top_p.
    double before = 0.0;
    int k = 0;
    for (int j = 0; j < m; j++) {
        if (j > 0 && top_p < 1.0f && before > (double)top_p) break;
        idx[k] = c[j].i;
        prob[k] = c[j].p;
        k++;
        before += c[j].p;
    }
    free(c);
    return k;
}

int sampler_pick(const double *prob, int k, double u) {
    double total = 0.0;
    for (int j = 0; j < k; j++) total += prob[j];
    double target = u * total, cum = 0.0;
    int last_nonzero = 0;
    for (int j = 0; j < k; j++) {
        if (prob[j] <= 0.0) continue;
        last_nonzero = j;
        cum += prob[j];
        if (target < cum) return j;
    }
    return last_nonzero;  // rounding left target == total: the last token with mass
}

int32_t sampler_sample(Sampler *s, const float *logits) {
    int n = s->vocab_size;
    if (s->temperature == 0.0f) return (int32_t)argmax_cpu(logits, n);
    sampler_softmax(s->cand_prob, logits, n, s->temperature);
    // sampler_nucleus reads probs and writes the kept ones: copy the probabilities aside first
    double *probs = xmalloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) probs[i] = s->cand_prob[i];
    int k = sampler_nucleus(s->cand_idx, s->cand_prob, probs, n, s->top_p);
    free(probs);
    double u = rng_uniform(s->rng_key, s->n_draws++);
    return s->cand_idx[sampler_pick(s->cand_prob, k, u)];
}

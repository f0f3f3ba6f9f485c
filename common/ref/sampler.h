// sampler.h: picking the next token from the logits of the last position, as Meta's generate() does it.
//
//   temperature == 0   greedy: argmax (the first index on ties, as torch.argmax)
//   temperature  > 0   probs = softmax(logits / temperature), then nucleus sampling (Meta's `sample_top_p`):
//                      sort descending, keep the tokens whose EXCLUSIVE cumulative sum is <= top_p
//                      (`mask = probs_sum - probs_sort > p`), renormalise, draw one.
// The draws come from the counter-based generator in rng.h: the same seed gives the same tokens on any machine and
// thread count, whatever the backend that produced the logits.
//
// Shapes: logits [V] floats (fp32, `.float()` in Meta's reference).
//
// Use:
//   Sampler s;  sampler_init(&s, V, 0.6f, 0.9f, seed);
//   int32_t next = sampler_sample(&s, logits);
//   sampler_free(&s);
#pragma once
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int vocab_size;
    float temperature;   // 0 = greedy
    float top_p;         // in (0, 1]; 1 keeps every token
    uint64_t seed;
    uint64_t rng_key;    // rng_key(seed, 0)
    uint64_t n_draws;    // how many uniform numbers were used (the counter of the stream)
    // scratch [V]: candidates of the nucleus and their probabilities
    int32_t *cand_idx;
    double *cand_prob;
} Sampler;

void sampler_init(Sampler *s, int vocab_size, float temperature, float top_p, uint64_t seed);
void sampler_free(Sampler *s);
// The next token. logits are not modified.
int32_t sampler_sample(Sampler *s, const float *logits);

// The pieces, for tests and for chapter 16's printout:
// probs[V] = softmax(logits / temperature) in double (temperature > 0).
void sampler_softmax(double *probs, const float *logits, int n, float temperature);
// Meta's nucleus of probs[n]: writes the kept ids, largest probability first (ties: smaller id first), into idx
// and their probabilities (not renormalised) into prob; returns how many were kept (at least 1).
int sampler_nucleus(int32_t *idx, double *prob, const double *probs, int n, float top_p);
// Index into prob[0..k) chosen by u in [0, 1) against the cumulative sum (torch.multinomial on the renormalised
// nucleus). Never returns an index whose probability is 0 unless all are.
int sampler_pick(const double *prob, int k, double u);

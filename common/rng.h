// rng.h: a counter-based random number generator: element i of stream s under seed S is a pure function
// rng_u64(rng_key(S, s), i). Any element can be computed alone, so a tensor can be filled in parallel, in any
// order and in chunks, and its bytes never depend on the thread count.
//
// The mixing function is SplitMix64's finalizer (Steele, Lea, Flood 2014, "Fast splittable pseudorandom number
// generators"), and rng_u64(key, i) is exactly the (i+1)-th output of a SplitMix64 generator seeded with key.
// Streams get keys that are two rounds of mixing apart, so neighbouring seeds and streams look unrelated.
//
// rng_normal() is an Irwin-Hall approximation of N(0, 1): the sum of the four 16-bit lanes of one 64-bit draw,
// centred and scaled to unit variance. It is bounded (|x| <= 3.46), costs one draw and no log/sqrt/cos, and is
// easy to reproduce in any language (tests/reference/check_torch_load.py recomputes it with numpy):
//     S = lane0 + lane1 + lane2 + lane3          (each lane uniform on 0..65535, mean 32767.5, var (65536^2-1)/12)
//     x = (S - 131070) * (sqrt(3) / 65536)       (in double precision)
// Good enough for synthetic weights; not for statistics that care about the tails.
#pragma once
#include <stdint.h>

#define RNG_GOLDEN_GAMMA 0x9E3779B97F4A7C15ull

static inline uint64_t rng_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// Key of stream `stream` (e.g. the tensor's index) under seed `seed`.
static inline uint64_t rng_key(uint64_t seed, uint64_t stream) {
    return rng_mix64(rng_mix64(seed + RNG_GOLDEN_GAMMA) ^ (stream * 0xD1B54A32D192ED03ull + RNG_GOLDEN_GAMMA));
}

// Draw number `counter` of the stream with this key.
static inline uint64_t rng_u64(uint64_t key, uint64_t counter) {
    return rng_mix64(key + (counter + 1) * RNG_GOLDEN_GAMMA);
}

// Uniform on [0, 1) with 53 random bits.
static inline double rng_uniform(uint64_t key, uint64_t counter) {
    return (double)(rng_u64(key, counter) >> 11) * (1.0 / 9007199254740992.0);
}

// Approximately N(0, 1) (Irwin-Hall of four 16-bit lanes, see above).
static inline double rng_normal(uint64_t key, uint64_t counter) {
    uint64_t u = rng_u64(key, counter);
    int64_t s = (int64_t)(u & 0xFFFF) + (int64_t)((u >> 16) & 0xFFFF) + (int64_t)((u >> 32) & 0xFFFF) +
                (int64_t)(u >> 48);
    return (double)(s - 131070) * (1.7320508075688772 / 65536.0);
}

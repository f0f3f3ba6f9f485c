// compare.h: the one validator every comparison goes through (CUDA path vs CPU reference, C vs PyTorch).
//
// An element passes when |ref - out| <= atol + rtol*|ref|. Special values, the same rule for every comparison: a NaN
// never equals anything, so a NaN on either side is always a mismatch (a NaN in the reference is a bug of the
// reference, not a value to reproduce); an Inf matches only the same Inf (masked scores are -inf on both sides).
//
// compare_f32() prints, on stdout:
//   - with verbose (or on failure): a few pairs (ref, out) for visual proof, the count of mismatches, max abs and
//     max rel error, the worst element (the largest share of its tolerance) with its index in the shape, and the
//     normalised MSE sum((ref-out)^2) / sum(ref^2);
//   - always, last, the one greppable verdict line:
//       OK   05_rope  q_per_token_rotated [17, 128]  max_abs 3.1e-07 (2% of tol)
//       FAIL 05_rope  q_per_token_rotated [17, 128]  max_abs 2.0e+00 (9512% of tol)  3 of 2176 mismatched
// and returns a CompareResult that a step can record in trace.json (metric, tolerance, verdict).
//
// Choose atol/rtol beside the call, with a comment saying why: for bf16 outputs a few bf16 ulps (one ulp is a
// relative 2^-8..2^-7), for fp32 outputs ~1e-5 relative; atol covers values near zero where the relative error of a
// sum with cancellation is meaningless.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "tensor.h"

typedef struct {
    char step[32];           // "05_rope"
    char name[96];           // "q_per_token_rotated"
    char shape[64];          // "[17, 128]"
    int64_t n;               // elements compared
    int64_t n_mismatch;      // elements outside the tolerance (special values included)
    int64_t n_bad_special;   // of those: a NaN on either side, or an Inf not matched by the same Inf
    double max_abs;          // max |ref - out| over elements where both are finite
    double max_rel;          // max |ref - out| / |ref| over finite elements with ref != 0
    int64_t worst_index;     // flat index of the element using the largest share of its tolerance (-1 if none)
    double worst_ref, worst_out;
    double tol_used;         // max over elements of |ref - out| / (atol + rtol*|ref|); 1.0 = exactly at the limit
    double nmse;             // sum (ref-out)^2 / sum ref^2 over finite pairs (0 when equal)
    double atol, rtol;
    bool by_nmse;            // a compare_nmse_f32 result: the verdict is nmse <= max_nmse
    double max_nmse;
    bool ok;                 // n_mismatch == 0
} CompareResult;

// Compares n = prod(shape) floats. verbose: 0 prints only the verdict line (plus the details when it fails),
// 1 always prints the details. step and name are copied (truncated to fit).
CompareResult compare_f32(const char *step, const char *name, const float *ref, const float *out,
                          const int64_t *shape, int ndim, double atol, double rtol, int verbose);
// For results at the end of many bf16 layers computed on two paths that accumulate in different orders (the whole
// model on the GPU against the CPU, a cached decode against a recompute): single roundings flip along the way and
// the differences grow layer by layer, so an elementwise tolerance says little. The verdict is the normalised MSE
// sum((ref-out)^2) / sum(ref^2) over the finite pairs <= max_nmse, and no special value mismatched (the rule above);
// n_mismatch counts those, plus one when the nmse is over. Prints the verdict line:
//       OK   16_generate  decode_logits [128256]  nmse 3.2e-06 (3% of tol 1e-04)  max_abs 2.1e-02
CompareResult compare_nmse_f32(const char *step, const char *name, const float *ref, const float *out,
                               const int64_t *shape, int ndim, double max_nmse);
// "[i, j, k]" of a flat row-major index into a tensor of the given shape, into buf; returns buf.
char *index_str(int64_t flat, const int64_t *shape, int ndim, char *buf, size_t n);
// The verdict line of a result (without a newline) into buf; returns buf.
char *compare_verdict_line(const CompareResult *r, char *buf, size_t n);
// The language of the verdict lines' words from here on: OK/FAIL, the names and the numbers stay, "(2% of tol)" reads
// "（容差的 2%）" in Chinese. The programs' --lang sets it once at the start (English by default).
void compare_set_chinese(bool zh);
// Exit status for a program whose comparisons are in results[0..n): 0 when all are ok, else 1.
int compare_exit_code(const CompareResult *results, int n);

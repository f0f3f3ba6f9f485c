// test_compare.c: the validator passes equal arrays and catches a planted error, a NaN, an Inf, a lost -inf; the
// normalised-MSE verdict with the same rule for special values.
// Run: build/tests/test_compare  (prints the validator's own lines, then "N passed, N failed").
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "compare.h"

#define T_ 17
#define DH_ 128

static float ref[T_ * DH_], out[T_ * DH_];
static const int64_t shape[2] = {T_, DH_};

static void fill_equal(void) {
    for (int i = 0; i < T_ * DH_; i++) {
        ref[i] = sinf((float)i * 0.37f) * 3.0f;
        out[i] = ref[i];
    }
}

int main(void) {
    char line[400];

    // Equal arrays: OK, zero error, verdict line in the documented form.
    fill_equal();
    CompareResult r = compare_f32("05_rope", "q_per_token_rotated", ref, out, shape, 2, 1e-6, 1e-5, 1);
    CHECK(r.ok);
    CHECK_EQ_INT(r.n, T_ * DH_);
    CHECK_EQ_INT(r.n_mismatch, 0);
    CHECK(r.max_abs == 0.0 && r.max_rel == 0.0 && r.nmse == 0.0 && r.tol_used == 0.0);
    compare_verdict_line(&r, line, sizeof line);
    CHECK(strncmp(line, "OK   05_rope  q_per_token_rotated [17, 128]  max_abs 0.0e+00 (0% of tol)", 200) == 0, "%s",
          line);
    CHECK_EQ_STR(r.shape, "[17, 128]");
    CHECK_EQ_INT(compare_exit_code(&r, 1), 0);

    // Small errors inside the tolerance: still OK, and the share of the tolerance is what we planted (50%).
    fill_equal();
    out[100] = ref[100] + 0.5f * (float)(1e-6 + 1e-5 * fabs(ref[100]));
    r = compare_f32("t", "inside", ref, out, shape, 2, 1e-6, 1e-5, 0);
    CHECK(r.ok);
    CHECK_NEAR(r.tol_used, 0.5, 0.01);
    CHECK_EQ_INT(r.worst_index, 100);

    // One planted error: FAIL, one mismatch, found at the right place with the right size.
    fill_equal();
    out[5 * DH_ + 7] = ref[5 * DH_ + 7] + 0.25f;
    r = compare_f32("t", "planted", ref, out, shape, 2, 1e-6, 1e-5, 0);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_mismatch, 1);
    CHECK_EQ_INT(r.worst_index, 5 * DH_ + 7);
    CHECK_NEAR(r.max_abs, 0.25, 1e-6);
    CHECK(r.tol_used > 1.0);
    CHECK(r.nmse > 0.0);
    compare_verdict_line(&r, line, sizeof line);
    CHECK(strncmp(line, "FAIL t  planted [17, 128]  max_abs 2.5e-01", 42) == 0, "%s", line);
    CHECK(strstr(line, "1 of 2176 mismatched") != NULL, "%s", line);
    CHECK_EQ_INT(compare_exit_code(&r, 1), 1);

    // The relative part of the tolerance scales with |ref|: 1% off passes rtol 2%, fails rtol 0.5%.
    fill_equal();
    for (int i = 0; i < T_ * DH_; i++) out[i] = ref[i] * 1.01f;
    CHECK(compare_f32("t", "rel_ok", ref, out, shape, 2, 0.0, 0.02, 0).ok);
    CHECK(!compare_f32("t", "rel_bad", ref, out, shape, 2, 0.0, 0.005, 0).ok);

    // A NaN the reference does not have: FAIL even with a huge tolerance.
    fill_equal();
    out[3] = NAN;
    r = compare_f32("t", "nan", ref, out, shape, 2, 1e30, 1e30, 0);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_bad_special, 1);
    CHECK_EQ_INT(r.worst_index, 3);
    compare_verdict_line(&r, line, sizeof line);
    CHECK(strstr(line, "NaN/Inf") != NULL, "%s", line);

    // An Inf the reference does not have: FAIL.
    fill_equal();
    out[T_ * DH_ - 1] = INFINITY;
    r = compare_f32("t", "inf", ref, out, shape, 2, 1e30, 1e30, 0);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_bad_special, 1);

    // Masked scores: -inf on both sides is a match; a masked entry that came out finite, or +inf, is not.
    fill_equal();
    ref[1] = out[1] = -INFINITY;
    r = compare_f32("t", "masked_equal", ref, out, shape, 2, 1e-6, 1e-5, 0);
    CHECK(r.ok);
    CHECK(r.max_abs == 0.0);
    out[1] = 0.0f;
    CHECK(!compare_f32("t", "mask_lost", ref, out, shape, 2, 1e30, 1e30, 0).ok);
    out[1] = INFINITY;
    CHECK(!compare_f32("t", "mask_sign", ref, out, shape, 2, 1e30, 1e30, 0).ok);

    // NaN never equals anything: a NaN in the reference fails, also against a NaN in out (compare.h).
    fill_equal();
    ref[9] = NAN;
    CHECK(!compare_f32("t", "nan_in_ref", ref, out, shape, 2, 1e30, 1e30, 0).ok);
    out[9] = NAN;
    r = compare_f32("t", "nan_both", ref, out, shape, 2, 1e30, 1e30, 0);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_bad_special, 1);

    // The normalised MSE: equal passes with nmse 0; a small spread passes a loose bound and fails a tight one; the
    // special values follow the same rule (a NaN on either side fails, -inf on both sides is a match).
    fill_equal();
    r = compare_nmse_f32("t", "nmse_equal", ref, out, shape, 2, 1e-6);
    CHECK(r.ok && r.nmse == 0.0 && r.by_nmse);
    for (int i = 0; i < T_ * DH_; i++) out[i] = ref[i] * (i % 2 ? 1.001f : 0.999f);  // nmse ~1e-6
    r = compare_nmse_f32("t", "nmse_loose", ref, out, shape, 2, 1e-5);
    CHECK(r.ok && r.nmse > 5e-7 && r.nmse < 2e-6, "nmse %g", r.nmse);
    CHECK(r.tol_used > 0.05 && r.tol_used < 0.2, "tol_used %g", r.tol_used);
    r = compare_nmse_f32("t", "nmse_tight", ref, out, shape, 2, 1e-7);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_mismatch, 1);
    compare_verdict_line(&r, line, sizeof line);
    CHECK(strncmp(line, "FAIL t  nmse_tight [", 20) == 0 && strstr(line, " nmse ") != NULL, "%s", line);
    fill_equal();
    ref[2] = out[2] = -INFINITY;
    CHECK(compare_nmse_f32("t", "nmse_masked", ref, out, shape, 2, 1e-6).ok);
    ref[5] = out[5] = NAN;
    r = compare_nmse_f32("t", "nmse_nan", ref, out, shape, 2, 1e30);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_bad_special, 1);
    compare_verdict_line(&r, line, sizeof line);
    CHECK(strstr(line, "NaN/Inf") != NULL, "%s", line);

    // Several results: the exit code is 1 as soon as one failed.
    CompareResult two[2];
    fill_equal();
    two[0] = compare_f32("t", "a", ref, out, shape, 2, 0, 0, 0);
    out[0] += 1.0f;
    two[1] = compare_f32("t", "b", ref, out, shape, 2, 0, 0, 0);
    CHECK_EQ_INT(compare_exit_code(two, 1), 0);
    CHECK_EQ_INT(compare_exit_code(two, 2), 1);

    TEST_SUMMARY();
}

// compare.c: the validator (see compare.h): tolerance test per element, summary metrics, the verdict line.
#include "compare.h"

#include <math.h>
#include <string.h>

#define N_PAIRS_SHOWN 5

static void copy_str(char *dst, size_t n, const char *src) {
    if (!src) src = "";
    size_t len = strlen(src);
    if (len >= n) len = n - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

char *index_str(int64_t flat, const int64_t *shape, int ndim, char *buf, size_t n) {
    int64_t idx[MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] > 0 ? flat % shape[d] : 0;
        flat = shape[d] > 0 ? flat / shape[d] : 0;
    }
    return shape_str(idx, ndim, buf, n);
}

// A pair with a NaN or an Inf on either side: a match only for the same Inf on both sides (NaN never equals).
static bool special_mismatch(double ref, double out) { return !(isinf(ref) && out == ref); }

static CompareResult result_init(const char *step, const char *name, const int64_t *shape, int ndim) {
    CompareResult r;
    memset(&r, 0, sizeof r);
    copy_str(r.step, sizeof r.step, step);
    copy_str(r.name, sizeof r.name, name);
    shape_str(shape, ndim, r.shape, sizeof r.shape);
    r.worst_index = -1;
    r.n = 1;
    for (int d = 0; d < ndim; d++) r.n *= shape[d];
    return r;
}

CompareResult compare_f32(const char *step, const char *name, const float *ref, const float *out,
                          const int64_t *shape, int ndim, double atol, double rtol, int verbose) {
    CompareResult r = result_init(step, name, shape, ndim);
    r.atol = atol;
    r.rtol = rtol;

    double sum_sq_diff = 0.0, sum_sq_ref = 0.0;
    int64_t first_mismatch = -1;
    for (int64_t i = 0; i < r.n; i++) {
        double a = ref[i], b = out[i];
        double used;  // share of the tolerance this element uses
        if (!isfinite(a) || !isfinite(b)) {
            bool bad = special_mismatch(a, b);
            used = bad ? INFINITY : 0.0;
            r.n_bad_special += bad;
        } else {
            double diff = fabs(a - b);
            double limit = atol + rtol * fabs(a);
            used = limit > 0 ? diff / limit : (diff > 0 ? INFINITY : 0.0);
            if (diff > r.max_abs) r.max_abs = diff;
            if (a != 0 && diff / fabs(a) > r.max_rel) r.max_rel = diff / fabs(a);
            sum_sq_diff += diff * diff;
            sum_sq_ref += a * a;
        }
        if (used > 1.0) {
            r.n_mismatch++;
            if (first_mismatch < 0) first_mismatch = i;
        }
        if (r.worst_index < 0 || used > r.tol_used) {
            r.tol_used = used;
            r.worst_index = i;
        }
    }
    if (r.worst_index >= 0) {
        r.worst_ref = ref[r.worst_index];
        r.worst_out = out[r.worst_index];
    }
    r.nmse = sum_sq_ref > 0 ? sum_sq_diff / sum_sq_ref : (sum_sq_diff > 0 ? INFINITY : 0.0);
    r.ok = r.n_mismatch == 0;

    if (verbose || !r.ok) {
        char ib[96];
        printf("  compare %s %s %s: atol %.1e rtol %.1e\n", r.step, r.name, r.shape, atol, rtol);
        int64_t shown = r.n < N_PAIRS_SHOWN ? r.n : N_PAIRS_SHOWN;
        for (int64_t i = 0; i < shown; i++) {
            index_str(i, shape, ndim, ib, sizeof ib);
            printf("    %-16s ref % .8e  out % .8e\n", ib, ref[i], out[i]);
        }
        if (first_mismatch >= N_PAIRS_SHOWN) {
            index_str(first_mismatch, shape, ndim, ib, sizeof ib);
            printf("    %-16s ref % .8e  out % .8e  (first mismatch)\n", ib, ref[first_mismatch], out[first_mismatch]);
        }
        printf("    mismatches %lld of %lld", (long long)r.n_mismatch, (long long)r.n);
        if (r.n_bad_special) printf(" (%lld NaN, or Inf not in the reference)", (long long)r.n_bad_special);
        printf("; max abs %.3e, max rel %.3e, nmse %.3e\n", r.max_abs, r.max_rel, r.nmse);
        if (r.worst_index >= 0) {
            index_str(r.worst_index, shape, ndim, ib, sizeof ib);
            printf("    worst %s: ref % .8e out % .8e, %.0f%% of its tolerance%s\n", ib, r.worst_ref, r.worst_out,
                   r.tol_used * 100.0, isinf(r.tol_used) ? " (NaN/Inf, or a tolerance of 0)" : "");
        }
    }
    char line[400];
    printf("%s\n", compare_verdict_line(&r, line, sizeof line));
    fflush(stdout);
    return r;
}

static bool g_chinese;  // the verdict's words in Chinese (compare_set_chinese)
void compare_set_chinese(bool zh) { g_chinese = zh; }

CompareResult compare_nmse_f32(const char *step, const char *name, const float *ref, const float *out,
                               const int64_t *shape, int ndim, double max_nmse) {
    CompareResult r = result_init(step, name, shape, ndim);
    r.by_nmse = true, r.max_nmse = max_nmse;
    double num = 0, den = 0;
    for (int64_t i = 0; i < r.n; i++) {
        if (!isfinite(out[i]) || !isfinite(ref[i])) {
            r.n_bad_special += special_mismatch(ref[i], out[i]);
            continue;
        }
        double d = (double)out[i] - ref[i];
        num += d * d, den += (double)ref[i] * ref[i];
        if (fabs(d) > r.max_abs) r.max_abs = fabs(d);
    }
    r.nmse = den > 0 ? num / den : (num > 0 ? INFINITY : 0);
    r.n_mismatch = r.n_bad_special + (r.nmse > max_nmse);
    r.tol_used = max_nmse > 0 ? r.nmse / max_nmse : (r.nmse > 0 ? INFINITY : 0);
    r.ok = r.n_mismatch == 0;
    char line[400];
    printf("%s\n", compare_verdict_line(&r, line, sizeof line));
    fflush(stdout);
    return r;
}

char *compare_verdict_line(const CompareResult *r, char *buf, size_t n) {
    if (r->by_nmse) {
        snprintf(buf, n, g_chinese ? "%-4s %s  %s %s  nmse %.1e（容差 %.0e 的 %.0f%%）  max_abs %.1e%s"
                                   : "%-4s %s  %s %s  nmse %.1e (%.0f%% of tol %.0e)  max_abs %.1e%s",
                 r->ok ? "OK" : "FAIL", r->step, r->name, r->shape, r->nmse, g_chinese ? r->max_nmse : 100 * r->tol_used,
                 g_chinese ? 100 * r->tol_used : r->max_nmse, r->max_abs, r->n_bad_special ? "  NaN/Inf" : "");
        return buf;
    }
    char pct[48];
    if (r->n_bad_special) snprintf(pct, sizeof pct, "NaN/Inf");
    else if (isinf(r->tol_used)) snprintf(pct, sizeof pct, g_chinese ? "容差为 0" : "tolerance 0");
    else snprintf(pct, sizeof pct, g_chinese ? "容差的 %.0f%%" : "%.0f%% of tol", r->tol_used * 100.0);
    int len = snprintf(buf, n, g_chinese ? "%-4s %s  %s %s  max_abs %.1e（%s）" : "%-4s %s  %s %s  max_abs %.1e (%s)",
                       r->ok ? "OK" : "FAIL", r->step, r->name, r->shape, r->max_abs, pct);
    if (!r->ok && len >= 0 && (size_t)len < n) {
        if (g_chinese)
            snprintf(buf + len, n - (size_t)len, "  %lld 个中 %lld 个不符", (long long)r->n, (long long)r->n_mismatch);
        else snprintf(buf + len, n - (size_t)len, "  %lld of %lld mismatched", (long long)r->n_mismatch, (long long)r->n);
    }
    return buf;
}

int compare_exit_code(const CompareResult *results, int n) {
    for (int i = 0; i < n; i++)
        if (!results[i].ok) return 1;
    return 0;
}

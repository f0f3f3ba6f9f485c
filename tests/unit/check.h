// check.h: the smallest test harness. Each CHECK counts as one test; main() ends with TEST_SUMMARY(), which prints
// "N passed, N failed" and returns non-zero if anything failed.
#pragma once
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_passed_, check_failed_;

#define CHECK(cond, ...)                                                              \
    do {                                                                              \
        if (cond) check_passed_++;                                                    \
        else {                                                                        \
            check_failed_++;                                                          \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, "" __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                      \
        }                                                                             \
    } while (0)

#define CHECK_EQ_INT(a, b) CHECK((long long)(a) == (long long)(b), "%lld != %lld", (long long)(a), (long long)(b))
#define CHECK_EQ_STR(a, b) CHECK(strcmp((a), (b)) == 0, "\"%s\" != \"%s\"", (a), (b))
#define CHECK_NEAR(a, b, tol) CHECK(fabs((double)(a) - (double)(b)) <= (tol), "%.9g vs %.9g (tol %g)", (double)(a), (double)(b), (double)(tol))

#define TEST_SUMMARY()                                                         \
    do {                                                                       \
        printf("%d passed, %d failed\n", check_passed_, check_failed_);       \
        return check_failed_ ? 1 : 0;                                          \
    } while (0)

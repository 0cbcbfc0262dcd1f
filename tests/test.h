/* A minimal test harness: CHECK records a failure with file:line and
 * keeps going; TEST_MAIN_END prints "N passed, N failed" and sets the
 * exit status. Tolerances are stated where each comparison is made. */
#ifndef LMKIT_TEST_H
#define LMKIT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond)                                                      \
    do {                                                                 \
        if (cond) test_passed++;                                         \
        else {                                                           \
            test_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                \
    } while (0)

#define CHECK_MSG(cond, ...)                                             \
    do {                                                                 \
        if (cond) test_passed++;                                         \
        else {                                                           \
            test_failed++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                \
            fprintf(stderr, "\n");                                       \
        }                                                                \
    } while (0)

#define CHECK_OK(expr)                                                   \
    do {                                                                 \
        lm_status s_ = (expr);                                           \
        CHECK_MSG(s_ == LM_OK, "%s", lm_last_error());                  \
    } while (0)

/* Largest |a-b| / max(|b|, floor) over n values: the relative error a
 * parity test bounds. `floor` keeps near-zero references from dominating. */
static inline double test_max_rel_err(const float *a, const float *b, size_t n, double floor) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        double m = fabs((double)b[i]);
        if (m < floor) m = floor;
        if (!(d / m <= worst)) worst = d / m; /* NaN propagates as failure */
    }
    return worst;
}

/* Relative error of the whole vector: ||a-b|| / ||b||. */
static inline double test_rel_l2(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (den == 0) return sqrt(num);
    return sqrt(num / den);
}

/* Path of a file in the source tree (tests run from the build dir). */
static inline const char *test_src_path(const char *rel) {
    static char buf[4][4096];
    static int k;
    const char *root = getenv("LMKIT_SOURCE_DIR");
    if (!root) root = ".";
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

#define TEST_MAIN_END()                                                  \
    do {                                                                 \
        printf("%d passed, %d failed\n", test_passed, test_failed);      \
        return test_failed ? 1 : 0;                                      \
    } while (0)

#endif

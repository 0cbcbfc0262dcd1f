/* Helpers shared by the kernel tests: random buffers and comparisons that
 * print the worst error. */
#ifndef LMKIT_TEST_KERNELS_UTIL_H
#define LMKIT_TEST_KERNELS_UTIL_H

#include "kernels/kernels_ref.h"
#include "lmkit/base.h"
#include "test.h"

static lm_rng kt_rng;

static inline float *kt_alloc(size_t n) {
    float *p = (float *)lm_alloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* n normal values times `scale` (fresh buffer). */
static inline float *kt_randn(size_t n, float scale) {
    float *p = kt_alloc(n);
    for (size_t i = 0; i < n; i++) p[i] = lm_rng_normal(&kt_rng) * scale;
    return p;
}

static inline float *kt_copy(const float *x, size_t n) {
    float *p = kt_alloc(n);
    memcpy(p, x, n * sizeof(float));
    return p;
}

/* Runs fn once per SIMD level this CPU has (AVX-512, AVX2, scalar), with
 * the dispatch capped to that level, and prints which one is running. */
static inline void kt_for_each_level(void (*fn)(void)) {
    static const int levels[] = {LM_SIMD_AVX512, LM_SIMD_AVX2, LM_SIMD_SCALAR};
    static const char *names[] = {"avx512", "avx2", "scalar"};
    for (int i = 0; i < 3; i++) {
        if (levels[i] > lm_simd_best()) continue;
        lm_simd_force_level(levels[i]);
        printf("level %s\n", names[i]);
        fn();
    }
    lm_simd_force_level(-1);
}

/* CHECK that a and b agree: max |a-b| / max(|b|, floor) <= tol. */
#define KT_CLOSE(a, b, n, floor, tol, what)                                          \
    do {                                                                             \
        double e_ = test_max_rel_err((a), (b), (n), (floor));                        \
        CHECK_MSG(e_ <= (tol), "%s: max rel err %.3g > %.3g", (what), e_, (double)(tol)); \
    } while (0)

#endif

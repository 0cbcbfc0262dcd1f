/* Inverted dropout with masks that are a pure function of
 * (seed, stream, element index): nothing is stored between forward and
 * backward, any thread split gives the same mask, and the backward pass
 * regenerates it by calling the same function on the gradient. */
#include "lmkit/kernels.h"

/* splitmix64's finaliser: a bijective mix, so distinct counters give
 * independent-looking 64-bit values. */
static inline uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void lm_dropout(float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (!(p > 0)) return;
    /* Keep when a 24-bit uniform is >= p: P(keep) = 1 - p to 2^-24. */
    const uint32_t threshold = (uint32_t)((double)p * 16777216.0 + 0.5);
    const float keep_scale = 1.0f / (1.0f - p);
    const uint64_t base = mix64(seed ^ mix64(stream + 0x9e3779b97f4a7c15ull));
#pragma omp parallel for schedule(static) if (n >= 8192) /* ~10 integer ops an element */
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)(mix64(base + i * 0x9e3779b97f4a7c15ull) >> 40);
        x[i] = u >= threshold ? x[i] * keep_scale : 0.0f;
    }
}

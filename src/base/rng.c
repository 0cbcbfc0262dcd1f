/* SplitMix64: a counter-based generator, so any stream can be re-created
 * from (seed, stream) alone. That is what makes resumed and multi-process
 * runs reproduce bit for bit. */
#include "lmkit/base.h"

#include <math.h>

static uint64_t lm_splitmix(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void lm_rng_seed(lm_rng *r, uint64_t seed, uint64_t stream) {
    r->state = lm_splitmix(seed ^ lm_splitmix(stream + 0x1234567ull));
}

uint64_t lm_rng_u64(lm_rng *r) {
    r->state += 0x9E3779B97F4A7C15ull;
    uint64_t z = r->state;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint32_t lm_rng_below(lm_rng *r, uint32_t n) {
    /* Lemire's multiply-shift; the bias for n << 2^32 is negligible. */
    return (uint32_t)(((lm_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

float lm_rng_uniform(lm_rng *r) { return (float)(lm_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

float lm_rng_normal(lm_rng *r) {
    /* Box-Muller; u1 is kept away from 0 so log() stays finite. */
    double u1 = ((double)(lm_rng_u64(r) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (double)(lm_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

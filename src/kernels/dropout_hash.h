/* Internal: dropout's keep-or-drop decision as a pure function of (seed,
 * stream, element index), shared by lm_dropout and the attention kernels'
 * probability dropout: nothing is stored between forward and backward, any
 * thread split gives the same mask, and backward regenerates it. */
#ifndef LMKIT_KERNELS_DROPOUT_HASH_H
#define LMKIT_KERNELS_DROPOUT_HASH_H

#include <stdint.h>

#define LM_DROP_GOLDEN 0x9e3779b97f4a7c15ull

/* splitmix64's finaliser: a bijective mix, so distinct counters give
 * independent-looking 64-bit values. */
static inline uint64_t lm_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The per-(seed, stream) start of the counter sequence. */
static inline uint64_t lm_drop_base(uint64_t seed, uint64_t stream) { return lm_mix64(seed ^ lm_mix64(stream + LM_DROP_GOLDEN)); }

/* Keep when a 24-bit uniform is >= threshold: P(keep) = 1 - p to 2^-24. */
static inline uint32_t lm_drop_threshold(float p) { return (uint32_t)((double)p * 16777216.0 + 0.5); }

static inline int lm_drop_keep(uint64_t base, uint64_t index, uint32_t threshold) {
    return (uint32_t)(lm_mix64(base + index * LM_DROP_GOLDEN) >> 40) >= threshold;
}

#endif

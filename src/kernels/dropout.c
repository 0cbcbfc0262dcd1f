/* Inverted dropout with masks that are a pure function of
 * (seed, stream, element index): nothing is stored between forward and
 * backward, any thread split gives the same mask, and the backward pass
 * regenerates it by calling the same function on the gradient. */
#include "lmkit/kernels.h"

#include "kernels/dropout_hash.h"

void lm_dropout(float *x, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (!(p > 0)) return;
    const uint32_t threshold = lm_drop_threshold(p);
    const float keep_scale = 1.0f / (1.0f - p);
    const uint64_t base = lm_drop_base(seed, stream);
#pragma omp parallel for schedule(static) if (n >= 8192) /* ~10 integer ops an element */
    for (size_t i = 0; i < n; i++) x[i] = lm_drop_keep(base, i, threshold) ? x[i] * keep_scale : 0.0f;
}

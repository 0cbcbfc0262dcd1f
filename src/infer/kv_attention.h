/* Internal: attention of one query head over a range of KV-cache rows, the
 * engine's decode and prefill attention. */
#ifndef LMKIT_KV_ATTENTION_H
#define LMKIT_KV_ATTENTION_H

#include <stddef.h>

/* out[hd] = softmax(scale * q . K[t]) . V[t] over rows t in [start, end)
 * of K and V (element t * stride on, F16 when f16 is set, else F32).
 * Returns 0, touching nothing, for a head size it has no kernel for
 * (AVX-512: multiples of 16 up to 128); the caller then uses its own. */
int lm_kv_attention_avx512(float *out, const float *q, int hd, const void *k, const void *v, size_t stride, int f16,
                           int start, int end, float scale);

#endif

/* Internal: the engine's attention over its KV cache, for decode and
 * prefill alike.
 *
 * One call serves the G query heads that share a K/V head (grouped-query
 * attention; G = 1 without grouping), so each cache element is read and
 * converted once for all of them.
 *
 * A head's cache is two contiguous streams, so that the hardware
 * prefetchers follow them (with one row per position for all heads, the
 * decode attention of a 1B model read its cache at ~8 GB/s, a latency-
 * bound 8% of the step):
 * - K in tiles of LM_KV_TILE positions, each tile transposed: dimension d
 *   of the tile's positions is LM_KV_TILE consecutive elements. The
 *   scores of a tile's keys are then vectors of FMAs over the head's
 *   dimensions, with no horizontal sums.
 * - V with one row of head_dim elements per position. */
#ifndef LMKIT_KV_ATTENTION_H
#define LMKIT_KV_ATTENTION_H

#include <stddef.h>

#define LM_KV_TILE 32

/* One K/V head of the cache. Elements are F16 when f16 is set, else F32.
 *
 * next_k and next_v (optional, NULL for none) are the K and V of the head
 * the caller attends next, laid out alike. The AVX-512 kernel prefetches
 * them into L2 at the offsets it reads this head's, for positions below
 * next_end, so the next head's cache arrives while this one is computed.
 * Why: one head reads only two streams (K and V), too few to keep the
 * memory busy; with the next head's two in flight as well, 7B decode
 * attention read its cache at 26 GB/s instead of 22 (1B: -13% attention
 * time), and the next head then reads from L2. */
typedef struct {
    const void *k; /* dimension d of position t at k[lm_kv_k_index(t, d, head_dim)] */
    const void *v; /* dimension d of position t at v[t * head_dim + d] */
    int f16;
    const void *next_k, *next_v;
    int next_end;
} lm_kv_head;

static inline size_t lm_kv_k_index(int t, int d, int hd) {
    return ((size_t)(t / LM_KV_TILE) * (size_t)hd + (size_t)d) * LM_KV_TILE + (size_t)(t % LM_KV_TILE);
}

/* out[g] = softmax(scale * q[g] . K[t]) . V[t] over positions t in
 * [start, end), for the G heads whose rows q[g] = q + g * hd and
 * out[g] = out + g * hd are consecutive. end > start. K's last tile is
 * read whole, positions past end included (they must be allocated; their
 * values are ignored). */
void lm_kv_attention_group(float *out, const float *q, int G, int hd, const lm_kv_head *kv, int start, int end, float scale);

/* The same with AVX-512 (F, BW, VL) and F16C. Returns 0, touching
 * nothing, for a head size it has no kernel for (it takes multiples of 32
 * up to 256); the caller then uses lm_kv_attention_group. */
int lm_kv_attention_group_avx512(float *out, const float *q, int G, int hd, const lm_kv_head *kv, int start, int end,
                                 float scale);

#endif

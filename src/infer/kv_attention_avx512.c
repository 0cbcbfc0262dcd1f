/* AVX-512 attention of a group of query heads over one K/V head of the
 * cache (see kv_attention.h).
 *
 * Keys go by chunks of CH with an online softmax (running max and sum per
 * head; the output rows are rescaled when a max grows):
 * - Scores: one K tile (32 keys) at a time, two vectors of positions. For
 *   each dimension d, the tile's row d gives those keys' d-th elements,
 *   and every head of the group multiplies it by its own q[d] (a
 *   broadcast FMA). No horizontal sums, and one F16 conversion serves all
 *   G heads: 1B-shape models share each K/V head among 8 query heads.
 * - Softmax of the chunk's scores, vectorized over keys.
 * - Output: 32 dimensions at a time, accumulating every head's row in
 *   registers while the chunk's V rows stream past; again one conversion
 *   per V element for the whole group.
 * Chunks start at a tile boundary; keys before start or past end are
 * masked out of the softmax. The next chunk's K and V lines are
 * prefetched during this one.
 *
 * A lone query head per K/V head takes another path (solo_attention
 * below) that reads K and V at once. */
#include "kernels/isa_target.h"
LM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,fma,f16c")
#define LM_VW 16
#define LM_SFX(name) name##_avx512
#include "kernels/vec.h"
#include "infer/kv_attention.h"

#include <math.h>
#include <stdint.h>

#define CH 128 /* keys per softmax chunk, a multiple of LM_KV_TILE */
#define GMAX 8 /* heads per pass: two accumulators each in 16 of the 32 registers */
#define HDMAX 256

/* 16 cache elements from element idx, as floats. */
static inline __m512 load_kv(const void *base, int f16, size_t idx) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + idx)));
    return _mm512_loadu_ps((const float *)base + idx);
}

/* The prefetch helpers must be always_inline: GCC 12's IPA mod/ref
 * analysis finds an out-of-line helper that only prefetches free of side
 * effects and deletes its calls, which left this file without a single
 * prefetch instruction until the 7B's attention was profiled (22 GB/s
 * then, 28 now). tests/check_prefetch.sh guards it. */
static inline __attribute__((always_inline)) void prefetch_lines(const void *p, int bytes) {
    for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/* The next head's K (element idx of position t) or V (row from element
 * idx) into L2, where it has position t (see lm_kv_head). */
static inline __attribute__((always_inline)) void prefetch_next(const void *next, int next_end, int t, size_t idx, int es,
                                                                int bytes) {
    if (next && t < next_end)
        for (int o = 0; o < bytes; o += 64) _mm_prefetch((const char *)next + idx * es + o, _MM_HINT_T1);
}

/* Independent sums a head's score accumulates in: with few heads, one
 * chain of FMAs over the dimensions would wait on each FMA's latency. */
#define SCORE_SPLITS(G) ((G) == 1 ? 4 : (G) == 2 ? 2 : 1)

/* s[h][0..n) = scale * q[h] . K[t0 + j] for the G heads; t0 starts a tile. */
static inline __attribute__((always_inline)) void chunk_scores(const int G, float (*s)[CH], const float *q, int hd,
                                                               const lm_kv_head *kv, int t0, int n, int end, float scale) {
    const int es = kv->f16 ? 2 : 4, S = SCORE_SPLITS(G);
    const size_t next = (size_t)(CH / LM_KV_TILE) * (size_t)hd * LM_KV_TILE; /* elements from a tile to the next chunk's */
    for (int b = 0; b < n; b += LM_KV_TILE) {
        const int pf = t0 + CH + b < end;
        const size_t tile = lm_kv_k_index(t0 + b, 0, hd);
        __m512 a0[GMAX][4], a1[GMAX][4];
#pragma GCC unroll 8
        for (int h = 0; h < G; h++)
#pragma GCC unroll 4
            for (int i = 0; i < S; i++) a0[h][i] = a1[h][i] = _mm512_setzero_ps();
        for (int d0 = 0; d0 < hd; d0 += S) {
#pragma GCC unroll 4
            for (int i = 0; i < S; i++) {
                const int d = d0 + i;
                size_t idx = tile + (size_t)d * LM_KV_TILE;
                if (pf) prefetch_lines((const char *)kv->k + (idx + next) * es, LM_KV_TILE * es);
                prefetch_next(kv->next_k, kv->next_end, t0 + b, idx, es, LM_KV_TILE * es);
                __m512 k0 = load_kv(kv->k, kv->f16, idx), k1 = load_kv(kv->k, kv->f16, idx + 16);
#pragma GCC unroll 8
                for (int h = 0; h < G; h++) {
                    __m512 qh = _mm512_set1_ps(q[h * hd + d]);
                    a0[h][i] = _mm512_fmadd_ps(qh, k0, a0[h][i]);
                    a1[h][i] = _mm512_fmadd_ps(qh, k1, a1[h][i]);
                }
            }
        }
        __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) {
#pragma GCC unroll 4
            for (int i = 1; i < S; i++) a0[h][0] = _mm512_add_ps(a0[h][0], a0[h][i]), a1[h][0] = _mm512_add_ps(a1[h][0], a1[h][i]);
            _mm512_store_ps(s[h] + b, _mm512_mul_ps(a0[h][0], sc));
            _mm512_store_ps(s[h] + b + 16, _mm512_mul_ps(a1[h][0], sc));
        }
    }
}

/* Lanes of the 16 keys from b that lie in [lo, n). */
static inline vi live_lanes(int b, int lo, int n) {
    vi j = viota() + b;
    return (j >= lo) & (j < n);
}

/* Softmax step of one head over the chunk's keys [lo, n): s becomes
 * exp(s - new max) there (0 elsewhere); returns the factor that rescales
 * what was summed before. */
static inline float chunk_softmax(float *s, int lo, int n, float *m, float *l) {
    vf mx = vset1(-INFINITY);
    for (int b = 0; b < n; b += LM_VW) mx = vmax(mx, vsel(live_lanes(b, lo, n), vload(s + b), vset1(-INFINITY)));
    float cmax = vhmax(mx), mnew = *m > cmax ? *m : cmax;
    float corr = expf(*m - mnew); /* 0 on the first chunk */
    vf ls = vset1(0.0f);
    for (int b = 0; b < n; b += LM_VW) {
        vf p = vsel(live_lanes(b, lo, n), vexp(vload(s + b) - mnew), vset1(0.0f));
        vstore(s + b, p);
        ls += p;
    }
    *l = *l * corr + vhsum(ls);
    *m = mnew;
    return corr;
}

/* out[h] = corr[h] * out[h] + sum over j in [lo, n) of s[h][j] V[t0 + j],
 * NV vectors of dimensions at a time: 2 for four or more heads, more for
 * fewer, so that each V row feeds at least 8 independent FMA chains. */
static inline __attribute__((always_inline)) void chunk_output(const int G, const int NV, float *out, float (*s)[CH],
                                                               const float *corr, int hd, const lm_kv_head *kv, int t0,
                                                               int lo, int n, int end) {
    const int es = kv->f16 ? 2 : 4;
    for (int c = 0; c < hd; c += 16 * NV) {
        __m512 o[GMAX][8];
#pragma GCC unroll 8
        for (int h = 0; h < G; h++) {
            __m512 r = _mm512_set1_ps(corr[h]);
#pragma GCC unroll 8
            for (int u = 0; u < NV; u++) o[h][u] = _mm512_mul_ps(_mm512_loadu_ps(out + h * hd + c + 16 * u), r);
        }
        for (int j = lo; j < n; j++) {
            size_t row = (size_t)(t0 + j) * (size_t)hd;
            if (c == 0 && t0 + CH + j < end) prefetch_lines((const char *)kv->v + (row + (size_t)CH * hd) * es, hd * es);
            if (c == 0) prefetch_next(kv->next_v, kv->next_end, t0 + j, row, es, hd * es);
            __m512 vv[8];
#pragma GCC unroll 8
            for (int u = 0; u < NV; u++) vv[u] = load_kv(kv->v, kv->f16, row + c + 16 * u);
#pragma GCC unroll 8
            for (int h = 0; h < G; h++) {
                __m512 p = _mm512_set1_ps(s[h][j]);
#pragma GCC unroll 8
                for (int u = 0; u < NV; u++) o[h][u] = _mm512_fmadd_ps(p, vv[u], o[h][u]);
            }
        }
#pragma GCC unroll 8
        for (int h = 0; h < G; h++)
#pragma GCC unroll 8
            for (int u = 0; u < NV; u++) _mm512_storeu_ps(out + h * hd + c + 16 * u, o[h][u]);
    }
}

/* The whole range for G heads, NV vectors of V per pass (constants after
 * inlining). */
static inline __attribute__((always_inline)) void group_attention(const int G, const int NV, float *out, const float *q,
                                                                  int hd, const lm_kv_head *kv, int start, int end,
                                                                  float scale) {
    float s[GMAX][CH] __attribute__((aligned(64)));
    float m[GMAX], l[GMAX], corr[GMAX];
    for (int h = 0; h < G; h++) {
        m[h] = -INFINITY, l[h] = 0.0f;
        for (int d = 0; d < hd; d++) out[h * hd + d] = 0.0f;
    }
    for (int t0 = start - start % LM_KV_TILE; t0 < end; t0 += CH) {
        const int n = end - t0 < CH ? end - t0 : CH, lo = start > t0 ? start - t0 : 0;
        chunk_scores(G, s, q, hd, kv, t0, n, end, scale);
        for (int h = 0; h < G; h++) corr[h] = chunk_softmax(s[h], lo, n, &m[h], &l[h]);
        chunk_output(G, NV, out, s, corr, hd, kv, t0, lo, n, end);
    }
    for (int h = 0; h < G; h++) {
        __m512 inv = _mm512_set1_ps(1.0f / l[h]);
        for (int d = 0; d < hd; d += 16) _mm512_storeu_ps(out + h * hd + d, _mm512_mul_ps(_mm512_loadu_ps(out + h * hd + d), inv));
    }
}

/* One query head per K/V head (no grouping: LLaMA-2-7B, GPT-2): the
 * K and V streams are read together. A lone head does too little work
 * per cache byte to hide the memory's latency, and reading K and V one
 * after the other leaves one stream in flight: 7B decode attention read
 * at ~21 GB/s, where two streams per core read at the bandwidth. So the
 * scores of chunk c + 1 are computed in the same loop that adds chunk c's
 * V rows: per V row, KD = hd / 32 of the K tile's dimensions, which
 * makes the two streams advance at the same rate (a tile of 32 keys is
 * as many bytes as 32 V rows).
 *
 * One tile step: K dimensions jj * KD .. + KD of the tile at k (scores
 * into a0/a1) and, where p is set, V row jj. */
#define SOLO_PREFETCH 1024 /* bytes ahead in each stream (7B decode: 512-4096 read alike, ~28 GB/s with the next head's prefetch) */

static inline __attribute__((always_inline)) void solo_chunk(const int KD, const float *p, const float *q,
                                                             const lm_kv_head *kv, int v_t0, int v_lo, int v_n,
                                                             float *s_next, int k_t0, int k_n, float scale,
                                                             __m512 o[8]) {
    const int hd = 32 * KD, NV = 2 * KD, es = kv->f16 ? 2 : 4;
    for (int b = 0; b < CH; b += LM_KV_TILE) {
        const int do_k = s_next && b < k_n, do_v = p && b < v_n;
        if (!do_k && !do_v) break;
        const size_t tile = lm_kv_k_index(k_t0 + b, 0, hd);
        __m512 a0[4], a1[4];
#pragma GCC unroll 4
        for (int i = 0; i < KD; i++) a0[i] = a1[i] = _mm512_setzero_ps();
        for (int jj = 0; jj < LM_KV_TILE; jj++) {
            if (do_k) {
#pragma GCC unroll 4
                for (int i = 0; i < KD; i++) {
                    const int d = jj * KD + i;
                    const size_t idx = tile + (size_t)d * LM_KV_TILE;
                    prefetch_lines((const char *)kv->k + idx * es + SOLO_PREFETCH, LM_KV_TILE * es);
                    prefetch_next(kv->next_k, kv->next_end, k_t0 + b, idx, es, LM_KV_TILE * es);
                    const __m512 qd = _mm512_set1_ps(q[d]);
                    a0[i] = _mm512_fmadd_ps(qd, load_kv(kv->k, kv->f16, idx), a0[i]);
                    a1[i] = _mm512_fmadd_ps(qd, load_kv(kv->k, kv->f16, idx + 16), a1[i]);
                }
            }
            const int j = b + jj;
            if (do_v && j >= v_lo && j < v_n) {
                const size_t row = (size_t)(v_t0 + j) * (size_t)hd;
                prefetch_lines((const char *)kv->v + row * es + SOLO_PREFETCH, hd * es);
                prefetch_next(kv->next_v, kv->next_end, v_t0 + j, row, es, hd * es);
                const __m512 pj = _mm512_set1_ps(p[j]);
#pragma GCC unroll 8
                for (int u = 0; u < NV; u++) o[u] = _mm512_fmadd_ps(pj, load_kv(kv->v, kv->f16, row + 16 * u), o[u]);
            }
        }
        if (do_k) {
#pragma GCC unroll 4
            for (int i = 1; i < KD; i++) a0[0] = _mm512_add_ps(a0[0], a0[i]), a1[0] = _mm512_add_ps(a1[0], a1[i]);
            _mm512_store_ps(s_next + b, _mm512_mul_ps(a0[0], _mm512_set1_ps(scale)));
            _mm512_store_ps(s_next + b + 16, _mm512_mul_ps(a1[0], _mm512_set1_ps(scale)));
        }
    }
}

/* The whole range for one head of size 32 * KD (KD 1-4). */
static inline __attribute__((always_inline)) void solo_attention(const int KD, float *out, const float *q,
                                                                 const lm_kv_head *kv, int start, int end, float scale) {
    const int NV = 2 * KD;
    float s[2][CH] __attribute__((aligned(64)));
    float m = -INFINITY, l = 0.0f;
    __m512 o[8];
#pragma GCC unroll 8
    for (int u = 0; u < NV; u++) o[u] = _mm512_setzero_ps();
    int t0 = start - start % LM_KV_TILE, c = 0;
    solo_chunk(KD, NULL, q, kv, 0, 0, 0, s[0], t0, end - t0 < CH ? end - t0 : CH, scale, o);
    for (; t0 < end; t0 += CH, c ^= 1) {
        const int n = end - t0 < CH ? end - t0 : CH, lo = start > t0 ? start - t0 : 0;
        const __m512 corr = _mm512_set1_ps(chunk_softmax(s[c], lo, n, &m, &l));
#pragma GCC unroll 8
        for (int u = 0; u < NV; u++) o[u] = _mm512_mul_ps(o[u], corr);
        const int next = t0 + CH, next_n = end - next < CH ? end - next : CH;
        solo_chunk(KD, s[c], q, kv, t0, lo, n, next < end ? s[c ^ 1] : NULL, next, next_n, scale, o);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / l);
#pragma GCC unroll 8
    for (int u = 0; u < NV; u++) _mm512_storeu_ps(out + 16 * u, _mm512_mul_ps(o[u], inv));
}

int lm_kv_attention_group_avx512(float *out, const float *q, int G, int hd, const lm_kv_head *kv, int start, int end,
                                 float scale) {
    if (hd % 32 || hd > HDMAX || G < 1 || end <= start) return 0;
    if (G == 1 && hd <= 128) {
        if (hd == 32) solo_attention(1, out, q, kv, start, end, scale);
        else if (hd == 64) solo_attention(2, out, q, kv, start, end, scale);
        else if (hd == 96) solo_attention(3, out, q, kv, start, end, scale);
        else solo_attention(4, out, q, kv, start, end, scale);
        return 1;
    }
    for (int g0 = 0; g0 < G; g0 += GMAX) {
        float *o = out + (size_t)g0 * hd;
        const float *qg = q + (size_t)g0 * hd;
        const int g = G - g0 < GMAX ? G - g0 : GMAX;
        if (g == 1 && hd % 128 == 0) group_attention(1, 8, o, qg, hd, kv, start, end, scale);
        else if (g == 1) group_attention(1, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 2 && hd % 64 == 0) group_attention(2, 4, o, qg, hd, kv, start, end, scale);
        else if (g == 2) group_attention(2, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 3 && hd % 64 == 0) group_attention(3, 4, o, qg, hd, kv, start, end, scale);
        else if (g == 3) group_attention(3, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 4) group_attention(4, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 5) group_attention(5, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 6) group_attention(6, 2, o, qg, hd, kv, start, end, scale);
        else if (g == 7) group_attention(7, 2, o, qg, hd, kv, start, end, scale);
        else group_attention(8, 2, o, qg, hd, kv, start, end, scale);
    }
    return 1;
}
LM_TARGET_END

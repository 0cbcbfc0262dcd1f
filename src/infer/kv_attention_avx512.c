/* AVX-512 attention of one query head over KV-cache rows (see
 * kv_attention.h).
 *
 * Scores go by blocks of 16 keys: the 16 dot products accumulate in 16
 * vectors (head_dim / 16 FMAs each, independent chains) that one register
 * transpose and 15 adds turn into a vector of 16 scores, instead of 16
 * horizontal sums. The softmax is online over chunks of CH keys (running
 * max and sum, the output rescaled when the max grows), so the scratch is
 * one chunk of scores on the stack; exp is vectorized over the chunk. The
 * output row stays in registers (two interleaved sets, so consecutive V
 * rows do not wait on each other's FMA) while the V rows stream past. */
#pragma GCC target("avx512f,avx512bw,avx512vl,fma,f16c")
#define LM_VW 16
#define LM_SFX(name) name##_avx512
#include "kernels/vec.h"
#include "infer/kv_attention.h"

#include <math.h>
#include <stdint.h>

#define CH 256   /* keys per softmax chunk */
#define MAXV 8   /* vectors per head: head_dim <= 128 */

/* Keys ahead whose K (score loop) or V (output loop) rows are prefetched:
 * a head's row is 64-512 bytes, and the rows of one head are a whole
 * position (every head's K or V) apart, a stride the hardware prefetcher
 * does not follow well. 7B (32 heads of their own, 512-token context):
 * decode 5.1 -> 5.8 tok/s; 1B (grouped heads, rows reread from cache):
 * +2-5%. 8 and 16 keys ahead were a little slower. */
#define KV_PF 32

/* Prefetch of the cache row that starts at element idx. */
static inline void prefetch_kv_row(const void *base, int f16, size_t idx, int row_bytes) {
    const char *p = (const char *)base + idx * (f16 ? 2 : 4);
    for (int o = 0; o < row_bytes; o += 64) _mm_prefetch(p + o, _MM_HINT_T0);
}

/* 16 elements of a cache row from element idx, as floats. */
static inline vf load_kv(const void *base, int f16, size_t idx) {
    if (f16) return (vf)_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)base + idx)));
    return vload((const float *)base + idx);
}

int lm_kv_attention_avx512(float *out, const float *q, int hd, const void *k, const void *v, size_t stride, int f16,
                           int start, int end, float scale) {
    if (hd % LM_VW || hd > LM_VW * MAXV || end <= start) return 0;
    const int nv = hd / LM_VW, row_bytes = hd * (f16 ? 2 : 4);
    vf qv[MAXV], acc[MAXV], acc2[MAXV];
    for (int c = 0; c < nv; c++) {
        qv[c] = vload(q + c * LM_VW) * scale;
        acc[c] = acc2[c] = vset1(0.0f);
    }
    float m = -INFINITY, l = 0.0f;
    float s[CH] __attribute__((aligned(64)));
    for (int t0 = start; t0 < end; t0 += CH) {
        const int n = end - t0 < CH ? end - t0 : CH;
        /* scores of the chunk */
        for (int b = 0; b < n; b += LM_VW) {
            vf r[LM_VW];
            for (int j = 0; j < LM_VW; j++) {
                if (b + j >= n) {
                    r[j] = vset1(0.0f);
                    continue;
                }
                size_t row = (size_t)(t0 + b + j) * stride;
                if (t0 + b + j + KV_PF < end) prefetch_kv_row(k, f16, row + KV_PF * stride, row_bytes);
                vf a = qv[0] * load_kv(k, f16, row);
                for (int c = 1; c < nv; c++) a += qv[c] * load_kv(k, f16, row + (size_t)c * LM_VW);
                r[j] = a;
            }
            vtranspose(r);
            vf sum = r[0];
            for (int j = 1; j < LM_VW; j++) sum += r[j];
            vstore(s + b, sum);
        }
        /* the chunk's max, past the last key masked off */
        vf mx = vset1(-INFINITY);
        for (int b = 0; b < n; b += LM_VW) {
            vi live = viota() < n - b;
            mx = vmax(mx, vsel(live, vload(s + b), vset1(-INFINITY)));
        }
        float cmax = vhmax(mx), mnew = m > cmax ? m : cmax;
        float corr = expf(m - mnew); /* 0 on the first chunk */
        for (int c = 0; c < nv; c++) {
            acc[c] *= corr;
            acc2[c] *= corr;
        }
        vf ls = vset1(0.0f);
        for (int b = 0; b < n; b += LM_VW) {
            vi live = viota() < n - b;
            vf p = vsel(live, vexp(vload(s + b) - mnew), vset1(0.0f));
            vstore(s + b, p);
            ls += p;
        }
        l = l * corr + vhsum(ls);
        m = mnew;
        /* out += p_t V[t] */
        int j = 0;
        for (; j + 2 <= n; j += 2) {
            size_t r0 = (size_t)(t0 + j) * stride, r1 = r0 + stride;
            if (t0 + j + 1 + KV_PF < end) {
                prefetch_kv_row(v, f16, r0 + KV_PF * stride, row_bytes);
                prefetch_kv_row(v, f16, r1 + KV_PF * stride, row_bytes);
            }
            vf p0 = vset1(s[j]), p1 = vset1(s[j + 1]);
            for (int c = 0; c < nv; c++) {
                acc[c] += p0 * load_kv(v, f16, r0 + (size_t)c * LM_VW);
                acc2[c] += p1 * load_kv(v, f16, r1 + (size_t)c * LM_VW);
            }
        }
        if (j < n) {
            size_t r0 = (size_t)(t0 + j) * stride;
            vf p0 = vset1(s[j]);
            for (int c = 0; c < nv; c++) acc[c] += p0 * load_kv(v, f16, r0 + (size_t)c * LM_VW);
        }
    }
    float inv = 1.0f / l;
    for (int c = 0; c < nv; c++) vstore(out + c * LM_VW, (acc[c] + acc2[c]) * inv);
    return 1;
}

/* AVX2 + FMA + F16C dot kernels. Integer products use the unsigned x
 * signed byte multiply (maddubs): weights go in as unsigned (their
 * absolute value, with the sign moved onto the activations, or raw
 * nibbles whose offset is removed with the activation sums). */
#include <immintrin.h>

#include "kernels/quant_blocks.h"
#include "kernels/quant_simd.h"

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

/* Signed bytes a·b summed in pairs of 4 to int32 lanes. */
AVX2_TARGET static inline __m256i dot_i8(__m256i a, __m256i b) {
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(a, a), _mm256_sign_epi8(b, a));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

AVX2_TARGET float lm_dot_q8_0_avx2(const void *vw, const void *vx, int nb) {
    const lm_block_q8_0 *w = vw, *x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i qw = _mm256_loadu_si256((const __m256i *)w[b].qs);
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        float d = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(dot_i8(qw, qx)), acc);
    }
    return lm_hsum256(acc);
}

AVX2_TARGET static inline __m256i unpack_nibbles(const uint8_t *p) {
    __m128i t = _mm_loadu_si128((const __m128i *)p);
    __m128i m = _mm_set1_epi8(0xF);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m), _mm_and_si128(t, m));
}

AVX2_TARGET float lm_dot_q4_0_avx2(const void *vw, const void *vx, int nb) {
    const lm_block_q4_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i qw = _mm256_sub_epi8(unpack_nibbles(w[b].qs), _mm256_set1_epi8(8));
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        float d = _cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(dot_i8(qw, qx)), acc);
    }
    return lm_hsum256(acc);
}

AVX2_TARGET float lm_dot_q4_k_avx2(const void *vw, const void *vx, int nb) {
    const lm_block_q4_k *w = vw;
    const lm_block_q8_k *x = vx;
    __m256 acc = _mm256_setzero_ps();
    float mins = 0;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int b = 0; b < nb; b++) {
        uint8_t sc[8], m[8];
        int summ = 0;
        for (int j = 0; j < 8; j++) {
            lm_q4k_scale_min(j, w[b].scales, &sc[j], &m[j]);
            summ += m[j] * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        __m256i sumi = _mm256_setzero_si256();
        for (int jj = 0; jj < 4; jj++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * jj));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            __m256i x0 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * jj));
            __m256i x1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * jj + 32));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_set1_epi16(sc[2 * jj]));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), _mm256_set1_epi16(sc[2 * jj + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        float d = _cvtsh_ss(w[b].d) * x[b].d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        mins += _cvtsh_ss(w[b].dmin) * x[b].d * (float)summ;
    }
    return lm_hsum256(acc) - mins;
}

AVX2_TARGET float lm_dot_q6_k_avx2(const void *vw, const void *vx, int nb) {
    const lm_block_q6_k *w = vw;
    const lm_block_q8_k *x = vx;
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    for (int b = 0; b < nb; b++) {
        const uint8_t *ql = w[b].ql, *qh = w[b].qh;
        const int8_t *a = x[b].qs, *sc = w[b].scales;
        int offset = 0;
        for (int g = 0; g < 16; g++) offset += sc[g] * x[b].bsums[g];
        __m256i sumi = _mm256_setzero_si256();
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, a += 128, sc += 8) {
            __m256i h = _mm256_loadu_si256((const __m256i *)qh);
            __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
            for (int i = 0; i < 4; i++) {
                __m256i p = _mm256_maddubs_epi16(q[i], _mm256_loadu_si256((const __m256i *)(a + 32 * i)));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[2 * i + 1]), _mm_set1_epi16(sc[2 * i]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, s));
            }
        }
        float d = _cvtsh_ss(w[b].d) * x[b].d;
        /* Quants are stored +32; remove that offset with the group sums. */
        __m256i total = _mm256_sub_epi32(sumi, _mm256_setr_epi32(32 * offset, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(total), acc);
    }
    return lm_hsum256(acc);
}

AVX2_TARGET float lm_fdot_f32_avx2(const void *vw, const float *x, int k) {
    const float *w = vw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = lm_hsum256(_mm256_add_ps(a0, a1));
    for (; i < k; i++) s += w[i] * x[i];
    return s;
}

AVX2_TARGET float lm_fdot_f16_avx2(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i + 8))), _mm256_loadu_ps(x + i + 8),
                             a1);
    }
    float s = lm_hsum256(_mm256_add_ps(a0, a1));
    for (; i < k; i++) s += _cvtsh_ss(w[i]) * x[i];
    return s;
}

AVX2_TARGET static inline __m256 bf16x8(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}

AVX2_TARGET float lm_fdot_bf16_avx2(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= k; i += 16) {
        a0 = _mm256_fmadd_ps(bf16x8(w + i), _mm256_loadu_ps(x + i), a0);
        a1 = _mm256_fmadd_ps(bf16x8(w + i + 8), _mm256_loadu_ps(x + i + 8), a1);
    }
    float s = lm_hsum256(_mm256_add_ps(a0, a1));
    for (; i < k; i++) s += lm_bf16_to_f32(w[i]) * x[i];
    return s;
}

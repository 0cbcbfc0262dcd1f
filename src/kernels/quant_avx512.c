/* AVX-512 (F/BW/VL + VNNI) dot kernels. The 32-element types use 256-bit
 * VNNI dot products (vpdpbusd: one instruction for multiply, pair-add and
 * accumulate); the 256-element K types work 64 bytes at a time. */
#include <immintrin.h>

#include "kernels/quant_blocks.h"
#include "kernels/quant_simd.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

AVX512_TARGET float lm_dot_q8_0_avx512(const void *vw, const void *vx, int nb) {
    const lm_block_q8_0 *w = vw, *x = vx;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)w[b].qs), x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i w1 = _mm256_loadu_si256((const __m256i *)w[b + 1].qs),
                x1 = _mm256_loadu_si256((const __m256i *)x[b + 1].qs);
        __m256i p0 = _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        __m256i p1 = _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(w1), _mm256_sign_epi8(x1, w1));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b + 1].d) * _cvtsh_ss(x[b + 1].d)), _mm256_cvtepi32_ps(p1),
                               acc1);
    }
    for (; b < nb; b++) {
        __m256i w0 = _mm256_loadu_si256((const __m256i *)w[b].qs), x0 = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i p0 = _mm256_dpbusd_epi32(zero, _mm256_abs_epi8(w0), _mm256_sign_epi8(x0, w0));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d)), _mm256_cvtepi32_ps(p0), acc0);
    }
    return lm_hsum256(_mm256_add_ps(acc0, acc1));
}

AVX512_TARGET float lm_dot_q4_0_avx512(const void *vw, const void *vx, int nb) {
    const lm_block_q4_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    __m256 acc = _mm256_setzero_ps();
    const __m256i zero = _mm256_setzero_si256(), eight = _mm256_set1_epi8(8);
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int b = 0; b < nb; b++) {
        __m128i t = _mm_loadu_si128((const __m128i *)w[b].qs);
        __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m4), _mm_and_si128(t, m4));
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        /* sum (q - 8) x = sum q x - sum 8 x, both as unsigned x signed. */
        __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, qx), _mm256_dpbusd_epi32(zero, eight, qx));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[b].d) * _cvtsh_ss(x[b].d)), _mm256_cvtepi32_ps(p), acc);
    }
    return lm_hsum256(acc);
}

AVX512_TARGET float lm_dot_q4_k_avx512(const void *vw, const void *vx, int nb) {
    const lm_block_q4_k *w = vw;
    const lm_block_q8_k *x = vx;
    __m512 acc = _mm512_setzero_ps();
    float mins = 0;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    for (int b = 0; b < nb; b++) {
        uint8_t sc[8], m[8];
        int summ = 0;
        for (int j = 0; j < 8; j++) {
            lm_q4k_scale_min(j, w[b].scales, &sc[j], &m[j]);
            summ += m[j] * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        __m512i sumi = _mm512_setzero_si512();
        for (int jj = 0; jj < 4; jj++) {
            /* Low nibbles are sub-block 2jj, high nibbles 2jj+1: side by
             * side they line up with 64 contiguous activations. */
            __m256i q = _mm256_loadu_si256((const __m256i *)(w[b].qs + 32 * jj));
            __m512i q2 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(q, m4)),
                                            _mm256_and_si256(_mm256_srli_epi16(q, 4), m4), 1);
            __m512i a = _mm512_loadu_si512(x[b].qs + 64 * jj);
            __m512i s = _mm512_inserti64x4(_mm512_set1_epi16(sc[2 * jj]), _mm256_set1_epi16(sc[2 * jj + 1]), 1);
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(_mm512_maddubs_epi16(q2, a), s));
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(_cvtsh_ss(w[b].d) * x[b].d), _mm512_cvtepi32_ps(sumi), acc);
        mins += _cvtsh_ss(w[b].dmin) * x[b].d * (float)summ;
    }
    return _mm512_reduce_add_ps(acc) - mins;
}

AVX512_TARGET float lm_dot_q6_k_avx512(const void *vw, const void *vx, int nb) {
    const lm_block_q6_k *w = vw;
    const lm_block_q8_k *x = vx;
    __m512 acc = _mm512_setzero_ps();
    /* Per 16-bit lane, the qh shift for the lower (q1/q3) and upper
     * (q2/q4) 32 bytes of a 64-byte vector. */
    const __m512i hshift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    for (int b = 0; b < nb; b++) {
        const uint8_t *ql = w[b].ql, *qh = w[b].qh;
        const int8_t *a = x[b].qs, *sc = w[b].scales;
        int offset = 0;
        for (int g = 0; g < 16; g++) offset += sc[g] * x[b].bsums[g];
        __m512i sumi = _mm512_setzero_si512();
        for (int n = 0; n < 2; n++, ql += 64, qh += 32, a += 128, sc += 8) {
            __m512i q12, q34;
            lm_q6k_half(ql, qh, hshift, &q12, &q34);
            __m512i p12 = _mm512_maddubs_epi16(q12, _mm512_loadu_si512(a));
            __m512i p34 = _mm512_maddubs_epi16(q34, _mm512_loadu_si512(a + 64));
            /* Groups of 16 values: 8 int16 lanes each, four per vector. */
            __m512i s12 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(sc[1]), _mm_set1_epi16(sc[0]))),
                _mm256_set_m128i(_mm_set1_epi16(sc[3]), _mm_set1_epi16(sc[2])), 1);
            __m512i s34 = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16(sc[5]), _mm_set1_epi16(sc[4]))),
                _mm256_set_m128i(_mm_set1_epi16(sc[7]), _mm_set1_epi16(sc[6])), 1);
            sumi = _mm512_add_epi32(sumi, _mm512_add_epi32(_mm512_madd_epi16(p12, s12), _mm512_madd_epi16(p34, s34)));
        }
        float d = _cvtsh_ss(w[b].d) * x[b].d;
        acc = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc);
        acc = _mm512_mask_add_ps(acc, 1, acc, _mm512_set1_ps(-d * 32.f * (float)offset));
    }
    return _mm512_reduce_add_ps(acc);
}

AVX512_TARGET float lm_fdot_f32_avx512(const void *vw, const float *x, int k) {
    const float *w = vw;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i + 16), _mm512_loadu_ps(x + i + 16), a1);
    }
    if (i < k) {
        for (; i + 16 <= k; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + i), _mm512_loadu_ps(x + i), a0);
        __mmask16 m = (__mmask16)((1u << (k - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + i), _mm512_maskz_loadu_ps(m, x + i), a1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512_TARGET float lm_fdot_f16_avx512(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i))), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + i + 16))),
                             _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, w + i)), _mm512_maskz_loadu_ps(m, x + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

AVX512_TARGET static inline __m512 bf16x16(__m256i v) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

AVX512_TARGET float lm_fdot_bf16_avx512(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        a0 = _mm512_fmadd_ps(bf16x16(_mm256_loadu_si256((const __m256i *)(w + i))), _mm512_loadu_ps(x + i), a0);
        a1 = _mm512_fmadd_ps(bf16x16(_mm256_loadu_si256((const __m256i *)(w + i + 16))), _mm512_loadu_ps(x + i + 16), a1);
    }
    for (; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        a0 = _mm512_fmadd_ps(bf16x16(_mm256_maskz_loadu_epi16(m, w + i)), _mm512_maskz_loadu_ps(m, x + i), a0);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* Q8_0 quantization of a row, bit-identical to lm_quantize_row_q8_0: the
 * same scale (amax / 127 and its reciprocal, in float) and the same
 * rounding (vcvtps2dq rounds to nearest even, as lrintf does). Decode
 * quantizes each activation row on one thread before the parallel dot
 * products; the scalar loop took ~1.3% of a 1B Q4_0 decode step while the
 * other thread waited. */
AVX512_TARGET void lm_quantize_row_q8_0_avx512(const float *x, void *vy, int k) {
    lm_block_q8_0 *y = vy;
    for (int b = 0; b < k / QK8_0; b++, x += QK8_0) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        /* max(|x|, m) keeps m where x is NaN, as the reference's compare does */
        __m512 m = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_setzero_ps());
        m = _mm512_max_ps(_mm512_abs_ps(v1), m);
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        y[b].d = lm_f32_to_f16(d);
        __m512 s = _mm512_set1_ps(id);
        __m128i q0 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v0, s)));
        __m128i q1 = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(v1, s)));
        _mm_storeu_si128((__m128i *)y[b].qs, q0);
        _mm_storeu_si128((__m128i *)(y[b].qs + 16), q1);
    }
}

/* Q8_K quantization of a row (the activations of the K-type kernels),
 * bit-identical to lm_quantize_row_q8_k as the Q8_0 version above is to
 * its reference, with each 16 quants' sum taken from the rounded ints.
 * The scalar loop was ~1% of a 1B Q4_K decode step on the main thread
 * while the other waited. */
AVX512_TARGET void lm_quantize_row_q8_k_avx512(const float *x, void *vy, int k) {
    lm_block_q8_k *y = vy;
    for (int b = 0; b < k / QK_K; b++, x += QK_K) {
        __m512 m = _mm512_setzero_ps();
        for (int i = 0; i < QK_K; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m);
        float amax = _mm512_reduce_max_ps(m);
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        y[b].d = d;
        __m512 s = _mm512_set1_ps(id);
        for (int g = 0; g < QK_K / 16; g++) {
            __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), s));
            _mm_storeu_si128((__m128i *)(y[b].qs + 16 * g), _mm512_cvtsepi32_epi8(q));
            y[b].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
    }
}

/* F32 to F16 by vcvtps2ph, rounding to nearest even as lm_f32_to_f16 does
 * (a NaN keeps its top payload bits instead of becoming the one quiet
 * NaN). */
AVX512_TARGET void lm_f32_to_f16_row_avx512(const float *x, uint16_t *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(y + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

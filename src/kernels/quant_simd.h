/* Internal: x86 helpers shared by the quantized-kernel files
 * (quant_avx2.c, quant_avx512.c, quant_gemv_avx512.c). */
#ifndef LMKIT_QUANT_SIMD_H
#define LMKIT_QUANT_SIMD_H

#include <immintrin.h>
#include <stdint.h>

/* Sum of the eight floats of a 256-bit register. */
__attribute__((target("avx"))) static inline float lm_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One half of a Q6_K block (64 bytes of ql, 32 of qh) as two registers of
 * unsigned 6-bit quants, q1|q2 and q3|q4 in ggml's order: low 4 bits
 * from ql's low or high nibbles, 2 high bits from qh, shifted per 16-bit
 * lane by hshift (0 for the lower 32 bytes, 2 for the upper). */
__attribute__((target("avx512f,avx512bw"))) static inline void lm_q6k_half(const uint8_t *ql, const uint8_t *qh, __m512i hshift,
                                                                         __m512i *q12, __m512i *q34) {
    const __m512i m4 = _mm512_set1_epi8(0xF), m2 = _mm512_set1_epi8(3);
    __m256i h256 = _mm256_loadu_si256((const __m256i *)qh);
    __m512i h = _mm512_srlv_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(h256), h256, 1), hshift);
    __m512i l = _mm512_loadu_si512(ql);
    *q12 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(h, m2), 4));
    *q34 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                           _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 4), m2), 4));
}

#endif

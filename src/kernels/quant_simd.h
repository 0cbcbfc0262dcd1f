/* Internal: x86 helpers shared by the quantized-kernel files
 * (quant_avx2.c, quant_avx512.c, quant_gemv_avx512.c). */
#ifndef LMKIT_QUANT_SIMD_H
#define LMKIT_QUANT_SIMD_H

#include <immintrin.h>

/* Sum of the eight floats of a 256-bit register. */
__attribute__((target("avx"))) static inline float lm_hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

#endif

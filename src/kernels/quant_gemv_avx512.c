/* AVX-512 VNNI four-row dot kernels for decoding: y[r] = W[r] . x for
 * four consecutive weight rows at once.
 *
 * Why four rows: the one-row kernels spend most of each block on work
 * that depends only on the activation block (loading it, converting its
 * scale, the Q4_0 offset term) and wait on one accumulator's FMA latency.
 * Sharing that work over four rows and giving each row its own
 * accumulator roughly halves the instructions per weight byte, which is
 * what decides decode speed once the weights stream from memory. */
#include <immintrin.h>

#include "kernels/quant_blocks.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

AVX512_TARGET static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX512_TARGET void lm_dot4_q4_0_avx512(const void *vw, size_t rb, const void *vx, int nb, float *y) {
    const lm_block_q8_0 *x = vx;
    const lm_block_q4_0 *w[4];
    for (int r = 0; r < 4; r++) w[r] = (const lm_block_q4_0 *)((const char *)vw + (size_t)r * rb);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i zero = _mm256_setzero_si256(), eight = _mm256_set1_epi8(8);
    const __m128i m4 = _mm_set1_epi8(0xF);
    for (int b = 0; b < nb; b++) {
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        /* sum (q - 8) x = sum q x - sum 8 x; the second term is the row's
         * for every row. */
        __m256i x8 = _mm256_dpbusd_epi32(zero, eight, qx);
        float dx = _cvtsh_ss(x[b].d);
        for (int r = 0; r < 4; r++) {
            /* Four row streams at once outrun the hardware prefetcher. */
            if ((b & 3) == 0) _mm_prefetch((const char *)&w[r][b + 12], _MM_HINT_T0);
            __m128i t = _mm_loadu_si128((const __m128i *)w[r][b].qs);
            __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m4), _mm_and_si128(t, m4));
            __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero, q, qx), x8);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[r][b].d) * dx), _mm256_cvtepi32_ps(p), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) y[r] = hsum256(acc[r]);
}

AVX512_TARGET void lm_dot4_q8_0_avx512(const void *vw, size_t rb, const void *vx, int nb, float *y) {
    const lm_block_q8_0 *x = vx;
    const lm_block_q8_0 *w[4];
    for (int r = 0; r < 4; r++) w[r] = (const lm_block_q8_0 *)((const char *)vw + (size_t)r * rb);
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    const __m256i zero = _mm256_setzero_si256(), bias = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi8(1);
    for (int b = 0; b < nb; b++) {
        /* x + 128 is unsigned, so vpdpbusd takes it as is:
         * sum (x + 128) w = sum x w + 128 sum w. */
        __m256i ux = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)x[b].qs), bias);
        float dx = _cvtsh_ss(x[b].d);
        for (int r = 0; r < 4; r++) {
            __m256i qw = _mm256_loadu_si256((const __m256i *)w[r][b].qs);
            __m256i p = _mm256_dpbusd_epi32(zero, ux, qw);
            __m256i sw = _mm256_slli_epi32(_mm256_dpbusd_epi32(zero, ones, qw), 7);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(_cvtsh_ss(w[r][b].d) * dx), _mm256_cvtepi32_ps(_mm256_sub_epi32(p, sw)), acc[r]);
        }
    }
    for (int r = 0; r < 4; r++) y[r] = hsum256(acc[r]);
}

/* A tiny portable SIMD layer for the per-ISA kernel files: GCC vector
 * extensions of LM_VW floats, plus an accurate vector exp. A file that
 * includes it first selects the ISA for the whole file, e.g.
 *
 *   #include "kernels/isa_target.h"
 *   LM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,fma")
 *   #define LM_VW 16
 *   #define LM_SFX(name) name##_avx512
 *   #include "kernels/vec.h"
 *
 * so one kernel body (see pointwise_body.h) compiles to AVX-512 and AVX2. */
#ifndef LMKIT_KERNELS_VEC_H
#define LMKIT_KERNELS_VEC_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if LM_VW != 16 && LM_VW != 8
#error "LM_VW must be 16 (AVX-512) or 8 (AVX2)"
#endif

typedef float vf __attribute__((vector_size(LM_VW * 4)));
typedef int32_t vi __attribute__((vector_size(LM_VW * 4)));
typedef double vd __attribute__((vector_size(LM_VW * 8)));

static inline vf vload(const float *p) {
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vset1(float x) {
    vf v = {0};
    return v + x;
}
/* The first k (< LM_VW) lanes from p, the rest `fill`. */
/* Masked loads and stores: a memcpy of k floats would be a library call. */
#if LM_VW == 16
static inline vf vload_part(const float *p, size_t k, float fill) {
    return (vf)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << k) - 1), p);
}
static inline void vstore_part(float *p, vf v, size_t k) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << k) - 1), (__m512)v); }
#else
static inline __m256i vpart_mask(size_t k) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
static inline vf vload_part(const float *p, size_t k, float fill) {
    __m256i m = vpart_mask(k);
    return (vf)_mm256_blendv_ps(_mm256_set1_ps(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
static inline void vstore_part(float *p, vf v, size_t k) { _mm256_maskstore_ps(p, vpart_mask(k), (__m256)v); }
#endif
static inline vi viota(void) {
    vi v;
    for (int i = 0; i < LM_VW; i++) v[i] = i;
    return v;
}
static inline vf vsel(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
#if LM_VW == 16
static inline vf vmin(vf a, vf b) { return (vf)_mm512_min_ps((__m512)a, (__m512)b); }
static inline vf vmax(vf a, vf b) { return (vf)_mm512_max_ps((__m512)a, (__m512)b); }
static inline vf vsqrt(vf a) { return (vf)_mm512_sqrt_ps((__m512)a); }
#else
static inline vf vmin(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
static inline vf vmax(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
static inline vf vsqrt(vf a) { return (vf)_mm256_sqrt_ps((__m256)a); }
#endif
static inline vf vabs(vf a) { return (vf)((vi)a & 0x7fffffff); }
/* Lane permutes with constant indices: GCC's __builtin_shuffle takes them
 * as a vector, clang's __builtin_shufflevector as arguments. */
#if defined(__clang__)
#define LM_SHUFFLE1(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#define LM_SHUFFLE2(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define LM_SHUFFLE1(v, ...) __builtin_shuffle(v, (vi){__VA_ARGS__})
#define LM_SHUFFLE2(a, b, ...) __builtin_shuffle(a, b, (vi){__VA_ARGS__})
#endif

/* Horizontal sum and max by halving (log2(LM_VW) dependent steps instead of
 * LM_VW: a per-row reduction sits on the critical path of softmax-like
 * loops). */
#if LM_VW == 16
#define LM_FOLD(v, op)                                                                                        \
    do {                                                                                                      \
        v = op(v, LM_SHUFFLE1(v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7));          \
        v = op(v, LM_SHUFFLE1(v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11));          \
        v = op(v, LM_SHUFFLE1(v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));          \
        v = op(v, LM_SHUFFLE1(v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14));          \
    } while (0)
#else
#define LM_FOLD(v, op)                                                         \
    do {                                                                       \
        v = op(v, LM_SHUFFLE1(v, 4, 5, 6, 7, 0, 1, 2, 3));          \
        v = op(v, LM_SHUFFLE1(v, 2, 3, 0, 1, 6, 7, 4, 5));          \
        v = op(v, LM_SHUFFLE1(v, 1, 0, 3, 2, 5, 4, 7, 6));          \
    } while (0)
#endif
static inline vf vadd_(vf a, vf b) { return a + b; }
static inline float vhsum(vf v) {
    LM_FOLD(v, vadd_);
    return v[0];
}
static inline float vhmax(vf v) {
    LM_FOLD(v, vmax);
    return v[0];
}

/* In-register transpose of an LM_VW x LM_VW tile: r[i][j] -> r[j][i].
 * log2(LM_VW) butterfly stages; stage d pairs rows i and i + d and swaps
 * the off-diagonal d x d blocks of each 2d x 2d block (one two-source
 * permute per row). */
#define LM_TR_LO(d, l) (((l) & (d)) ? (l) - (d) + LM_VW : (l))
#define LM_TR_HI(d, l) (((l) & (d)) ? (l) + LM_VW : (l) + (d))
#if LM_VW == 16
#define LM_TR_MASK(F, d)                                                                                  \
    F(d, 0), F(d, 1), F(d, 2), F(d, 3), F(d, 4), F(d, 5), F(d, 6), F(d, 7), F(d, 8), F(d, 9), F(d, 10), \
        F(d, 11), F(d, 12), F(d, 13), F(d, 14), F(d, 15)
#else
#define LM_TR_MASK(F, d) F(d, 0), F(d, 1), F(d, 2), F(d, 3), F(d, 4), F(d, 5), F(d, 6), F(d, 7)
#endif
#define LM_TR_STAGE(r, d)                                                              \
    for (int i_ = 0; i_ < LM_VW; i_++)                                                 \
        if (!(i_ & (d))) {                                                             \
            vf a_ = (r)[i_], b_ = (r)[i_ + (d)];                                       \
            (r)[i_] = LM_SHUFFLE2(a_, b_, LM_TR_MASK(LM_TR_LO, d));                    \
            (r)[i_ + (d)] = LM_SHUFFLE2(a_, b_, LM_TR_MASK(LM_TR_HI, d));              \
        }
static inline void vtranspose(vf r[LM_VW]) {
#if LM_VW == 16
    LM_TR_STAGE(r, 8)
#endif
    LM_TR_STAGE(r, 4)
    LM_TR_STAGE(r, 2)
    LM_TR_STAGE(r, 1)
}

/* exp(x) to about 1 ulp for x in [-87.3, 88]; inputs outside are clamped
 * (so exp never returns 0 or inf: 1.2e-38 and 1.65e38 at the ends).
 * Cephes expf: x = n*ln2 + r, |r| <= ln2/2, degree-6 polynomial, 2^n built
 * in the exponent bits. */
static inline vf vexp(vf x) {
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    x = vmin(vmax(x, vset1(-87.33654f)), vset1(88.0f));
    vf t = x * 1.44269504088896341f + magic;
    vf n = t - magic;
    vi ni = (vi)t - (vi)vset1(magic);
    vf r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    vf p = vset1(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    vf y = p * (r * r) + r + 1.0f;
    return y * (vf)((ni + 127) << 23);
}

#endif

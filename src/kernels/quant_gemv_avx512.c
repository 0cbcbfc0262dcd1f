/* AVX-512 VNNI multi-row dot kernels for decoding: y[r] = W[r] . x for
 * four or eight weight rows at once, rb bytes apart (quant.c passes one
 * row from each stripe of the matrix).
 *
 * Why several rows: much of the work per block depends only on the
 * activation block (loading and arranging it, its scale, the offset
 * term); sharing it over four or eight rows, each with its own
 * accumulator, leaves the few instructions that touch the weights, and
 * decode speed is decided by instructions per weight byte once the
 * weights stream from memory. Eight rows also keep eight weight streams
 * in flight (Q8_0 decode +12%, Q4_K +3% over four).
 *
 * Prefetch (row_streams_step): the rows are one row from each of four
 * or eight stripes of the matrix, each the start of a long sequential
 * stream, prefetched ahead into L1 and L2.
 *
 * Why several blocks per 512-bit register: a 32-element block fills
 * only half a register (Q8_0) or a quarter (Q4_0's 16 nibble bytes);
 * two Q8_0 blocks or four Q4_0 blocks per register cut the vector
 * instructions per weight (Q4_0 in four-block steps: +28% in cache
 * over pairs). The blocks' scales then differ between the register's
 * parts, so the scale vector is built per step. */
#include <immintrin.h>
#include <string.h>

#include "kernels/quant_blocks.h"
#include "kernels/quant_simd.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx2,fma,f16c")))
/* The 4-bit and Q6_K kernels also use VBMI byte permutes and GFNI; quant.c
 * calls them only where the CPU has both. */
#define VBMI_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512dq,avx512vbmi,gfni,avx2,fma,f16c")))

/* Two f16 scales as floats spread over a register by idx (lane i gets a
 * where idx[i] is 0, b where it is 1). */
AVX512_TARGET static inline __m512 spread_scales(__m512i idx, uint16_t a, uint16_t b) {
    __m128 f = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(a), b, 1));
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

/* The four- and eight-row entry points of a kernel template IMPL(w, rb,
 * x, n, y, R), compiled for TARGET. */
#define ROWS_4_AND_8(NAME4, NAME8, IMPL, TARGET)                                                 \
    TARGET void NAME4(const void *w, size_t rb, const void *x, int n, float *y) { IMPL(w, rb, x, n, y, 4); } \
    TARGET void NAME8(const void *w, size_t rb, const void *x, int n, float *y) { IMPL(w, rb, x, n, y, 8); }

/* The entry point of a four-rows-times-S-activation-rows template
 * IMPL(w, rb, x, xb, len, y, S), S (2-4) a constant after inlining,
 * compiled for TARGET. */
#define SEQS_2_TO_4(NAME, IMPL, TARGET)                                                             \
    TARGET void NAME(const void *w, size_t rb, const void *x, size_t xb, int S, int len, float *y) { \
        if (S == 2)                                                                                 \
            IMPL(w, rb, x, xb, len, y, 2);                                                          \
        else if (S == 3)                                                                            \
            IMPL(w, rb, x, xb, len, y, 3);                                                          \
        else                                                                                        \
            IMPL(w, rb, x, xb, len, y, 4);                                                          \
    }

/* y[s * 4 + r]: the sums of four rows' accumulators for S activation rows. */
AVX512_TARGET static inline void store_4xs(__m512 acc[4][4], int S, float *y) {
    for (int s = 0; s < S; s++)
        for (int r = 0; r < 4; r++) y[s * 4 + r] = _mm512_reduce_add_ps(acc[r][s]);
}

/* Prefetch for the multi-row kernels, whose R rows are the current rows
 * of R stripes of the matrix (quant.c): each row is followed in
 * memory by its stripe's next row, so every row is one long sequential
 * stream. Each stream's lines are prefetched STREAM_L1 bytes ahead of
 * where it is read into L1 and STREAM_L2 ahead into L2, one line per 64
 * bytes read; past a row's end this is the stripe's next row. Long
 * streams are what the hardware prefetchers follow as well: against one
 * stream over the next group of contiguous rows, 1B Q4_0 decode went
 * 43.7 -> 46.7 tok/s and 7B Q4_0 5.9 -> 6.6. (512/2048 bytes measured
 * best of 256-2048 / 0-4096.) */
#define STREAM_L1 512
#define STREAM_L2 2048

/* Prefetches up to read_end (bytes of each row read once this step is
 * done) plus the distance; *next is the first line offset not yet asked
 * for, STREAM_L1 at a row's start (the rows before in the stripes asked
 * for what comes first). */
static inline __attribute__((always_inline)) void row_streams_step(const char *const *w, const int R, size_t *next,
                                                                   size_t read_end) {
    for (; *next < read_end + STREAM_L1; *next += 64)
        for (int r = 0; r < R; r++) {
            _mm_prefetch(w[r] + *next, _MM_HINT_T0);
            _mm_prefetch(w[r] + *next + (STREAM_L2 - STREAM_L1), _MM_HINT_T1);
        }
}

/* The lane pattern of a Q4_0 block pair: 128-bit lanes 0 and 2 get a,
 * lanes 1 and 3 get b. */
AVX512_TARGET static inline __m512 pair_scales(uint16_t a, uint16_t b) {
    return spread_scales(_mm512_set_epi32(1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0), a, b);
}

/* Four consecutive Q4_0 blocks (72 bytes) of a row as one register of
 * nibble bytes [qs(b), qs(b+1), qs(b+2), qs(b+3)] and their scales, f16,
 * each spread over its block's four 32-bit lanes. Two loads cover the 72
 * bytes (0-63 and 8-71, both inside the blocks); one two-source byte
 * permute picks the 64 nibble bytes out of them, one word permute the
 * scales. */
VBMI_TARGET static inline void q4_0_quad(const char *p, __m512i nib_idx, __m512i scale_idx, __m512i *nib, __m256i *d) {
    __m512i lo = _mm512_loadu_si512(p), hi = _mm512_loadu_si512(p + 8);
    *nib = _mm512_permutex2var_epi8(lo, nib_idx, hi);
    *d = _mm512_castsi512_si256(_mm512_permutexvar_epi16(scale_idx, lo));
}

/* q4_0_quad's permute indices. */
/* q4_0_quad's permute indices: nibble byte m is byte 18 (m / 16) + 2 +
 * m % 16 of the 72 (from the second load, 8 bytes on, past the 64th);
 * scale word j is d of block (j % 16) / 4, word 9 per block. */
static const uint8_t q4_0_nib_idx[64] __attribute__((aligned(64))) = {
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
    20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35,
    38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53,
    56, 57, 58, 59, 60, 61, 62, 63, 120, 121, 122, 123, 124, 125, 126, 127,
};
static const uint16_t q4_0_scale_idx[32] __attribute__((aligned(64))) = {
    0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27,
    0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27,
};

VBMI_TARGET static inline void q4_0_quad_indices(__m512i *nib_idx, __m512i *scale_idx) {
    *nib_idx = _mm512_load_si512(q4_0_nib_idx);
    *scale_idx = _mm512_load_si512(q4_0_scale_idx);
}

/* R rows (4 or 8, a constant after inlining). */
VBMI_TARGET static inline __attribute__((always_inline)) void dotn_q4_0(const void *vw, size_t rb, const void *vx, int nb,
                                                                          float *y, const int R) {
    const lm_block_q8_0 *x = vx;
    const char *w[8];
    for (int r = 0; r < R; r++) w[r] = (const char *)vw + (size_t)r * rb;
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512(), m4 = _mm512_set1_epi8(0x0F);
    size_t pf = STREAM_L1;
    /* Four blocks at a time: the low nibbles of the four blocks' 16 bytes
     * are elements 0-15 of each, the high nibbles elements 16-31; both
     * products land in the same 32-bit lanes (lanes 4k..4k+3: block k),
     * so one conversion and one scale serve 128 weights. */
    __m512i quad_nib_idx, quad_scale_idx;
    q4_0_quad_indices(&quad_nib_idx, &quad_scale_idx);
    const __m512i hi_nibble = _mm512_set1_epi64(0x1020408000000000ll);
    const lm_q4_0_x_quad *xq = (const lm_q4_0_x_quad *)((const char *)vx + lm_q8_0_layout_offset(nb));
    int b = 0;
    for (; b + 4 <= nb; b += 4, xq++) {
        row_streams_step(w, R, &pf, (size_t)(b + 4) * sizeof(lm_block_q4_0));
        const __m512i xlo = _mm512_loadu_si512(xq->lo), xhi = _mm512_loadu_si512(xq->hi);
        const __m512i neg_offset = _mm512_loadu_si512(xq->neg_offset);
        const __m512 dx = _mm512_loadu_ps(xq->d);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const char *quad = w[r] + (size_t)b * sizeof(lm_block_q4_0);
            __m512i nib;
            __m256i d16;
            q4_0_quad(quad, quad_nib_idx, quad_scale_idx, &nib, &d16);
            __m512i p = _mm512_dpbusd_epi32(neg_offset, _mm512_and_si512(nib, m4), xlo);
            /* high nibbles: an affine map over GF(2) moves bits 4-7 to 0-3
             * and clears the rest, one instruction for a shift and a mask */
            p = _mm512_dpbusd_epi32(p, _mm512_gf2p8affine_epi64_epi8(nib, hi_nibble, 0), xhi);
            acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtph_ps(d16), dx), _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    /* A last pair of blocks. */
    /* A block pair is 36 bytes: d(b), 16 bytes of nibbles, d(b+1), 16
     * bytes. One masked load brings both; vpermb lays the nibble bytes
     * out as [b, b+1, b, b+1] (16 bytes each) and the f16 scales as
     * [d(b) x4, d(b+1) x4, d(b) x4, d(b+1) x4]. */
    const __m512i nibble_idx = _mm512_set_epi32(0x23222120, 0x1f1e1d1c, 0x1b1a1918, 0x17161514, 0x11100f0e, 0x0d0c0b0a,
                                                0x09080706, 0x05040302, 0x23222120, 0x1f1e1d1c, 0x1b1a1918, 0x17161514,
                                                0x11100f0e, 0x0d0c0b0a, 0x09080706, 0x05040302);
    const __m512i scale_idx = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0x13121312, 0x13121312, 0x01000100, 0x01000100,
                                               0x13121312, 0x13121312, 0x01000100, 0x01000100);
    /* Low nibbles stay in place; high nibbles are masked where they are,
     * so they count 16x: the activation scale of those lanes is divided
     * by 16 instead of shifting every weight byte. */
    const __m512i masks = _mm512_xor_si512(_mm512_set1_epi8(0x0F), _mm512_set_epi64(-1, -1, -1, -1, 0, 0, 0, 0));
    /* sum (q - 8) x = sum q x - sum 8 x (x 16 in the high lanes); the
     * second term is every row's. */
    const __m512i offsets = _mm512_mask_blend_epi64(0xF0, _mm512_set1_epi8(8), _mm512_set1_epi8((char)128));
    const __m512 hi_div = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(1.f), _mm512_set1_ps(1.f / 16));
    for (; b + 2 <= nb; b += 2) {
        row_streams_step(w, R, &pf, (size_t)(b + 2) * sizeof(lm_block_q4_0));
        /* Activations in the weights' order: [x(b) 0-15, x(b+1) 0-15,
         * x(b) 16-31, x(b+1) 16-31]. */
        __m512i qx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)),
                                        _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);
        qx = _mm512_shuffle_i64x2(qx, qx, _MM_SHUFFLE(3, 1, 2, 0));
        __m512i neg_offset = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, offsets, qx));
        __m512 dx = _mm512_mul_ps(pair_scales(x[b].d, x[b + 1].d), hi_div);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const char *pair = w[r] + (size_t)b * sizeof(lm_block_q4_0);
            __m512i raw = _mm512_maskz_loadu_epi8(0xFFFFFFFFFull, pair);
            __m512i q = _mm512_and_si512(_mm512_permutexvar_epi8(nibble_idx, raw), masks);
            __m512i p = _mm512_dpbusd_epi32(neg_offset, q, qx);
            __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi8(scale_idx, raw)));
            acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
    if (b < nb) { /* an odd last block, half a register */
        const __m256i zero256 = _mm256_setzero_si256();
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i x8 = _mm256_dpbusd_epi32(zero256, _mm256_set1_epi8(8), qx);
        const __m128i m4x = _mm_set1_epi8(0xF);
        for (int r = 0; r < R; r++) {
            const lm_block_q4_0 *blk = (const lm_block_q4_0 *)w[r] + b;
            __m128i t = _mm_loadu_si128((const __m128i *)blk->qs);
            __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(t, 4), m4x), _mm_and_si128(t, m4x));
            __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero256, q, qx), x8);
            y[r] += _cvtsh_ss(blk->d) * _cvtsh_ss(x[b].d) * lm_hsum256(_mm256_cvtepi32_ps(p));
        }
    }
}

/* Four Q4_0 rows times S activation rows (batched decode: S sequences
 * in one step). Each row's nibbles and scales are unpacked once for all
 * S; only the products, conversion and accumulation are per sequence.
 * Needs nb % 4 == 0. y[s * 4 + r]. */
VBMI_TARGET static inline __attribute__((always_inline)) void dot4xs_q4_0(const void *vw, size_t rb, const void *vx,
                                                                            size_t xb, int nb, float *y, const int S) {
    const int R = 4;
    const char *w[4];
    for (int r = 0; r < R; r++) w[r] = (const char *)vw + (size_t)r * rb;
    const lm_q4_0_x_quad *xq[4];
    for (int s = 0; s < S; s++) xq[s] = (const lm_q4_0_x_quad *)((const char *)vx + (size_t)s * xb + lm_q8_0_layout_offset(nb));
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) acc[r][s] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), hi_nibble = _mm512_set1_epi64(0x1020408000000000ll);
    __m512i quad_nib_idx, quad_scale_idx;
    q4_0_quad_indices(&quad_nib_idx, &quad_scale_idx);
    size_t pf = STREAM_L1;
    for (int q = 0; q < nb / 4; q++) {
        row_streams_step(w, R, &pf, (size_t)(q + 1) * 4 * sizeof(lm_block_q4_0));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i nib;
            __m256i d16;
            q4_0_quad(w[r] + (size_t)q * 4 * sizeof(lm_block_q4_0), quad_nib_idx, quad_scale_idx, &nib, &d16);
            __m512i lo = _mm512_and_si512(nib, m4), hi = _mm512_gf2p8affine_epi64_epi8(nib, hi_nibble, 0);
            __m512 dw = _mm512_cvtph_ps(d16);
#pragma GCC unroll 4
            for (int s = 0; s < S; s++) {
                const lm_q4_0_x_quad *a = xq[s] + q;
                __m512i p = _mm512_dpbusd_epi32(_mm512_loadu_si512(a->neg_offset), lo, _mm512_loadu_si512(a->lo));
                p = _mm512_dpbusd_epi32(p, hi, _mm512_loadu_si512(a->hi));
                acc[r][s] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(a->d)), _mm512_cvtepi32_ps(p), acc[r][s]);
            }
        }
    }
    store_4xs(acc, S, y);
}

SEQS_2_TO_4(lm_dot4xs_q4_0_avx512, dot4xs_q4_0, VBMI_TARGET)

/* Lays out each four Q8_0 activation blocks of x for dotn_q4_0 after
 * the blocks (see lm_q4_0_x_quad). */
VBMI_TARGET void lm_q4_0_arrange_x_avx512(void *vx, int nb) {
    const lm_block_q8_0 *x = vx;
    lm_q4_0_x_quad *xq = (lm_q4_0_x_quad *)((char *)vx + lm_q8_0_layout_offset(nb));
    const __m512i zero = _mm512_setzero_si512(), eight = _mm512_set1_epi8(8);
    const __m512i spread4 = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int b = 0; b + 4 <= nb; b += 4, xq++) {
        /* the insert lane must be an immediate, also in unoptimized builds */
#define LANE(v, k, off) _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(x[b + k].qs + off)), k)
        __m512i xlo = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)x[b].qs));
        __m512i xhi = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(x[b].qs + 16)));
        xlo = LANE(LANE(LANE(xlo, 1, 0), 2, 0), 3, 0);
        xhi = LANE(LANE(LANE(xhi, 1, 16), 2, 16), 3, 16);
#undef LANE
        /* sum (q - 8) x = sum q x - 8 sum x: the second term is every row's */
        __m512i neg_offset = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, eight, xlo), eight, xhi));
        __m128i d16 = _mm_setr_epi16((short)x[b].d, (short)x[b + 1].d, (short)x[b + 2].d, (short)x[b + 3].d, 0, 0, 0, 0);
        _mm512_storeu_si512(xq->lo, xlo);
        _mm512_storeu_si512(xq->hi, xhi);
        _mm512_storeu_si512(xq->neg_offset, neg_offset);
        _mm512_storeu_ps(xq->d, _mm512_permutexvar_ps(spread4, _mm512_castps128_ps512(_mm_cvtph_ps(d16))));
    }
}

ROWS_4_AND_8(lm_dot4_q4_0_avx512, lm_dot8_q4_0_avx512, dotn_q4_0, VBMI_TARGET)

/* R rows (4 or 8, a constant after inlining). */
AVX512_TARGET static inline __attribute__((always_inline)) void dotn_q8_0(const void *vw, size_t rb, const void *vx, int nb,
                                                                          float *y, const int R) {
    const lm_block_q8_0 *x = vx;
    const lm_block_q8_0 *w[8];
    for (int r = 0; r < R; r++) w[r] = (const lm_block_q8_0 *)((const char *)vw + (size_t)r * rb);
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i zero = _mm512_setzero_si512(), bias = _mm512_set1_epi8((char)0x80);
    /* Halves, not 128-bit lanes, hold the two blocks here. */
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    size_t pf = STREAM_L1;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(b + 2) * sizeof(lm_block_q8_0));
        /* w + 128 is unsigned, so vpdpbusd takes it as is:
         * sum (w + 128) x = sum w x + 128 sum x, and the second term is
         * every row's. */
        __m512i qx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)),
                                        _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);
        __m512i neg_x128 = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, bias, qx));
        __m512 dx = spread_scales(halves, x[b].d, x[b + 1].d);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            __m512i qw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)w[r][b].qs)),
                                            _mm256_loadu_si256((const __m256i *)w[r][b + 1].qs), 1);
            __m512i p = _mm512_dpbusd_epi32(neg_x128, _mm512_xor_si512(qw, bias), qx);
            __m512 dw = spread_scales(halves, w[r][b].d, w[r][b + 1].d);
            acc[r] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(p), acc[r]);
        }
    }
    float tail[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (b < nb) {
        const __m256i zero256 = _mm256_setzero_si256(), bias256 = _mm256_set1_epi8((char)0x80);
        __m256i qx = _mm256_loadu_si256((const __m256i *)x[b].qs);
        __m256i x128 = _mm256_dpbusd_epi32(zero256, bias256, qx);
        for (int r = 0; r < R; r++) {
            __m256i qw = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)w[r][b].qs), bias256);
            __m256i p = _mm256_sub_epi32(_mm256_dpbusd_epi32(zero256, qw, qx), x128);
            tail[r] = _cvtsh_ss(w[r][b].d) * _cvtsh_ss(x[b].d) * lm_hsum256(_mm256_cvtepi32_ps(p));
        }
    }
    for (int r = 0; r < R; r++) y[r] = _mm512_reduce_add_ps(acc[r]) + tail[r];
}

ROWS_4_AND_8(lm_dot4_q8_0_avx512, lm_dot8_q8_0_avx512, dotn_q8_0, AVX512_TARGET)

/* Lays out each pair of Q8_0 activation blocks for dot4xs_q8_0 after the
 * blocks (see lm_q8_0_x_pair). */
AVX512_TARGET void lm_q8_0_arrange_x_avx512(void *vx, int nb) {
    const lm_block_q8_0 *x = vx;
    lm_q8_0_x_pair *xp = (lm_q8_0_x_pair *)((char *)vx + lm_q8_0_layout_offset(nb));
    const __m512i zero = _mm512_setzero_si512(), bias = _mm512_set1_epi8((char)0x80);
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int b = 0; b + 2 <= nb; b += 2, xp++) {
        __m512i qx = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[b].qs)),
                                        _mm256_loadu_si256((const __m256i *)x[b + 1].qs), 1);
        _mm512_storeu_si512(xp->qs, qx);
        _mm512_storeu_si512(xp->neg_offset, _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, bias, qx)));
        _mm512_storeu_ps(xp->d, spread_scales(halves, x[b].d, x[b + 1].d));
    }
}

/* Four Q8_0 rows times S activation rows: each row's block pair (its
 * quants made unsigned, its scales spread) prepared once for all S.
 * y[s * 4 + r]. */
AVX512_TARGET static inline __attribute__((always_inline)) void dot4xs_q8_0(const void *vw, size_t rb, const void *vx,
                                                                            size_t xb, int nb, float *y, const int S) {
    const int R = 4;
    const lm_block_q8_0 *w[4];
    for (int r = 0; r < R; r++) w[r] = (const lm_block_q8_0 *)((const char *)vw + (size_t)r * rb);
    const lm_q8_0_x_pair *xp[4];
    for (int s = 0; s < S; s++) xp[s] = (const lm_q8_0_x_pair *)((const char *)vx + (size_t)s * xb + lm_q8_0_layout_offset(nb));
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) acc[r][s] = _mm512_setzero_ps();
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i halves = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    size_t pf = STREAM_L1;
    for (int b = 0; b + 2 <= nb; b += 2) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(b + 2) * sizeof(lm_block_q8_0));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512i qw = _mm512_xor_si512(
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)w[r][b].qs)),
                                   _mm256_loadu_si256((const __m256i *)w[r][b + 1].qs), 1),
                bias);
            __m512 dw = spread_scales(halves, w[r][b].d, w[r][b + 1].d);
#pragma GCC unroll 4
            for (int s = 0; s < S; s++) {
                const lm_q8_0_x_pair *a = xp[s] + b / 2;
                __m512i p = _mm512_dpbusd_epi32(_mm512_loadu_si512(a->neg_offset), qw, _mm512_loadu_si512(a->qs));
                acc[r][s] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(a->d)), _mm512_cvtepi32_ps(p), acc[r][s]);
            }
        }
    }
    store_4xs(acc, S, y);
}

SEQS_2_TO_4(lm_dot4xs_q8_0_avx512, dot4xs_q8_0, AVX512_TARGET)

/* The eight 6-bit scales (or mins) of a Q4_K block as bytes, from its
 * 12 packed bytes: sub-blocks 0-3 keep their low 6 bits, 4-7 take a
 * nibble from bytes 8-11 and two high bits from bytes 0-3 (scales) or
 * 4-7 (mins). */
static inline void q4k_unpack(const uint8_t *packed, uint64_t *scales, uint64_t *mins) {
    uint32_t u0, u1, u2;
    memcpy(&u0, packed, 4);
    memcpy(&u1, packed + 4, 4);
    memcpy(&u2, packed + 8, 4);
    uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | ((u0 >> 2) & 0x30303030u);
    uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | ((u1 >> 2) & 0x30303030u);
    *scales = (u0 & 0x3f3f3f3fu) | (uint64_t)sc_hi << 32;
    *mins = (u1 & 0x3f3f3f3fu) | (uint64_t)m_hi << 32;
}

/* The order of sub-blocks in a Q4_K block's two registers of nibbles:
 * (low, high) halves of register k's low or high nibbles. */
static const int q4k_halves[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};

/* vpermd indices that spread each half's 6-bit scale over its eight
 * 32-bit lanes, per register. */
VBMI_TARGET static inline void q4k_scale_indices(__m512i idx[4]) {
    for (int k = 0; k < 4; k++)
        idx[k] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32(q4k_halves[k][0])),
                                    _mm256_set1_epi32(q4k_halves[k][1]), 1);
}

/* A block's 128 nibble bytes as four registers of 4-bit values in
 * q4k_halves order: low nibbles by a mask, high nibbles by one GFNI
 * affine instruction (bits 4-7 to 0-3, the rest cleared). */
VBMI_TARGET static inline void q4k_nibbles(const uint8_t *qs, __m512i q[4]) {
    const __m512i m4 = _mm512_set1_epi8(0xF), hi_nibble = _mm512_set1_epi64(0x1020408000000000ll);
    __m512i raw0 = _mm512_loadu_si512(qs), raw1 = _mm512_loadu_si512(qs + 64);
    q[0] = _mm512_and_si512(raw0, m4);
    q[1] = _mm512_gf2p8affine_epi64_epi8(raw0, hi_nibble, 0);
    q[2] = _mm512_and_si512(raw1, m4);
    q[3] = _mm512_gf2p8affine_epi64_epi8(raw1, hi_nibble, 0);
}

/* One Q4_K block of a weight row, unpacked for its products: nibbles,
 * each sub-block's scale spread over its lanes, the mins (each twice:
 * they pair with the activations' sums of 16), d and dmin. */
typedef struct {
    __m512i q[4], scale[4];
    __m256i mins;
    __m128 d_dmin;
} q4k_block;

VBMI_TARGET static inline __attribute__((always_inline)) void q4k_unpack_block(const lm_block_q4_k *blk,
                                                                                 const __m512i scale_idx[4], q4k_block *u) {
    uint64_t sc, mn;
    q4k_unpack(blk->scales, &sc, &mn);
    __m512i sc32 = _mm512_cvtepu8_epi32(_mm_cvtsi64_si128((long long)sc));
    q4k_nibbles(blk->qs, u->q);
    for (int k = 0; k < 4; k++) u->scale[k] = _mm512_permutexvar_epi32(scale_idx[k], sc32);
    __m128i mn8 = _mm_cvtsi64_si128((long long)mn);
    u->mins = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
    uint32_t d_dmin;
    memcpy(&d_dmin, &blk->d, 4); /* d and dmin are adjacent */
    u->d_dmin = _mm_cvtph_ps(_mm_cvtsi32_si128((int)d_dmin));
}

/* The block's scaled integer dot product with activations a[4] (in
 * q4k_halves order). Each 32-bit lane of a product sums four q x
 * (|.| <= 4*15*128, so it fits the low 16 bits): vpdpwssd multiplies
 * that low half by the scale and the high half (its sign) by 0. */
VBMI_TARGET static inline __m512i q4k_sumi(const q4k_block *u, const __m512i a[4]) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i sumi = zero;
    for (int k = 0; k < 4; k++) sumi = _mm512_dpwssd_epi32(sumi, _mm512_dpbusd_epi32(zero, u->q[k], a[k]), u->scale[k]);
    return sumi;
}

/* R rows (4 or 8, a constant after inlining). */
VBMI_TARGET static inline __attribute__((always_inline)) void dotn_q4_k(const void *vw, size_t rb, const void *vx, int nb,
                                                                          float *y, const int R) {
    const lm_block_q8_k *x = vx;
    const lm_block_q4_k *w[8];
    for (int r = 0; r < R; r++) w[r] = (const lm_block_q4_k *)((const char *)vw + (size_t)r * rb);
    __m512 acc[8];
    __m256 acc_min[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps(), acc_min[r] = _mm256_setzero_ps();
    /* A block's 128 nibble bytes as two registers: the low nibbles of the
     * first are sub-blocks 0 and 2 (32 elements each, a half each), its
     * high nibbles 1 and 3; the second's 4 and 6, 5 and 7. */
    __m512i scale_idx[4];
    q4k_scale_indices(scale_idx);
    size_t pf = STREAM_L1;
    for (int b = 0; b < nb; b++) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(b + 1) * sizeof(lm_block_q4_k));
        /* The activations in the same order. */
        __m512i a[4];
        for (int k = 0; k < 4; k++)
            a[k] = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * q4k_halves[k][0]))),
                _mm256_loadu_si256((const __m256i *)(x[b].qs + 32 * q4k_halves[k][1])), 1);
        __m256i bsums = _mm256_loadu_si256((const __m256i *)x[b].bsums);
        __m128 dx = _mm_set1_ps(x[b].d);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            q4k_block u;
            q4k_unpack_block(&w[r][b], scale_idx, &u);
            __m512i sumi = q4k_sumi(&u, a);
            /* Each min pairs with the sum of its sub-block's 32
             * activations: bsums holds them in halves of 16. */
            __m256i mins = _mm256_madd_epi16(u.mins, bsums);
            __m128 d = _mm_mul_ps(u.d_dmin, dx);
            acc[r] = _mm512_fmadd_ps(_mm512_broadcastss_ps(d), _mm512_cvtepi32_ps(sumi), acc[r]);
            acc_min[r] = _mm256_fmadd_ps(_mm256_broadcastss_ps(_mm_movehdup_ps(d)), _mm256_cvtepi32_ps(mins), acc_min[r]);
        }
    }
    for (int r = 0; r < R; r++) y[r] = _mm512_reduce_add_ps(acc[r]) - lm_hsum256(acc_min[r]);
}

ROWS_4_AND_8(lm_dot4_q4_k_avx512, lm_dot8_q4_k_avx512, dotn_q4_k, VBMI_TARGET)

/* Lays out each Q8_K activation block's quants in q4k_halves order after
 * the blocks. */
VBMI_TARGET void lm_q4_k_arrange_x_avx512(void *vx, int nb) {
    const lm_block_q8_k *x = vx;
    int8_t *a = (int8_t *)vx + lm_q8_k_layout_offset(nb);
    for (int b = 0; b < nb; b++, a += 256)
        for (int k = 0; k < 4; k++) {
            memcpy(a + 64 * k, x[b].qs + 32 * q4k_halves[k][0], 32);
            memcpy(a + 64 * k + 32, x[b].qs + 32 * q4k_halves[k][1], 32);
        }
}

/* Four Q4_K rows times S activation rows: each row's block unpacked once
 * (nibbles, scales, mins) for all S. y[s * 4 + r]. */
VBMI_TARGET static inline __attribute__((always_inline)) void dot4xs_q4_k(const void *vw, size_t rb, const void *vx,
                                                                            size_t xb, int nb, float *y, const int S) {
    const int R = 4;
    const lm_block_q4_k *w[4];
    for (int r = 0; r < R; r++) w[r] = (const lm_block_q4_k *)((const char *)vw + (size_t)r * rb);
    const lm_block_q8_k *x[4];
    const int8_t *xa[4];
    for (int s = 0; s < S; s++) {
        x[s] = (const lm_block_q8_k *)((const char *)vx + (size_t)s * xb);
        xa[s] = (const int8_t *)vx + (size_t)s * xb + lm_q8_k_layout_offset(nb);
    }
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) acc[r][s] = _mm512_setzero_ps();
    __m512i scale_idx[4];
    q4k_scale_indices(scale_idx);
    size_t pf = STREAM_L1;
    for (int b = 0; b < nb; b++) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(b + 1) * sizeof(lm_block_q4_k));
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            q4k_block u;
            q4k_unpack_block(&w[r][b], scale_idx, &u);
#pragma GCC unroll 4
            for (int s = 0; s < S; s++) {
                const int8_t *xs = xa[s] + (size_t)b * 256;
                const __m512i a[4] = {_mm512_loadu_si512(xs), _mm512_loadu_si512(xs + 64), _mm512_loadu_si512(xs + 128),
                                      _mm512_loadu_si512(xs + 192)};
                __m512i sumi = q4k_sumi(&u, a);
                __m256i mins = _mm256_madd_epi16(u.mins, _mm256_loadu_si256((const __m256i *)x[s][b].bsums));
                __m128 d = _mm_mul_ps(u.d_dmin, _mm_set1_ps(x[s][b].d));
                acc[r][s] = _mm512_fmadd_ps(_mm512_broadcastss_ps(d), _mm512_cvtepi32_ps(sumi), acc[r][s]);
                acc[r][s] = _mm512_fnmadd_ps(_mm512_broadcastss_ps(_mm_movehdup_ps(d)),
                                             _mm512_castps256_ps512(_mm256_cvtepi32_ps(mins)), acc[r][s]);
            }
        }
    }
    store_4xs(acc, S, y);
}

SEQS_2_TO_4(lm_dot4xs_q4_k_avx512, dot4xs_q4_k, VBMI_TARGET)

/* Q6_K's vpermw indices: scale g over the eight int16 lanes of 128-bit
 * lane g % 4 of register g / 4 (q12 and q34 of the first half, then of
 * the second). */
static const uint16_t q6k_scale_idx[4][32] __attribute__((aligned(64))) = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13, 14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};

/* R rows (4 or 8, a constant after inlining) of Q6_K. A block is 256
 * six-bit quants: low 4 bits in ql, high 2 in qh, in two halves of 128
 * (64 bytes of ql, 32 of qh each); quants go in unsigned (0-63) and the
 * -32 comes back as -32 * sum(scale x) from the activations' sums of 16
 * (bsums). Each 16 quants share an int8 scale: one vpermw per register
 * spreads them from the block's 16 scales widened once. */
VBMI_TARGET static inline __attribute__((always_inline)) void dotn_q6_k(const void *vw, size_t rb, const void *vx, int nb,
                                                                          float *y, const int R) {
    const lm_block_q8_k *x = vx;
    const lm_block_q6_k *w[8];
    for (int r = 0; r < R; r++) w[r] = (const lm_block_q6_k *)((const char *)vw + (size_t)r * rb);
    __m512 acc[8];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    /* Per 16-bit lane, the qh shift for the lower (q1/q3) and upper
     * (q2/q4) 32 bytes of a 64-byte vector. */
    const __m512i hshift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    __m512i scale_idx[4];
    for (int k = 0; k < 4; k++) scale_idx[k] = _mm512_load_si512(q6k_scale_idx[k]);
    size_t pf = STREAM_L1;
    for (int b = 0; b < nb; b++) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(b + 1) * sizeof(lm_block_q6_k));
        const __m512i a[4] = {_mm512_loadu_si512(x[b].qs), _mm512_loadu_si512(x[b].qs + 64), _mm512_loadu_si512(x[b].qs + 128),
                              _mm512_loadu_si512(x[b].qs + 192)};
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)x[b].bsums);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            const lm_block_q6_k *blk = &w[r][b];
            __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
            __m512i sc = _mm512_castsi256_si512(sc16);
            /* -32 * sum over groups of scale x: 8 lanes of the sum */
            __m512i sumi = _mm512_castsi256_si512(_mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums), 5));
            sumi = _mm512_sub_epi32(_mm512_setzero_si512(), sumi);
            for (int n = 0; n < 2; n++) {
                __m512i q12, q34;
                lm_q6k_half(blk->ql + 64 * n, blk->qh + 32 * n, hshift, &q12, &q34);
                __m512i p12 = _mm512_maddubs_epi16(q12, a[2 * n]);
                __m512i p34 = _mm512_maddubs_epi16(q34, a[2 * n + 1]);
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p12, _mm512_permutexvar_epi16(scale_idx[2 * n], sc)));
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p34, _mm512_permutexvar_epi16(scale_idx[2 * n + 1], sc)));
            }
            float d = _cvtsh_ss(blk->d) * x[b].d;
            acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(d), _mm512_cvtepi32_ps(sumi), acc[r]);
        }
    }
    for (int r = 0; r < R; r++) y[r] = _mm512_reduce_add_ps(acc[r]);
}

ROWS_4_AND_8(lm_dot4_q6_k_avx512, lm_dot8_q6_k_avx512, dotn_q6_k, VBMI_TARGET)

/* 16 half-precision weights as floats: F16 by vcvtph2ps, BF16 (the high
 * half of an F32) by widening and shifting. m masks the tail. */
AVX512_TARGET static inline __m512 half16_to_ps(__m256i h, const int bf16) {
    return bf16 ? _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)) : _mm512_cvtph_ps(h);
}
AVX512_TARGET static inline __m512 load_half16(const uint16_t *p, __mmask16 m, const int bf16) {
    return half16_to_ps(_mm256_maskz_loadu_epi16(m, p), bf16);
}
AVX512_TARGET static inline __m512 load_half16_full(const uint16_t *p, const int bf16) {
    return half16_to_ps(_mm256_loadu_si256((const __m256i *)p), bf16);
}

/* F16 or BF16 weights, F32 activations: four or eight rows share each
 * activation load, and each row stream is prefetched ahead. */
AVX512_TARGET static inline __attribute__((always_inline)) void fdotn_half(const void *vw, size_t rb, const void *vx, int k,
                                                                           float *y, const int R, const int bf16) {
    const float *x = vx;
    const uint16_t *w[8];
    for (int r = 0; r < R; r++) w[r] = (const uint16_t *)((const char *)vw + (size_t)r * rb);
    __m512 acc[8][2];
    for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    size_t pf = STREAM_L1;
    int i = 0;
    for (; i + 32 <= k; i += 32) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(i + 32) * sizeof(uint16_t));
        __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            acc[r][0] = _mm512_fmadd_ps(load_half16_full(w[r] + i, bf16), x0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(load_half16_full(w[r] + i + 16, bf16), x1, acc[r][1]);
        }
    }
    for (; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(m, x + i);
        for (int r = 0; r < R; r++) acc[r][0] = _mm512_fmadd_ps(load_half16(w[r] + i, m, bf16), xv, acc[r][0]);
    }
    for (int r = 0; r < R; r++) y[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
}

#define FDOTN_F16(w, rb, x, k, y, R) fdotn_half(w, rb, x, k, y, R, 0)
#define FDOTN_BF16(w, rb, x, k, y, R) fdotn_half(w, rb, x, k, y, R, 1)
ROWS_4_AND_8(lm_fdot4_f16_avx512, lm_fdot8_f16_avx512, FDOTN_F16, AVX512_TARGET)
ROWS_4_AND_8(lm_fdot4_bf16_avx512, lm_fdot8_bf16_avx512, FDOTN_BF16, AVX512_TARGET)

/* Four F16 or BF16 rows times S (2-4) F32 activation rows xb bytes apart
 * (batched decode): each weight vector converted once for all S.
 * y[s * 4 + r]. */
AVX512_TARGET static inline __attribute__((always_inline)) void fdot4xs_half(const void *vw, size_t rb, const void *vx,
                                                                             size_t xb, int k, float *y, const int S,
                                                                             const int bf16) {
    const int R = 4;
    const uint16_t *w[4];
    for (int r = 0; r < R; r++) w[r] = (const uint16_t *)((const char *)vw + (size_t)r * rb);
    const float *x[4];
    for (int s = 0; s < S; s++) x[s] = (const float *)((const char *)vx + (size_t)s * xb);
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) acc[r][s] = _mm512_setzero_ps();
    size_t pf = STREAM_L1;
    for (int i = 0; i < k; i += 16) {
        row_streams_step((const char *const *)w, R, &pf, (size_t)(i + 16) * sizeof(uint16_t));
        __mmask16 m = k - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - i)) - 1);
#pragma GCC unroll 4
        for (int r = 0; r < R; r++) {
            __m512 wv = load_half16(w[r] + i, m, bf16);
#pragma GCC unroll 4
            for (int s = 0; s < S; s++) acc[r][s] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[s] + i), acc[r][s]);
        }
    }
    store_4xs(acc, S, y);
}

#define FDOT4XS_F16(w, rb, x, xb, k, y, S) fdot4xs_half(w, rb, x, xb, k, y, S, 0)
#define FDOT4XS_BF16(w, rb, x, xb, k, y, S) fdot4xs_half(w, rb, x, xb, k, y, S, 1)
SEQS_2_TO_4(lm_fdot4xs_f16_avx512, FDOT4XS_F16, AVX512_TARGET)
SEQS_2_TO_4(lm_fdot4xs_bf16_avx512, FDOT4XS_BF16, AVX512_TARGET)

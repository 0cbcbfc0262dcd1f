/* Block layouts of ggml's quantized types, bit-exact (GGUF stores these
 * structs as they are). Internal to the quant kernels. */
#ifndef LMKIT_QUANT_BLOCKS_H
#define LMKIT_QUANT_BLOCKS_H

#include <stdint.h>

#include "lmkit/quant.h"

#define QK8_0 32
#define QK4_0 32
#define QK_K 256

/* 34 bytes: value = d * qs[i]. */
typedef struct {
    uint16_t d; /* f16 */
    int8_t qs[QK8_0];
} lm_block_q8_0;

/* 18 bytes: element j in the low nibble of qs[j], element j+16 in the high
 * nibble; value = d * (q - 8). */
typedef struct {
    uint16_t d;
    uint8_t qs[QK4_0 / 2];
} lm_block_q4_0;

/* 144 bytes: 8 sub-blocks of 32, each with a 6-bit scale and 6-bit min
 * packed into scales[12]; value = d*sc*q - dmin*m. Sub-block pair (2i,
 * 2i+1) shares qs[32i .. 32i+31]: low nibbles then high nibbles. */
typedef struct {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qs[QK_K / 2];
} lm_block_q4_k;

/* 210 bytes: 16 sub-blocks of 16 with int8 scales; 6-bit quants split into
 * 4 low bits (ql) and 2 high bits (qh); value = d * sc * (q - 32). */
typedef struct {
    uint8_t ql[QK_K / 2];
    uint8_t qh[QK_K / 4];
    int8_t scales[QK_K / 16];
    uint16_t d;
} lm_block_q6_k;

/* Activations for the K types: float scale, quants, and sums of each 16
 * quants (so a weight's min / offset term needs no pass over qs). */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} lm_block_q8_k;

_Static_assert(sizeof(lm_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(lm_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(lm_block_q4_k) == 144, "q4_k size");
_Static_assert(sizeof(lm_block_q6_k) == 210, "q6_k size");
_Static_assert(sizeof(lm_block_q8_k) == 292, "q8_k size");

/* The 6-bit scale and min of sub-block j of a Q4_K block. */
static inline void lm_q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* A dot kernel: weight row (n_blocks blocks) · quantized activations. */
typedef float (*lm_qdot_fn)(const void *w, const void *x, int n_blocks);
/* F32-activation dot for float weight types. */
typedef float (*lm_fdot_fn)(const void *w, const float *x, int k);

/* Scalar reference kernels (quant_ref.c). */
float lm_dot_q8_0_ref(const void *w, const void *x, int nb);
float lm_dot_q4_0_ref(const void *w, const void *x, int nb);
float lm_dot_q4_k_ref(const void *w, const void *x, int nb);
float lm_dot_q6_k_ref(const void *w, const void *x, int nb);
float lm_fdot_f32_ref(const void *w, const float *x, int k);
float lm_fdot_f16_ref(const void *w, const float *x, int k);
float lm_fdot_bf16_ref(const void *w, const float *x, int k);
void lm_quantize_row_q8_0(const float *x, void *y, int k);
void lm_quantize_row_q8_k(const float *x, void *y, int k);
void lm_quantize_row_q4_0(const float *x, void *y, int k);
void lm_quantize_row_q4_k(const float *x, void *y, int k);
void lm_quantize_row_q6_k(const float *x, void *y, int k);
void lm_dequantize_row(lm_qtype t, const void *x, float *y, int k);

/* SIMD kernels (quant_avx2.c, quant_avx512.c). */
float lm_dot_q8_0_avx2(const void *w, const void *x, int nb);
float lm_dot_q4_0_avx2(const void *w, const void *x, int nb);
float lm_dot_q4_k_avx2(const void *w, const void *x, int nb);
float lm_dot_q6_k_avx2(const void *w, const void *x, int nb);
float lm_fdot_f32_avx2(const void *w, const float *x, int k);
float lm_fdot_f16_avx2(const void *w, const float *x, int k);
float lm_fdot_bf16_avx2(const void *w, const float *x, int k);
float lm_dot_q8_0_avx512(const void *w, const void *x, int nb);
void lm_quantize_row_q8_0_avx512(const float *x, void *y, int k);
void lm_quantize_row_q8_k_avx512(const float *x, void *y, int k);
void lm_f32_to_f16_row_avx512(const float *x, uint16_t *y, size_t n);
float lm_dot_q4_0_avx512(const void *w, const void *x, int nb);
float lm_dot_q4_k_avx512(const void *w, const void *x, int nb);
float lm_dot_q6_k_avx512(const void *w, const void *x, int nb);
float lm_fdot_f32_avx512(const void *w, const float *x, int k);
/* Integer prefill GEMM (qgemm_avx512.c): y[n, rows] = x W^T for the
 * types lm_qgemm_supported accepts; scratch holds lm_qgemm_scratch(n, K). */
int lm_qgemm_supported(lm_qtype t);
size_t lm_qgemm_scratch(int n, int K);
void lm_qgemm_avx512(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n, void *scratch);
/* F16/BF16 prefill GEMM in F32 arithmetic (fgemm_avx512.c). */
int lm_fgemm_supported(lm_qtype t);
void lm_fgemm_avx512(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n);
/* Four (lm_dot4_*) or eight (lm_dot8_*) rows rb bytes apart at once:
 * y[0..3] or y[0..7] (quant_gemv_avx512.c). */
typedef void (*lm_qdot4_fn)(const void *w, size_t rb, const void *x, int n_blocks, float *y);
void lm_dot4_q8_0_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
void lm_dot8_q8_0_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
/* These also need AVX512-VBMI (vpermb, vpmultishiftqb) and GFNI. The
 * Q4_0 ones take x as Q8_0 blocks followed, at lm_q8_0_layout_offset(nb),
 * by the activations of each four blocks laid out for them by
 * lm_q4_0_arrange_x_avx512 (once per activation row, not per rows). */
void lm_dot4_q4_0_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
void lm_dot8_q4_0_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
/* Four Q8_0 activation blocks in the order of four Q4_0 blocks' nibble
 * bytes: elements 0-15 of each (low nibbles), elements 16-31 (high), the
 * offset term -8 * sum x per 32-bit lane of the products, the blocks'
 * scales per lane. */
typedef struct {
    int8_t lo[64], hi[64];
    int32_t neg_offset[16];
    float d[16];
} lm_q4_0_x_quad;
/* Where a layout laid out after nb Q8_0 (or Q8_K) activation blocks
 * starts: the first 64-byte boundary past them. */
static inline size_t lm_q8_0_layout_offset(int nb) { return ((size_t)nb * sizeof(lm_block_q8_0) + 63) / 64 * 64; }
static inline size_t lm_q8_k_layout_offset(int nb) { return ((size_t)nb * sizeof(lm_block_q8_k) + 63) / 64 * 64; }
/* Bytes of one activation row for the Q4_0 multi-row kernels. */
static inline size_t lm_q4_0_x_bytes(int nb) { return lm_q8_0_layout_offset(nb) + (size_t)(nb / 4) * sizeof(lm_q4_0_x_quad); }
void lm_q4_0_arrange_x_avx512(void *x, int nb);
/* Four Q4_0 rows times S (2-4) activation rows xb bytes apart, each laid
 * out as above; nb % 4 == 0. y[s * 4 + r]. */
void lm_dot4xs_q4_0_avx512(const void *w, size_t rb, const void *x, size_t xb, int S, int nb, float *y);
/* Q8_0's batched kernel takes each pair of Q8_0 activation blocks also
 * as one register of quants, the offset term -128 * sum x per 32-bit
 * lane (the weights go in as w + 128, unsigned) and the two blocks'
 * scales per half, after the blocks. */
typedef struct {
    int8_t qs[64];
    int32_t neg_offset[16];
    float d[16];
} lm_q8_0_x_pair;
static inline size_t lm_q8_0_x_bytes(int nb) { return lm_q8_0_layout_offset(nb) + (size_t)(nb / 2) * sizeof(lm_q8_0_x_pair); }
void lm_q8_0_arrange_x_avx512(void *x, int nb);
/* Four Q8_0 rows times S (2-4) activation rows xb bytes apart, each laid
 * out as above; nb even. y[s * 4 + r]. */
void lm_dot4xs_q8_0_avx512(const void *w, size_t rb, const void *x, size_t xb, int S, int nb, float *y);
/* Q4_K's batched kernel takes each Q8_K activation block's quants also
 * in the order of a Q4_K block's two registers of nibbles: sub-blocks
 * (0, 2), (1, 3), (4, 6), (5, 7), 64 bytes each, after the blocks. */
static inline size_t lm_q4_k_x_bytes(int nb) { return lm_q8_k_layout_offset(nb) + (size_t)nb * 256; }
void lm_q4_k_arrange_x_avx512(void *x, int nb);
/* Four Q4_K rows times S (2-4) activation rows xb bytes apart, each laid
 * out as above. y[s * 4 + r]. */
void lm_dot4xs_q4_k_avx512(const void *w, size_t rb, const void *x, size_t xb, int S, int nb, float *y);
void lm_dot4_q4_k_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
void lm_dot4_q6_k_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
void lm_dot8_q6_k_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
void lm_dot8_q4_k_avx512(const void *w, size_t rb, const void *x, int nb, float *y);
/* F16 rows rb bytes apart with F32 activations (x: k floats). */
void lm_fdot4_f16_avx512(const void *w, size_t rb, const void *x, int k, float *y);
void lm_fdot8_f16_avx512(const void *w, size_t rb, const void *x, int k, float *y);
void lm_fdot4_bf16_avx512(const void *w, size_t rb, const void *x, int k, float *y);
void lm_fdot8_bf16_avx512(const void *w, size_t rb, const void *x, int k, float *y);
/* Four F16 / BF16 rows times S (2-4) F32 activation rows xb bytes apart. */
void lm_fdot4xs_f16_avx512(const void *w, size_t rb, const void *x, size_t xb, int S, int k, float *y);
void lm_fdot4xs_bf16_avx512(const void *w, size_t rb, const void *x, size_t xb, int S, int k, float *y);
float lm_fdot_f16_avx512(const void *w, const float *x, int k);
float lm_fdot_bf16_avx512(const void *w, const float *x, int k);

#endif

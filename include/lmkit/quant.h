/* lmkit quantized weights: ggml-compatible block types, conversion, and the
 * matrix-vector / small-batch matmul that inference decodes through.
 *
 * Type ids are ggml's, so a GGUF tensor's type field is an lm_qtype as is.
 * Block layouts are bit-exact with ggml (see src/kernels/quant_blocks.h),
 * so weights read from a GGUF file are used in place, without conversion.
 *
 * Dot products follow llama.cpp: the activation row is quantized once per
 * matmul to Q8_0 (for Q8_0 / Q4_0 weights) or Q8_K (for Q4_K / Q6_K
 * weights) and the inner loop is an integer dot product (VNNI where the CPU
 * has it). F32 / F16 / BF16 weights multiply F32 activations directly.
 *
 * Every kernel has a scalar reference; the AVX2 and AVX-512 (VNNI) paths
 * are chosen at run time and tested against it. */
#ifndef LMKIT_QUANT_H
#define LMKIT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "lmkit/base.h"

typedef enum {
    LM_QT_F32 = 0,
    LM_QT_F16 = 1,
    LM_QT_Q4_0 = 2,
    LM_QT_Q8_0 = 8,
    LM_QT_Q4_K = 12,
    LM_QT_Q6_K = 14,
    LM_QT_Q8_K = 15, /* activations only (dot-product partner of the K types) */
    LM_QT_BF16 = 30,
} lm_qtype;

/* 1 for types this build can store and multiply (everything above). */
int lm_qtype_valid(int type);
const char *lm_qtype_name(lm_qtype t); /* "f32", "q4_k", ... */
/* Parses "q8_0", "Q4_K", "f16", ...; LM_ERR_ARG naming the string if unknown. */
lm_status lm_qtype_from_name(const char *name, lm_qtype *out);
int lm_qtype_block_elems(lm_qtype t); /* 1 for float types, 32 or 256 */
size_t lm_qtype_block_bytes(lm_qtype t);
/* Bytes of one row of k elements; k must be a multiple of block_elems. */
size_t lm_qtype_row_bytes(lm_qtype t, int64_t k);

/* Quantize n rows of k floats into dst (n * row_bytes(t, k) bytes), or
 * dequantize back. k must be a multiple of the block size (LM_ERR_ARG
 * otherwise). Rows are spread over threads. */
lm_status lm_quantize(lm_qtype t, const float *src, void *dst, int64_t n, int64_t k);
lm_status lm_dequantize(lm_qtype t, const void *src, float *dst, int64_t n, int64_t k);

/* y[j, r] = sum_k W[r, k] * x[j, k] for r < rows, j < n.
 * W is rows x K of type t (row-major, row_bytes(t, K) apart); x is n x K
 * floats; y is n x rows floats. scratch must hold lm_qmatmul_scratch(t, n,
 * K) bytes, 64-byte aligned (lm_alloc). Small n goes through the quantized
 * dot kernels; large n (prefill) dequantizes tiles of W and uses SGEMM.
 * Threads: lm_get_threads(). K must be a multiple of the block size. */
size_t lm_qmatmul_scratch(lm_qtype t, int n, int K);
void lm_qmatmul(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n,
                void *scratch);
/* Several products of the same x: ys[i] = x Ws[i]^T for i < count (at
 * most LM_QMATMUL_MAX_GROUP), all of type t and width K, Ws[i] with
 * rows[i] rows (a layer's q, k and v, or gate and up). On the decode
 * path x is converted once and all the matrices' rows run as one set of
 * tasks; the same results as count lm_qmatmul calls. */
#define LM_QMATMUL_MAX_GROUP 4
void lm_qmatmul_group(int count, float *const *ys, const void *const *Ws, lm_qtype t, const int *rows, int K,
                      const float *x, int n, void *scratch);

/* Dot product of one weight row with one activation row (already
 * converted to lm_qtype_vec_type(t) by lm_quantize_vec). For tests and
 * callers that hand-roll loops. */
lm_qtype lm_qtype_vec_type(lm_qtype t);
void lm_quantize_vec(lm_qtype wt, const float *x, void *xq, int K);
float lm_qdot(lm_qtype t, const void *wrow, const void *xq, int K);

/* n floats to F16, rounding to nearest even (as lm_f32_to_f16), in
 * vectors where the CPU converts them (F16C): the KV cache's writes. */
void lm_f32_to_f16_row(const float *x, uint16_t *y, size_t n);

/* Instruction-set level of the kernels. LM_ISA_BEST is the default; tests
 * set lower levels to compare paths. Setting a level the CPU lacks falls
 * back to the best level it has below it. */
typedef enum { LM_ISA_SCALAR = 0, LM_ISA_AVX2 = 1, LM_ISA_AVX512 = 2, LM_ISA_BEST = 3 } lm_isa;
void lm_quant_set_isa(lm_isa isa);
lm_isa lm_quant_isa(void); /* the level in effect */
const char *lm_isa_name(lm_isa isa);

#endif

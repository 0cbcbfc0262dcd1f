/* Internal to src/kernels and the tests: the scalar reference of every
 * public kernel (same arguments, suffix _ref), the dispatch level, and the
 * individual GEMM back ends. The references are single-threaded, simple and
 * obviously correct; the public functions must agree with them. */
#ifndef LMKIT_KERNELS_REF_H
#define LMKIT_KERNELS_REF_H

#include "lmkit/kernels.h"

enum { LM_SIMD_SCALAR = 0, LM_SIMD_AVX2 = 2, LM_SIMD_AVX512 = 3 };
/* The SIMD level the dispatching kernels use now: the best the CPU supports,
 * or LM_SIMD_SCALAR while lm_kernels_force_scalar(1) is in effect. */
int lm_simd_level(void);
/* The best level this CPU supports. */
int lm_simd_best(void);
/* For tests: cap the level (e.g. LM_SIMD_AVX2 on an AVX-512 machine to test
 * the AVX2 paths); -1 removes the cap. */
void lm_simd_force_level(int level);

/* ---- GEMM back ends (same contract as lm_sgemm) ---- */
void lm_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc);
void lm_sgemm_openblas(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Own packed AVX-512 sgemm; only call when lm_cpu()->avx512f. */
void lm_sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                     int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* lm_sgemm_ex's AVX-512 path: bias, addend and sum of squares in the
 * micro-kernel's store, column sums of B while packing it. */
void lm_sgemm_avx512_ex(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, const lm_sgemm_extras *ex);
/* lm_sgemm_ex's extras as passes of their own, for the paths that do not
 * fuse them: C = (beta * C) * mul + bias + addend (beta 0: C is not read;
 * ex->sumsq and ex->b_colsum are not touched); the sum of squares of
 * C[M,N] in double; colsum[j] += op(B)[k][j] over k in order. */
void lm_sgemm_extras_pass(int M, int N, float beta, const lm_sgemm_extras *ex, float *C, int ldc);
double lm_sgemm_c_sum_squares(int M, int N, const float *C, int ldc);
void lm_sgemm_b_column_sums(int trans_b, int K, int N, const float *B, int ldb, float *colsum);
void lm_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N,
                           int IC, int OC);
void lm_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC);

/* ---- embeddings ---- */
void lm_embedding_forward_ref(float *out, const int32_t *ids, const int32_t *pos, const float *wte,
                              const float *wpe, int N, int C);
void lm_embedding_backward_ref(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                               const int32_t *pos, int N, int C);

/* ---- normalization ---- */
void lm_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
void lm_layernorm_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);
void lm_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *weight, int N,
                            int C, float eps);
void lm_rmsnorm_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp,
                             const float *weight, const float *rstd, int N, int C);

/* ---- activations ---- */
void lm_gelu_tanh_forward_ref(float *out, const float *inp, size_t n);
void lm_gelu_tanh_forward_deriv_ref(float *out, float *deriv, const float *inp, size_t n);
void lm_gelu_tanh_backward_ref(float *dinp, const float *inp, const float *dout, size_t n);
void lm_gelu_erf_forward_ref(float *out, const float *inp, size_t n);
void lm_gelu_erf_backward_ref(float *dinp, const float *inp, const float *dout, size_t n);
void lm_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n);
void lm_swiglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n);
void lm_add_ref(float *out, const float *a, const float *b, size_t n);
void lm_accumulate_ref(float *acc, const float *x, size_t n);

/* ---- attention ---- */
void lm_attention_forward_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                              const lm_attention_shape *s);
void lm_attention_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, const float *out, const float *lse,
                               const lm_attention_shape *s);

/* ---- loss ---- */
int lm_cross_entropy_forward_backward_ref(float *losses, float *dlogits, const float *logits,
                                          const int32_t *targets, int N, int V, float grad_scale);

/* ---- optimizer ---- */
void lm_adamw_update_ref(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale);
double lm_sum_squares_ref(const float *x, size_t n);
void lm_scale_ref(float *x, float s, size_t n);

#endif

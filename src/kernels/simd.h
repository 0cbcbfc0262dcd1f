/* Internal: the per-ISA fast paths (pointwise_avx512.c / pointwise_avx2.c,
 * attention_avx512.c / attention_avx2.c) that the public kernels dispatch
 * to. Each has the public kernel's contract. */
#ifndef LMKIT_KERNELS_SIMD_H
#define LMKIT_KERNELS_SIMD_H

#include "lmkit/kernels.h"

#define LM_DECLARE_FAST(S)                                                                          \
    void lm_gelu_tanh_forward_##S(float *out, const float *inp, size_t n);                          \
    void lm_gelu_tanh_backward_##S(float *dinp, const float *inp, const float *dout, size_t n);     \
    void lm_gelu_tanh_forward_deriv_##S(float *out, float *deriv, const float *inp, size_t n);      \
    void lm_gelu_erf_forward_##S(float *out, const float *inp, size_t n);                           \
    void lm_gelu_erf_backward_##S(float *dinp, const float *inp, const float *dout, size_t n);      \
    void lm_swiglu_forward_##S(float *out, const float *gate, const float *up, size_t n);           \
    void lm_swiglu_backward_##S(float *dgate, float *dup, const float *dout, const float *gate,     \
                                const float *up, size_t n);                                         \
    void lm_add_##S(float *out, const float *a, const float *b, size_t n);                          \
    void lm_accumulate_##S(float *acc, const float *x, size_t n);                                   \
    void lm_scale_##S(float *x, float s, size_t n);                                                 \
    double lm_sum_squares_##S(const float *x, size_t n);                                            \
    double lm_sum_squares_serial_##S(const float *x, size_t n);                                     \
    void lm_adamw_apply_##S(float *param, float *grad, float *m, float *v, size_t n,                \
                            const lm_adamw_consts *c, int zero_grad);                               \
    void lm_layernorm_forward_##S(float *out, float *mean, float *rstd, const float *inp,           \
                                  const float *weight, const float *bias, int N, int C, float eps); \
    void lm_layernorm_backward_##S(float *dinp, float *dweight, float *dbias, const float *dout,    \
                                   const float *inp, const float *weight, const float *mean,        \
                                   const float *rstd, int N, int C);                                \
    void lm_rmsnorm_forward_##S(float *out, float *rstd, const float *inp, const float *weight,     \
                                int N, int C, float eps);                                           \
    void lm_rmsnorm_backward_##S(float *dinp, float *dweight, const float *dout, const float *inp,  \
                                 const float *weight, const float *rstd, int N, int C);             \
    int lm_cross_entropy_forward_backward_##S(float *losses, float *dlogits, const float *logits,   \
                                              const int32_t *targets, int N, int V,                 \
                                              float grad_scale);                                    \
    void lm_attention_forward_##S(float *out, float *lse, const float *q, const float *k,           \
                                  const float *v, const lm_attention_shape *s);                     \
    void lm_attention_backward_##S(float *dq, float *dk, float *dv, const float *dout,              \
                                   const float *q, const float *k, const float *v,                  \
                                   const float *out, const float *lse,                              \
                                   const lm_attention_shape *s, float *scratch);

LM_DECLARE_FAST(avx512)
LM_DECLARE_FAST(avx2)

#endif

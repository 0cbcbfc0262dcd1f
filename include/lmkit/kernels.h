/* lmkit kernels: math on raw fp32 buffers, forward and backward.
 *
 * Conventions (shared by every kernel here):
 * - Row-major. A "linear" weight is [out, in] like PyTorch's nn.Linear.
 * - Backward kernels ACCUMULATE (+=) into gradient buffers, so gradient
 *   accumulation over micro-batches and shared (tied) weights just work.
 *   Callers zero gradients once per optimizer step.
 * - Kernels never allocate; scratch memory is passed in.
 * - Each kernel has a plain scalar reference (suffix _ref) that the fast
 *   path is tested against on odd shapes. The public name dispatches on
 *   the CPU's features at run time.
 * - Multi-threaded with OpenMP; thread count from lm_set_threads(). */
#ifndef LMKIT_KERNELS_H
#define LMKIT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* ---- CPU features, detected once at first use ---- */
typedef struct {
    int avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16, avx_vnni;
} lm_cpu_features;
const lm_cpu_features *lm_cpu(void);
/* For tests: force the scalar path (1) or allow SIMD (0). */
void lm_kernels_force_scalar(int on);

/* ---- GEMM ----
 * C[M,N] = alpha * op(A) @ op(B) + beta * C, row-major, with op = transpose
 * when trans_* is set. Leading dimensions are those of the stored matrices. */
void lm_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
/* lm_sgemm that also adds the sum of squares of C's final values to
 * *sumsq: a weight gradient's share of the global norm, summed as the GEMM
 * stores it instead of by a pass of its own (AVX-512; else a pass over C).
 * Deterministic for a given thread count. */
void lm_sgemm_sumsq(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc, double *sumsq);
/* What a GEMM can do on the side, in its own passes over B and C instead of
 * passes of their own (AVX-512; other paths make the passes, with the same
 * results up to rounding). Fields left 0 are off.
 *   mul          an M x N matrix (row stride ld_mul) that C is multiplied by,
 *                element by element, before bias and addend: the backward
 *                of an elementwise activation, dx = (dy W^T) * f'(x);
 *   bias[N]      added to every row of C: C = alpha op(A) op(B) + beta C + bias;
 *   addend       an M x N matrix (row stride ld_addend) added last, onto the
 *                final sum: a residual connection, out = layer(h) + x,
 *                written once;
 *   sumsq        += the sum of squares of C's final values (a weight
 *                gradient's share of the global norm);
 *   b_colsum[N]  += each column of op(B) summed over its K rows, in row
 *                order (the same for any thread count): the bias gradient of
 *                a layer whose output gradient is B. */
typedef struct {
    const float *bias;
    const float *addend;
    int ld_addend;
    double *sumsq;
    float *b_colsum;
    const float *mul;
    int ld_mul;
} lm_sgemm_extras;
void lm_sgemm_ex(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, const lm_sgemm_extras *ex);
/* C[M,N] = op(A) @ op(B) + bias, bias[N] added to every row (NULL: none);
 * C is overwritten. The AVX-512 path adds the bias as it stores C, so the
 * layer output is written once and never read back. */
void lm_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, const float *bias, float *C, int ldc);

/* out[N,OC] = inp[N,IC] @ weight[OC,IC]^T + bias[OC] (bias may be NULL). */
void lm_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int IC, int OC);
/* dinp += dout @ weight; dweight += dout^T @ inp; dbias += sum_rows(dout).
 * Any of dinp / dweight / dbias may be NULL to skip it. */
void lm_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int IC, int OC);
/* The same, adding the sum of squares of dweight's values after the update
 * to *dweight_sumsq (when dweight was zero before: its gradient-norm share). */
void lm_linear_backward_sumsq(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int N, int IC, int OC, double *dweight_sumsq);

/* ---- embeddings ----
 * out[n, :] = wte[ids[n], :] + (wpe ? wpe[pos[n], :] : 0). */
void lm_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte,
                          const float *wpe, int N, int C);
/* dwte[ids[n]] += dout[n]; dwpe[pos[n]] += dout[n] (dwpe may be NULL). */
void lm_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                           const int32_t *pos, int N, int C);

/* ---- normalization ----
 * LayerNorm over the last dim C with affine weight/bias; mean and rstd
 * ([N] each) are saved for backward. */
void lm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, float eps);
void lm_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C);
/* RMSNorm: out = inp * rsqrt(mean(inp^2) + eps) * weight; rstd saved. */
void lm_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                        float eps);
void lm_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C);

/* ---- activations (elementwise over n values) ----
 * GELU with the tanh approximation ("gelu_new", GPT-2) or exact erf (BERT).
 * Their backward overwrites dinp = gelu'(inp) * dout; dinp may be dout (in
 * place: the gradient of the output is not needed once it is taken). */
void lm_gelu_tanh_forward(float *out, const float *inp, size_t n);
void lm_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* The tanh GELU forward that also writes each gelu'(inp) to deriv (which
 * may be inp): a training forward keeps those factors instead of the
 * inputs, and the backward multiplies by them as the GEMM that makes the
 * output's gradient stores it (lm_sgemm_extras.mul). */
void lm_gelu_tanh_forward_deriv(float *out, float *deriv, const float *inp, size_t n);
void lm_gelu_erf_forward(float *out, const float *inp, size_t n);
void lm_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* SwiGLU: out = silu(gate) * up. */
void lm_swiglu_forward(float *out, const float *gate, const float *up, size_t n);
void lm_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                        const float *up, size_t n);

/* out[i] = a[i] + b[i] */
void lm_add(float *out, const float *a, const float *b, size_t n);
/* acc[i] += x[i] */
void lm_accumulate(float *acc, const float *x, size_t n);
/* Inverted dropout in place: x[i] = 0 with probability p, else
 * x[i] / (1 - p). The mask depends only on (seed, stream, i), so calling
 * it again on the gradient with the same arguments is the backward pass. */
void lm_dropout(float *x, size_t n, float p, uint64_t seed, uint64_t stream);

/* ---- attention ----
 * Fused causal multi-head attention (tiled, online softmax): memory O(T).
 * q: [B, T, q_stride] where head h of position t starts at q + (b*T+t)*q_stride + h*HS;
 * k, v likewise with kv_stride and NKV heads (grouped-query when NKV < NH:
 * query head h reads kv head h / (NH/NKV)).
 * out: [B, T, NH*HS]; lse: [B, NH, T] log-sum-exp of the scaled scores,
 * saved for backward. scale is usually 1/sqrt(HS).
 * window > 0 limits each query to the last `window` keys (sliding window;
 * query i sees keys j with |i - j| < window, so i-window < j <= i when causal);
 * causal = 0 gives bidirectional attention (BERT) with an optional key mask
 * key_valid[B, T] (nonzero = attend), NULL meaning all valid (the mask is
 * honoured when causal, too). A query with no key to attend to gets out = 0
 * and lse = -inf.
 * dropout > 0 (training): HF's attention-probability dropout — each
 * probability of query i for key j (batch row b, head h) is zeroed with
 * probability `dropout` and the rest scaled by 1 / (1 - dropout), the mask
 * a hash of (dropout_seed, dropout_stream, ((b*NH + h)*T + i)*T + j) as in
 * lm_dropout, so backward regenerates it; lse stays the undropped one. */
typedef struct {
    int B, T, NH, NKV, HS;
    int q_stride, kv_stride;
    float scale;
    int causal;
    int window;
    const uint8_t *key_valid;
    float dropout;
    uint64_t dropout_seed, dropout_stream;
} lm_attention_shape;
void lm_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          const lm_attention_shape *s);
/* dq, dk, dv (same layouts/strides as q, k, v) are ACCUMULATED. scratch
 * must hold lm_attention_backward_scratch(s) floats. */
size_t lm_attention_backward_scratch(const lm_attention_shape *s);
void lm_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const lm_attention_shape *s, float *scratch);

/* ---- loss ----
 * Softmax cross-entropy over rows of logits [N, V] with targets [N]
 * (target < 0 means "ignore this row", like PyTorch's ignore_index=-100).
 * losses[n] receives each row's loss (0 for ignored rows). Returns the
 * number of counted rows. If dlogits is non-NULL it is OVERWRITTEN with
 * d(mean loss)/d(logits) scaled by grad_scale, i.e.
 * (softmax - onehot) * grad_scale for counted rows and 0 for ignored ones;
 * dlogits may alias logits. */
int lm_cross_entropy_forward_backward(float *losses, float *dlogits, const float *logits,
                                      const int32_t *targets, int N, int V, float grad_scale);

/* ---- optimizer ----
 * One AdamW step on n parameters (PyTorch semantics: decoupled weight decay
 * p -= lr*wd*p, bias-corrected moments, eps added after sqrt). `step` is
 * 1-based. */
void lm_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int step);
/* The same step taking the gradient as grad * grad_scale (an fp32 multiply,
 * what scaling the gradients in place would leave): global-norm clipping
 * folds into the update instead of costing a pass over the gradients. */
void lm_adamw_update_scaled(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale);
/* The same step split in two: its scalars formed once (in double, as
 * PyTorch forms them from Python floats) and applied to any number of
 * spans — a step over thousands of short embedding-row runs forms them
 * once. zero_grad: grad[0:n] is also left zero, ready for the next step's
 * gradients to accumulate into, at no pass of its own. */
typedef struct {
    float decay, w1, b2, w2, step_size, bc2_sqrt, eps;
    float grad_scale; /* the gradient is used as grad * grad_scale */
} lm_adamw_consts;
lm_adamw_consts lm_adamw_prepare(float lr, float beta1, float beta2, float eps, float weight_decay, int step,
                                 float grad_scale);
void lm_adamw_apply(float *param, float *grad, float *m, float *v, size_t n, const lm_adamw_consts *c, int zero_grad);
/* Sum of squares of n values (for global-norm clipping), in double. */
double lm_sum_squares(const float *x, size_t n);
/* The same on the calling thread only, for callers that split the work. */
double lm_sum_squares_serial(const float *x, size_t n);
void lm_scale(float *x, float s, size_t n);
/* x[0:n] = 0, split over the threads when n is large (a memset of a large
 * gradient buffer is bound by one core's store bandwidth). */
void lm_zero(float *x, size_t n);

#endif

/* Internal: GPT-2's "Conv1D" layer, a linear layer whose weight is stored
 * [in, out] (out = inp @ W + b), as in Hugging Face checkpoints. */
#ifndef LMKIT_CONV1D_H
#define LMKIT_CONV1D_H

/* out[N,OC] = inp[N,IC] @ W[IC,OC] + bias[OC] (+ residual[N,OC] when not
 * NULL: a block's skip connection, added as the GEMM stores out) */
void lm_conv1d_forward(float *out, const float *inp, const float *w, const float *bias, const float *residual, int N,
                       int IC, int OC);
/* dinp = dout @ W^T (overwritten), times dinp_mul element by element when
 * not NULL (an activation's derivative); dw = inp^T @ dout + dw_beta * dw
 * (dw_beta 1 accumulates, 0 overwrites); dbias += column sums of dout
 * (taken by the dw GEMM as it packs dout, when there is one).
 * dw_sumsq (NULL: none) receives the sum of squares of dw as stored. */
void lm_conv1d_backward(float *dinp, const float *dinp_mul, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC, float dw_beta, double *dw_sumsq);

#endif

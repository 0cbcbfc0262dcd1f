/* GPT-2's Conv1D: three GEMMs and a bias reduction. */
#include "model/conv1d.h"

#include "lmkit/kernels.h"

#include <string.h>

void lm_conv1d_forward(float *out, const float *inp, const float *w, const float *bias, const float *residual, int N,
                       int IC, int OC) {
    lm_sgemm_extras ex = {.bias = bias, .addend = residual, .ld_addend = OC};
    lm_sgemm_ex(0, 0, N, OC, IC, 1.0f, inp, IC, w, OC, 0.0f, out, OC, &ex);
}

void lm_conv1d_backward(float *dinp, const float *dinp_mul, float *dw, float *dbias, const float *dout, const float *inp,
                        const float *w, int N, int IC, int OC, float dw_beta, double *dw_sumsq) {
    if (dinp) {
        lm_sgemm_extras ex = {.mul = dinp_mul, .ld_mul = IC};
        lm_sgemm_ex(0, 1, N, IC, OC, 1.0f, dout, OC, w, OC, 0.0f, dinp, IC, &ex);
    }
    if (dw) {
        /* dout is the dw GEMM's B: its column sums are the bias gradient */
        lm_sgemm_extras ex = {.sumsq = dw_sumsq, .b_colsum = dbias};
        lm_sgemm_ex(1, 0, IC, OC, N, 1.0f, inp, IC, dout, OC, dw_beta, dw, OC, &ex);
        return;
    }
    if (dbias) {
        /* Each thread owns a slice of columns and walks the rows in order
         * (contiguous, vectorizable adds), so the sum is the same for any
         * thread count. */
        const int chunk = 256;
#pragma omp parallel for schedule(static)
        for (int o0 = 0; o0 < OC; o0 += chunk) {
            int o1 = o0 + chunk < OC ? o0 + chunk : OC;
            for (int n = 0; n < N; n++) {
                const float *row = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) dbias[o] += row[o];
            }
        }
    }
}

/* GPT-2's Conv1D: three GEMMs and a bias reduction. */
#include "model/conv1d.h"

#include "lmkit/kernels.h"

void lm_conv1d_forward(float *out, const float *inp, const float *w, const float *bias, int N, int IC, int OC) {
    if (bias) {
#pragma omp parallel for schedule(static)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) out[(size_t)n * OC + o] = bias[o];
    }
    lm_sgemm(0, 0, N, OC, IC, 1.0f, inp, IC, w, OC, bias ? 1.0f : 0.0f, out, OC);
}

void lm_conv1d_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w, int N,
                        int IC, int OC) {
    if (dinp) lm_sgemm(0, 1, N, IC, OC, 1.0f, dout, OC, w, OC, 1.0f, dinp, IC);
    if (dw) lm_sgemm(1, 0, IC, OC, N, 1.0f, inp, IC, dout, OC, 1.0f, dw, OC);
    if (dbias) {
        /* Columns are split across threads, each summing rows in order, so
         * the result is identical for any thread count. */
#pragma omp parallel for schedule(static)
        for (int o = 0; o < OC; o++) {
            float s = 0;
            for (int n = 0; n < N; n++) s += dout[(size_t)n * OC + o];
            dbias[o] += s;
        }
    }
}

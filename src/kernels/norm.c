/* LayerNorm and RMSNorm over the last dimension, forward and backward. */
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"

#include <math.h>

/* ---- references (statistics in double) ---- */
void lm_layernorm_forward_ref(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double m = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        double var = 0;
        for (int c = 0; c < C; c++) var += ((double)x[c] - m) * ((double)x[c] - m);
        var /= C;
        double r = 1.0 / sqrt(var + (double)eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            double y = ((double)x[c] - m) * r;
            o[c] = (float)(y * weight[c] + (bias ? bias[c] : 0.0f));
        }
        mean[n] = (float)m;
        rstd[n] = (float)r;
    }
}

void lm_layernorm_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double m = mean[n], r = rstd[n];
        double dnorm_mean = 0, dnorm_norm_mean = 0;
        for (int c = 0; c < C; c++) {
            double norm = ((double)x[c] - m) * r;
            double dnorm = (double)weight[c] * dy[c];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= C;
        dnorm_norm_mean /= C;
        for (int c = 0; c < C; c++) {
            double norm = ((double)x[c] - m) * r;
            double dnorm = (double)weight[c] * dy[c];
            if (dinp) dinp[(size_t)n * C + c] += (float)((dnorm - dnorm_mean - norm * dnorm_norm_mean) * r);
            if (dweight) dweight[c] += (float)(norm * dy[c]);
            if (dbias) dbias[c] += dy[c];
        }
    }
}

void lm_rmsnorm_forward_ref(float *out, float *rstd, const float *inp, const float *weight, int N,
                            int C, float eps) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[c] * x[c];
        double r = 1.0 / sqrt(ss / C + (double)eps);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (float)((double)x[c] * r * weight[c]);
        rstd[n] = (float)r;
    }
}

void lm_rmsnorm_backward_ref(float *dinp, float *dweight, const float *dout, const float *inp,
                             const float *weight, const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        double r = rstd[n];
        double dnorm_norm_mean = 0;
        for (int c = 0; c < C; c++) dnorm_norm_mean += (double)weight[c] * dy[c] * x[c] * r;
        dnorm_norm_mean /= C;
        for (int c = 0; c < C; c++) {
            double norm = (double)x[c] * r;
            double dnorm = (double)weight[c] * dy[c];
            if (dinp) dinp[(size_t)n * C + c] += (float)((dnorm - norm * dnorm_norm_mean) * r);
            if (dweight) dweight[c] += (float)(norm * dy[c]);
        }
    }
}

/* ---- dispatch ---- */
#define DISPATCH(name, ...)                                     \
    do {                                                        \
        switch (lm_simd_level()) {                              \
        case LM_SIMD_AVX512: name##_avx512(__VA_ARGS__); break; \
        case LM_SIMD_AVX2: name##_avx2(__VA_ARGS__); break;     \
        default: name##_ref(__VA_ARGS__); break;                \
        }                                                       \
    } while (0)

void lm_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int N, int C, float eps) {
    DISPATCH(lm_layernorm_forward, out, mean, rstd, inp, weight, bias, N, C, eps);
}

void lm_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *weight, const float *mean,
                           const float *rstd, int N, int C) {
    DISPATCH(lm_layernorm_backward, dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}

void lm_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *weight, int N, int C,
                        float eps) {
    DISPATCH(lm_rmsnorm_forward, out, rstd, inp, weight, N, C, eps);
}

void lm_rmsnorm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
                         const float *weight, const float *rstd, int N, int C) {
    DISPATCH(lm_rmsnorm_backward, dinp, dweight, dout, inp, weight, rstd, N, C);
}

/* AdamW with torch.optim.AdamW semantics, and the helpers for global-norm
 * gradient clipping. */
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The per-element operations follow torch.optim.AdamW's single-tensor path
 * (fp32 tensors, Python-float hyperparameters):
 *   p *= 1 - lr*wd
 *   m.lerp_(g, 1-b1)            -> m + (1-b1)*(g-m)
 *   v = v*b2 + (1-b2)*g*g
 *   denom = sqrt(v) / sqrt(1-b2^t) + eps
 *   p -= (lr / (1-b1^t)) * m / denom
 * Scalars are formed in double, like Python floats, then used in fp32. */

/* The double a user meant by a float hyperparameter: the shortest decimal
 * that rounds to it (0.999f -> 0.999). PyTorch forms 1 - beta2 from the
 * Python float 0.999; from the float 0.99900001 it would be off by 1.3e-5
 * relative, which shows in v and the update. */
static double intended(float f) {
    char buf[32];
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return f;
}

lm_adamw_consts lm_adamw_prepare(float lr_f, float beta1_f, float beta2_f, float eps, float wd_f, int step, float grad_scale) {
    lm_adamw_consts c;
    double lr = intended(lr_f), beta1 = intended(beta1_f), beta2 = intended(beta2_f), wd = intended(wd_f);
    double bc1 = 1.0 - pow(beta1, step), bc2 = 1.0 - pow(beta2, step);
    c.decay = (float)(1.0 - lr * wd);
    c.w1 = (float)(1.0 - beta1);
    c.b2 = beta2_f;
    c.w2 = (float)(1.0 - beta2);
    c.step_size = (float)(lr / bc1);
    c.bc2_sqrt = (float)sqrt(bc2);
    c.eps = eps;
    c.grad_scale = grad_scale;
    return c;
}

static void lm_adamw_apply_ref(float *param, float *grad, float *m, float *v, size_t n, const lm_adamw_consts *c,
                               int zero_grad) {
    for (size_t i = 0; i < n; i++) {
        float g = grad[i] * c->grad_scale;
        float p = param[i] * c->decay;
        float mi = m[i] + c->w1 * (g - m[i]);
        float vi = v[i] * c->b2 + c->w2 * g * g;
        float denom = sqrtf(vi) / c->bc2_sqrt + c->eps;
        param[i] = p - c->step_size * (mi / denom);
        m[i] = mi;
        v[i] = vi;
        if (zero_grad) grad[i] = 0.0f;
    }
}

void lm_adamw_update_ref(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                         float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale) {
    lm_adamw_consts c = lm_adamw_prepare(lr, beta1, beta2, eps, weight_decay, step, grad_scale);
    lm_adamw_apply_ref(param, (float *)grad, m, v, n, &c, 0); /* zero_grad 0: grad is only read */
}

double lm_sum_squares_ref(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

void lm_scale_ref(float *x, float s, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void lm_adamw_apply(float *param, float *grad, float *m, float *v, size_t n, const lm_adamw_consts *c, int zero_grad) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: lm_adamw_apply_avx512(param, grad, m, v, n, c, zero_grad); break;
    case LM_SIMD_AVX2: lm_adamw_apply_avx2(param, grad, m, v, n, c, zero_grad); break;
    default: lm_adamw_apply_ref(param, grad, m, v, n, c, zero_grad); break;
    }
}

void lm_adamw_update_scaled(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                            float beta1, float beta2, float eps, float weight_decay, int step, float grad_scale) {
    lm_adamw_consts c = lm_adamw_prepare(lr, beta1, beta2, eps, weight_decay, step, grad_scale);
    lm_adamw_apply(param, (float *)grad, m, v, n, &c, 0); /* zero_grad 0: grad is only read */
}

void lm_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, float lr,
                     float beta1, float beta2, float eps, float weight_decay, int step) {
    lm_adamw_update_scaled(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, step, 1.0f);
}

double lm_sum_squares(const float *x, size_t n) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: return lm_sum_squares_avx512(x, n);
    case LM_SIMD_AVX2: return lm_sum_squares_avx2(x, n);
    default: return lm_sum_squares_ref(x, n);
    }
}

double lm_sum_squares_serial(const float *x, size_t n) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: return lm_sum_squares_serial_avx512(x, n);
    case LM_SIMD_AVX2: return lm_sum_squares_serial_avx2(x, n);
    default: return lm_sum_squares_ref(x, n);
    }
}

void lm_scale(float *x, float s, size_t n) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: lm_scale_avx512(x, s, n); break;
    case LM_SIMD_AVX2: lm_scale_avx2(x, s, n); break;
    default: lm_scale_ref(x, s, n); break;
    }
}

void lm_zero(float *x, size_t n) {
    enum { CHUNK = 1 << 16 }; /* 256 KiB of floats per task */
    size_t chunks = (n + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (chunks > 1)
    for (size_t c = 0; c < chunks; c++) {
        size_t i = c * CHUNK, e = i + CHUNK < n ? i + CHUNK : n;
        memset(x + i, 0, (e - i) * sizeof *x);
    }
}

/* Elementwise kernels: GELU (tanh and erf forms), SwiGLU, add, accumulate. */
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"

#include <math.h>

#define GELU_K 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_C 0.044715

/* ---- references (computed in double, rounded once) ---- */
void lm_gelu_tanh_forward_ref(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + tanh(GELU_K * (x + GELU_C * x * x * x))));
    }
}

void lm_gelu_tanh_backward_ref(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double t = tanh(GELU_K * (x + GELU_C * x * x * x));
        double sech2 = 1.0 - t * t;
        double g = 0.5 * (1.0 + t) + 0.5 * x * sech2 * GELU_K * (1.0 + 3.0 * GELU_C * x * x);
        dinp[i] = (float)(g * dout[i]);
    }
}

void lm_gelu_tanh_forward_deriv_ref(float *out, float *deriv, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double t = tanh(GELU_K * (x + GELU_C * x * x * x));
        out[i] = (float)(0.5 * x * (1.0 + t));
        deriv[i] = (float)(0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * x * x));
    }
}

void lm_gelu_erf_forward_ref(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x * M_SQRT1_2)));
    }
}

void lm_gelu_erf_backward_ref(float *dinp, const float *inp, const float *dout, size_t n) {
    const double inv_sqrt_2pi = 0.3989422804014327;
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        double g = 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) * inv_sqrt_2pi;
        dinp[i] = (float)(g * dout[i]);
    }
}

void lm_swiglu_forward_ref(float *out, const float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * up[i]);
    }
}

void lm_swiglu_backward_ref(float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double g = gate[i], s = 1.0 / (1.0 + exp(-g));
        if (dgate) dgate[i] += (float)((double)dout[i] * up[i] * s * (1.0 + g * (1.0 - s)));
        if (dup) dup[i] += (float)((double)dout[i] * g * s);
    }
}

void lm_add_ref(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void lm_accumulate_ref(float *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] += x[i];
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

void lm_gelu_tanh_forward(float *out, const float *inp, size_t n) { DISPATCH(lm_gelu_tanh_forward, out, inp, n); }
void lm_gelu_tanh_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    DISPATCH(lm_gelu_tanh_backward, dinp, inp, dout, n);
}
void lm_gelu_tanh_forward_deriv(float *out, float *deriv, const float *inp, size_t n) {
    DISPATCH(lm_gelu_tanh_forward_deriv, out, deriv, inp, n);
}
void lm_gelu_erf_forward(float *out, const float *inp, size_t n) { DISPATCH(lm_gelu_erf_forward, out, inp, n); }
void lm_gelu_erf_backward(float *dinp, const float *inp, const float *dout, size_t n) {
    DISPATCH(lm_gelu_erf_backward, dinp, inp, dout, n);
}
void lm_swiglu_forward(float *out, const float *gate, const float *up, size_t n) {
    DISPATCH(lm_swiglu_forward, out, gate, up, n);
}
void lm_swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                        size_t n) {
    DISPATCH(lm_swiglu_backward, dgate, dup, dout, gate, up, n);
}
void lm_add(float *out, const float *a, const float *b, size_t n) { DISPATCH(lm_add, out, a, b, n); }
void lm_accumulate(float *acc, const float *x, size_t n) { DISPATCH(lm_accumulate, acc, x, n); }

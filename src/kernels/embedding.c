/* Token + position embedding lookup and its scatter-add backward. */
#include "kernels/kernels_ref.h"

void lm_embedding_forward_ref(float *out, const int32_t *ids, const int32_t *pos, const float *wte,
                              const float *wpe, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *t = wte + (size_t)ids[n] * C;
        const float *p = wpe ? wpe + (size_t)pos[n] * C : NULL;
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = t[c] + (p ? p[c] : 0.0f);
    }
}

void lm_embedding_backward_ref(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                               const int32_t *pos, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        float *t = dwte + (size_t)ids[n] * C;
        for (int c = 0; c < C; c++) t[c] += d[c];
        if (dwpe) {
            float *p = dwpe + (size_t)pos[n] * C;
            for (int c = 0; c < C; c++) p[c] += d[c];
        }
    }
}

void lm_embedding_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte,
                          const float *wpe, int N, int C) {
    if (lm_simd_level() == LM_SIMD_SCALAR) {
        lm_embedding_forward_ref(out, ids, pos, wte, wpe, N, C);
        return;
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *t = wte + (size_t)ids[n] * C;
        float *o = out + (size_t)n * C;
        if (wpe) {
            const float *p = wpe + (size_t)pos[n] * C;
            for (int c = 0; c < C; c++) o[c] = t[c] + p[c];
        } else {
            for (int c = 0; c < C; c++) o[c] = t[c];
        }
    }
}

void lm_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids,
                           const int32_t *pos, int N, int C) {
    if (lm_simd_level() == LM_SIMD_SCALAR) {
        lm_embedding_backward_ref(dwte, dwpe, dout, ids, pos, N, C);
        return;
    }
    /* Rows of dwte repeat when ids repeat, so threads split the columns:
     * each owns a column range of every row (race-free, and the sum order
     * over n is the reference's). */
    const int CB = 64;
    int nb = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < nb; b++) {
        int c0 = b * CB, c1 = c0 + CB < C ? c0 + CB : C;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C;
            float *t = dwte + (size_t)ids[n] * C;
            for (int c = c0; c < c1; c++) t[c] += d[c];
            if (dwpe) {
                float *p = dwpe + (size_t)pos[n] * C;
                for (int c = c0; c < c1; c++) p[c] += d[c];
            }
        }
    }
}

/* Softmax cross-entropy with ignore index, fused forward + backward. */
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"

#include <math.h>

/* Rows whose target is outside [0, V) are ignored (negative targets are the
 * documented ignore index; larger ones would read out of bounds). */
int lm_cross_entropy_forward_backward_ref(float *losses, float *dlogits, const float *logits,
                                          const int32_t *targets, int N, int V, float grad_scale) {
    int count = 0;
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t < 0 || t >= V) {
            losses[n] = 0.0f;
            if (dx)
                for (int i = 0; i < V; i++) dx[i] = 0.0f;
            continue;
        }
        count++;
        double mx = -INFINITY;
        for (int i = 0; i < V; i++)
            if (x[i] > mx) mx = x[i];
        double sum = 0;
        for (int i = 0; i < V; i++) sum += exp((double)x[i] - mx);
        double lse = mx + log(sum);
        losses[n] = (float)(lse - x[t]);
        if (dx)
            for (int i = 0; i < V; i++) { /* dx may alias x: read before write */
                double p = exp((double)x[i] - lse);
                dx[i] = (float)((p - (i == t ? 1.0 : 0.0)) * grad_scale);
            }
    }
    return count;
}

int lm_cross_entropy_forward_backward(float *losses, float *dlogits, const float *logits,
                                      const int32_t *targets, int N, int V, float grad_scale) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512:
        return lm_cross_entropy_forward_backward_avx512(losses, dlogits, logits, targets, N, V, grad_scale);
    case LM_SIMD_AVX2:
        return lm_cross_entropy_forward_backward_avx2(losses, dlogits, logits, targets, N, V, grad_scale);
    default:
        return lm_cross_entropy_forward_backward_ref(losses, dlogits, logits, targets, N, V, grad_scale);
    }
}

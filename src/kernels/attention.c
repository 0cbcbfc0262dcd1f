/* Fused multi-head attention (causal / bidirectional, GQA, sliding window,
 * key mask), forward and backward, memory O(T). */
#include "kernels/dropout_hash.h"
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"

#include <math.h>

/* May query i attend to key j (same batch row b)? */
static inline int attn_allowed(const lm_attention_shape *s, int b, int i, int j) {
    if (s->causal && j > i) return 0;
    if (s->window > 0) {
        int d = i > j ? i - j : j - i;
        if (d >= s->window) return 0;
    }
    if (s->key_valid && !s->key_valid[(size_t)b * s->T + j]) return 0;
    return 1;
}

static inline size_t q_off(const lm_attention_shape *s, int b, int t, int h) {
    return ((size_t)b * s->T + t) * s->q_stride + (size_t)h * s->HS;
}
static inline size_t kv_off(const lm_attention_shape *s, int b, int t, int g) {
    return ((size_t)b * s->T + t) * s->kv_stride + (size_t)g * s->HS;
}
static inline size_t o_off(const lm_attention_shape *s, int b, int t, int h) {
    return ((size_t)b * s->T + t) * s->NH * s->HS + (size_t)h * s->HS;
}

/* The factor probability dropout puts on p(i, j): 1 when off, else 0 or
 * 1 / (1 - dropout). */
static inline double drop_factor(const lm_attention_shape *s, uint64_t base, int b, int h, int i, int j) {
    if (!(s->dropout > 0)) return 1.0;
    uint64_t idx = (((uint64_t)b * s->NH + h) * s->T + i) * s->T + j;
    return lm_drop_keep(base, idx, lm_drop_threshold(s->dropout)) ? 1.0f / (1.0f - s->dropout) : 0.0;
}

/* ---- reference: three passes over the keys per query row, O(1) memory ---- */
void lm_attention_forward_ref(float *out, float *lse, const float *q, const float *k, const float *v,
                              const lm_attention_shape *s) {
    const int T = s->T, HS = s->HS, group = s->NH / s->NKV;
    const uint64_t base = lm_drop_base(s->dropout_seed, s->dropout_stream);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++)
            for (int i = 0; i < T; i++) {
                const float *qi = q + q_off(s, b, i, h);
                float *oi = out + o_off(s, b, i, h);
                int g = h / group;
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    if (!attn_allowed(s, b, i, j)) continue;
                    const float *kj = k + kv_off(s, b, j, g);
                    double sc = 0;
                    for (int d = 0; d < HS; d++) sc += (double)qi[d] * kj[d];
                    sc *= s->scale;
                    if (sc > mx) mx = sc;
                }
                for (int d = 0; d < HS; d++) oi[d] = 0.0f;
                if (mx == -INFINITY) { /* no key to attend to */
                    lse[((size_t)b * s->NH + h) * T + i] = -INFINITY;
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < T; j++) {
                    if (!attn_allowed(s, b, i, j)) continue;
                    const float *kj = k + kv_off(s, b, j, g);
                    double sc = 0;
                    for (int d = 0; d < HS; d++) sc += (double)qi[d] * kj[d];
                    sum += exp(sc * s->scale - mx);
                }
                double l = mx + log(sum);
                for (int j = 0; j < T; j++) {
                    if (!attn_allowed(s, b, i, j)) continue;
                    const float *kj = k + kv_off(s, b, j, g);
                    const float *vj = v + kv_off(s, b, j, g);
                    double sc = 0;
                    for (int d = 0; d < HS; d++) sc += (double)qi[d] * kj[d];
                    float p = (float)(exp(sc * s->scale - l) * drop_factor(s, base, b, h, i, j));
                    for (int d = 0; d < HS; d++) oi[d] += p * vj[d];
                }
                lse[((size_t)b * s->NH + h) * T + i] = (float)l;
            }
}

void lm_attention_backward_ref(float *dq, float *dk, float *dv, const float *dout, const float *q,
                               const float *k, const float *v, const float *out, const float *lse,
                               const lm_attention_shape *s) {
    const int T = s->T, HS = s->HS, group = s->NH / s->NKV;
    const uint64_t base = lm_drop_base(s->dropout_seed, s->dropout_stream);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++)
            for (int i = 0; i < T; i++) {
                int g = h / group;
                const float *qi = q + q_off(s, b, i, h);
                const float *doi = dout + o_off(s, b, i, h), *oi = out + o_off(s, b, i, h);
                float *dqi = dq + q_off(s, b, i, h);
                double l = lse[((size_t)b * s->NH + h) * T + i];
                double D = 0; /* rowsum(dout * out) = sum_j p_j dp_j */
                for (int d = 0; d < HS; d++) D += (double)doi[d] * oi[d];
                for (int j = 0; j < T; j++) {
                    if (!attn_allowed(s, b, i, j)) continue;
                    const float *kj = k + kv_off(s, b, j, g), *vj = v + kv_off(s, b, j, g);
                    float *dkj = dk + kv_off(s, b, j, g), *dvj = dv + kv_off(s, b, j, g);
                    double sc = 0, dp = 0;
                    for (int d = 0; d < HS; d++) {
                        sc += (double)qi[d] * kj[d];
                        dp += (double)doi[d] * vj[d];
                    }
                    /* out = sum_j f_j p_j v_j (f: the dropout factor), so
                     * dv_j = f_j p_j dout, dp_j = f_j dout.v_j, and
                     * sum_j p_j dp_j is still dout.out = D. */
                    double p = exp(sc * s->scale - l), f = drop_factor(s, base, b, h, i, j);
                    double ds = p * (f * dp - D) * s->scale;
                    for (int d = 0; d < HS; d++) {
                        dvj[d] += (float)(f * p * doi[d]);
                        dqi[d] += (float)(ds * kj[d]);
                        dkj[d] += (float)(ds * qi[d]);
                    }
                }
            }
}

/* ---- dispatch ---- */
void lm_attention_forward(float *out, float *lse, const float *q, const float *k, const float *v,
                          const lm_attention_shape *s) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: lm_attention_forward_avx512(out, lse, q, k, v, s); break;
    case LM_SIMD_AVX2: lm_attention_forward_avx2(out, lse, q, k, v, s); break;
    default: lm_attention_forward_ref(out, lse, q, k, v, s); break;
    }
}

/* D_i = dout_i . out_i for every (batch, head, query). */
size_t lm_attention_backward_scratch(const lm_attention_shape *s) {
    return (size_t)s->B * s->NH * s->T;
}

void lm_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q,
                           const float *k, const float *v, const float *out, const float *lse,
                           const lm_attention_shape *s, float *scratch) {
    switch (lm_simd_level()) {
    case LM_SIMD_AVX512: lm_attention_backward_avx512(dq, dk, dv, dout, q, k, v, out, lse, s, scratch); break;
    case LM_SIMD_AVX2: lm_attention_backward_avx2(dq, dk, dv, dout, q, k, v, out, lse, s, scratch); break;
    default: lm_attention_backward_ref(dq, dk, dv, dout, q, k, v, out, lse, s); break;
    }
}

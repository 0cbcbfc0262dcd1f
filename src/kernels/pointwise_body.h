/* Vectorized bodies of the elementwise, normalization, loss and optimizer
 * kernels, written once over vec.h and compiled per ISA by
 * pointwise_avx512.c and pointwise_avx2.c (function names get LM_SFX). */
#include "kernels/kernels_ref.h"
#include "kernels/simd.h"
#include "kernels/vec.h"

#include <math.h>
#include <omp.h>

#define EW_CHUNK 16384   /* elements per OpenMP work item */
#define EW_PAR_MIN 65536 /* below this, one thread */

/* Runs BODY over [0, n) in vectors; inside BODY, LD(p) loads and ST(p, v)
 * stores LM_VW floats at p (fewer, zero-filled, in the tail) and `i` is the
 * index of the first lane. */
#define EW_LOOP(n, ...)                                                               \
    do {                                                                              \
        size_t n_ = (n), nch_ = (n_ + EW_CHUNK - 1) / EW_CHUNK;                       \
        if (n_ < EW_PAR_MIN) { /* no parallel region at all: a small call is cheap */ \
            EW_CHUNKS(__VA_ARGS__);                                                   \
            break;                                                                    \
        }                                                                             \
        _Pragma("omp parallel for schedule(static)")                                  \
        EW_CHUNKS(__VA_ARGS__);                                                       \
    } while (0)
/* EW_LOOP's loop over its nch_ chunks of n_ elements. */
#define EW_CHUNKS(...)                                                                \
        for (size_t c_ = 0; c_ < nch_; c_++) {                                        \
            size_t i = c_ * EW_CHUNK, e_ = i + EW_CHUNK < n_ ? i + EW_CHUNK : n_;     \
            for (; i + LM_VW <= e_; i += LM_VW) {                                     \
                const size_t k_ = LM_VW;                                              \
                const int full_ = 1;                                                  \
                (void)k_;                                                             \
                (void)full_;                                                          \
                __VA_ARGS__                                                           \
            }                                                                         \
            if (i < e_) {                                                             \
                const size_t k_ = e_ - i;                                             \
                const int full_ = 0;                                                  \
                (void)k_;                                                             \
                (void)full_;                                                          \
                __VA_ARGS__                                                           \
            }                                                                         \
        }
#define LD(p) (full_ ? vload(p) : vload_part((p), k_, 0.0f))
#define ST(p, v)                             \
    do {                                     \
        if (full_) vstore((p), (v));         \
        else vstore_part((p), (v), k_);      \
    } while (0)

/* ---- activations ---- */
#define GELU_K 0.7978845608028654f
#define GELU_C 0.044715f

/* gelu_tanh(x) = 0.5 x (1 + tanh(u)) = x * sigmoid(2u), u = k (x + c x^3):
 * the sigmoid form keeps full relative precision for negative x. */
void LM_SFX(lm_gelu_tanh_forward)(float *out, const float *inp, size_t n) {
    EW_LOOP(n, {
        vf x = LD(inp + i);
        vf e = vexp((x + GELU_C * x * x * x) * (-2.0f * GELU_K));
        ST(out + i, x / (1.0f + e));
    });
}

/* d/dx = s + 2 x s (1 - s) k (1 + 3 c x^2), s = sigmoid(2u), 1 - s = e s. */
#define GELU_TANH_DERIV(x, e, s) ((s) + (2.0f * GELU_K) * (x) * (s) * ((e) * (s)) * (1.0f + (3.0f * GELU_C) * (x) * (x)))

void LM_SFX(lm_gelu_tanh_backward)(float *dinp, const float *inp, const float *dout, size_t n) {
    EW_LOOP(n, {
        vf x = LD(inp + i);
        vf e = vexp((x + GELU_C * x * x * x) * (-2.0f * GELU_K));
        vf s = 1.0f / (1.0f + e);
        ST(dinp + i, GELU_TANH_DERIV(x, e, s) * LD(dout + i));
    });
}

/* The forward's values and the backward's factors from one exp. */
void LM_SFX(lm_gelu_tanh_forward_deriv)(float *out, float *deriv, const float *inp, size_t n) {
    EW_LOOP(n, {
        vf x = LD(inp + i);
        vf e = vexp((x + GELU_C * x * x * x) * (-2.0f * GELU_K));
        vf s = 1.0f / (1.0f + e);
        ST(out + i, x / (1.0f + e));
        ST(deriv + i, GELU_TANH_DERIV(x, e, s));
    });
}

/* 1 + erf(z) via erfc(|z|) = t exp(-z^2 + P(t)), t = 1/(1 + |z|/2)
 * (Numerical Recipes erfcc: relative error < 1.2e-7 everywhere), so the
 * result keeps its relative precision for negative z too. */
static inline vf one_plus_erf(vf z) {
    vf a = vabs(z);
    vf t = 1.0f / (1.0f + 0.5f * a);
    vf p = vset1(0.17087277f);
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    vf erfc_a = t * vexp(p - a * a);
    return vsel(z >= 0.0f, 2.0f - erfc_a, erfc_a);
}

void LM_SFX(lm_gelu_erf_forward)(float *out, const float *inp, size_t n) {
    EW_LOOP(n, {
        vf x = LD(inp + i);
        ST(out + i, 0.5f * x * one_plus_erf(x * 0.70710678118654752f));
    });
}

void LM_SFX(lm_gelu_erf_backward)(float *dinp, const float *inp, const float *dout, size_t n) {
    EW_LOOP(n, {
        vf x = LD(inp + i);
        vf g = 0.5f * one_plus_erf(x * 0.70710678118654752f) +
               x * vexp(-0.5f * x * x) * 0.3989422804014327f;
        ST(dinp + i, g * LD(dout + i));
    });
}

void LM_SFX(lm_swiglu_forward)(float *out, const float *gate, const float *up, size_t n) {
    EW_LOOP(n, {
        vf g = LD(gate + i);
        ST(out + i, g / (1.0f + vexp(-g)) * LD(up + i));
    });
}

void LM_SFX(lm_swiglu_backward)(float *dgate, float *dup, const float *dout, const float *gate,
                                const float *up, size_t n) {
    EW_LOOP(n, {
        vf g = LD(gate + i), d = LD(dout + i);
        vf e = vexp(-g), s = 1.0f / (1.0f + e);
        if (dgate) ST(dgate + i, LD(dgate + i) + d * LD(up + i) * s * (1.0f + g * (e * s)));
        if (dup) ST(dup + i, LD(dup + i) + d * g * s);
    });
}

void LM_SFX(lm_add)(float *out, const float *a, const float *b, size_t n) {
    EW_LOOP(n, { ST(out + i, LD(a + i) + LD(b + i)); });
}

void LM_SFX(lm_accumulate)(float *acc, const float *x, size_t n) {
    EW_LOOP(n, { ST(acc + i, LD(acc + i) + LD(x + i)); });
}

void LM_SFX(lm_scale)(float *x, float s, size_t n) {
    EW_LOOP(n, { ST(x + i, LD(x + i) * s); });
}

/* Sum of squares in double, on the calling thread. */
double LM_SFX(lm_sum_squares_serial)(const float *x, size_t n) {
    /* Four accumulators: one would wait on its own add every vector. */
    vd acc = {0}, acc1 = {0}, acc2 = {0}, acc3 = {0};
    size_t i = 0;
    for (; i + 4 * LM_VW <= n; i += 4 * LM_VW) {
        vd v0 = __builtin_convertvector(vload(x + i), vd), v1 = __builtin_convertvector(vload(x + i + LM_VW), vd);
        vd v2 = __builtin_convertvector(vload(x + i + 2 * LM_VW), vd), v3 = __builtin_convertvector(vload(x + i + 3 * LM_VW), vd);
        acc += v0 * v0;
        acc1 += v1 * v1;
        acc2 += v2 * v2;
        acc3 += v3 * v3;
    }
    for (; i + LM_VW <= n; i += LM_VW) {
        vd v = __builtin_convertvector(vload(x + i), vd);
        acc += v * v;
    }
    acc += acc1 + acc2 + acc3;
    double s = 0;
    for (int l = 0; l < LM_VW; l++) s += acc[l];
    for (; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* Sum of squares in double; the chunk partial sums are added in chunk
 * order, so the result does not depend on the thread count. */
double LM_SFX(lm_sum_squares)(const float *x, size_t n) {
    enum { PARTS = 64 };
    double part[PARTS];
    size_t per = (n + PARTS - 1) / PARTS;
    if (per < 4096) per = 4096;
#pragma omp parallel for schedule(static) if (n >= EW_PAR_MIN)
    for (int p = 0; p < PARTS; p++) {
        size_t i = (size_t)p * per, e = i + per < n ? i + per : n;
        part[p] = i < e ? LM_SFX(lm_sum_squares_serial)(x + i, e - i) : 0.0;
    }
    double s = 0;
    for (int p = 0; p < PARTS; p++) s += part[p];
    return s;
}

/* ---- AdamW: same per-element operations as lm_adamw_update_ref ---- */
void LM_SFX(lm_adamw_apply)(float *param, float *grad, float *m, float *v, size_t n,
                            const lm_adamw_consts *c, int zero_grad) {
    EW_LOOP(n, {
        vf g = LD(grad + i) * c->grad_scale, mi = LD(m + i), vi_ = LD(v + i);
        vf p = LD(param + i) * c->decay;
        mi = mi + c->w1 * (g - mi);
        vi_ = vi_ * c->b2 + c->w2 * g * g;
        vf denom = vsqrt(vi_) / c->bc2_sqrt + c->eps;
        ST(param + i, p - c->step_size * (mi / denom));
        ST(m + i, mi);
        ST(v + i, vi_);
        if (zero_grad) ST(grad + i, (vf){0});
    });
}

/* ---- normalization ---- */
#define ROW_PAR_MIN 16384 /* N*C below this: one thread */

/* Sum of f(x) over a row of C with vectors; tail lanes are zero-filled,
 * so f must map the fill 0 to 0 (callers use masks where it does not). */
static inline float row_sum(const float *x, int C) {
    vf acc = {0};
    int c = 0;
    for (; c + LM_VW <= C; c += LM_VW) acc += vload(x + c);
    if (c < C) acc += vload_part(x + c, C - c, 0.0f);
    return vhsum(acc);
}

void LM_SFX(lm_layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ROW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = row_sum(x, C) / C;
        vf acc = {0};
        int c = 0;
        for (; c + LM_VW <= C; c += LM_VW) {
            vf d = vload(x + c) - m;
            acc += d * d;
        }
        float var = vhsum(acc);
        for (; c < C; c++) var += (x[c] - m) * (x[c] - m);
        var /= C;
        float r = 1.0f / sqrtf(var + eps);
        for (c = 0; c + LM_VW <= C; c += LM_VW) {
            vf y = (vload(x + c) - m) * r * vload(weight + c);
            if (bias) y += vload(bias + c);
            vstore(o + c, y);
        }
        for (; c < C; c++) o[c] = (x[c] - m) * r * weight[c] + (bias ? bias[c] : 0.0f);
        mean[n] = m;
        rstd[n] = r;
    }
}

void LM_SFX(lm_rmsnorm_forward)(float *out, float *rstd, const float *inp, const float *weight, int N,
                                int C, float eps) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ROW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        vf acc = {0};
        int c = 0;
        for (; c + LM_VW <= C; c += LM_VW) {
            vf v = vload(x + c);
            acc += v * v;
        }
        float ss = vhsum(acc);
        for (; c < C; c++) ss += x[c] * x[c];
        float r = 1.0f / sqrtf(ss / C + eps);
        for (c = 0; c + LM_VW <= C; c += LM_VW) vstore(o + c, vload(x + c) * r * vload(weight + c));
        for (; c < C; c++) o[c] = x[c] * r * weight[c];
        rstd[n] = r;
    }
}

/* dinp for rows (parallel over rows). mean == NULL: RMSNorm. */
static void norm_backward_rows(float *dinp, const float *dout, const float *inp, const float *weight,
                               const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ROW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean ? mean[n] : 0.0f, r = rstd[n];
        vf a_dn = {0}, a_dnn = {0};
        int c = 0;
        for (; c + LM_VW <= C; c += LM_VW) {
            vf norm = (vload(x + c) - m) * r, dn = vload(weight + c) * vload(dy + c);
            a_dn += dn;
            a_dnn += dn * norm;
        }
        float s_dn = vhsum(a_dn), s_dnn = vhsum(a_dnn);
        for (int t = c; t < C; t++) {
            float norm = (x[t] - m) * r, dn = weight[t] * dy[t];
            s_dn += dn;
            s_dnn += dn * norm;
        }
        float mdn = mean ? s_dn / C : 0.0f, mdnn = s_dnn / C;
        for (c = 0; c + LM_VW <= C; c += LM_VW) {
            vf norm = (vload(x + c) - m) * r, dn = vload(weight + c) * vload(dy + c);
            vstore(dx + c, vload(dx + c) + (dn - mdn - norm * mdnn) * r);
        }
        for (; c < C; c++) {
            float norm = (x[c] - m) * r, dn = weight[c] * dy[c];
            dx[c] += (dn - mdn - norm * mdnn) * r;
        }
    }
}

/* dweight (+ dbias) as column sums over rows: threads own column blocks. */
#define COLB (4 * LM_VW)
static void norm_backward_cols(float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *mean, const float *rstd, int N, int C) {
    int nb = (C + COLB - 1) / COLB;
#pragma omp parallel for schedule(static) if ((size_t)N * C >= ROW_PAR_MIN)
    for (int b = 0; b < nb; b++) {
        int c0 = b * COLB, w = C - c0 < COLB ? C - c0 : COLB;
        vf aw[4] = {{0}}, ab[4] = {{0}};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C + c0, *dy = dout + (size_t)n * C + c0;
            float m = mean ? mean[n] : 0.0f, r = rstd[n];
            for (int v = 0; v < 4; v++) {
                int off = v * LM_VW, k = w - off;
                if (k <= 0) break;
                vf xv = k >= LM_VW ? vload(x + off) : vload_part(x + off, k, 0.0f);
                vf dv = k >= LM_VW ? vload(dy + off) : vload_part(dy + off, k, 0.0f);
                aw[v] += dv * ((xv - m) * r);
                ab[v] += dv;
            }
        }
        for (int v = 0; v < 4; v++) {
            int off = v * LM_VW;
            for (int l = 0; l < LM_VW && off + l < w; l++) {
                if (dweight) dweight[c0 + off + l] += aw[v][l];
                if (dbias) dbias[c0 + off + l] += ab[v][l];
            }
        }
    }
}

void LM_SFX(lm_layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int N, int C) {
    if (dinp) norm_backward_rows(dinp, dout, inp, weight, mean, rstd, N, C);
    if (dweight || dbias) norm_backward_cols(dweight, dbias, dout, inp, mean, rstd, N, C);
}

void LM_SFX(lm_rmsnorm_backward)(float *dinp, float *dweight, const float *dout, const float *inp,
                                 const float *weight, const float *rstd, int N, int C) {
    if (dinp) norm_backward_rows(dinp, dout, inp, weight, NULL, rstd, N, C);
    if (dweight) norm_backward_cols(dweight, NULL, dout, inp, NULL, rstd, N, C);
}

/* ---- cross-entropy: one row per work item ---- */
int LM_SFX(lm_cross_entropy_forward_backward)(float *losses, float *dlogits, const float *logits,
                                              const int32_t *targets, int N, int V, float grad_scale) {
    int count = 0;
    for (int n = 0; n < N; n++) count += targets[n] >= 0 && targets[n] < V;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)N * V >= ROW_PAR_MIN)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits ? dlogits + (size_t)n * V : NULL;
        int t = targets[n];
        if (t < 0 || t >= V) {
            losses[n] = 0.0f;
            if (dx) memset(dx, 0, (size_t)V * sizeof(float));
            continue;
        }
        vf m0 = vset1(-INFINITY), m1 = m0;
        int i = 0;
        for (; i + 2 * LM_VW <= V; i += 2 * LM_VW) {
            m0 = vmax(m0, vload(x + i));
            m1 = vmax(m1, vload(x + i + LM_VW));
        }
        for (; i + LM_VW <= V; i += LM_VW) m0 = vmax(m0, vload(x + i));
        float mx = vhmax(vmax(m0, m1));
        for (int j = i; j < V; j++) mx = x[j] > mx ? x[j] : mx;
        float xt = x[t];
        /* pass 2: e = exp(x - max), summed; with dlogits, e is kept there
         * (x[i] is read before dx[i] is written, so aliasing is fine) */
        vf s0 = {0}, s1 = {0};
        if (dx) {
            for (i = 0; i + 2 * LM_VW <= V; i += 2 * LM_VW) {
                vf e0 = vexp(vload(x + i) - mx), e1 = vexp(vload(x + i + LM_VW) - mx);
                vstore(dx + i, e0);
                vstore(dx + i + LM_VW, e1);
                s0 += e0;
                s1 += e1;
            }
            for (; i + LM_VW <= V; i += LM_VW) {
                vf e0 = vexp(vload(x + i) - mx);
                vstore(dx + i, e0);
                s0 += e0;
            }
        } else {
            for (i = 0; i + 2 * LM_VW <= V; i += 2 * LM_VW) {
                s0 += vexp(vload(x + i) - mx);
                s1 += vexp(vload(x + i + LM_VW) - mx);
            }
            for (; i + LM_VW <= V; i += LM_VW) s0 += vexp(vload(x + i) - mx);
        }
        int vend = i;
        double sum = (double)vhsum(s0) + vhsum(s1);
        for (; i < V; i++) {
            double e = exp((double)x[i] - mx);
            sum += e;
            if (dx) dx[i] = (float)e;
        }
        double lse = mx + log(sum);
        losses[n] = (float)(lse - xt);
        if (dx) { /* pass 3: p = e / sum, times grad_scale */
            float f = (float)(grad_scale / sum);
            for (i = 0; i < vend; i += LM_VW) vstore(dx + i, vload(dx + i) * f);
            for (; i < V; i++) dx[i] *= f;
            dx[t] = (float)((exp((double)xt - lse) - 1.0) * grad_scale);
        }
    }
    return count;
}

/* Scalar reference for the quantized types: quantize, dequantize, dot.
 * The SIMD kernels are tested against these; they are also the fallback
 * on CPUs without AVX2. */
#include <math.h>
#include <string.h>

#include "kernels/quant_blocks.h"

static inline int nearest_int(float f) { return (int)lrintf(f); }
static inline float h2f(uint16_t h) { return lm_f16_to_f32(h); }

/* max(m, |x|) by compare (a NaN x leaves m, as fmaxf does): fmaxf's NaN
 * rules keep a loop of it from vectorizing, and it is a library call. */
static inline float abs_max(float m, float x) {
    float a = fabsf(x);
    return a > m ? a : m;
}

/* ---------------- Q8_0 ---------------- */

void lm_quantize_row_q8_0(const float *x, void *vy, int k) {
    lm_block_q8_0 *y = vy;
    for (int b = 0; b < k / QK8_0; b++, x += QK8_0) {
        float amax = 0;
        for (int i = 0; i < QK8_0; i++) amax = abs_max(amax, x[i]);
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        y[b].d = lm_f32_to_f16(d);
        for (int i = 0; i < QK8_0; i++) y[b].qs[i] = (int8_t)nearest_int(x[i] * id);
    }
}

float lm_dot_q8_0_ref(const void *vw, const void *vx, int nb) {
    const lm_block_q8_0 *w = vw, *x = vx;
    float sum = 0;
    for (int b = 0; b < nb; b++) {
        int s = 0;
        for (int i = 0; i < QK8_0; i++) s += w[b].qs[i] * x[b].qs[i];
        sum += h2f(w[b].d) * h2f(x[b].d) * (float)s;
    }
    return sum;
}

/* ---------------- Q4_0 ---------------- */

void lm_quantize_row_q4_0(const float *x, void *vy, int k) {
    lm_block_q4_0 *y = vy;
    for (int b = 0; b < k / QK4_0; b++, x += QK4_0) {
        /* The signed extreme maps to -8, so the full 16 levels are used
         * on the side that needs them. */
        float amax = 0, max = 0;
        for (int i = 0; i < QK4_0; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
        float d = max / -8.f, id = d ? 1.f / d : 0.f;
        y[b].d = lm_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            int q0 = (int)(int8_t)(x[j] * id + 8.5f), q1 = (int)(int8_t)(x[j + 16] * id + 8.5f);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

float lm_dot_q4_0_ref(const void *vw, const void *vx, int nb) {
    const lm_block_q4_0 *w = vw;
    const lm_block_q8_0 *x = vx;
    float sum = 0;
    for (int b = 0; b < nb; b++) {
        int s = 0;
        for (int j = 0; j < 16; j++) {
            s += ((w[b].qs[j] & 0xF) - 8) * x[b].qs[j];
            s += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + 16];
        }
        sum += h2f(w[b].d) * h2f(x[b].d) * (float)s;
    }
    return sum;
}

/* ---------------- Q8_K (activations) ---------------- */

void lm_quantize_row_q8_k(const float *x, void *vy, int k) {
    lm_block_q8_k *y = vy;
    for (int b = 0; b < k / QK_K; b++, x += QK_K) {
        float amax = 0;
        for (int i = 0; i < QK_K; i++) amax = abs_max(amax, x[i]);
        float d = amax / 127.f, id = d ? 1.f / d : 0.f;
        y[b].d = d;
        for (int i = 0; i < QK_K; i++) y[b].qs[i] = (int8_t)nearest_int(x[i] * id);
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y[b].qs[g * 16 + i];
            y[b].bsums[g] = (int16_t)s;
        }
    }
}

/* ---------------- Q4_K ---------------- */

/* Fits x[0..n) ≈ scale * L - min with L in [0, nmax]: a small search over
 * the grid step followed by a least-squares refit of (scale, min) for each
 * candidate, keeping the one with the least squared error (the approach of
 * ggml's make_qkx2_quants, written independently). */
static float fit_affine(int n, int nmax, const float *x, float *the_min) {
    float mn = x[0], mx = x[0];
    for (int i = 1; i < n; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
    if (mn > 0) mn = 0;
    if (mx <= mn) {
        *the_min = -mn;
        return 0;
    }
    float best_scale = (mx - mn) / nmax, best_min = mn, best_err = INFINITY;
    uint8_t Laux[32];
    for (int step = -10; step <= 10; step++) {
        float iscale = (nmax + 0.1f * step) / (mx - mn);
        float sl = 0, sl2 = 0, sxl = 0, sx = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - mn));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sl += l, sl2 += (float)l * l, sxl += x[i] * l, sx += x[i];
        }
        float D = n * sl2 - sl * sl, scale, min;
        if (D > 0) {
            scale = (n * sxl - sx * sl) / D;
            min = (sl2 * sx - sl * sxl) / D;
        } else {
            scale = (mx - mn) / nmax, min = mn;
        }
        if (min > 0) min = 0, scale = sl2 > 0 ? sxl / sl2 : 0;
        float err = 0;
        for (int i = 0; i < n; i++) {
            float e = scale * Laux[i] + min - x[i];
            err += e * e;
        }
        if (err < best_err) best_err = err, best_scale = scale, best_min = min;
    }
    *the_min = -best_min;
    return best_scale;
}

void lm_quantize_row_q4_k(const float *x, void *vy, int k) {
    lm_block_q4_k *y = vy;
    for (int b = 0; b < k / QK_K; b++, x += QK_K) {
        uint8_t L[QK_K];
        float scales[8], mins[8], max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            scales[j] = fit_affine(32, 15, x + 32 * j, &mins[j]);
            max_scale = fmaxf(max_scale, scales[j]);
            max_min = fmaxf(max_min, mins[j]);
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0, inv_min = max_min > 0 ? 63.f / max_min : 0;
        memset(y[b].scales, 0, 12);
        for (int j = 0; j < 8; j++) {
            int ls = nearest_int(inv_scale * scales[j]), lmn = nearest_int(inv_min * mins[j]);
            ls = ls < 0 ? 0 : ls > 63 ? 63 : ls;
            lmn = lmn < 0 ? 0 : lmn > 63 ? 63 : lmn;
            if (j < 4) {
                y[b].scales[j] |= (uint8_t)ls;
                y[b].scales[j + 4] |= (uint8_t)lmn;
            } else {
                y[b].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lmn & 0xF) << 4));
                y[b].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[b].scales[j] |= (uint8_t)((lmn >> 4) << 6);
            }
        }
        y[b].d = lm_f32_to_f16(max_scale / 63.f);
        y[b].dmin = lm_f32_to_f16(max_min / 63.f);
        /* Requantize against the scales as stored (6-bit, f16 d). */
        float d = h2f(y[b].d), dmin = h2f(y[b].dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            lm_q4k_scale_min(j, y[b].scales, &sc, &m);
            float d1 = d * sc, dm = dmin * m;
            for (int i = 0; i < 32; i++) {
                int l = d1 ? nearest_int((x[32 * j + i] + dm) / d1) : 0;
                L[32 * j + i] = (uint8_t)(l < 0 ? 0 : l > 15 ? 15 : l);
            }
        }
        uint8_t *q = y[b].qs;
        for (int j = 0; j < QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

float lm_dot_q4_k_ref(const void *vw, const void *vx, int nb) {
    const lm_block_q4_k *w = vw;
    const lm_block_q8_k *x = vx;
    float sum = 0;
    for (int b = 0; b < nb; b++) {
        int sumi = 0, summ = 0;
        const uint8_t *q = w[b].qs;
        const int8_t *a = x[b].qs;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            lm_q4k_scale_min(j, w[b].scales, &sc, &m);
            const uint8_t *qj = q + 32 * (j / 2);
            int s = 0;
            for (int l = 0; l < 32; l++) s += ((j & 1) ? (qj[l] >> 4) : (qj[l] & 0xF)) * a[32 * j + l];
            sumi += sc * s;
            summ += m * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += x[b].d * (h2f(w[b].d) * (float)sumi - h2f(w[b].dmin) * (float)summ);
    }
    return sum;
}

/* ---------------- Q6_K ---------------- */

/* Unpacks the 6-bit quants of one Q6_K block to L[256] in [0, 63]. */
static void q6k_unpack(const lm_block_q6_k *b, int8_t *L) {
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32)
        for (int l = 0; l < 32; l++) {
            L[n + l] = (int8_t)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
            L[n + l + 32] = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
            L[n + l + 64] = (int8_t)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
            L[n + l + 96] = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
        }
}

/* Symmetric fit x ≈ scale * L, L in [-32, 31]: the signed extreme maps to
 * -32, then a few nearby grid steps are tried with a least-squares scale. */
static float fit_symmetric(int n, const float *x) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax == 0) return 0;
    float best = max / -32.f, best_err = INFINITY;
    for (int step = -6; step <= 6; step++) {
        float iscale = (-32.f + 0.25f * step) / max;
        float sxl = 0, sl2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            sxl += x[i] * l, sl2 += (float)l * l;
        }
        if (sl2 <= 0) continue;
        float scale = sxl / sl2, err = 0;
        for (int i = 0; i < n; i++) {
            int l = scale ? nearest_int(x[i] / scale) : 0;
            l = l < -32 ? -32 : l > 31 ? 31 : l;
            float e = scale * l - x[i];
            err += e * e;
        }
        if (err < best_err) best_err = err, best = scale;
    }
    return best;
}

void lm_quantize_row_q6_k(const float *x, void *vy, int k) {
    lm_block_q6_k *y = vy;
    for (int b = 0; b < k / QK_K; b++, x += QK_K) {
        float scales[16], max_scale = 0, amax = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_symmetric(16, x + 16 * g);
            if (fabsf(scales[g]) > amax) amax = fabsf(scales[g]), max_scale = scales[g];
        }
        uint8_t L[QK_K];
        if (amax == 0) {
            memset(y + b, 0, sizeof *y);
            memset(L, 32, sizeof L);
        } else {
            float iscale = -128.f / max_scale;
            y[b].d = lm_f32_to_f16(1.f / iscale);
            float d = h2f(y[b].d);
            for (int g = 0; g < 16; g++) {
                int s = nearest_int(iscale * scales[g]);
                y[b].scales[g] = (int8_t)(s > 127 ? 127 : s < -128 ? -128 : s);
                float ds = d * y[b].scales[g];
                for (int i = 0; i < 16; i++) {
                    int l = ds ? nearest_int(x[16 * g + i] / ds) : 0;
                    l = l < -32 ? -32 : l > 31 ? 31 : l;
                    L[16 * g + i] = (uint8_t)(l + 32);
                }
            }
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int n = 0; n < QK_K; n += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; l++) {
                uint8_t q1 = L[n + l], q2 = L[n + l + 32], q3 = L[n + l + 64], q4 = L[n + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
    }
}

float lm_dot_q6_k_ref(const void *vw, const void *vx, int nb) {
    const lm_block_q6_k *w = vw;
    const lm_block_q8_k *x = vx;
    float sum = 0;
    for (int b = 0; b < nb; b++) {
        int8_t L[QK_K];
        q6k_unpack(w + b, L);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += (L[16 * g + i] - 32) * x[b].qs[16 * g + i];
            sumi += w[b].scales[g] * s;
        }
        sum += h2f(w[b].d) * x[b].d * (float)sumi;
    }
    return sum;
}

/* ---------------- float rows ---------------- */

float lm_fdot_f32_ref(const void *vw, const float *x, int k) {
    const float *w = vw;
    float s = 0;
    for (int i = 0; i < k; i++) s += w[i] * x[i];
    return s;
}

float lm_fdot_f16_ref(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    float s = 0;
    for (int i = 0; i < k; i++) s += h2f(w[i]) * x[i];
    return s;
}

float lm_fdot_bf16_ref(const void *vw, const float *x, int k) {
    const uint16_t *w = vw;
    float s = 0;
    for (int i = 0; i < k; i++) s += lm_bf16_to_f32(w[i]) * x[i];
    return s;
}

/* ---------------- dequantize ---------------- */

void lm_dequantize_row(lm_qtype t, const void *vx, float *y, int k) {
    switch (t) {
    case LM_QT_F32: memcpy(y, vx, (size_t)k * sizeof(float)); return;
    case LM_QT_F16: {
        const uint16_t *x = vx;
        for (int i = 0; i < k; i++) y[i] = h2f(x[i]);
        return;
    }
    case LM_QT_BF16: {
        const uint16_t *x = vx;
        for (int i = 0; i < k; i++) y[i] = lm_bf16_to_f32(x[i]);
        return;
    }
    case LM_QT_Q8_0: {
        const lm_block_q8_0 *x = vx;
        for (int b = 0; b < k / QK8_0; b++) {
            float d = h2f(x[b].d);
            for (int i = 0; i < QK8_0; i++) *y++ = d * x[b].qs[i];
        }
        return;
    }
    case LM_QT_Q4_0: {
        const lm_block_q4_0 *x = vx;
        for (int b = 0; b < k / QK4_0; b++, y += QK4_0) {
            float d = h2f(x[b].d);
            for (int j = 0; j < 16; j++) {
                y[j] = d * ((x[b].qs[j] & 0xF) - 8);
                y[j + 16] = d * ((x[b].qs[j] >> 4) - 8);
            }
        }
        return;
    }
    case LM_QT_Q4_K: {
        const lm_block_q4_k *x = vx;
        for (int b = 0; b < k / QK_K; b++) {
            float d = h2f(x[b].d), dmin = h2f(x[b].dmin);
            const uint8_t *q = x[b].qs;
            for (int j = 0; j < 8; j += 2, q += 32) {
                uint8_t sc0, m0, sc1, m1;
                lm_q4k_scale_min(j, x[b].scales, &sc0, &m0);
                lm_q4k_scale_min(j + 1, x[b].scales, &sc1, &m1);
                for (int l = 0; l < 32; l++) *y++ = d * sc0 * (q[l] & 0xF) - dmin * m0;
                for (int l = 0; l < 32; l++) *y++ = d * sc1 * (q[l] >> 4) - dmin * m1;
            }
        }
        return;
    }
    case LM_QT_Q6_K: {
        const lm_block_q6_k *x = vx;
        for (int b = 0; b < k / QK_K; b++) {
            int8_t L[QK_K];
            q6k_unpack(x + b, L);
            float d = h2f(x[b].d);
            for (int i = 0; i < QK_K; i++) *y++ = d * x[b].scales[i / 16] * (L[i] - 32);
        }
        return;
    }
    case LM_QT_Q8_K: {
        const lm_block_q8_k *x = vx;
        for (int b = 0; b < k / QK_K; b++)
            for (int i = 0; i < QK_K; i++) *y++ = x[b].d * x[b].qs[i];
        return;
    }
    }
}

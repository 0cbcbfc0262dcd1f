/* Prefill matmul for Q8_0 / Q4_0 / Q4_K weights with AVX-512 VNNI integer
 * dot products: Y[n, rows] = X[n, K] · W[rows, K]^T.
 *
 * Why: dequantizing W to F32 and running SGEMM does 16 multiply-adds per
 * instruction and streams a F32 copy of W through memory; vpdpbusd does
 * 64 (8-bit) per instruction on a 4-8x smaller weight tile, so prefill
 * on quantized weights runs at integer rate.
 *
 * Every type becomes one form per 32-element block and row: unsigned
 * bytes u with w = a*u + c (Q8_0: u = q+128, a = d, c = -128d; Q4_0:
 * u = nibble, a = d, c = -8d; Q4_K: u = nibble, a = d*scale, c =
 * -dmin*min). Activations are quantized to int8 per 32 (scale dx, sum
 * of quants xs), so a block contributes dx*(a*sum(u*x) + c*xs).
 *
 * Packing: 16 rows at a time, per block 8 groups of 4 k's, each group 16
 * rows x 4 bytes = one zmm, which vpdpbusd multiplies with 4 activation
 * bytes broadcast to every lane. The micro-kernel holds 4 tokens x 32
 * rows of accumulators. Tasks are 32-row panels: each packs its rows once
 * (into a per-thread buffer) and runs every token against them. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant_blocks.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

#define QG_ROWS 32 /* rows per task: two 16-lane groups */
#define QG_TOK 4   /* tokens per micro-kernel */

int lm_qgemm_supported(lm_qtype t) { return t == LM_QT_Q8_0 || t == LM_QT_Q4_0 || t == LM_QT_Q4_K; }

/* Scratch for the activations: int8 quants padded to QG_TOK rows, then
 * per (token, block) dx and dx*xs. */
size_t lm_qgemm_scratch(int n, int K) {
    size_t np = (size_t)(n + QG_TOK - 1) / QG_TOK * QG_TOK, nb = (size_t)K / 32;
    return np * (size_t)K + np * nb * 2 * sizeof(float) + 128;
}

/* One row's block b as 32 unsigned bytes plus (a, c). */
static void unpack_block(lm_qtype t, const void *row, int b, uint8_t *u, float *a, float *c) {
    if (t == LM_QT_Q8_0) {
        const lm_block_q8_0 *x = (const lm_block_q8_0 *)row + b;
        float d = lm_f16_to_f32(x->d);
        for (int j = 0; j < 32; j++) u[j] = (uint8_t)(x->qs[j] + 128);
        *a = d, *c = -128.f * d;
    } else if (t == LM_QT_Q4_0) {
        const lm_block_q4_0 *x = (const lm_block_q4_0 *)row + b;
        float d = lm_f16_to_f32(x->d);
        for (int j = 0; j < 16; j++) u[j] = x->qs[j] & 0xF, u[j + 16] = x->qs[j] >> 4;
        *a = d, *c = -8.f * d;
    } else { /* Q4_K: block b is sub-block b % 8 of super-block b / 8 */
        const lm_block_q4_k *x = (const lm_block_q4_k *)row + b / 8;
        int sb = b % 8;
        uint8_t sc, m;
        lm_q4k_scale_min(sb, x->scales, &sc, &m);
        const uint8_t *q = x->qs + 32 * (sb / 2);
        for (int j = 0; j < 32; j++) u[j] = sb % 2 ? q[j] >> 4 : q[j] & 0xF;
        *a = lm_f16_to_f32(x->d) * sc, *c = -lm_f16_to_f32(x->dmin) * m;
    }
}

/* Packs rows [r0, r0 + 32) (zeros past `rows`) into dst: per 16-row
 * group, nb blocks of 512 quant bytes, then nb x 16 a's and c's. */
static void pack_panel(lm_qtype t, const char *W, size_t rb, int rows, int r0, int nb, uint8_t *dst) {
    size_t gq = (size_t)nb * 512, gbytes = gq + (size_t)nb * 16 * 2 * sizeof(float);
    for (int g = 0; g < 2; g++) {
        uint8_t *q = dst + g * gbytes;
        float *ac = (float *)(q + gq);
        for (int l = 0; l < 16; l++) {
            int r = r0 + 16 * g + l;
            for (int b = 0; b < nb; b++) {
                uint8_t u[32];
                float a = 0, c = 0;
                if (r < rows) unpack_block(t, W + (size_t)r * rb, b, u, &a, &c);
                else memset(u, 0, sizeof u);
                for (int kg = 0; kg < 8; kg++) memcpy(q + (size_t)b * 512 + kg * 64 + l * 4, u + 4 * kg, 4);
                ac[(size_t)b * 32 + l] = a;
                ac[(size_t)b * 32 + 16 + l] = c;
            }
        }
    }
}

size_t lm_qgemm_panel_bytes(int K) { return 2 * ((size_t)K / 32 * (512 + 32 * sizeof(float))); }

/* Quantizes n activation rows (padding to QG_TOK with zero rows), a
 * block of 32 in two vectors: the absolute max by vector max, the
 * rounding by the default (nearest-even) conversion, as lrintf rounds. */
AVX512_TARGET void lm_qgemm_quantize_x(const float *x, int n, int K, void *scratch) {
    int np = (n + QG_TOK - 1) / QG_TOK * QG_TOK, nb = K / 32;
    int8_t *xq = scratch;
    float *dx = (float *)((char *)scratch + (size_t)np * K), *xs = dx + (size_t)np * nb;
    for (int i = 0; i < np; i++)
        for (int b = 0; b < nb; b++) {
            int8_t *q = xq + (size_t)i * K + 32 * b;
            if (i >= n) {
                memset(q, 0, 32);
                dx[(size_t)i * nb + b] = xs[(size_t)i * nb + b] = 0.0f;
                continue;
            }
            const float *v = x + (size_t)i * K + 32 * b;
            __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
            /* |v| by clearing the sign; a NaN never wins the max, as in
             * the scalar compare this replaces */
            float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
            amax = amax > 0.0f ? amax : 0.0f;
            float d = amax / 127.f, id = d ? 1.f / d : 0.f;
            __m512 vid = _mm512_set1_ps(id);
            __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), q1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
            _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(q0));
            _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtsepi32_epi8(q1));
            int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
            dx[(size_t)i * nb + b] = d;
            xs[(size_t)i * nb + b] = d * (float)sum;
        }
}

/* Y[i, r0 .. r0+32) for tokens i in [0, n), from a packed panel. */
AVX512_TARGET void lm_qgemm_panel(const uint8_t *panel, const void *scratch, int n, int K, float *y, int ldy, int r0, int rows) {
    int np = (n + QG_TOK - 1) / QG_TOK * QG_TOK, nb = K / 32;
    const int8_t *xq = scratch;
    const float *dx = (const float *)((const char *)scratch + (size_t)np * K), *xs = dx + (size_t)np * nb;
    size_t gq = (size_t)nb * 512, gbytes = gq + (size_t)nb * 32 * sizeof(float);
    const uint8_t *q0 = panel, *q1 = panel + gbytes;
    const float *ac0 = (const float *)(q0 + gq), *ac1 = (const float *)(q1 + gq);
    int valid0 = rows - r0 >= 16 ? 16 : rows - r0, valid1 = rows - r0 - 16;
    valid1 = valid1 < 0 ? 0 : valid1 > 16 ? 16 : valid1;
    __mmask16 m0 = (__mmask16)((1u << valid0) - 1), m1 = (__mmask16)((1u << valid1) - 1);
    for (int i0 = 0; i0 < n; i0 += QG_TOK) {
        __m512 f[QG_TOK][2];
        for (int t = 0; t < QG_TOK; t++) f[t][0] = f[t][1] = _mm512_setzero_ps();
        for (int b = 0; b < nb; b++) {
            __m512i s[QG_TOK][2];
            for (int t = 0; t < QG_TOK; t++) s[t][0] = s[t][1] = _mm512_setzero_si512();
            const uint8_t *w0 = q0 + (size_t)b * 512, *w1 = q1 + (size_t)b * 512;
            for (int kg = 0; kg < 8; kg++) {
                __m512i a0 = _mm512_loadu_si512(w0 + 64 * kg), a1 = _mm512_loadu_si512(w1 + 64 * kg);
                for (int t = 0; t < QG_TOK; t++) {
                    int32_t xv;
                    memcpy(&xv, xq + (size_t)(i0 + t) * K + 32 * b + 4 * kg, 4);
                    __m512i xb = _mm512_set1_epi32(xv);
                    s[t][0] = _mm512_dpbusd_epi32(s[t][0], a0, xb);
                    s[t][1] = _mm512_dpbusd_epi32(s[t][1], a1, xb);
                }
            }
            __m512 a0 = _mm512_loadu_ps(ac0 + (size_t)b * 32), c0 = _mm512_loadu_ps(ac0 + (size_t)b * 32 + 16);
            __m512 a1 = _mm512_loadu_ps(ac1 + (size_t)b * 32), c1 = _mm512_loadu_ps(ac1 + (size_t)b * 32 + 16);
            for (int t = 0; t < QG_TOK; t++) {
                __m512 d = _mm512_set1_ps(dx[(size_t)(i0 + t) * nb + b]), e = _mm512_set1_ps(xs[(size_t)(i0 + t) * nb + b]);
                f[t][0] = _mm512_fmadd_ps(c0, e, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[t][0]), a0), d, f[t][0]));
                f[t][1] = _mm512_fmadd_ps(c1, e, _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s[t][1]), a1), d, f[t][1]));
            }
        }
        for (int t = 0; t < QG_TOK && i0 + t < n; t++) {
            float *yr = y + (size_t)(i0 + t) * ldy + r0;
            _mm512_mask_storeu_ps(yr, m0, f[t][0]);
            if (m1) _mm512_mask_storeu_ps(yr + 16, m1, f[t][1]);
        }
    }
}

typedef struct {
    lm_qtype t;
    const char *W;
    size_t rb;
    int rows, K, n;
    const void *xs;
    float *y;
} qgemm_job;

static void qgemm_task(void *ctx, int task) {
    const qgemm_job *j = ctx;
    /* The packed panel lives in a per-thread buffer that grows once. */
    static _Thread_local uint8_t *buf;
    static _Thread_local size_t cap;
    size_t need = lm_qgemm_panel_bytes(j->K);
    if (need > cap) {
        free(buf);
        buf = aligned_alloc(64, (need + 63) / 64 * 64);
        cap = buf ? need : 0;
    }
    int r0 = task * QG_ROWS;
    if (!buf) { /* out of memory: make the failure visible, not silent */
        for (int i = 0; i < j->n; i++)
            for (int r = r0; r < r0 + QG_ROWS && r < j->rows; r++) j->y[(size_t)i * j->rows + r] = NAN;
        return;
    }
    pack_panel(j->t, j->W, j->rb, j->rows, r0, j->K / 32, buf);
    lm_qgemm_panel(buf, j->xs, j->n, j->K, j->y, j->rows, r0, j->rows);
}

void lm_qgemm_avx512(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n, void *scratch) {
    lm_qgemm_quantize_x(x, n, K, scratch);
    qgemm_job j = {t, W, lm_qtype_row_bytes(t, K), rows, K, n, scratch, y};
    lm_parallel((rows + QG_ROWS - 1) / QG_ROWS, qgemm_task, &j);
}

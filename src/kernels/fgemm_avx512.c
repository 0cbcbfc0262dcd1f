/* Prefill matmul for F16 / BF16 weights with AVX-512: Y[n, rows] =
 * X[n, K] · W[rows, K]^T in F32 arithmetic.
 *
 * Why not dequantize + SGEMM: that writes an F32 copy of W to memory per
 * call and needs a team-wide barrier per tile, which on a shared machine
 * waits for descheduled threads. Here each pool task converts a 32-row
 * panel of W to F32, stored k-major, into a per-thread buffer (L2-sized)
 * and runs every token against it, 8 tokens x 32 rows per register tile.
 * The panel is built 16 rows x 16 k at a time through a register
 * transpose (a scalar scatter of each row into it took a fifth of an F16
 * prefill). */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#include "kernels/quant_blocks.h"

#define FG_ROWS 32

/* Called on any CPU: before the AVX-512 part of the file. */
int lm_fgemm_supported(lm_qtype t) { return t == LM_QT_F16 || t == LM_QT_BF16; }

/* From here on AVX-512 code (vec.h's vectors and transpose included). */
#include "kernels/isa_target.h"
LM_TARGET_BEGIN("avx512f,avx512bw,avx512vl,avx2,fma,f16c")
#define LM_VW 16
#include "kernels/vec.h"

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

/* 16 elements of an F16 or BF16 row as floats. */
AVX512_TARGET static inline __m512 load16(lm_qtype t, const uint16_t *src) {
    __m256i h = _mm256_loadu_si256((const __m256i *)src);
    if (t == LM_QT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

#define FG_TOK 8

/* y[i0+t][r0 .. r0+32) for up to 8 tokens from a k-major panel P[k][32]:
 * per k, two 16-row vectors of W times each token's x[k] broadcast, so
 * no horizontal sums are needed. */
AVX512_TARGET static void panel_tokens(const float *P, const float *const *x, int K, float *y, size_t ldy, int nt,
                                       __mmask16 m0, __mmask16 m1) {
    __m512 acc[FG_TOK][2];
    for (int t = 0; t < FG_TOK; t++) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 w0 = _mm512_load_ps(P + (size_t)k * 32), w1 = _mm512_load_ps(P + (size_t)k * 32 + 16);
        for (int t = 0; t < FG_TOK; t++) {
            __m512 xb = _mm512_set1_ps(x[t][k]);
            acc[t][0] = _mm512_fmadd_ps(xb, w0, acc[t][0]);
            acc[t][1] = _mm512_fmadd_ps(xb, w1, acc[t][1]);
        }
    }
    for (int t = 0; t < nt; t++) {
        _mm512_mask_storeu_ps(y + (size_t)t * ldy, m0, acc[t][0]);
        if (m1) _mm512_mask_storeu_ps(y + (size_t)t * ldy + 16, m1, acc[t][1]);
    }
}

typedef struct {
    lm_qtype t;
    const char *W;
    size_t rb;
    int rows, K, n;
    const float *x;
    float *y;
} fgemm_job;

static void fgemm_task(void *ctx, int task) {
    const fgemm_job *j = ctx;
    static _Thread_local float *panel;
    static _Thread_local size_t cap;
    /* k-major panel [K][32] */
    size_t need = (size_t)FG_ROWS * j->K * sizeof(float);
    if (need > cap) {
        free(panel);
        panel = aligned_alloc(64, (need + 63) / 64 * 64);
        cap = panel ? need : 0;
    }
    int r0 = task * FG_ROWS, nr = j->rows - r0 < FG_ROWS ? j->rows - r0 : FG_ROWS;
    if (!panel) { /* out of memory: visible, not silent */
        for (int i = 0; i < j->n; i++)
            for (int r = 0; r < nr; r++) j->y[(size_t)i * j->rows + r0 + r] = NAN;
        return;
    }
    int K16 = j->K / 16 * 16;
    for (int rb = 0; rb < FG_ROWS; rb += 16)
        for (int k0 = 0; k0 < K16; k0 += 16) {
            vf t[16];
            for (int i = 0; i < 16; i++)
                t[i] = rb + i < nr ? (vf)load16(j->t, (const uint16_t *)(j->W + (size_t)(r0 + rb + i) * j->rb) + k0)
                                   : vset1(0.0f);
            vtranspose(t);
            for (int kk = 0; kk < 16; kk++) vstore(panel + (size_t)(k0 + kk) * FG_ROWS + rb, t[kk]);
        }
    for (int r = 0; r < FG_ROWS; r++) /* the last K % 16 columns, one by one */
        for (int k = K16; k < j->K; k++) {
            float v = 0.0f;
            if (r < nr) {
                uint16_t h = ((const uint16_t *)(j->W + (size_t)(r0 + r) * j->rb))[k];
                v = j->t == LM_QT_F16 ? lm_f16_to_f32(h) : lm_bf16_to_f32(h);
            }
            panel[(size_t)k * FG_ROWS + r] = v;
        }
    int v0 = nr < 16 ? nr : 16, v1 = nr > 16 ? nr - 16 : 0;
    __mmask16 m0 = (__mmask16)((1u << v0) - 1), m1 = (__mmask16)((1u << v1) - 1);
    for (int i0 = 0; i0 < j->n; i0 += FG_TOK) {
        const float *xp[FG_TOK];
        for (int t = 0; t < FG_TOK; t++) xp[t] = j->x + (size_t)(i0 + t < j->n ? i0 + t : j->n - 1) * j->K;
        int nt = j->n - i0 < FG_TOK ? j->n - i0 : FG_TOK;
        panel_tokens(panel, xp, j->K, j->y + (size_t)i0 * j->rows + r0, (size_t)j->rows, nt, m0, m1);
    }
}

void lm_fgemm_avx512(float *y, const void *W, lm_qtype t, int rows, int K, const float *x, int n) {
    fgemm_job j = {t, W, (size_t)K * 2, rows, K, n, x, y};
    lm_parallel((rows + FG_ROWS - 1) / FG_ROWS, fgemm_task, &j);
}
LM_TARGET_END

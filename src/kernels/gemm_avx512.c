/* Own packed AVX-512 sgemm (BLIS-style): C[M,N] = alpha*op(A)op(B) + beta*C.
 *
 * Micro-kernel: a 12 x 32 tile of C in 24 zmm accumulators; per k it loads
 * two vectors of the packed B panel (32 columns) and broadcasts 12 values of
 * the packed A panel (12 rows) into 24 FMAs.
 * Blocking: KC = 512 (k; KC_TN = 128 for A^T), MB = 1536 (rows of packed A per block, L3),
 * NB = 480 (columns of packed B per block, L2); the 12 x KC A micro-panel
 * stays in L1 while the B micro-panels stream from L2.
 * Threads: C is split into a grid of rectangles, one per thread, each run
 * independently with its own packing buffers (no barriers).
 * Packing buffers are per OS thread (3 MiB), allocated on its first call
 * and freed when it exits (the kernels' no-allocation rule holds from the
 * second call on). */
#include "kernels/kernels_ref.h"

#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define MR 12
#define NR 32
#define KC 512
/* k block for A^T read in place (the weight-gradient GEMMs): 12 floats per
 * k, a row of A apart, so each k step touches its own cache line; 128 of
 * them (8 KiB) stay in L1 beside the streaming B panel, 512 do not
 * (tiny-preset step -2%, 124M even). */
#define KC_TN 128
#define MB 1536 /* multiple of MR */
#define NB 480  /* multiple of NR */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,fma")))

/* ---- per-thread packing buffers ----
 * Found through a pthread key (freed when the thread exits); a registry
 * keeps every live buffer reachable from a global, so leak checkers do not
 * flag the ones of threads still alive at exit (OpenMP's pool). */
typedef struct pack_bufs {
    float *a, *b;
    struct pack_bufs *prev, *next;
} pack_bufs;
static pack_bufs *g_bufs_head;
static pthread_mutex_t g_bufs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_key_t g_bufs_key;
static pthread_once_t g_bufs_once = PTHREAD_ONCE_INIT;
static int g_bufs_key_ok;

static void bufs_destroy(void *arg) {
    pack_bufs *p = arg;
    pthread_mutex_lock(&g_bufs_lock);
    if (p->prev) p->prev->next = p->next;
    else g_bufs_head = p->next;
    if (p->next) p->next->prev = p->prev;
    pthread_mutex_unlock(&g_bufs_lock);
    free(p->a);
    free(p->b);
    free(p);
}

static void bufs_key_init(void) { g_bufs_key_ok = pthread_key_create(&g_bufs_key, bufs_destroy) == 0; }

static pack_bufs *thread_bufs(void) {
    pthread_once(&g_bufs_once, bufs_key_init);
    if (!g_bufs_key_ok) return NULL;
    pack_bufs *p = pthread_getspecific(g_bufs_key);
    if (p) return p;
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->a = aligned_alloc(64, (size_t)MB * KC * sizeof(float));
    p->b = aligned_alloc(64, (size_t)NB * KC * sizeof(float));
    if (!p->a || !p->b) {
        free(p->a);
        free(p->b);
        free(p);
        return NULL;
    }
    pthread_mutex_lock(&g_bufs_lock);
    p->next = g_bufs_head;
    if (g_bufs_head) g_bufs_head->prev = p;
    g_bufs_head = p;
    pthread_mutex_unlock(&g_bufs_lock);
    if (pthread_setspecific(g_bufs_key, p) != 0) {
        bufs_destroy(p);
        return NULL;
    }
    return p;
}

/* 16x16 transpose of r[0..15] in registers. */
AVX512 static inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4q + s] now holds, for rows 4q..4q+3, element 4*lane128 + s of each
     * 128-bit lane; combine 128-bit lanes across the four groups. */
    for (int s = 0; s < 4; s++) {
        __m512 a = r[s], b = r[4 + s], c = r[8 + s], d = r[12 + s];
        __m512 ab_lo = _mm512_shuffle_f32x4(a, b, 0x88); /* a.l0 a.l2 b.l0 b.l2 */
        __m512 ab_hi = _mm512_shuffle_f32x4(a, b, 0xdd); /* a.l1 a.l3 b.l1 b.l3 */
        __m512 cd_lo = _mm512_shuffle_f32x4(c, d, 0x88);
        __m512 cd_hi = _mm512_shuffle_f32x4(c, d, 0xdd);
        t[s] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);      /* lane 0 of a,b,c,d */
        t[4 + s] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);  /* lane 1 */
        t[8 + s] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xdd);  /* lane 2 */
        t[12 + s] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xdd); /* lane 3 */
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* ---- packing ----
 * A block: rows [i0, i0+mc) x k [p0, p0+kc) of op(A) -> panels of MR rows,
 * each laid out [k][MR], zero-padded past mc. */
AVX512 static void pack_a(float *dst, const float *A, int lda, int trans_a, int i0, int mc, int p0, int kc) {
    for (int ir = 0; ir < mc; ir += MR) {
        int mr = mc - ir < MR ? mc - ir : MR;
        float *d = dst + (size_t)ir * kc;
        if (trans_a) { /* op(A)[i][k] = A[k][i]: MR contiguous floats per k */
            __mmask16 m = (__mmask16)((1u << mr) - 1);
            const float *s = A + (size_t)p0 * lda + i0 + ir;
            for (int k = 0; k < kc; k++) {
                __m512 v = _mm512_maskz_loadu_ps(m, s + (size_t)k * lda);
                _mm512_mask_storeu_ps(d + (size_t)k * MR, 0x0fff, v);
            }
        } else { /* op(A)[i][k] = A[i][k]: gather one k across MR rows */
            const float *s = A + (size_t)(i0 + ir) * lda + p0;
            __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 0, 0, 0),
                                             _mm512_set1_epi32(lda));
            __mmask16 m = (__mmask16)((1u << mr) - 1);
            int k = 0;
            /* 16 k at a time: mr row loads, an in-register transpose, and
             * 16 stores of MR lanes (each overlapping the next: ascending) */
            for (; k + 16 <= kc; k += 16) {
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = i < mr ? _mm512_loadu_ps(s + (size_t)i * lda + k) : _mm512_setzero_ps();
                transpose16(r);
                for (int kk = 0; kk < 16; kk++) _mm512_mask_storeu_ps(d + (size_t)(k + kk) * MR, 0x0fff, r[kk]);
            }
            for (; k < kc; k++) {
                __m512 v = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, s + k, 4);
                _mm512_mask_storeu_ps(d + (size_t)k * MR, 0x0fff, v);
            }
        }
    }
}

/* Mask of the first n lanes of a vector (n clamped to 0..16). */
static inline __mmask16 lane_mask(int n) { return (__mmask16)(n >= 16 ? 0xffff : n > 0 ? (1u << n) - 1 : 0); }

/* B block: k [p0, p0+kc) x columns [j0, j0+nc) of op(B) -> panels of NR
 * columns, each laid out [k][NR], zero-padded past nc. colsum (NULL: none;
 * only without trans_b) gets each column's values added in row order. */
AVX512 static void pack_b(float *dst, const float *B, int ldb, int trans_b, int j0, int nc, int p0, int kc,
                          float *colsum) {
    if (!trans_b) {
        /* op(B)[k][j] = B[k][j]: row by row, so the reads stream through
         * memory in order (the weights come from DRAM; the hardware
         * prefetcher follows a row, not a column of 128-byte pieces). */
        const float *s = B + (size_t)p0 * ldb + j0;
        for (int k = 0; k < kc; k++) {
            const float *row = s + (size_t)k * ldb;
            for (int jr = 0; jr < nc; jr += NR) {
                int nr = nc - jr < NR ? nc - jr : NR;
                __mmask16 m0 = lane_mask(nr), m1 = lane_mask(nr - 16);
                float *d = dst + (size_t)jr * kc + (size_t)k * NR;
                __m512 v0 = _mm512_maskz_loadu_ps(m0, row + jr), v1 = _mm512_maskz_loadu_ps(m1, row + jr + 16);
                _mm512_store_ps(d, v0);
                _mm512_store_ps(d + 16, v1);
                if (colsum) {
                    _mm512_mask_storeu_ps(colsum + jr, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, colsum + jr), v0));
                    _mm512_mask_storeu_ps(colsum + jr + 16, m1,
                                          _mm512_add_ps(_mm512_maskz_loadu_ps(m1, colsum + jr + 16), v1));
                }
            }
        }
        return;
    }
    for (int jr = 0; jr < nc; jr += NR) {
        int nr = nc - jr < NR ? nc - jr : NR;
        float *d = dst + (size_t)jr * kc;
        { /* op(B)[k][j] = B[j][k]: transpose 16x16 blocks */
            const float *s = B + (size_t)(j0 + jr) * ldb + p0;
            for (int half = 0; half < 2; half++) {
                int cols = nr - half * 16;
                if (cols > 16) cols = 16;
                const float *sh = s + (size_t)half * 16 * ldb;
                float *dh = d + half * 16;
                if (cols <= 0) {
                    for (int k = 0; k < kc; k++) _mm512_store_ps(dh + (size_t)k * NR, _mm512_setzero_ps());
                    continue;
                }
                int k = 0;
                for (; k + 16 <= kc; k += 16) {
                    __m512 r[16];
                    for (int c = 0; c < 16; c++)
                        r[c] = c < cols ? _mm512_loadu_ps(sh + (size_t)c * ldb + k) : _mm512_setzero_ps();
                    transpose16(r);
                    for (int kk = 0; kk < 16; kk++) _mm512_store_ps(dh + (size_t)(k + kk) * NR, r[kk]);
                }
                if (k < kc) {
                    __mmask16 mk = (__mmask16)((1u << (kc - k)) - 1);
                    __m512 r[16];
                    for (int c = 0; c < 16; c++)
                        r[c] = c < cols ? _mm512_maskz_loadu_ps(mk, sh + (size_t)c * ldb + k) : _mm512_setzero_ps();
                    transpose16(r);
                    for (int kk = 0; k + kk < kc; kk++) _mm512_store_ps(dh + (size_t)(k + kk) * NR, r[kk]);
                }
            }
        }
    }
}

/* ---- micro-kernel ----
 * C[0:mr, 0:nr] = alpha * (a_panel . b_panel) + beta * C (beta == 0: C is
 * not read) + bias[0:nr] on every row (bias NULL: none). */
#define ROW(i)                                                                   \
    if (i < rows) {                                                              \
        __m512 av = _mm512_set1_ps(a_rows ? a[(size_t)(i) * a_ks] : a[i]);                                        \
        c##i##0 = _mm512_fmadd_ps(av, b0, c##i##0);                              \
        c##i##1 = _mm512_fmadd_ps(av, b1, c##i##1);                              \
    }

#define STORE(i)                                                                 \
    do {                                                                         \
        if (i < mr) {                                                            \
            float *cr = C + (size_t)(i) * ldc;                                   \
            __m512 x0 = _mm512_mul_ps(c##i##0, va), x1 = _mm512_mul_ps(c##i##1, va); \
            if (beta != 0.0f) {                                                  \
                x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), x0);     \
                x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), x1); \
            }                                                                    \
            if (mul) {                                                           \
                const float *mr_ = mul + (size_t)(i) * ld_mul;                   \
                x0 = _mm512_mul_ps(x0, _mm512_maskz_loadu_ps(m0, mr_));          \
                x1 = _mm512_mul_ps(x1, _mm512_maskz_loadu_ps(m1, mr_ + 16));     \
            }                                                                    \
            if (bias) {                                                          \
                x0 = _mm512_add_ps(x0, bias0);                                   \
                x1 = _mm512_add_ps(x1, bias1);                                   \
            }                                                                    \
            if (addend) {                                                        \
                const float *ar = addend + (size_t)(i) * ld_add;                 \
                x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(m0, ar));           \
                x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(m1, ar + 16));      \
            }                                                                    \
            _mm512_mask_storeu_ps(cr, m0, x0);                                   \
            _mm512_mask_storeu_ps(cr + 16, m1, x1);                              \
            if (sq) {                                                            \
                sq_acc = _mm512_fmadd_ps(x0, x0, sq_acc);                        \
                sq_acc = _mm512_fmadd_ps(x1, x1, sq_acc);                        \
            }                                                                    \
        }                                                                        \
    } while (0)

/* sq (NULL: none) receives the sum of squares of the stored tile (lanes
 * past nr hold zeros: the B panel is zero-padded), for callers that want a
 * gradient's norm as it is written; mul (NULL: none; row stride ld_mul)
 * multiplies the tile before the bias, addend (NULL: none; row stride
 * ld_add) is added after it. */
/* `rows` (a constant in each caller below) is how many rows of the tile are
 * computed: an edge panel of at most 4 or 8 rows (M = 256 = 21 * 12 + 4)
 * does not pay for 12. The A panel is either k-major (a_rows 0: MR floats
 * per k, a_ks apart: MR when packed, lda for A^T read in place) or the rows
 * of a row-major A read in place (a_rows 1: row i at a + i * a_ks). */
AVX512 static inline __attribute__((always_inline)) void ukernel_rows(const int rows, const int a_rows, int kc,
                                                                      const float *restrict a,
                                                                      int a_ks, const float *restrict b, float *C,
                                                                      int ldc, int mr, int nr, float alpha,
                                                                      float beta, const float *bias, double *sq,
                                                                      const float *addend, int ld_add,
                                                                      const float *mul, int ld_mul) {
    __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
           c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00, c70 = c00,
           c71 = c00, c80 = c00, c81 = c00, c90 = c00, c91 = c00, c100 = c00, c101 = c00, c110 = c00,
           c111 = c00;
    for (int k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
        _mm_prefetch((const char *)(b + 8 * NR), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + 8 * NR + 16), _MM_HINT_T0);
        ROW(0); ROW(1); ROW(2); ROW(3); ROW(4); ROW(5);
        ROW(6); ROW(7); ROW(8); ROW(9); ROW(10); ROW(11);
        a += a_rows ? 1 : a_ks;
        b += NR;
    }
    __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xffff : (1u << nr) - 1);
    __mmask16 m1 = (__mmask16)(nr >= 32 ? 0xffff : nr > 16 ? (1u << (nr - 16)) - 1 : 0);
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    __m512 bias0 = _mm512_setzero_ps(), bias1 = bias0;
    if (bias) {
        bias0 = _mm512_maskz_loadu_ps(m0, bias);
        bias1 = _mm512_maskz_loadu_ps(m1, bias + 16);
    }
    __m512 sq_acc = _mm512_setzero_ps();
    STORE(0); STORE(1); STORE(2); STORE(3); STORE(4); STORE(5);
    STORE(6); STORE(7); STORE(8); STORE(9); STORE(10); STORE(11);
    if (sq) { /* the tile's sum in double: tiles add up over a whole gradient */
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(sq_acc));
        __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(sq_acc), 1)));
        *sq += _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
    }
}

#define UKERNEL(NAME, ROWS, A_ROWS)                                                                      \
    AVX512 static void NAME(int kc, const float *a, int a_ks, const float *b, float *C, int ldc, int mr, int nr, \
                            float alpha, float beta, const float *bias, double *sq, const float *addend,       \
                            int ld_add, const float *mul, int ld_mul) {                                       \
        ukernel_rows(ROWS, A_ROWS, kc, a, a_ks, b, C, ldc, mr, nr, alpha, beta, bias, sq, addend, ld_add, mul, \
                     ld_mul);                                                                                  \
    }
UKERNEL(ukernel12, 12, 0)
UKERNEL(ukernel8, 8, 0)
UKERNEL(ukernel4, 4, 0)
UKERNEL(ukernel12_rows, 12, 1)

/* One thread's rectangle C[m0:m1, n0:n1] with the extras of lm_sgemm_ex
 * (ex->sumsq ignored): sq (NULL: none) accumulates the sum of squares of
 * its final values, colsum (NULL: none; columns from n0) the column sums of
 * op(B) over all K, taken while packing B for its first row block. */
AVX512 static void gemm_region(pack_bufs *bufs, int ta, int tb, int m0, int m1, int n0, int n1, int K,
                               float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                               const lm_sgemm_extras *ex, float *C, int ldc, double *sq, float *colsum) {
    const float *bias = ex->bias;
    for (int mb = m0; mb < m1; mb += MB) {
        int mc = m1 - mb < MB ? m1 - mb : MB;
        int kcm = ta ? KC_TN : KC;
        for (int p0 = 0; p0 < K; p0 += kcm) {
            int kc = K - p0 < kcm ? K - p0 : kcm;
            float bk = p0 == 0 ? beta : 1.0f;
            /* the bias is added once: with the first k block, or with the
             * last when a mul must come before it */
            const float *biask = (ex->mul ? p0 + kc >= K : p0 == 0) ? bias : NULL;
            const float *addk = p0 + kc >= K ? ex->addend : NULL; /* once, onto the final sum */
            const float *mulk = p0 + kc >= K ? ex->mul : NULL;
            double *sqk = p0 + kc >= K ? sq : NULL;     /* C is final after the last k block */
            /* Full panels of A are read in place where that is cheap, and
             * only a ragged last panel is packed: always for a row-major A
             * (12 rows streamed along k), and for A^T with short rows (MR
             * contiguous floats per k, lda apart: longer rows put the k steps
             * on few L1 sets, and a 3 KiB stride already costs more than
             * packing). */
            int full = !ta || lda <= 512 ? mc / MR * MR : 0;
            if (full < mc) pack_a(bufs->a + (size_t)full * kc, A, lda, ta, mb + full, mc - full, p0, kc);
            for (int nb = n0; nb < n1; nb += NB) {
                int nc = n1 - nb < NB ? n1 - nb : NB;
                pack_b(bufs->b, B, ldb, tb, nb, nc, p0, kc, colsum && mb == m0 ? colsum + (nb - n0) : NULL);
                for (int ir = 0; ir < mc; ir += MR) {
                    const float *ap = bufs->a + (size_t)ir * kc;
                    int a_ks = MR;
                    int mr = mc - ir < MR ? mc - ir : MR;
                    void (*uk)(int, const float *, int, const float *, float *, int, int, int, float, float,
                               const float *, double *, const float *, int, const float *, int) =
                        mr <= 4 ? ukernel4 : mr <= 8 ? ukernel8 : ukernel12;
                    if (ir < full) {
                        ap = ta ? A + (size_t)p0 * lda + mb + ir : A + (size_t)(mb + ir) * lda + p0;
                        a_ks = lda;
                        uk = ta ? ukernel12 : ukernel12_rows;
                    }
                    for (int jr = 0; jr < nc; jr += NR) {
                        int nr = nc - jr < NR ? nc - jr : NR;
                        uk(kc, ap, a_ks, bufs->b + (size_t)jr * kc, C + (size_t)(mb + ir) * ldc + nb + jr, ldc, mr, nr,
                           alpha, bk, biask ? biask + nb + jr : NULL, sqk,
                           addk ? addk + (size_t)(mb + ir) * ex->ld_addend + nb + jr : NULL, ex->ld_addend,
                           mulk ? mulk + (size_t)(mb + ir) * ex->ld_mul + nb + jr : NULL, ex->ld_mul);
                    }
                }
            }
        }
    }
}

/* Split M x N over nt threads as a tm x tn grid of MR/NR-aligned blocks,
 * minimizing the largest block (plus a little for duplicated packing). */
static void choose_grid(int M, int N, int K, int nt, int *tm, int *tn) {
    int mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
    double best = 1e300;
    *tm = 1;
    *tn = 1;
    for (int a = 1; a <= nt; a++) {
        if (nt % a) continue;
        int b = nt / a;
        if (a > mp || b > np) continue;
        double rows = (double)((mp + a - 1) / a) * MR, cols = (double)((np + b - 1) / b) * NR;
        /* compute per thread, plus packing of its A rows and B columns */
        double cost = rows * cols * K + 8.0 * K * (rows + cols);
        if (cost < best) {
            best = cost;
            *tm = a;
            *tn = b;
        }
    }
}

static void sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc, const lm_sgemm_extras *ex) {
    if (M <= 0 || N <= 0) return;
    const float *bias = ex->bias;
    double *sumsq = ex->sumsq;
    /* Packing sums the columns of a B it does not transpose; a transposed
     * one is summed in a pass of its own. */
    float *colsum = ex->b_colsum;
    if (colsum && (trans_b || K <= 0 || alpha == 0.0f)) {
        if (K > 0) lm_sgemm_b_column_sums(trans_b, K, N, B, ldb, colsum);
        colsum = NULL;
    }
    if (K <= 0 || alpha == 0.0f) {
        lm_sgemm_extras_pass(M, N, beta, ex, C, ldc);
        if (sumsq) *sumsq += lm_sgemm_c_sum_squares(M, N, C, ldc);
        return;
    }
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (nt > 64) nt = 64; /* part[] below */
    double flops = 2.0 * M * N * K;
    if (flops < 4e6) nt = 1; /* not worth waking threads */
    int tm, tn;
    choose_grid(M, N, K, nt, &tm, &tn);
    nt = tm * tn;
    int mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;
    double part[64] = {0}; /* per thread, added in thread order: deterministic */
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num();
        int ti = t / tn, tj = t % tn;
        int pm0 = (int)((long)mp * ti / tm), pm1 = (int)((long)mp * (ti + 1) / tm);
        int pn0 = (int)((long)np * tj / tn), pn1 = (int)((long)np * (tj + 1) / tn);
        int m0 = pm0 * MR, m1 = pm1 * MR < M ? pm1 * MR : M;
        int n0 = pn0 * NR, n1 = pn1 * NR < N ? pn1 * NR : N;
        pack_bufs *bufs = thread_bufs();
        if (m0 < m1 && n0 < n1) {
            /* the first row of the grid sums B's columns, each once */
            float *cs = colsum && ti == 0 ? colsum + n0 : NULL;
            if (bufs)
                gemm_region(bufs, trans_a, trans_b, m0, m1, n0, n1, K, alpha, A, lda, B, ldb, beta, ex, C, ldc,
                            sumsq ? &part[t] : NULL, cs);
            else { /* no memory for packing buffers: OpenBLAS does this rectangle */
                float *Cr = C + (size_t)m0 * ldc + n0;
                lm_sgemm_openblas(trans_a, trans_b, m1 - m0, n1 - n0, K, alpha,
                                  trans_a ? A + m0 : A + (size_t)m0 * lda, lda,
                                  trans_b ? B + (size_t)n0 * ldb : B + n0, ldb, beta, Cr, ldc);
                /* then * mul + bias + addend, in the order the kernel applies them */
                lm_sgemm_extras rest = {.bias = bias ? bias + n0 : NULL,
                                        .addend = ex->addend ? ex->addend + (size_t)m0 * ex->ld_addend + n0 : NULL,
                                        .ld_addend = ex->ld_addend,
                                        .mul = ex->mul ? ex->mul + (size_t)m0 * ex->ld_mul + n0 : NULL,
                                        .ld_mul = ex->ld_mul};
                lm_sgemm_extras_pass(m1 - m0, n1 - n0, 1.0f, &rest, Cr, ldc);
                if (sumsq) part[t] = lm_sgemm_c_sum_squares(m1 - m0, n1 - n0, Cr, ldc);
                if (cs) lm_sgemm_b_column_sums(trans_b, K, n1 - n0, trans_b ? B + (size_t)n0 * ldb : B + n0, ldb, cs);
            }
        }
    }
    if (sumsq)
        for (int t = 0; t < nt; t++) *sumsq += part[t];
}

void lm_sgemm_avx512(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    static const lm_sgemm_extras none = {0};
    sgemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &none);
}

void lm_sgemm_avx512_ex(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, const lm_sgemm_extras *ex) {
    sgemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ex);
}

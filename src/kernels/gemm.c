/* GEMM dispatch (own AVX-512 sgemm or OpenBLAS) and the linear layer built
 * on it. */
#include "kernels/kernels_ref.h"

#include <cblas.h>
#include <omp.h>
#include <stdatomic.h>
#include <string.h>

/* ---- reference ---- */
void lm_sgemm_ref(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                  const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0;
            for (int p = 0; p < K; p++) {
                float a = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float b = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)a * b;
            }
            float *c = &C[(size_t)i * ldc + j];
            /* beta == 0 overwrites C without reading it (BLAS semantics). */
            *c = beta == 0.0f ? (float)(alpha * acc) : (float)(alpha * acc + (double)beta * *c);
        }
    }
}

/* ---- OpenBLAS ---- */
static atomic_int g_blas_threads;

void lm_sgemm_openblas(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A,
                       int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    /* Keep OpenBLAS's pool in step with lm_set_threads(). */
    int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (atomic_exchange(&g_blas_threads, nt) != nt) openblas_set_num_threads(nt);
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- dispatch ---- */
void lm_sgemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (lm_simd_level() == LM_SIMD_SCALAR) {
        lm_sgemm_ref(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    /* The own AVX-512 kernel wherever it runs: Debian's OpenBLAS 0.3.21
     * picks its SSE3 ("Prescott") kernels on recent Xeons (about 33 GFLOP/s
     * per core against 150 here, see bench/bench_gemm.c); OpenBLAS stays the
     * path for CPUs without AVX-512. */
    if (lm_simd_level() == LM_SIMD_AVX512) {
        lm_sgemm_avx512(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    lm_sgemm_openblas(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void lm_sgemm_ex(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc, const lm_sgemm_extras *ex) {
    if (M <= 0 || N <= 0) return;
    if (lm_simd_level() == LM_SIMD_AVX512) {
        lm_sgemm_avx512_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, ex);
        return;
    }
    /* Elsewhere each extra is a pass of its own, in the order the fused
     * store applies them: C = (alpha AB + beta C) * mul + bias + addend. */
    lm_sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    lm_sgemm_extras_pass(M, N, 1.0f, ex, C, ldc);
    if (ex->sumsq) *ex->sumsq += lm_sgemm_c_sum_squares(M, N, C, ldc);
    if (ex->b_colsum) lm_sgemm_b_column_sums(trans_b, K, N, B, ldb, ex->b_colsum);
}

void lm_sgemm_extras_pass(int M, int N, float beta, const lm_sgemm_extras *ex, float *C, int ldc) {
    if (beta == 1.0f && !ex->mul && !ex->bias && !ex->addend) return;
#pragma omp parallel for schedule(static) if ((long)M * N >= 65536)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
        if (ex->mul) {
            const float *r = ex->mul + (size_t)i * ex->ld_mul;
            for (int j = 0; j < N; j++) c[j] *= r[j];
        }
        if (ex->bias)
            for (int j = 0; j < N; j++) c[j] += ex->bias[j];
        if (ex->addend) {
            const float *r = ex->addend + (size_t)i * ex->ld_addend;
            for (int j = 0; j < N; j++) c[j] += r[j];
        }
    }
}

double lm_sgemm_c_sum_squares(int M, int N, const float *C, int ldc) {
    double s = 0;
    for (int i = 0; i < M; i++) s += lm_sum_squares(C + (size_t)i * ldc, (size_t)N);
    return s;
}

void lm_sgemm_b_column_sums(int trans_b, int K, int N, const float *B, int ldb, float *colsum) {
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) colsum[j] += trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
}

void lm_sgemm_sumsq(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                    const float *B, int ldb, float beta, float *C, int ldc, double *sumsq) {
    lm_sgemm_extras ex = {.sumsq = sumsq};
    lm_sgemm_ex(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, &ex);
}

void lm_sgemm_bias(int trans_a, int trans_b, int M, int N, int K, const float *A, int lda, const float *B,
                   int ldb, const float *bias, float *C, int ldc) {
    lm_sgemm_extras ex = {.bias = bias};
    lm_sgemm_ex(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, &ex);
}

/* ---- linear layer ---- */
void lm_linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias, int N,
                           int IC, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int i = 0; i < IC; i++) acc += (double)inp[(size_t)n * IC + i] * weight[(size_t)o * IC + i];
            out[(size_t)n * OC + o] = (float)acc;
        }
}

void lm_linear_backward_ref(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC) {
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double acc = 0;
                for (int o = 0; o < OC; o++) acc += (double)dout[(size_t)n * OC + o] * weight[(size_t)o * IC + i];
                dinp[(size_t)n * IC + i] += (float)acc;
            }
    if (dweight)
        for (int o = 0; o < OC; o++)
            for (int i = 0; i < IC; i++) {
                double acc = 0;
                for (int n = 0; n < N; n++) acc += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * IC + i];
                dweight[(size_t)o * IC + i] += (float)acc;
            }
    if (dbias)
        for (int o = 0; o < OC; o++) {
            double acc = 0;
            for (int n = 0; n < N; n++) acc += dout[(size_t)n * OC + o];
            dbias[o] += (float)acc;
        }
}

void lm_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int N,
                       int IC, int OC) {
    if (lm_simd_level() == LM_SIMD_SCALAR) {
        lm_linear_forward_ref(out, inp, weight, bias, N, IC, OC);
        return;
    }
    lm_sgemm_bias(0, 1, N, OC, IC, inp, IC, weight, IC, bias, out, OC);
}

void lm_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int N, int IC, int OC) {
    lm_linear_backward_sumsq(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, NULL);
}

void lm_linear_backward_sumsq(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                              const float *weight, int N, int IC, int OC, double *dweight_sumsq) {
    if (lm_simd_level() == LM_SIMD_SCALAR) {
        lm_linear_backward_ref(dinp, dweight, dbias, dout, inp, weight, N, IC, OC);
        if (dweight && dweight_sumsq) *dweight_sumsq += lm_sum_squares(dweight, (size_t)OC * IC);
        return;
    }
    if (dinp) lm_sgemm(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, 1.0f, dinp, IC);
    if (dweight) lm_sgemm_sumsq(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC, dweight_sumsq);
    if (dbias) {
        /* Column sums, parallel over column blocks (no races, deterministic). */
        const int CB = 64;
        int nb = (OC + CB - 1) / CB;
#pragma omp parallel for schedule(static)
        for (int b = 0; b < nb; b++) {
            int o0 = b * CB, o1 = o0 + CB < OC ? o0 + CB : OC;
            float acc[64];
            for (int o = o0; o < o1; o++) acc[o - o0] = 0.0f;
            for (int n = 0; n < N; n++) {
                const float *row = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) acc[o - o0] += row[o];
            }
            for (int o = o0; o < o1; o++) dbias[o] += acc[o - o0];
        }
    }
}

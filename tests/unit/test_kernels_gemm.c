/* GEMM and linear layer: every back end (dispatching lm_sgemm, OpenBLAS,
 * own AVX-512 sgemm when the CPU has it) against a naive double-precision
 * product, on odd shapes and all four transpose combinations; linear
 * forward/backward against their references and a finite-difference check.
 * lm_sgemm_sumsq: the same C bit for bit as lm_sgemm, and the sum of squares
 * of its final values within 1e-6 relative (tiles sum in fp32).
 * lm_sgemm_ex's addend and column sums: C = the lm_sgemm_bias result plus the
 * addend, added last, bit for bit; the column sums of op(B) exactly those
 * of a loop adding each column's values in row order, for 1 and 2 threads,
 * at every SIMD level. */
#include "kernels_util.h"

#include <pthread.h>

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                        float *, int);

/* Checks C = alpha*op(A)op(B) + beta*C0 elementwise against the standard
 * error bound: |C - exact| <= tol * (|alpha| sum_p |a_ip b_pj| + |beta c0|). */
static void check_gemm(const char *name, gemm_fn fn, int ta, int tb, int M, int N, int K, float alpha,
                       float beta) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    int arows = ta ? K : M, brows = tb ? N : K;
    float *A = kt_randn((size_t)arows * lda, 1.0f), *B = kt_randn((size_t)brows * ldb, 1.0f);
    float *C0 = kt_randn((size_t)M * ldc, 1.0f);
    if (beta == 0.0f) /* beta == 0 must not read C: poison it */
        for (size_t i = 0; i < (size_t)M * ldc; i++) C0[i] = NAN;
    float *C = kt_copy(C0, (size_t)M * ldc);
    fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double worst = 0;
    int pad_ok = 1;
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0, mag = 0;
            for (int p = 0; p < K; p++) {
                double a = ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                double b = tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += a * b;
                mag += fabs(a * b);
            }
            double c0 = beta == 0.0f ? 0.0 : C0[(size_t)i * ldc + j];
            double exact = alpha * acc + beta * c0;
            double bound = fabs(alpha) * mag + fabs(beta * c0) + 1e-30;
            double e = fabs(C[(size_t)i * ldc + j] - exact) / bound;
            if (!(e <= worst)) worst = e;
        }
        for (int j = N; j < ldc; j++) /* columns past N are untouched */
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) pad_ok = 0;
    }
    /* fp32 accumulation over K terms: a few eps * sqrt(K) in practice. */
    CHECK_MSG(worst <= 2e-6, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g: err %.3g", name, ta, tb, M,
              N, K, alpha, beta, worst);
    CHECK_MSG(pad_ok, "%s wrote past column N (M=%d N=%d)", name, M, N);
    lm_free(A);
    lm_free(B);
    lm_free(C0);
    lm_free(C);
}

static void gemm_suite(const char *name, gemm_fn fn) {
    static const int shapes[][3] = {{1, 1, 1},    {7, 13, 5},    {17, 31, 37},  {33, 50, 129},
                                    {64, 48, 64}, {100, 97, 300}, {5, 301, 77}, {257, 65, 19},
                                    {3, 7, 0},    {130, 200, 513}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                check_gemm(name, fn, ta, tb, M, N, K, 1.0f, 0.0f);
                check_gemm(name, fn, ta, tb, M, N, K, 0.5f, 1.0f);
                check_gemm(name, fn, ta, tb, M, N, K, -1.25f, 0.75f);
            }
}

/* A big enough product to take the multi-threaded, multi-block paths. */
static void gemm_large(const char *name, gemm_fn fn) {
    check_gemm(name, fn, 0, 1, 300, 777, 650, 1.0f, 0.0f);
    check_gemm(name, fn, 0, 0, 259, 1030, 300, 1.0f, 1.0f);
    check_gemm(name, fn, 1, 0, 771, 300, 258, 1.0f, 1.0f);
    /* more rows than one packed A block (1536), K over two KC blocks */
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) check_gemm(name, fn, ta, tb, 1601, 70, 400, 0.5f, -1.0f);
}

/* d/dW, d/dinp, d/dbias of L = sum(out * R), by central differences on a
 * double-precision forward. */
static double linear_loss(const float *inp, const float *w, const float *bias, const float *R, int N,
                          int IC, int OC) {
    double L = 0;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0;
            for (int i = 0; i < IC; i++) acc += (double)inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
            L += acc * R[(size_t)n * OC + o];
        }
    return L;
}

static double fd_grad(float *x, size_t idx, const float *inp, const float *w, const float *bias,
                      const float *R, int N, int IC, int OC) {
    float save = x[idx];
    float h = 1e-2f;
    x[idx] = save + h;
    double lp = linear_loss(inp, w, bias, R, N, IC, OC);
    x[idx] = save - h;
    double lm = linear_loss(inp, w, bias, R, N, IC, OC);
    x[idx] = save;
    return (lp - lm) / (2.0 * h); /* exact up to rounding: L is linear in x */
}

static void linear_tests(void) {
    const int N = 13, IC = 37, OC = 21;
    float *inp = kt_randn((size_t)N * IC, 1.0f), *w = kt_randn((size_t)OC * IC, 0.2f);
    float *bias = kt_randn(OC, 0.5f), *R = kt_randn((size_t)N * OC, 1.0f);
    float *out = kt_alloc((size_t)N * OC), *out_ref = kt_alloc((size_t)N * OC);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        const float *b = with_bias ? bias : NULL;
        lm_linear_forward(out, inp, w, b, N, IC, OC);
        lm_linear_forward_ref(out_ref, inp, w, b, N, IC, OC);
        KT_CLOSE(out, out_ref, (size_t)N * OC, 1.0, 1e-5, "linear forward");
    }
    /* Backward accumulates: start from nonzero grads. */
    float *dinp0 = kt_randn((size_t)N * IC, 1.0f), *dw0 = kt_randn((size_t)OC * IC, 1.0f);
    float *db0 = kt_randn(OC, 1.0f);
    float *dinp = kt_copy(dinp0, (size_t)N * IC), *dw = kt_copy(dw0, (size_t)OC * IC), *db = kt_copy(db0, OC);
    float *dinp_r = kt_copy(dinp0, (size_t)N * IC), *dw_r = kt_copy(dw0, (size_t)OC * IC), *db_r = kt_copy(db0, OC);
    lm_linear_backward(dinp, dw, db, R, inp, w, N, IC, OC);
    lm_linear_backward_ref(dinp_r, dw_r, db_r, R, inp, w, N, IC, OC);
    KT_CLOSE(dinp, dinp_r, (size_t)N * IC, 1.0, 1e-5, "linear dinp");
    KT_CLOSE(dw, dw_r, (size_t)OC * IC, 1.0, 1e-5, "linear dweight");
    KT_CLOSE(db, db_r, OC, 1.0, 1e-5, "linear dbias");
    /* NULL outputs are skipped */
    float *dw2 = kt_copy(dw0, (size_t)OC * IC);
    lm_linear_backward(NULL, dw2, NULL, R, inp, w, N, IC, OC);
    KT_CLOSE(dw2, dw_r, (size_t)OC * IC, 1.0, 1e-5, "linear dweight alone");
    /* the reference against finite differences (grad = accumulated - initial) */
    double worst = 0;
    for (size_t idx = 0; idx < (size_t)N * IC; idx += 7) {
        double g = fd_grad(inp, idx, inp, w, bias, R, N, IC, OC);
        double e = fabs((dinp_r[idx] - dinp0[idx]) - g) / fmax(fabs(g), 1.0);
        if (e > worst) worst = e;
    }
    for (size_t idx = 0; idx < (size_t)OC * IC; idx += 5) {
        double g = fd_grad(w, idx, inp, w, bias, R, N, IC, OC);
        double e = fabs((dw_r[idx] - dw0[idx]) - g) / fmax(fabs(g), 1.0);
        if (e > worst) worst = e;
    }
    for (int o = 0; o < OC; o++) {
        double g = fd_grad(bias, o, inp, w, bias, R, N, IC, OC);
        double e = fabs((db_r[o] - db0[o]) - g) / fmax(fabs(g), 1.0);
        if (e > worst) worst = e;
    }
    CHECK_MSG(worst <= 1e-4, "linear backward vs finite differences: %.3g", worst);
    float *bufs[] = {inp, w, bias, R, out, out_ref, dinp0, dw0, db0, dinp, dw, db, dinp_r, dw_r, db_r, dw2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

/* Calls from short-lived threads, one after the other (the test counters
 * are not atomic): each gets its own packing buffers, freed when it exits
 * (ASan checks both). */
static void *thread_gemm(void *arg) {
    (void)arg;
    check_gemm("lm_sgemm in a pthread", lm_sgemm, 0, 1, 40, 70, 50, 1.0f, 0.0f);
    return NULL;
}

/* lm_sgemm_bias: C = op(A) op(B) + bias over C poisoned with NaN (it must
 * not be read), against the same product from lm_sgemm_ref plus the bias. */
static void check_gemm_bias(int ta, int tb, int M, int N, int K, int with_bias) {
    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
    float *A = kt_randn((size_t)(ta ? K : M) * lda, 1.0f), *B = kt_randn((size_t)(tb ? N : K) * ldb, 1.0f);
    float *bias = kt_randn((size_t)N, 1.0f), *C = kt_alloc((size_t)M * ldc), *R = kt_alloc((size_t)M * ldc);
    for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = NAN;
    lm_sgemm_bias(ta, tb, M, N, K, A, lda, B, ldb, with_bias ? bias : NULL, C, ldc);
    lm_sgemm_ref(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, R, ldc);
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double want = (double)R[(size_t)i * ldc + j] + (with_bias ? bias[j] : 0.0);
            /* fp32 rounding over K terms of size ~1: a few eps * sqrt(K) */
            double e = fabs(C[(size_t)i * ldc + j] - want) / (sqrt((double)K + 1) + fabs(want));
            if (!(e <= worst)) worst = e;
        }
    CHECK_MSG(worst <= 1e-5, "sgemm_bias ta=%d tb=%d M=%d N=%d K=%d bias=%d: err %.3g", ta, tb, M, N, K, with_bias,
              worst);
    lm_free(A);
    lm_free(B);
    lm_free(bias);
    lm_free(C);
    lm_free(R);
}

static void gemm_bias_tests(void) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 50, 129}, {256, 97, 300}, {130, 200, 1100}, {5, 3, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int b = 0; b < 2; b++) check_gemm_bias(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], b);
}

static void thread_tests(void) {
    for (int i = 0; i < 3; i++) {
        pthread_t th;
        CHECK(pthread_create(&th, NULL, thread_gemm, NULL) == 0);
        pthread_join(th, NULL);
    }
}

static void check_sumsq(int ta, int tb, int M, int N, int K, float beta) {
    int lda = ta ? M : K, ldb = tb ? K : N, ldc = N + 3;
    float *A = kt_randn((size_t)(ta ? K : M) * lda, 1.0f), *B = kt_randn((size_t)(tb ? N : K) * ldb, 1.0f);
    float *C = kt_randn((size_t)M * ldc, 1.0f), *C2 = kt_copy(C, (size_t)M * ldc);
    double sq = 0.5; /* added to, not overwritten */
    lm_sgemm_sumsq(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc, &sq);
    lm_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C2, ldc);
    CHECK_MSG(memcmp(C, C2, (size_t)M * ldc * sizeof(float)) == 0, "sumsq changed C (ta=%d tb=%d M=%d N=%d K=%d)", ta, tb, M, N, K);
    double exact = 0.5;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) exact += (double)C[(size_t)i * ldc + j] * C[(size_t)i * ldc + j];
    CHECK_MSG(fabs(sq - exact) <= 1e-6 * exact, "sumsq ta=%d tb=%d M=%d N=%d K=%d: %.10g vs %.10g", ta, tb, M, N, K, sq, exact);
    lm_free(A);
    lm_free(B);
    lm_free(C);
    lm_free(C2);
}

static void sumsq_tests(void) {
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {17, 31, 37}, {100, 97, 300}, {384, 384, 106}, {1601, 70, 400}, {40, 50, 1100}, {3, 7, 0}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                check_sumsq(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 0.0f);
                check_sumsq(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2], 1.0f);
            }
}

static void check_extras(int ta, int tb, int M, int N, int K) {
    int lda = ta ? M : K, ldb = (tb ? K : N) + 2, ldc = N + 3, ldr = N + 1;
    float *A = kt_randn((size_t)(ta ? K : M) * lda, 1.0f), *B = kt_randn((size_t)(tb ? N : K) * ldb, 1.0f);
    float *bias = kt_randn((size_t)N, 1.0f), *R = kt_randn((size_t)M * ldr, 1.0f);
    float *C = kt_alloc((size_t)M * ldc), *C2 = kt_alloc((size_t)M * ldc);
    float *cs = kt_randn((size_t)N, 1.0f), *cs2 = kt_copy(cs, (size_t)N); /* added to, not overwritten */
    lm_sgemm_extras ex = {.bias = bias, .addend = R, .ld_addend = ldr, .b_colsum = cs};
    lm_sgemm_ex(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, &ex);
    lm_sgemm_bias(ta, tb, M, N, K, A, lda, B, ldb, bias, C2, ldc);
    int same = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) same &= C[(size_t)i * ldc + j] == C2[(size_t)i * ldc + j] + R[(size_t)i * ldr + j];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) cs2[j] += tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
    CHECK_MSG(same, "ex addend: C != bias GEMM + addend (ta=%d tb=%d M=%d N=%d K=%d)", ta, tb, M, N, K);
    CHECK_MSG(memcmp(cs, cs2, (size_t)N * sizeof(float)) == 0, "ex column sums differ (ta=%d tb=%d M=%d N=%d K=%d)", ta, tb, M, N, K);
    /* mul: (A B) * mul + bias + addend, each step rounded as a pass of its
     * own would round it, so equal to the plain product's */
    int ldm = N + 5;
    float *Mul = kt_randn((size_t)M * ldm, 1.0f);
    lm_sgemm_extras exm = {.bias = bias, .addend = R, .ld_addend = ldr, .mul = Mul, .ld_mul = ldm};
    lm_sgemm_ex(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc, &exm);
    lm_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C2, ldc);
    same = 1;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float want = C2[(size_t)i * ldc + j] * Mul[(size_t)i * ldm + j] + bias[j];
            same &= C[(size_t)i * ldc + j] == want + R[(size_t)i * ldr + j];
        }
    CHECK_MSG(same, "ex mul: C != (GEMM * mul) + bias + addend (ta=%d tb=%d M=%d N=%d K=%d)", ta, tb, M, N, K);
    lm_free(Mul);
    lm_free(A);
    lm_free(B);
    lm_free(bias);
    lm_free(R);
    lm_free(C);
    lm_free(C2);
    lm_free(cs);
    lm_free(cs2);
}

static void extras_tests(void) {
    /* ragged tiles, N over one NB block (480), K over one KC block (512), M over one MB block (1536) */
    static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {17, 31, 37}, {384, 128, 128}, {100, 997, 600}, {1601, 70, 40}, {5, 3, 0}};
    for (int threads = 1; threads <= 2; threads++) {
        lm_set_threads(threads);
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++) check_extras(ta, tb, shapes[s][0], shapes[s][1], shapes[s][2]);
    }
}

int main(void) {
    lm_rng_seed(&kt_rng, 1234, 0);
    kt_for_each_level(extras_tests);
    gemm_suite("sgemm_ref", lm_sgemm_ref);
    gemm_suite("lm_sgemm", lm_sgemm);
    gemm_suite("openblas", lm_sgemm_openblas);
    gemm_large("lm_sgemm", lm_sgemm);
    gemm_large("openblas", lm_sgemm_openblas);
    if (lm_cpu()->avx512f && lm_cpu()->avx512bw && lm_cpu()->avx512vl && lm_cpu()->fma) {
        gemm_suite("sgemm_avx512", lm_sgemm_avx512); /* large shapes: via lm_sgemm above */
    }
    linear_tests();
    gemm_bias_tests();
    thread_tests();
    sumsq_tests();
    lm_kernels_force_scalar(1);
    sumsq_tests();
    linear_tests();
    gemm_bias_tests();
    gemm_suite("lm_sgemm scalar", lm_sgemm);
    lm_kernels_force_scalar(0);
    TEST_MAIN_END();
}

/* Embedding, LayerNorm, RMSNorm, GELU (tanh, erf), SwiGLU, add, accumulate:
 * the dispatching kernels against their scalar references on odd shapes
 * (forward rel err <= 1e-5, backward <= 1e-4, elementwise <= 2e-6), and the
 * references' backward against central finite differences of a
 * double-precision forward written here. */
#include "kernels_util.h"

/* ---------------- embeddings ---------------- */
static void embedding_tests(void) {
    const int N = 29, C = 37, V = 11, P = 13;
    int32_t ids[29], pos[29];
    for (int n = 0; n < N; n++) {
        ids[n] = (int32_t)lm_rng_below(&kt_rng, V); /* repeats on purpose */
        pos[n] = n % P;
    }
    float *wte = kt_randn((size_t)V * C, 1), *wpe = kt_randn((size_t)P * C, 1);
    float *out = kt_alloc((size_t)N * C), *out_r = kt_alloc((size_t)N * C);
    for (int with_pos = 0; with_pos < 2; with_pos++) {
        lm_embedding_forward(out, ids, pos, wte, with_pos ? wpe : NULL, N, C);
        lm_embedding_forward_ref(out_r, ids, pos, wte, with_pos ? wpe : NULL, N, C);
        CHECK(memcmp(out, out_r, (size_t)N * C * sizeof(float)) == 0);
        for (int n = 0; n < N; n++) /* the reference is the definition */
            CHECK(out_r[(size_t)n * C + 5] == wte[(size_t)ids[n] * C + 5] + (with_pos ? wpe[(size_t)pos[n] * C + 5] : 0.0f));
    }
    float *dout = kt_randn((size_t)N * C, 1);
    float *dwte0 = kt_randn((size_t)V * C, 1), *dwpe0 = kt_randn((size_t)P * C, 1);
    float *dwte = kt_copy(dwte0, (size_t)V * C), *dwpe = kt_copy(dwpe0, (size_t)P * C);
    float *dwte_r = kt_copy(dwte0, (size_t)V * C), *dwpe_r = kt_copy(dwpe0, (size_t)P * C);
    lm_embedding_backward(dwte, dwpe, dout, ids, pos, N, C);
    lm_embedding_backward_ref(dwte_r, dwpe_r, dout, ids, pos, N, C);
    KT_CLOSE(dwte, dwte_r, (size_t)V * C, 1.0, 1e-6, "embedding dwte");
    KT_CLOSE(dwpe, dwpe_r, (size_t)P * C, 1.0, 1e-6, "embedding dwpe");
    /* reference: dwte[v] gains the sum of dout rows with ids == v */
    double worst = 0;
    for (int v = 0; v < V; v++)
        for (int c = 0; c < C; c++) {
            double s = dwte0[(size_t)v * C + c];
            for (int n = 0; n < N; n++)
                if (ids[n] == v) s += dout[(size_t)n * C + c];
            worst = fmax(worst, fabs(s - dwte_r[(size_t)v * C + c]));
        }
    CHECK_MSG(worst < 1e-5, "embedding backward ref: %g", worst);
    lm_embedding_backward(dwte, NULL, dout, ids, pos, N, C); /* dwpe may be NULL */
    float *bufs[] = {wte, wpe, out, out_r, dout, dwte0, dwpe0, dwte, dwpe, dwte_r, dwpe_r};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

/* ---------------- norms ---------------- */
/* L = sum(norm(x) * R) for one row, in double. rms=0: LayerNorm. */
static double norm_loss_row(const float *x, const float *w, const float *b, const float *R, int C,
                            double eps, int rms) {
    double m = 0, var = 0;
    if (!rms) {
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
    }
    for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
    var /= C;
    double r = 1.0 / sqrt(var + eps), L = 0;
    for (int c = 0; c < C; c++) L += ((x[c] - m) * r * w[c] + (b ? b[c] : 0.0)) * R[c];
    return L;
}

static double norm_loss(const float *x, const float *w, const float *b, const float *R, int N, int C,
                        double eps, int rms) {
    double L = 0;
    for (int n = 0; n < N; n++) L += norm_loss_row(x + (size_t)n * C, w, b, R + (size_t)n * C, C, eps, rms);
    return L;
}

static double norm_fd(float *p, size_t idx, const float *x, const float *w, const float *b,
                      const float *R, int N, int C, double eps, int rms) {
    float save = p[idx], h = 1e-3f;
    p[idx] = save + h;
    double lp = norm_loss(x, w, b, R, N, C, eps, rms);
    p[idx] = save - h;
    double lm = norm_loss(x, w, b, R, N, C, eps, rms);
    p[idx] = save;
    return (lp - lm) / (2.0 * h);
}

static void norm_tests(int N, int C, int check_fd) {
    const float eps = 1e-5f;
    float *x = kt_randn((size_t)N * C, 1.5f), *w = kt_randn(C, 1), *b = kt_randn(C, 1);
    for (size_t i = 0; i < (size_t)N * C; i++) x[i] += 0.7f; /* nonzero mean */
    float *R = kt_randn((size_t)N * C, 1);
    float *out = kt_alloc((size_t)N * C), *out_r = kt_alloc((size_t)N * C);
    float *mean = kt_alloc(N), *rstd = kt_alloc(N), *mean_r = kt_alloc(N), *rstd_r = kt_alloc(N);
    size_t NC = (size_t)N * C;
    float *dx0 = kt_randn(NC, 1), *dw0 = kt_randn(C, 1), *db0 = kt_randn(C, 1);
    for (int rms = 0; rms < 2; rms++) {
        const char *nm = rms ? "rmsnorm" : "layernorm";
        char what[64];
        if (rms) {
            lm_rmsnorm_forward(out, rstd, x, w, N, C, eps);
            lm_rmsnorm_forward_ref(out_r, rstd_r, x, w, N, C, eps);
        } else {
            lm_layernorm_forward(out, mean, rstd, x, w, b, N, C, eps);
            lm_layernorm_forward_ref(out_r, mean_r, rstd_r, x, w, b, N, C, eps);
            snprintf(what, sizeof what, "%s mean C=%d", nm, C);
            KT_CLOSE(mean, mean_r, N, 1.0, 1e-5, what);
        }
        snprintf(what, sizeof what, "%s out C=%d", nm, C);
        KT_CLOSE(out, out_r, NC, 1.0, 1e-5, what);
        snprintf(what, sizeof what, "%s rstd C=%d", nm, C);
        KT_CLOSE(rstd, rstd_r, N, 1e-3, 1e-5, what);
        /* the reference forward against the double formula */
        double worst = 0;
        for (int n = 0; n < N; n++) {
            double L = norm_loss_row(x + (size_t)n * C, w, rms ? NULL : b, R + (size_t)n * C, C, eps, rms), Lk = 0;
            for (int c = 0; c < C; c++) Lk += (double)out_r[(size_t)n * C + c] * R[(size_t)n * C + c];
            worst = fmax(worst, fabs(L - Lk) / fmax(1.0, fabs(L)));
        }
        CHECK_MSG(worst < 1e-5, "%s forward ref vs double: %g", nm, worst);

        float *dx = kt_copy(dx0, NC), *dw = kt_copy(dw0, C), *db = kt_copy(db0, C);
        float *dx_r = kt_copy(dx0, NC), *dw_r = kt_copy(dw0, C), *db_r = kt_copy(db0, C);
        if (rms) {
            lm_rmsnorm_backward(dx, dw, R, x, w, rstd, N, C);
            lm_rmsnorm_backward_ref(dx_r, dw_r, R, x, w, rstd_r, N, C);
        } else {
            lm_layernorm_backward(dx, dw, db, R, x, w, mean, rstd, N, C);
            lm_layernorm_backward_ref(dx_r, dw_r, db_r, R, x, w, mean_r, rstd_r, N, C);
            snprintf(what, sizeof what, "%s dbias C=%d", nm, C);
            KT_CLOSE(db, db_r, C, 1.0, 1e-4, what);
        }
        snprintf(what, sizeof what, "%s dinp C=%d", nm, C);
        KT_CLOSE(dx, dx_r, NC, 1.0, 1e-4, what);
        snprintf(what, sizeof what, "%s dweight C=%d", nm, C);
        KT_CLOSE(dw, dw_r, C, 1.0, 1e-4, what);
        if (check_fd) {
            worst = 0;
            const float *bb = rms ? NULL : b;
            for (size_t i = 0; i < NC; i += 3) {
                double g = norm_fd(x, i, x, w, bb, R, N, C, eps, rms);
                worst = fmax(worst, fabs((dx_r[i] - dx0[i]) - g) / fmax(1.0, fabs(g)));
            }
            for (int c = 0; c < C; c++) {
                double g = norm_fd(w, c, x, w, bb, R, N, C, eps, rms);
                worst = fmax(worst, fabs((dw_r[c] - dw0[c]) - g) / fmax(1.0, fabs(g)));
                if (!rms) {
                    g = norm_fd(b, c, x, w, bb, R, N, C, eps, rms);
                    worst = fmax(worst, fabs((db_r[c] - db0[c]) - g) / fmax(1.0, fabs(g)));
                }
            }
            CHECK_MSG(worst < 1e-3, "%s backward ref vs finite differences: %g", nm, worst);
        }
        lm_free(dx); lm_free(dw); lm_free(db); lm_free(dx_r); lm_free(dw_r); lm_free(db_r);
    }
    float *bufs[] = {x, w, b, R, out, out_r, mean, rstd, mean_r, rstd_r, dx0, dw0, db0};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

/* ---------------- activations ---------------- */
static double gelu_tanh_d(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_erf_d(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double silu_d(double x) { return x / (1 + exp(-x)); }

/* Inputs spanning the interesting range: normals, wide uniform, extremes. */
static float *act_inputs(size_t n) {
    float *x = kt_alloc(n);
    for (size_t i = 0; i < n; i++) {
        switch (i % 4) {
        case 0: x[i] = lm_rng_normal(&kt_rng); break;
        case 1: x[i] = (lm_rng_uniform(&kt_rng) - 0.5f) * 24.0f; break;
        case 2: x[i] = lm_rng_normal(&kt_rng) * 1e-3f; break;
        default: x[i] = (lm_rng_uniform(&kt_rng) - 0.5f) * 200.0f; break;
        }
    }
    x[0] = 0.0f;
    if (n > 3) { x[1] = -100.0f; x[2] = 100.0f; x[3] = -9.0f; }
    return x;
}

typedef void (*act_fwd)(float *, const float *, size_t);
typedef void (*act_bwd)(float *, const float *, const float *, size_t);

static void act_test(const char *nm, act_fwd f, act_fwd fr, act_bwd bk, act_bwd bkr, double (*fd)(double),
                     size_t n) {
    float *x = act_inputs(n), *y = kt_alloc(n), *yr = kt_alloc(n), *dout = kt_randn(n, 1);
    float *d0 = kt_randn(n, 1), *d = kt_copy(d0, n), *dr = kt_copy(d0, n);
    f(y, x, n);
    fr(yr, x, n);
    char what[64];
    /* floor 1e-3: outputs below it are compared absolutely */
    snprintf(what, sizeof what, "%s forward n=%zu", nm, n);
    KT_CLOSE(y, yr, n, 1e-3, 2e-6, what);
    bk(d, x, dout, n);
    bkr(dr, x, dout, n);
    snprintf(what, sizeof what, "%s backward n=%zu", nm, n);
    KT_CLOSE(d, dr, n, 1.0, 2e-6, what);
    /* in place (dinp == dout) gives the same values */
    float *dip = kt_copy(dout, n);
    bk(dip, x, dip, n);
    snprintf(what, sizeof what, "%s backward in place n=%zu", nm, n);
    KT_CLOSE(dip, d, n, 1.0, 0.0, what);
    lm_free(dip);
    /* the reference against the double formula and finite differences */
    double wf = 0, wb = 0;
    for (size_t i = 0; i < n && i < 20000; i++) {
        double e = fd(x[i]);
        wf = fmax(wf, fabs(yr[i] - e) / fmax(fabs(e), 1e-30));
        double h = 1e-4 * fmax(1.0, fabs(x[i]));
        double g = (fd(x[i] + h) - fd(x[i] - h)) / (2 * h) * dout[i];
        wb = fmax(wb, fabs(dr[i] - g) / fmax(1.0, fabs(g)));
    }
    CHECK_MSG(wf < 1e-6, "%s forward ref vs double: %g", nm, wf);
    CHECK_MSG(wb < 1e-5, "%s backward ref vs finite differences: %g", nm, wb);
    float *bufs[] = {x, y, yr, dout, d0, d, dr};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

/* gelu_tanh_forward_deriv: the forward's values bit for bit, factors that
 * times dout give the backward bit for bit (the SIMD paths share their
 * formula; the references round once from double, so within 2e-6), against
 * the reference, and in place (deriv == inp) too. */
static void gelu_deriv_test(size_t n) {
    float *x = act_inputs(n), *y = kt_alloc(n), *y1 = kt_alloc(n), *d = kt_alloc(n), *yr = kt_alloc(n), *dr = kt_alloc(n);
    float *dout = kt_randn(n, 1), *dx = kt_alloc(n), *xp = kt_copy(x, n);
    lm_gelu_tanh_forward_deriv(y, d, x, n);
    lm_gelu_tanh_forward(y1, x, n);
    lm_gelu_tanh_backward(dx, x, dout, n);
    lm_gelu_tanh_forward_deriv_ref(yr, dr, x, n);
    int same_y = memcmp(y, y1, n * sizeof(float)) == 0;
    CHECK_MSG(same_y, "gelu_tanh_forward_deriv n=%zu: values differ from the forward", n);
    for (size_t i = 0; i < n; i++) y1[i] = d[i] * dout[i];
    KT_CLOSE(y1, dx, n, 1.0, lm_simd_level() == LM_SIMD_SCALAR ? 2e-6 : 0.0,
             "gelu_tanh_forward_deriv factors times dout vs the backward");
    KT_CLOSE(y, yr, n, 1e-3, 2e-6, "gelu_tanh_forward_deriv values vs reference");
    KT_CLOSE(d, dr, n, 1.0, 2e-6, "gelu_tanh_forward_deriv factors vs reference");
    lm_gelu_tanh_forward_deriv(y1, xp, xp, n);
    CHECK_MSG(memcmp(xp, d, n * sizeof(float)) == 0, "gelu_tanh_forward_deriv n=%zu: in place differs", n);
    float *bufs[] = {x, y, y1, d, yr, dr, dout, dx, xp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

static void swiglu_test(size_t n) {
    float *g = act_inputs(n), *u = kt_randn(n, 1), *y = kt_alloc(n), *yr = kt_alloc(n);
    float *dout = kt_randn(n, 1), *dg0 = kt_randn(n, 1), *du0 = kt_randn(n, 1);
    float *dg = kt_copy(dg0, n), *du = kt_copy(du0, n), *dgr = kt_copy(dg0, n), *dur = kt_copy(du0, n);
    lm_swiglu_forward(y, g, u, n);
    lm_swiglu_forward_ref(yr, g, u, n);
    KT_CLOSE(y, yr, n, 1e-3, 2e-6, "swiglu forward");
    lm_swiglu_backward(dg, du, dout, g, u, n);
    lm_swiglu_backward_ref(dgr, dur, dout, g, u, n);
    KT_CLOSE(dg, dgr, n, 1.0, 2e-6, "swiglu dgate");
    KT_CLOSE(du, dur, n, 1.0, 2e-6, "swiglu dup");
    double wf = 0, wb = 0;
    for (size_t i = 0; i < n && i < 20000; i++) {
        double e = silu_d(g[i]) * u[i];
        wf = fmax(wf, fabs(yr[i] - e) / fmax(fabs(e), 1e-30));
        double h = 1e-4 * fmax(1.0, fabs(g[i]));
        double gg = (silu_d(g[i] + h) - silu_d(g[i] - h)) / (2 * h) * u[i] * dout[i];
        wb = fmax(wb, fabs((dgr[i] - dg0[i]) - gg) / fmax(1.0, fabs(gg)));
        double gu = silu_d(g[i]) * dout[i];
        wb = fmax(wb, fabs((dur[i] - du0[i]) - gu) / fmax(1.0, fabs(gu)));
    }
    CHECK_MSG(wf < 1e-6, "swiglu forward ref vs double: %g", wf);
    CHECK_MSG(wb < 1e-5, "swiglu backward ref vs finite differences: %g", wb);
    float *bufs[] = {g, u, y, yr, dout, dg0, du0, dg, du, dgr, dur};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

static void add_tests(size_t n) {
    float *a = kt_randn(n, 1), *b = kt_randn(n, 1), *o = kt_alloc(n), *o2 = kt_alloc(n);
    lm_add(o, a, b, n);
    lm_add_ref(o2, a, b, n);
    CHECK(memcmp(o, o2, n * sizeof(float)) == 0);
    lm_accumulate(o, a, n);
    lm_accumulate_ref(o2, a, n);
    CHECK(memcmp(o, o2, n * sizeof(float)) == 0);
    CHECK(o2[n - 1] == (a[n - 1] + b[n - 1]) + a[n - 1]);
    lm_add(a, a, b, n); /* in place */
    CHECK(memcmp(a, o2, 0) == 0);
    float *bufs[] = {a, b, o, o2};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
}

/* ---------------- dropout ----------------
 * Statistics (zero fraction within 5 sigma of p), exact scaling of the
 * kept values, the same mask for the same (seed, stream) whatever the
 * thread count (it is the backward pass), a different one otherwise. */
static void dropout_tests(void) {
    const size_t n = 200003;
    const float p = 0.1f;
    float *x = kt_randn(n, 1), *a = kt_copy(x, n), *b = kt_copy(x, n), *c = kt_copy(x, n);
    lm_dropout(a, n, p, 42, 7);
    lm_set_threads(1);
    lm_dropout(b, n, p, 42, 7);
    lm_set_threads(2);
    lm_dropout(c, n, p, 42, 8);
    size_t zeros = 0, same_zero = 0, exact = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] == 0.0f) zeros++;
        else if (a[i] == x[i] * (1.0f / (1.0f - p))) exact++;
        if (a[i] == 0.0f && c[i] == 0.0f) same_zero++;
    }
    double sigma = sqrt((double)n * p * (1 - p));
    CHECK_MSG(fabs((double)zeros - n * p) < 5 * sigma, "dropout zeros %zu, expected %.0f", zeros, n * p);
    CHECK(exact == n - zeros);
    CHECK(memcmp(a, b, n * sizeof(float)) == 0);
    /* Independent masks share ~p^2 of their zeros. */
    CHECK_MSG(fabs((double)same_zero - n * p * p) < 5 * sqrt((double)n * p * p), "streams 7 and 8 share %zu zeros", same_zero);
    memcpy(b, x, n * sizeof(float));
    lm_dropout(b, n, 0.0f, 42, 7); /* p = 0: identity */
    CHECK(memcmp(b, x, n * sizeof(float)) == 0);
    lm_free(x);
    lm_free(a);
    lm_free(b);
    lm_free(c);
}

static void all_tests(void) {
    dropout_tests();
    embedding_tests();
    norm_tests(7, 37, 1);
    norm_tests(5, 1, 0);
    norm_tests(3, 16, 1);
    norm_tests(33, 768, 0);
    static const size_t ns[] = {1, 15, 17, 4099, 100003};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        act_test("gelu_tanh", lm_gelu_tanh_forward, lm_gelu_tanh_forward_ref, lm_gelu_tanh_backward,
                 lm_gelu_tanh_backward_ref, gelu_tanh_d, ns[i]);
        act_test("gelu_erf", lm_gelu_erf_forward, lm_gelu_erf_forward_ref, lm_gelu_erf_backward,
                 lm_gelu_erf_backward_ref, gelu_erf_d, ns[i]);
        gelu_deriv_test(ns[i]);
        swiglu_test(ns[i]);
        add_tests(ns[i]);
    }
}

int main(void) {
    lm_rng_seed(&kt_rng, 77, 0);
    kt_for_each_level(all_tests);
    lm_kernels_force_scalar(1); /* the public switch reaches the references too */
    CHECK(lm_simd_level() == LM_SIMD_SCALAR);
    lm_kernels_force_scalar(0);
    TEST_MAIN_END();
}

/* Cross-entropy (stable softmax, ignore index, aliasing dlogits) and AdamW
 * (torch.optim.AdamW semantics) against independent double-precision
 * formulations written here; the dispatching kernels against their scalar
 * references. */
#include "kernels_util.h"

/* ---------------- cross-entropy ---------------- */
static void ce_case(int N, int V, float shift, float scale) {
    size_t NV = (size_t)N * V;
    float *x = kt_randn(NV, scale);
    for (size_t i = 0; i < NV; i++) x[i] += shift; /* large offsets must not overflow */
    int32_t *t = malloc(N * sizeof(int32_t));
    for (int n = 0; n < N; n++) t[n] = (n % 3 == 1) ? -100 : (int32_t)lm_rng_below(&kt_rng, V);
    const float gs = 1.0f / N;
    /* naive double: loss = logsumexp(x) - x[t]; grad = (softmax - onehot) * gs */
    double *loss_n = calloc(N, sizeof(double)), *d_n = calloc(NV, sizeof(double));
    int count_n = 0;
    for (int n = 0; n < N; n++) {
        if (t[n] < 0) continue;
        count_n++;
        const float *r = x + (size_t)n * V;
        double mx = r[0], sum = 0;
        for (int i = 1; i < V; i++) mx = fmax(mx, r[i]);
        for (int i = 0; i < V; i++) sum += exp(r[i] - mx);
        loss_n[n] = mx + log(sum) - r[t[n]];
        for (int i = 0; i < V; i++) d_n[(size_t)n * V + i] = (exp(r[i] - mx) / sum - (i == t[n])) * gs;
    }
    for (int impl = 0; impl < 3; impl++) { /* fast, ref, fast in place */
        float *losses = kt_alloc(N), *d = impl == 2 ? kt_copy(x, NV) : kt_alloc(NV);
        const float *logits = impl == 2 ? d : x;
        int cnt = impl == 1 ? lm_cross_entropy_forward_backward_ref(losses, d, logits, t, N, V, gs)
                            : lm_cross_entropy_forward_backward(losses, d, logits, t, N, V, gs);
        CHECK_MSG(cnt == count_n, "count %d vs %d", cnt, count_n);
        double el = 0, ed = 0;
        for (int n = 0; n < N; n++) el = fmax(el, fabs(losses[n] - loss_n[n]) / fmax(1.0, fabs(loss_n[n])));
        /* gradients: relative to the largest entry of the row's gradient scale */
        for (size_t i = 0; i < NV; i++) ed = fmax(ed, fabs(d[i] - d_n[i]) / (gs * 1e-3 + fabs(d_n[i])));
        CHECK_MSG(el <= 1e-5, "CE N=%d V=%d shift=%g impl=%d: loss err %.3g", N, V, shift, impl, el);
        CHECK_MSG(ed <= 1e-4, "CE N=%d V=%d shift=%g impl=%d: dlogits err %.3g", N, V, shift, impl, ed);
        /* losses only (dlogits NULL) */
        float *l2 = kt_alloc(N);
        int c2 = lm_cross_entropy_forward_backward(l2, NULL, x, t, N, V, gs);
        CHECK(c2 == count_n);
        double e2 = 0;
        for (int n = 0; n < N; n++) e2 = fmax(e2, fabs(l2[n] - loss_n[n]) / fmax(1.0, fabs(loss_n[n])));
        CHECK_MSG(e2 <= 1e-5, "CE losses only: %.3g", e2);
        lm_free(l2);
        lm_free(losses);
        lm_free(d);
    }
    /* the naive gradient against finite differences of the naive loss (row 0) */
    if (t[0] >= 0 && V <= 200) {
        double worst = 0;
        for (int i = 0; i < V; i++) {
            double L[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                double h = sgn ? -1e-4 : 1e-4, mx = -INFINITY, sum = 0;
                for (int j = 0; j < V; j++) mx = fmax(mx, x[j] + (j == i ? h : 0));
                for (int j = 0; j < V; j++) sum += exp(x[j] + (j == i ? h : 0) - mx);
                L[sgn] = (mx + log(sum) - (x[t[0]] + (t[0] == i ? h : 0))) * gs;
            }
            worst = fmax(worst, fabs((L[0] - L[1]) / 2e-4 - d_n[i]));
        }
        CHECK_MSG(worst < 1e-6, "CE gradient vs finite differences: %g", worst);
    }
    lm_free(x);
    free(t);
    free(loss_n);
    free(d_n);
}

/* ---------------- AdamW ---------------- */
static void adamw_case_(size_t n, float lr, float b1, float b2, float eps, float wd, double LR, double B1,
                        double B2, double WD) {
    float *p = kt_randn(n, 1), *m = kt_alloc(n), *v = kt_alloc(n);
    float *pr = kt_copy(p, n), *mr = kt_alloc(n), *vr = kt_alloc(n);
    double *pd = malloc(n * sizeof(double)), *md = calloc(n, sizeof(double)), *vd = calloc(n, sizeof(double));
    for (size_t i = 0; i < n; i++) pd[i] = p[i];
    for (int step = 1; step <= 6; step++) {
        float *g = kt_randn(n, step == 3 ? 1e-6f : 0.1f);
        lm_adamw_update(p, g, m, v, n, lr, b1, b2, eps, wd, step);
        lm_adamw_update_ref(pr, g, mr, vr, n, lr, b1, b2, eps, wd, step, 1.0f);
        /* the textbook form (decoupled decay first, bias-corrected moments) */
        /* hyperparameters as the decimals written in the call (Python floats) */
        double bc1 = 1 - pow(B1, step), bc2 = 1 - pow(B2, step);
        for (size_t i = 0; i < n; i++) {
            md[i] = B1 * md[i] + (1 - B1) * g[i];
            vd[i] = B2 * vd[i] + (1 - B2) * (double)g[i] * g[i];
            pd[i] -= LR * WD * pd[i];
            pd[i] -= LR * (md[i] / bc1) / (sqrt(vd[i] / bc2) + eps);
        }
        lm_free(g);
    }
    /* floors at each tensor's scale (p ~ 1, m ~ 0.1, v ~ 0.01): the fast
     * path may fuse multiply-adds, so near-zero entries differ in the last bits */
    KT_CLOSE(p, pr, n, 1.0, 1e-6, "adamw param fast vs ref");
    KT_CLOSE(m, mr, n, 1e-2, 2e-6, "adamw m fast vs ref");
    KT_CLOSE(v, vr, n, 1e-3, 1e-6, "adamw v fast vs ref");
    double ep = 0, em = 0, ev = 0; /* m floors at 1e-2 (its scale): it cancels to ~0 */
    for (size_t i = 0; i < n; i++) {
        ep = fmax(ep, fabs(pr[i] - pd[i]) / fmax(fabs(pd[i]), 1e-3));
        em = fmax(em, fabs(mr[i] - md[i]) / fmax(fabs(md[i]), 1e-2));
        ev = fmax(ev, fabs(vr[i] - vd[i]) / fmax(fabs(vd[i]), 1e-12));
    }
    CHECK_MSG(ep <= 1e-5 && em <= 1e-5 && ev <= 1e-5, "adamw ref vs double n=%zu: p %.3g m %.3g v %.3g", n,
              ep, em, ev);
    lm_free(p); lm_free(m); lm_free(v); lm_free(pr); lm_free(mr); lm_free(vr);
    free(pd); free(md); free(vd);
}

#define adamw_case(n, lr, b1, b2, eps, wd) adamw_case_(n, lr##f, b1##f, b2##f, eps##f, wd##f, lr, b1, b2, wd)

/* The scaled step equals the plain step on gradients scaled in place (what
 * lm_clip_grad_norm leaves), on the fast path and the reference. */
static void adamw_scaled_case(size_t n, float scale) {
    float *g = kt_randn(n, 0.3f), *gs = kt_copy(g, n);
    lm_scale(gs, scale, n);
    float *p[3], *m[3], *v[3];
    for (int k = 0; k < 3; k++) p[k] = kt_randn(n, 1), m[k] = kt_alloc(n), v[k] = kt_alloc(n);
    for (int k = 1; k < 3; k++) memcpy(p[k], p[0], n * sizeof(float));
    for (int step = 1; step <= 2; step++) {
        lm_adamw_update(p[0], gs, m[0], v[0], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step);
        lm_adamw_update_scaled(p[1], g, m[1], v[1], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, scale);
        lm_adamw_update_ref(p[2], g, m[2], v[2], n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, step, scale);
    }
    for (int k = 1; k < 3; k++) {
        KT_CLOSE(p[k], p[0], n, 1.0, 1e-6, "adamw scaled param");
        KT_CLOSE(m[k], m[0], n, 1e-2, 2e-6, "adamw scaled m");
        KT_CLOSE(v[k], v[0], n, 1e-3, 1e-6, "adamw scaled v");
    }
    for (int k = 0; k < 3; k++) lm_free(p[k]), lm_free(m[k]), lm_free(v[k]);
    lm_free(g);
    lm_free(gs);
}

static void adamw_known_values(void) {
    /* step 1: m_hat = g, v_hat = g^2, so p -= lr * g / (|g| + eps) after decay */
    float p[3] = {1.0f, -2.0f, 0.5f}, g[3] = {0.5f, -0.25f, 0.0f}, m[3] = {0}, v[3] = {0};
    lm_adamw_update(p, g, m, v, 3, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
    CHECK(fabsf(p[0] - (1.0f * (1 - 0.001f) - 0.1f)) < 1e-6f);
    CHECK(fabsf(p[1] - (-2.0f * (1 - 0.001f) + 0.1f)) < 1e-6f);
    CHECK(fabsf(p[2] - 0.5f * (1 - 0.001f)) < 1e-7f);
    CHECK_MSG(fabsf(m[0] - 0.05f) < 1e-8f && fabsf(v[0] - 0.00025f) < 1e-11f, "m %.9g v %.9g", m[0], v[0]);
}

static void norm_scale_tests(size_t n) {
    float *x = kt_randn(n, 3), *y = kt_copy(x, n);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    double a = lm_sum_squares(x, n), r = lm_sum_squares_ref(x, n);
    CHECK_MSG(fabs(a - s) <= 1e-12 * s && fabs(r - s) <= 1e-12 * s, "sum_squares n=%zu: %.17g %.17g %.17g", n, a, r, s);
    lm_scale(x, 0.37f, n);
    lm_scale_ref(y, 0.37f, n);
    CHECK(memcmp(x, y, n * sizeof(float)) == 0);
    lm_free(x);
    lm_free(y);
}

static void all_tests(void) {
    ce_case(7, 101, 0.0f, 3.0f);
    ce_case(5, 17, 1000.0f, 10.0f);
    ce_case(4, 50257, -30.0f, 2.0f);
    ce_case(1, 1, 0.0f, 1.0f);
    adamw_case(1, 1e-3, 0.9, 0.999, 1e-8, 0.1);
    adamw_case(37, 6e-4, 0.9, 0.95, 1e-8, 0.1);
    adamw_case(100003, 1e-2, 0.8, 0.99, 1e-6, 0.0);
    adamw_known_values();
    adamw_scaled_case(1, 0.25f);
    adamw_scaled_case(100003, 0.37f);
    norm_scale_tests(1);
    norm_scale_tests(31);
    norm_scale_tests(100003);
}

int main(void) {
    lm_rng_seed(&kt_rng, 5, 0);
    kt_for_each_level(all_tests);
    lm_kernels_force_scalar(1); /* the public switch reaches the references too */
    CHECK(lm_simd_level() == LM_SIMD_SCALAR);
    lm_kernels_force_scalar(0);
    TEST_MAIN_END();
}

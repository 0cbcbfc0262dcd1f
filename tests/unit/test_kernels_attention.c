/* Fused attention against a naive reference written here that materializes
 * the [T, T] softmax in double: forward (out, lse) and backward (dq, dk, dv
 * from P, dP, dS = P*(dP - rowsum(P*dP))). Covers GPT-2's fused qkv buffer
 * (strided q/k/v, gradients into one dqkv buffer), grouped-query heads,
 * sliding windows, bidirectional attention with a key mask (including a row
 * with no valid key), head sizes around the SIMD width and tile sizes.
 * Tolerances: forward rel err <= 1e-5, backward <= 1e-4, with the floor at
 * the reference's RMS (ds = p (dp - D) cancels, and the kernels work from
 * fp32 out and lse, so near-zero gradients carry absolute errors), both
 * for the dispatching kernel and for the scalar reference; plus the naive
 * backward itself against finite differences. Probability dropout (rate
 * 0.25) on a subset of the cases: the naive reference applies the same
 * hashed masks to its materialized P. */
#include "kernels_util.h"

#include "kernels/dropout_hash.h"

static float g_dropout; /* the cases' attention-probability dropout */

typedef struct {
    const char *name;
    int B, T, NH, NKV, HS, causal, window, fused, masked;
} attn_case;

static int allowed(const lm_attention_shape *s, int b, int i, int j) {
    if (s->causal && j > i) return 0;
    if (s->window > 0 && abs(i - j) >= s->window) return 0;
    if (s->key_valid && !s->key_valid[b * s->T + j]) return 0;
    return 1;
}

#define QI(b, t, h) (((size_t)(b) * s->T + (t)) * s->q_stride + (size_t)(h) * s->HS)
#define KI(b, t, g) (((size_t)(b) * s->T + (t)) * s->kv_stride + (size_t)(g) * s->HS)
#define OI(b, t, h) (((size_t)(b) * s->T + (t)) * s->NH * s->HS + (size_t)(h) * s->HS)

/* Naive: P = softmax(scale * Q K^T + mask) materialized, all in double.
 * out/lse in double; if dout != NULL, also the gradients (added to dq/dk/dv). */
static void naive(const lm_attention_shape *s, const float *q, const float *k, const float *v,
                  double *out, double *lse, const float *dout, double *dq, double *dk, double *dv) {
    int T = s->T, HS = s->HS, group = s->NH / s->NKV;
    double *S = calloc((size_t)T * T, sizeof(double)), *P = calloc((size_t)T * T, sizeof(double));
    double *dP = calloc((size_t)T * T, sizeof(double)), *F = calloc((size_t)T * T, sizeof(double));
    uint64_t dbase = lm_drop_base(s->dropout_seed, s->dropout_stream);
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->NH; h++) {
            int g = h / group;
            for (int i = 0; i < T; i++) {
                double mx = -INFINITY;
                for (int j = 0; j < T; j++) {
                    double sc = 0;
                    for (int d = 0; d < HS; d++) sc += (double)q[QI(b, i, h) + d] * k[KI(b, j, g) + d];
                    S[i * T + j] = allowed(s, b, i, j) ? sc * s->scale : -INFINITY;
                    if (S[i * T + j] > mx) mx = S[i * T + j];
                }
                double sum = 0;
                for (int j = 0; j < T; j++) sum += mx == -INFINITY ? 0 : exp(S[i * T + j] - mx);
                for (int j = 0; j < T; j++) {
                    P[i * T + j] = sum > 0 ? exp(S[i * T + j] - mx) / sum : 0;
                    uint64_t idx = (((uint64_t)b * s->NH + h) * T + i) * T + j;
                    F[i * T + j] = !(s->dropout > 0) ? 1.0
                                   : lm_drop_keep(dbase, idx, lm_drop_threshold(s->dropout)) ? 1.0 / (1.0 - s->dropout) : 0.0;
                }
                lse[((size_t)b * s->NH + h) * T + i] = sum > 0 ? mx + log(sum) : -INFINITY;
                for (int d = 0; d < HS; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++) o += F[i * T + j] * P[i * T + j] * v[KI(b, j, g) + d];
                    out[OI(b, i, h) + d] = o;
                }
            }
            if (!dout) continue;
            for (int i = 0; i < T; i++) {
                double rs = 0;
                for (int j = 0; j < T; j++) {
                    double x = 0;
                    for (int d = 0; d < HS; d++) x += (double)dout[OI(b, i, h) + d] * v[KI(b, j, g) + d];
                    dP[i * T + j] = F[i * T + j] * x;
                    rs += dP[i * T + j] * P[i * T + j];
                }
                for (int j = 0; j < T; j++) {
                    double ds = P[i * T + j] * (dP[i * T + j] - rs) * s->scale;
                    for (int d = 0; d < HS; d++) {
                        dq[QI(b, i, h) + d] += ds * k[KI(b, j, g) + d];
                        dk[KI(b, j, g) + d] += ds * q[QI(b, i, h) + d];
                        dv[KI(b, j, g) + d] += F[i * T + j] * P[i * T + j] * dout[OI(b, i, h) + d];
                    }
                }
            }
        }
    free(S);
    free(P);
    free(dP);
    free(F);
}

static double rms_d(const double *b, size_t n) {
    double s = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0) s += b[i] * b[i], m++;
    return m ? sqrt(s / m) : 1.0;
}

/* max |a - b| / max(|b|, floor) with a float, b double; floor is a fraction
 * of the reference's RMS (over its nonzero entries), so near-zero values from
 * cancellation are compared at the vector's scale. */
static double err_fd(const float *a, const double *b, size_t n, double floor) {
    double w = 0;
    floor *= rms_d(b, n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - b[i]) / fmax(fabs(b[i]), floor);
        if (!(e <= w)) w = e;
    }
    return w;
}

/* Gradient increments (after - before) compared with the naive gradient,
 * only on the head slots that hold the tensor (the fused buffer's other
 * slots must stay untouched). */
static double grad_err(const float *after, const float *before, const double *naive_g, size_t n,
                       double floor) {
    double w = 0;
    floor *= rms_d(naive_g, n);
    for (size_t i = 0; i < n; i++) {
        double e = fabs(((double)after[i] - before[i]) - naive_g[i]) / fmax(fabs(naive_g[i]), floor);
        if (!(e <= w)) w = e;
    }
    return w;
}

static void run_case(const attn_case *c) {
    lm_attention_shape sh = {0}, *s = &sh;
    s->B = c->B; s->T = c->T; s->NH = c->NH; s->NKV = c->NKV; s->HS = c->HS;
    s->causal = c->causal; s->window = c->window; s->scale = 1.0f / sqrtf((float)c->HS);
    s->dropout = g_dropout; s->dropout_seed = 7; s->dropout_stream = 3;
    int C = c->NH * c->HS, CKV = c->NKV * c->HS;
    size_t BT = (size_t)c->B * c->T;
    float *q, *k, *v;
    float *buf, *gbuf = NULL, *qb = NULL, *kb = NULL, *vb = NULL, *dqb = NULL, *dkb = NULL, *dvb = NULL;
    size_t qn, kvn; /* sizes of the strided regions */
    if (c->fused) { /* one [B, T, C + 2*CKV] buffer like GPT-2's qkv */
        int W = C + 2 * CKV;
        s->q_stride = s->kv_stride = W;
        buf = kt_randn(BT * W, 1.0f);
        gbuf = kt_randn(BT * W, 0.5f);
        q = buf; k = buf + C; v = buf + C + CKV;
        qn = kvn = BT * W;
    } else {
        s->q_stride = C + 3; /* padded rows, not fused */
        s->kv_stride = CKV + 5;
        qb = kt_randn(BT * s->q_stride, 1.0f); kb = kt_randn(BT * s->kv_stride, 1.0f);
        vb = kt_randn(BT * s->kv_stride, 1.0f);
        dqb = kt_randn(BT * s->q_stride, 0.5f); dkb = kt_randn(BT * s->kv_stride, 0.5f);
        dvb = kt_randn(BT * s->kv_stride, 0.5f);
        q = qb; k = kb; v = vb;
        buf = NULL;
        qn = BT * s->q_stride;
        kvn = BT * s->kv_stride;
    }
    uint8_t *mask = NULL;
    if (c->masked) {
        mask = malloc(BT);
        for (size_t i = 0; i < BT; i++) mask[i] = lm_rng_below(&kt_rng, 4) != 0;
        if (c->B > 1) /* the last batch row: no valid key at all */
            for (int t = 0; t < c->T; t++) mask[(size_t)(c->B - 1) * c->T + t] = 0;
        s->key_valid = mask;
    }
    size_t on = BT * C, ln = (size_t)c->B * c->NH * c->T;
    float *out = kt_alloc(on), *lse = kt_alloc(ln), *out_r = kt_alloc(on), *lse_r = kt_alloc(ln);
    double *out_n = calloc(on, sizeof(double)), *lse_n = calloc(ln, sizeof(double));
    float *dout = kt_randn(on, 1.0f);
    /* naive gradients live in buffers shaped like q / k / v (strided) */
    size_t qspan = qn, kspan = c->fused ? qn : kvn;
    double *dq_n = calloc(qspan, sizeof(double)), *dk_n = calloc(kspan, sizeof(double)),
           *dv_n = calloc(kspan, sizeof(double));
    /* with the fused layout dq_n/dk_n/dv_n are offset like dq/dk/dv */
    double *dqn = dq_n, *dkn = dk_n + (c->fused ? C : 0), *dvn = dv_n + (c->fused ? C + CKV : 0);
    naive(s, q, k, v, out_n, lse_n, dout, dqn, dkn, dvn);

    char what[160];
    for (int impl = 0; impl < 2; impl++) { /* 0: dispatching kernel, 1: scalar reference */
        const char *iname = impl ? "ref" : "fast";
        if (impl) lm_attention_forward_ref(out_r, lse_r, q, k, v, s);
        else lm_attention_forward(out_r, lse_r, q, k, v, s);
        double eo = err_fd(out_r, out_n, on, 1.0), el = 0;
        for (size_t i = 0; i < ln; i++) {
            if (lse_n[i] == -INFINITY) {
                if (lse_r[i] != -INFINITY) el = INFINITY;
                continue;
            }
            double e = fabs(lse_r[i] - lse_n[i]) / fmax(fabs(lse_n[i]), 1.0);
            if (!(e <= el)) el = e;
        }
        snprintf(what, sizeof what, "%s %s forward: out err %.3g lse err %.3g", c->name, iname, eo, el);
        CHECK_MSG(eo <= 1e-5 && el <= 1e-5, "%s", what);
        if (getenv("KT_VERBOSE")) printf("%s\n", what);
        if (impl == 0) memcpy(out, out_r, on * sizeof(float)), memcpy(lse, lse_r, ln * sizeof(float));

        /* backward accumulates into the pre-filled gradient buffers */
        float *g0, *g1 = NULL, *g2 = NULL, *a0, *a1 = NULL, *a2 = NULL;
        float *tdq, *tdk, *tdv;
        if (c->fused) {
            g0 = kt_copy(gbuf, qn);
            tdq = g0; tdk = g0 + C; tdv = g0 + C + CKV;
        } else {
            g0 = kt_copy(dqb, qn); g1 = kt_copy(dkb, kvn); g2 = kt_copy(dvb, kvn);
            tdq = g0; tdk = g1; tdv = g2;
        }
        if (impl) {
            lm_attention_backward_ref(tdq, tdk, tdv, dout, q, k, v, out, lse, s);
        } else {
            size_t ns = lm_attention_backward_scratch(s);
            float *scratch = kt_alloc(ns);
            lm_attention_backward(tdq, tdk, tdv, dout, q, k, v, out, lse, s, scratch);
            lm_free(scratch);
        }
        double eq, ek, ev;
        if (c->fused) {
            /* the whole fused buffer: q slots vs dq_n, k slots vs dk_n, ... */
            double *full = calloc(qn, sizeof(double));
            for (size_t i = 0; i < qn; i++) full[i] = dq_n[i] + dk_n[i] + dv_n[i];
            eq = ek = ev = grad_err(g0, gbuf, full, qn, 1.0);
            free(full);
            a0 = g0;
        } else {
            eq = grad_err(g0, dqb, dq_n, qn, 1.0);
            ek = grad_err(g1, dkb, dk_n, kvn, 1.0);
            ev = grad_err(g2, dvb, dv_n, kvn, 1.0);
            a0 = g0; a1 = g1; a2 = g2;
        }
        snprintf(what, sizeof what, "%s %s backward: dq %.3g dk %.3g dv %.3g", c->name, iname, eq, ek, ev);
        CHECK_MSG(eq <= 1e-4 && ek <= 1e-4 && ev <= 1e-4, "%s", what);
        if (getenv("KT_VERBOSE")) printf("%s\n", what);
        lm_free(a0);
        if (a1) lm_free(a1);
        if (a2) lm_free(a2);
    }
    lm_free(out); lm_free(lse); lm_free(out_r); lm_free(lse_r); lm_free(dout);
    free(out_n); free(lse_n); free(dq_n); free(dk_n); free(dv_n); free(mask);
    if (buf) { lm_free(buf); lm_free(gbuf); }
    if (qb) { lm_free(qb); lm_free(kb); lm_free(vb); lm_free(dqb); lm_free(dkb); lm_free(dvb); }
}

/* The naive backward itself against central differences of the naive
 * forward, L = sum(out * R), on a tiny GQA + window case. */
static void naive_fd_check(void) {
    lm_attention_shape sh = {.B = 1, .T = 6, .NH = 2, .NKV = 1, .HS = 3, .q_stride = 6, .kv_stride = 3,
                             .scale = 0.6f, .causal = 1, .window = 4, .key_valid = NULL};
    lm_attention_shape *s = &sh;
    size_t qn = 6 * 6, kn = 6 * 3, on = 6 * 6, ln = 12;
    float *q = kt_randn(qn, 1), *k = kt_randn(kn, 1), *v = kt_randn(kn, 1), *R = kt_randn(on, 1);
    double *out = calloc(on, sizeof(double)), *lse = calloc(ln, sizeof(double));
    double *dq = calloc(qn, sizeof(double)), *dk = calloc(kn, sizeof(double)), *dv = calloc(kn, sizeof(double));
    naive(s, q, k, v, out, lse, R, dq, dk, dv);
    float *ts[3] = {q, k, v};
    double *gs[3] = {dq, dk, dv};
    size_t ns[3] = {qn, kn, kn};
    double worst = 0;
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < ns[t]; i++) {
            float save = ts[t][i], h = 1e-2f;
            double L[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                ts[t][i] = save + (sgn ? -h : h);
                naive(s, q, k, v, out, lse, NULL, NULL, NULL, NULL);
                L[sgn] = 0;
                for (size_t o = 0; o < on; o++) L[sgn] += out[o] * R[o];
            }
            ts[t][i] = save;
            double g = (L[0] - L[1]) / (2 * h);
            worst = fmax(worst, fabs(g - gs[t][i]) / fmax(1.0, fabs(g)));
        }
    CHECK_MSG(worst < 1e-3, "naive attention backward vs finite differences: %g", worst);
    lm_free(q); lm_free(k); lm_free(v); lm_free(R);
    free(out); free(lse); free(dq); free(dk); free(dv);
}

static const attn_case cases[] = {
        /* name                 B  T   NH NKV HS causal window fused masked */
        {"gpt2 fused qkv",      2, 13, 3, 3,  12, 1, 0,  1, 0},
        {"gqa window",          2, 17, 4, 2,  12, 1, 5,  0, 0},
        {"mqa bidir masked",    3, 11, 4, 1,  16, 0, 0,  0, 1},
        {"bidir window masked", 2, 19, 2, 2,  7,  0, 4,  0, 1},
        {"hs64 long",           1, 150, 2, 2, 64, 1, 0,  1, 0},
        {"hs17 gqa long",       2, 97, 6, 3,  17, 1, 0,  0, 0},
        {"hs33 bidir long",     1, 90, 2, 1,  33, 0, 0,  0, 1},
        {"hs128 window long",   1, 140, 2, 1, 128, 1, 50, 0, 0},
        {"causal masked",       2, 23, 2, 2,  8,  1, 0,  1, 1},
        {"T1",                  2, 1, 2, 2,   5,  1, 0,  0, 0},
        {"hs300 over the cap",  1, 9, 2, 1,  300, 1, 0,  0, 0},
        {"gpt2 T=200 4 heads",  2, 200, 4, 4, 64, 1, 0,  1, 0},
        {"long T=600 gqa",      1, 600, 2, 1, 64, 1, 0,  0, 0},
};

static void all_cases(void) {
    g_dropout = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
    /* With probability dropout: every case small enough for the naive O(T^2) reference to stay quick. */
    g_dropout = 0.25f;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].T <= 200) run_case(&cases[i]);
    g_dropout = 0;
}

int main(void) {
    lm_rng_seed(&kt_rng, 99, 0);
    naive_fd_check();
    kt_for_each_level(all_cases);
    TEST_MAIN_END();
}

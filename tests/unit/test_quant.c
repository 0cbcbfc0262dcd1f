/* Quantized types: layouts against ggml's reference (gguf-py goldens),
 * round-trip error bounds, SIMD vs scalar, and the matmul on odd shapes. */
#include "lmkit/quant.h"
#include "test.h"

#include <stdint.h>

static void *load(const char *rel, size_t *n) {
    char *buf = NULL;
    if (lm_read_file(test_src_path(rel), &buf, n) != LM_OK) {
        fprintf(stderr, "%s\n", lm_last_error());
        return NULL;
    }
    return buf;
}

static void fill_normal(float *x, size_t n, uint64_t seed) {
    lm_rng r;
    lm_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++) x[i] = lm_rng_normal(&r);
}

/* Dequantizing blocks made by ggml's reference gives ggml's values. */
static void test_layouts(void) {
    static const struct { lm_qtype t; const char *name; } types[] = {
        {LM_QT_Q8_0, "q8_0"}, {LM_QT_Q4_0, "q4_0"}, {LM_QT_Q4_K, "q4_k"}, {LM_QT_Q6_K, "q6_k"}};
    for (size_t i = 0; i < 4; i++) {
        char p1[128], p2[128];
        snprintf(p1, sizeof p1, "tests/golden/quant/%s.blocks", types[i].name);
        snprintf(p2, sizeof p2, "tests/golden/quant/%s.f32", types[i].name);
        size_t nb, nf;
        void *blocks = load(p1, &nb);
        float *want = load(p2, &nf);
        CHECK(blocks && want);
        if (!blocks || !want) continue;
        int k = (int)(nf / 4);
        CHECK(nb == lm_qtype_row_bytes(types[i].t, k));
        float *got = lm_alloc(nf);
        CHECK_OK(lm_dequantize(types[i].t, blocks, got, 1, k));
        double err = test_max_rel_err(got, want, (size_t)k, 1e-6);
        CHECK_MSG(err <= 1e-6, "%s dequantize vs gguf-py: %g", types[i].name, err);
        lm_free(got);
        free(blocks);
        free(want);
    }
    /* Q8_0 and Q4_0 quantizers are fixed by the format: bit-exact. */
    static const char *simple[] = {"q8_0", "q4_0"};
    for (int i = 0; i < 2; i++) {
        char p1[128], p2[128];
        snprintf(p1, sizeof p1, "tests/golden/quant/%s_src.f32", simple[i]);
        snprintf(p2, sizeof p2, "tests/golden/quant/%s_q.blocks", simple[i]);
        size_t nf, nb;
        float *src = load(p1, &nf);
        uint8_t *want = load(p2, &nb);
        CHECK(src && want);
        if (!src || !want) continue;
        lm_qtype t;
        CHECK_OK(lm_qtype_from_name(simple[i], &t));
        uint8_t *got = lm_alloc(nb);
        CHECK_OK(lm_quantize(t, src, got, 1, (int64_t)(nf / 4)));
        CHECK_MSG(!memcmp(got, want, nb), "%s quantize differs from gguf-py", simple[i]);
        lm_free(got);
        free(src);
        free(want);
    }
}

/* Round trip of standard-normal data: relative L2 error bounds per type
 * (measured: f16 2.0e-4, bf16 1.7e-3, q8_0 5.3e-3, q6_k 1.7e-2, q4_k 7.2e-2,
 * q4_0 8.6e-2 -- near the ideal uniform quantizer for Gaussian data at
 * those bit widths; bounds leave ~15-25% headroom). */
static void test_round_trip(void) {
    static const struct { lm_qtype t; double bound; } cases[] = {
        {LM_QT_F32, 0}, {LM_QT_F16, 2.5e-4}, {LM_QT_BF16, 2.1e-3}, {LM_QT_Q8_0, 6.5e-3},
        {LM_QT_Q6_K, 2.1e-2}, {LM_QT_Q4_K, 8.5e-2}, {LM_QT_Q4_0, 1.05e-1}};
    const int rows = 5, k = 768;
    float *x = lm_alloc(sizeof(float) * rows * k), *y = lm_alloc(sizeof(float) * rows * k);
    fill_normal(x, (size_t)rows * k, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lm_qtype t = cases[i].t;
        void *q = lm_alloc(lm_qtype_row_bytes(t, k) * rows);
        CHECK_OK(lm_quantize(t, x, q, rows, k));
        CHECK_OK(lm_dequantize(t, q, y, rows, k));
        double e = test_rel_l2(y, x, (size_t)rows * k);
        printf("round trip %-5s rel L2 %.3g (bound %.3g)\n", lm_qtype_name(t), e, cases[i].bound);
        CHECK_MSG(e <= cases[i].bound, "%s round-trip error %g > %g", lm_qtype_name(t), e, cases[i].bound);
        lm_free(q);
    }
    lm_free(x);
    lm_free(y);
}

/* lm_quantize of type t over x[0..k) under the best ISA gives the scalar
 * reference's bytes. */
static void check_quantize_matches_scalar(lm_qtype t, const float *x, int k) {
    size_t rb = lm_qtype_row_bytes(t, k);
    uint8_t *want = lm_alloc(rb), *got = lm_alloc(rb);
    lm_quant_set_isa(LM_ISA_SCALAR);
    CHECK_OK(lm_quantize(t, x, want, 1, k));
    lm_quant_set_isa(LM_ISA_BEST);
    CHECK_OK(lm_quantize(t, x, got, 1, k));
    CHECK_MSG(!memcmp(got, want, rb), "%s quantize (%s) differs from scalar", lm_qtype_name(t), lm_isa_name(lm_quant_isa()));
    lm_free(want);
    lm_free(got);
}

/* Quantizers with a SIMD version give the scalar reference's bytes: normal
 * data at several scales, a zero block, and values on rounding ties
 * (x * (127 / amax) = n + 0.5 exactly). */
static void test_simd_quantize(void) {
    const int k = 32 * 9;
    float *x = lm_alloc(sizeof(float) * k);
    fill_normal(x, (size_t)k, 7);
    for (int i = 0; i < 32; i++) x[32 + i] *= 1e-6f, x[64 + i] *= 1e5f, x[96 + i] = 0.0f;
    for (int i = 0; i < 32; i++) x[128 + i] = i == 0 ? 127.0f : (float)(i % 16) + 0.5f; /* amax 127: id = 1 */
    check_quantize_matches_scalar(LM_QT_Q8_0, x, k);
    /* Q8_K (blocks of 256, with sums of 16): the same values over 1.125
     * of its blocks, padded to 3 blocks with more normal data */
    const int kk = 256 * 3;
    float *xk = lm_alloc(sizeof(float) * kk);
    fill_normal(xk, (size_t)kk, 9);
    memcpy(xk + 256, x, sizeof(float) * (size_t)k);
    check_quantize_matches_scalar(LM_QT_Q8_K, xk, kk);
    lm_free(xk);
    /* F16 rows: normal values at many scales, subnormals, overflow to
     * infinity, halfway cases (1 + 2^-11: ties to even), an odd length */
    enum { NH = 77 };
    float h[NH];
    uint16_t h16[NH];
    for (int i = 0; i < NH; i++) h[i] = ldexpf(x[i], (i % 40) - 28);
    h[0] = 1.0f + ldexpf(1.0f, -11), h[1] = 1.0f + 3 * ldexpf(1.0f, -11), h[2] = 70000.0f, h[3] = -1e-7f, h[4] = 65519.0f;
    lm_f32_to_f16_row(h, h16, NH);
    int same = 1;
    for (int i = 0; i < NH; i++) same &= h16[i] == lm_f32_to_f16(h[i]);
    CHECK_MSG(same, "lm_f32_to_f16_row (%s) differs from lm_f32_to_f16", lm_isa_name(lm_quant_isa()));
    lm_free(x);
}

/* Reference: y = dequant(W) x in double. */
static void ref_matmul(float *y, const float *Wd, int rows, int K, const float *x, int n) {
    for (int j = 0; j < n; j++)
        for (int r = 0; r < rows; r++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)Wd[(size_t)r * K + k] * x[(size_t)j * K + k];
            y[(size_t)j * rows + r] = (float)s;
        }
}

static double mean_abs(const float *y, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += fabs(y[i]);
    return s / (double)n;
}

static void test_matmul(void) {
    static const lm_qtype types[] = {LM_QT_F32, LM_QT_F16, LM_QT_BF16, LM_QT_Q8_0, LM_QT_Q4_0, LM_QT_Q4_K, LM_QT_Q6_K};
    const int rows = 37; /* odd: no thread or tile gets an even share */
    static const int ns[] = {1, 3, 19}; /* 19: GEMM path (with AVX-512, Q8_0 / Q4_0 / Q4_K: decode path up to 31), not a multiple of 4 */
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        lm_qtype t = types[ti];
        /* Float types also get a K that is not a multiple of 16 (tails). */
        /* 32-element types get 19 blocks (Q4_0's four-block steps leave a
         * pair and a single block, Q8_0's pairs a single), K types three. */
        int K = lm_qtype_block_elems(t) == 1 ? 283 : lm_qtype_block_elems(t) == 32 ? 608 : 768;
        float *W = lm_alloc(sizeof(float) * rows * K), *Wd = lm_alloc(sizeof(float) * rows * K);
        float *x = lm_alloc(sizeof(float) * 19 * K);
        fill_normal(W, (size_t)rows * K, 2 + ti);
        fill_normal(x, (size_t)19 * K, 100 + ti);
        void *q = lm_alloc(lm_qtype_row_bytes(t, K) * rows);
        CHECK_OK(lm_quantize(t, W, q, rows, K));
        CHECK_OK(lm_dequantize(t, q, Wd, rows, K));
        for (size_t ni = 0; ni < 3; ni++) {
            int n = ns[ni];
            float *want = lm_alloc(sizeof(float) * n * rows), *got = lm_alloc(sizeof(float) * n * rows);
            float *scalar = lm_alloc(sizeof(float) * n * rows);
            void *scratch = lm_alloc(lm_qmatmul_scratch(t, n, K) + 64);
            ref_matmul(want, Wd, rows, K, x, n);
            lm_quant_set_isa(LM_ISA_SCALAR);
            lm_qmatmul(scalar, q, t, rows, K, x, n, scratch);
            double fl = mean_abs(want, (size_t)n * rows);
            /* Activations quantized to 8 bits (small n, integer types) add
             * ~1-2% (max over outputs); float paths only rounding. */
            int act_q = n < 16 && lm_qtype_vec_type(t) != LM_QT_F32;
            double bound = act_q ? 3e-2 : 1e-4;
            double e = test_max_rel_err(scalar, want, (size_t)n * rows, fl);
            CHECK_MSG(e <= bound, "%s n=%d scalar vs f64 reference: %g > %g", lm_qtype_name(t), n, e, bound);
            for (lm_isa isa = LM_ISA_AVX2; isa <= LM_ISA_AVX512; isa++) {
                lm_quant_set_isa(isa);
                if (lm_quant_isa() != isa) continue; /* CPU lacks it */
                lm_qmatmul(got, q, t, rows, K, x, n, scratch);
                /* From 16 rows scalar takes the float GEMM, while AVX-512
                 * quantizes the activations on integer types (the int8
                 * GEMM, or for Q8_0 / Q4_0 / Q4_K up to 31 rows the
                 * batched decode path): those are bounded against the reference
                 * like the small-n paths — 4e-2 for the max over 703
                 * outputs, as Q4_K's activations share one scale per 256
                 * (0.034 measured here); everything else matches scalar
                 * closely. */
                int int8_acts = isa == LM_ISA_AVX512 && n >= 16 && (t == LM_QT_Q8_0 || t == LM_QT_Q4_0 || t == LM_QT_Q4_K);
                double es = int8_acts ? test_max_rel_err(got, want, (size_t)n * rows, fl)
                                      : test_max_rel_err(got, scalar, (size_t)n * rows, fl);
                CHECK_MSG(es <= (int8_acts ? 4e-2 : 1e-4), "%s n=%d %s vs %s: %g", lm_qtype_name(t), n, lm_isa_name(isa),
                          int8_acts ? "f64 reference" : "scalar", es);
            }
            lm_quant_set_isa(LM_ISA_BEST);
            lm_free(want);
            lm_free(got);
            lm_free(scalar);
            lm_free(scratch);
        }
        lm_free(W);
        lm_free(Wd);
        lm_free(x);
        lm_free(q);
    }
}

static void test_errors(void) {
    lm_qtype t;
    CHECK(lm_qtype_from_name("q5_1", &t) == LM_ERR_ARG);
    CHECK(strstr(lm_last_error(), "q5_1") != NULL);
    CHECK_OK(lm_qtype_from_name("Q4_K", &t));
    CHECK(t == LM_QT_Q4_K);
    float x[300] = {0};
    uint8_t buf[1024];
    CHECK(lm_quantize(LM_QT_Q4_K, x, buf, 1, 300) == LM_ERR_ARG);
    CHECK(strstr(lm_last_error(), "300") != NULL);
    CHECK(lm_quantize((lm_qtype)7, x, buf, 1, 32) == LM_ERR_ARG);
    /* All-zero rows quantize to zeros, not NaN. */
    float y[256];
    for (lm_qtype q = 0; q <= LM_QT_BF16; q++) {
        if (!lm_qtype_valid(q) || q == LM_QT_Q8_K) continue;
        CHECK_OK(lm_quantize(q, x, buf, 1, 256));
        CHECK_OK(lm_dequantize(q, buf, y, 1, 256));
        int ok = 1;
        for (int i = 0; i < 256; i++) ok &= y[i] == 0;
        CHECK_MSG(ok, "%s zeros", lm_qtype_name(q));
    }
}

/* lm_qmatmul_group gives each matrix exactly what lm_qmatmul gives it
 * (same kernels, same order of sums; only the tasks are pooled), and for
 * several activation rows (batched decode: Q4_0 unpacks each weight row
 * once for up to four) what the scalar kernels give, within rounding. */
static void test_matmul_group(void) {
    static const lm_qtype types[] = {LM_QT_F16, LM_QT_BF16, LM_QT_Q8_0, LM_QT_Q4_0, LM_QT_Q4_K, LM_QT_Q6_K};
    /* activation rows: 1 (striped rows); 2; 4 + 1; 4 + 3; 9: F16's GEMM, 4 + 4 + 1 */
    static const int ns[] = {1, 2, 5, 7, 9};
    /* enough work for the threads at n = 1; 137 rows: 8 stripes of 18,
     * the last one short */
    const int K = 768, rows[3] = {300, 64, 137};
    float *x = lm_alloc(sizeof(float) * 9 * K);
    fill_normal(x, (size_t)9 * K, 7);
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        lm_qtype t = types[ti];
        void *W[3];
        float *one[3], *grouped[3], *scalar[3];
        for (int i = 0; i < 3; i++) {
            float *Wf = lm_alloc(sizeof(float) * rows[i] * K);
            fill_normal(Wf, (size_t)rows[i] * K, 30 + i);
            W[i] = lm_alloc(lm_qtype_row_bytes(t, K) * rows[i]);
            CHECK_OK(lm_quantize(t, Wf, W[i], rows[i], K));
            lm_free(Wf);
            one[i] = lm_alloc(sizeof(float) * 9 * rows[i]);
            grouped[i] = lm_alloc(sizeof(float) * 9 * rows[i]);
            scalar[i] = lm_alloc(sizeof(float) * 9 * rows[i]);
        }
        void *scratch = lm_alloc(lm_qmatmul_scratch(t, 9, K) + 64);
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
            int n = ns[ni];
            lm_quant_set_isa(LM_ISA_SCALAR);
            for (int i = 0; i < 3; i++) lm_qmatmul(scalar[i], W[i], t, rows[i], K, x, n, scratch);
            lm_quant_set_isa(LM_ISA_BEST);
            for (int i = 0; i < 3; i++) lm_qmatmul(one[i], W[i], t, rows[i], K, x, n, scratch);
            lm_qmatmul_group(3, grouped, (const void *const *)W, t, rows, K, x, n, scratch);
            for (int i = 0; i < 3; i++) {
                size_t cnt = (size_t)n * rows[i];
                CHECK_MSG(memcmp(one[i], grouped[i], sizeof(float) * cnt) == 0, "%s n=%d group matrix %d differs",
                          lm_qtype_name(t), n, i);
                double e = test_max_rel_err(grouped[i], scalar[i], cnt, mean_abs(scalar[i], cnt));
                CHECK_MSG(e <= 1e-4, "%s n=%d matrix %d vs scalar: %g", lm_qtype_name(t), n, i, e);
            }
        }
        for (int i = 0; i < 3; i++) {
            lm_free(W[i]);
            lm_free(one[i]);
            lm_free(grouped[i]);
            lm_free(scalar[i]);
        }
        lm_free(scratch);
    }
    lm_free(x);
}

int main(void) {
    printf("kernel ISA: %s\n", lm_isa_name(lm_quant_isa()));
    test_layouts();
    test_round_trip();
    test_simd_quantize();
    test_matmul();
    test_matmul_group();
    test_errors();
    TEST_MAIN_END();
}

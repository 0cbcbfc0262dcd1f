/* The engine's AVX-512 KV-cache attention (src/infer/kv_attention_avx512.c)
 * against a naive softmax in double over the same cache rows: head sizes
 * 16..128, key ranges shorter than one 16-key block, across block edges
 * and over several 256-key softmax chunks (the online rescaling), starts
 * past 0 (sliding windows), F32 and F16 rows, and scores spread wide
 * enough that the running max moves between chunks. Tolerance: 2e-6
 * relative to the output row's largest entry (the kernel sums in fp32 and
 * its exp is within ~1 ulp). Head sizes it has no kernel for return 0. */
#include "test.h"

#include "infer/kv_attention.h"
#include "lmkit/base.h"
#include "lmkit/kernels.h"

#include <stdint.h>

static lm_rng g_rng;

static void check_case(int hd, int start, int end, int f16, float spread) {
    const int stride = hd + 16; /* rows of a wider KV cache: other heads sit in between */
    size_t n = (size_t)end * stride;
    float *k = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *q = malloc((size_t)hd * sizeof(float));
    uint16_t *k16 = malloc(n * sizeof(uint16_t)), *v16 = malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) {
        k[i] = lm_rng_normal(&g_rng);
        v[i] = lm_rng_normal(&g_rng);
        k16[i] = lm_f32_to_f16(k[i]);
        v16[i] = lm_f32_to_f16(v[i]);
        if (f16) { /* the reference sees the values the kernel reads */
            k[i] = lm_f16_to_f32(k16[i]);
            v[i] = lm_f16_to_f32(v16[i]);
        }
    }
    for (int d = 0; d < hd; d++) q[d] = lm_rng_normal(&g_rng) * spread;
    float scale = 1.0f / sqrtf((float)hd);
    double *sc = malloc((size_t)end * sizeof(double)), *ref = calloc((size_t)hd, sizeof(double));
    double mx = -INFINITY, sum = 0;
    for (int t = start; t < end; t++) {
        double s = 0;
        for (int d = 0; d < hd; d++) s += (double)q[d] * k[(size_t)t * stride + d];
        sc[t] = s * scale;
        if (sc[t] > mx) mx = sc[t];
    }
    for (int t = start; t < end; t++) {
        double p = exp(sc[t] - mx);
        sum += p;
        for (int d = 0; d < hd; d++) ref[d] += p * v[(size_t)t * stride + d];
    }
    float *out = malloc((size_t)hd * sizeof(float));
    int ran = lm_kv_attention_avx512(out, q, hd, f16 ? (const void *)k16 : (const void *)k, f16 ? (const void *)v16 : (const void *)v,
                                     (size_t)stride, f16, start, end, scale);
    CHECK_MSG(ran, "hd %d: no kernel", hd);
    if (ran) {
        double top = 0, err = 0;
        for (int d = 0; d < hd; d++) top = fmax(top, fabs(ref[d] / sum));
        for (int d = 0; d < hd; d++) err = fmax(err, fabs(out[d] - ref[d] / sum));
        CHECK_MSG(err <= 2e-6 * top, "hd %d keys [%d, %d) %s spread %g: max err %.3g (top %.3g)", hd, start, end, f16 ? "f16" : "f32",
                  spread, err, top);
    }
    free(k), free(v), free(q), free(k16), free(v16), free(sc), free(ref), free(out);
}

int main(void) {
    const lm_cpu_features *f = lm_cpu();
    if (!(f->avx512f && f->avx512bw && f->avx512vl && f->fma && f->f16c)) {
        fprintf(stderr, "no AVX-512: the kernel is not used on this CPU\n");
        return 77;
    }
    lm_rng_seed(&g_rng, 7, 0);
    static const int hds[] = {16, 32, 64, 128};
    static const int ranges[][2] = {{0, 1}, {0, 5}, {0, 16}, {0, 17}, {3, 40}, {0, 256}, {0, 257}, {100, 613}, {0, 700}};
    for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
        for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++)
            for (int f16 = 0; f16 < 2; f16++)
                for (int wide = 0; wide < 2; wide++) check_case(hds[h], ranges[r][0], ranges[r][1], f16, wide ? 4.0f : 1.0f);
    /* no kernel: the caller keeps its own path */
    float q[160] = {0}, out[160], kv[160] = {0};
    CHECK(lm_kv_attention_avx512(out, q, 40, kv, kv, 40, 0, 0, 1, 1.0f) == 0);
    CHECK(lm_kv_attention_avx512(out, q, 144, kv, kv, 144, 0, 0, 1, 1.0f) == 0);
    TEST_MAIN_END();
}

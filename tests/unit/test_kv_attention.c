/* The engine's KV-cache attention (src/infer/kv_attention*.c), portable
 * and AVX-512, against a naive softmax in double over the same cache:
 * groups of 1..12 query heads on one K/V head (more than one 8-head pass),
 * head sizes 32..256 (16 and 48 for the portable one; 32-128 with one
 * query head take the AVX-512 kernel's K-and-V path), key ranges shorter
 * than one 32-key block, across block edges and over several 128-key
 * softmax chunks (the online rescaling), starts past 0 (sliding windows),
 * F32 and F16 caches, and scores spread wide enough that the running max
 * moves between chunks. K is in transposed tiles, its last tile filled
 * with NaN past the last key (read, and masked out).
 * Tolerance: 1e-5 relative to the output row's largest entry. Each score
 * is an fp32 sum over the head's dimensions in sequence (up to 256 terms,
 * scores up to ~10 with the wide spread), and an absolute error d in a
 * score moves its weight by a factor e^d: measured up to 4e-6. Head sizes without an AVX-512 kernel return 0.
 * Naming a next head to prefetch (lm_kv_head.next_*) leaves the AVX-512
 * output bit-identical. */
#include "test.h"

#include "infer/kv_attention.h"
#include "lmkit/base.h"
#include "lmkit/kernels.h"

#include <stdint.h>
#include <string.h>

static lm_rng g_rng;

static void check_case(int G, int hd, int start, int end, int f16, float spread, int simd) {
    const int tiles = (end + LM_KV_TILE - 1) / LM_KV_TILE;
    size_t nk = (size_t)tiles * LM_KV_TILE * hd, nv = (size_t)end * hd;
    float *k = malloc(nk * sizeof(float)), *v = malloc(nv * sizeof(float));
    float *q = malloc((size_t)G * hd * sizeof(float)), *out = malloc((size_t)G * hd * sizeof(float));
    uint16_t *k16 = malloc(nk * sizeof(uint16_t)), *v16 = malloc(nv * sizeof(uint16_t));
    for (size_t i = 0; i < nk + nv; i++) {
        float *x = i < nk ? &k[i] : &v[i - nk];
        uint16_t *h = i < nk ? &k16[i] : &v16[i - nk];
        *x = lm_rng_normal(&g_rng);
        *h = lm_f32_to_f16(*x);
        if (f16) *x = lm_f16_to_f32(*h); /* the reference sees the values the kernel reads */
    }
    for (int t = end; t < tiles * LM_KV_TILE; t++)
        for (int d = 0; d < hd; d++) k[lm_kv_k_index(t, d, hd)] = NAN, k16[lm_kv_k_index(t, d, hd)] = 0x7e00;
    for (int i = 0; i < G * hd; i++) q[i] = lm_rng_normal(&g_rng) * spread;
    float scale = 1.0f / sqrtf((float)hd);
    lm_kv_head kv = {.k = f16 ? (const void *)k16 : (const void *)k, .v = f16 ? (const void *)v16 : (const void *)v, .f16 = f16};
    int ran = 1;
    if (simd) ran = lm_kv_attention_group_avx512(out, q, G, hd, &kv, start, end, scale);
    else lm_kv_attention_group(out, q, G, hd, &kv, start, end, scale);
    CHECK_MSG(ran, "hd %d: no kernel", hd);
    if (simd && ran) {
        /* With a next head to prefetch (here the same cache, as far as
         * next_end): bit-identical results. */
        float *out2 = malloc((size_t)G * hd * sizeof(float));
        lm_kv_head kv2 = kv;
        kv2.next_k = kv.k, kv2.next_v = kv.v, kv2.next_end = end;
        lm_kv_attention_group_avx512(out2, q, G, hd, &kv2, start, end, scale);
        CHECK_MSG(memcmp(out, out2, (size_t)G * hd * sizeof(float)) == 0, "G %d hd %d: prefetching a next head changed the output", G, hd);
        free(out2);
    }
    double *sc = malloc((size_t)end * sizeof(double)), *ref = malloc((size_t)hd * sizeof(double));
    for (int g = 0; ran && g < G; g++) {
        double mx = -INFINITY, sum = 0;
        for (int t = start; t < end; t++) {
            double s = 0;
            for (int d = 0; d < hd; d++) s += (double)q[g * hd + d] * k[lm_kv_k_index(t, d, hd)];
            sc[t] = s * scale;
            if (sc[t] > mx) mx = sc[t];
        }
        for (int d = 0; d < hd; d++) ref[d] = 0;
        for (int t = start; t < end; t++) {
            double p = exp(sc[t] - mx);
            sum += p;
            for (int d = 0; d < hd; d++) ref[d] += p * v[(size_t)t * hd + (size_t)d];
        }
        double top = 0, err = 0;
        for (int d = 0; d < hd; d++) top = fmax(top, fabs(ref[d] / sum));
        for (int d = 0; d < hd; d++) err = fmax(err, fabs(out[g * hd + d] - ref[d] / sum));
        CHECK_MSG(err <= 1e-5 * top, "%s G %d (head %d) hd %d keys [%d, %d) %s spread %g: max err %.3g (top %.3g)",
                  simd ? "avx512" : "portable", G, g, hd, start, end, f16 ? "f16" : "f32", spread, err, top);
    }
    free(k), free(v), free(q), free(k16), free(v16), free(sc), free(ref), free(out);
}

int main(void) {
    const lm_cpu_features *f = lm_cpu();
    int simd = f->avx512f && f->avx512bw && f->avx512vl && f->fma && f->f16c;
    if (!simd) fprintf(stderr, "no AVX-512: only the portable kernel is tested on this CPU\n");
    lm_rng_seed(&g_rng, 7, 0);
    static const int hds[] = {32, 64, 96, 128, 256};
    static const int groups[] = {1, 3, 8, 12};
    static const int ranges[][2] = {{0, 1}, {0, 5}, {0, 16}, {0, 33}, {3, 40}, {0, 128}, {0, 129}, {100, 613}, {0, 700}, {31, 32},
                                    {33, 161}};
    for (size_t h = 0; h < sizeof hds / sizeof *hds; h++)
        for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
            for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++)
                for (int f16 = 0; f16 < 2; f16++) {
                    float spread = (r + g + f16) % 2 ? 4.0f : 1.0f;
                    if (simd) check_case(groups[g], hds[h], ranges[r][0], ranges[r][1], f16, spread, 1);
                    if (hds[h] <= 64 && (r % 3 == 0 || r == 7)) check_case(groups[g], hds[h], ranges[r][0], ranges[r][1], f16, spread, 0);
                }
    /* head sizes only the portable kernel takes (stories260K has 8) */
    check_case(2, 16, 0, 300, 1, 4.0f, 0);
    check_case(3, 48, 5, 150, 0, 1.0f, 0);
    check_case(1, 8, 0, 40, 1, 1.0f, 0);
    if (simd) {
        float q[300] = {0}, out[300], kvb[300] = {0};
        lm_kv_head kv = {.k = kvb, .v = kvb};
        CHECK(lm_kv_attention_group_avx512(out, q, 1, 48, &kv, 0, 1, 1.0f) == 0);
        CHECK(lm_kv_attention_group_avx512(out, q, 1, 288, &kv, 0, 1, 1.0f) == 0);
    }
    TEST_MAIN_END();
}

/* Per-kernel timings on GPT-2 124M shapes: the dispatching kernel vs its
 * scalar reference (ms per call, best of several), plus attention at longer
 * sequence lengths. Build: cmake --build build --target bench_kernels; run:
 *   OMP_NUM_THREADS=2 ./build/bench_kernels [B=4] [T=64] */
#include "kernels/kernels_ref.h"
#include "lmkit/base.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define TIME(label, ref_too, CALL, REFCALL)                                               \
    do {                                                                                  \
        double best_ = 1e30, bestr_ = 1e30;                                               \
        for (int r_ = 0; r_ < 5; r_++) {                                                  \
            double t0_ = lm_now_seconds();                                                \
            CALL;                                                                         \
            double dt_ = lm_now_seconds() - t0_;                                          \
            if (dt_ < best_) best_ = dt_;                                                 \
        }                                                                                 \
        if (ref_too)                                                                      \
            for (int r_ = 0; r_ < 2; r_++) {                                              \
                double t0_ = lm_now_seconds();                                            \
                REFCALL;                                                                  \
                double dt_ = lm_now_seconds() - t0_;                                      \
                if (dt_ < bestr_) bestr_ = dt_;                                           \
            }                                                                             \
        printf("%-34s %10.3f ms", label, best_ * 1e3);                                    \
        if (ref_too) printf("   ref %10.3f ms   x%.1f", bestr_ * 1e3, bestr_ / best_);    \
        printf("\n");                                                                     \
    } while (0)

static float *randn(size_t n, lm_rng *r) {
    float *p = lm_alloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = lm_rng_normal(r);
    return p;
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 4, T = argc > 2 ? atoi(argv[2]) : 64;
    int C = 768, NH = 12, HS = 64, V = 50257, N = B * T;
    lm_rng rng;
    lm_rng_seed(&rng, 3, 0);
    printf("threads %d, B=%d T=%d C=%d NH=%d V=%d\n", omp_get_max_threads(), B, T, C, NH, V);
    size_t n4 = (size_t)N * 4 * C;
    float *x = randn(n4, &rng), *y = randn(n4, &rng), *z = randn(n4, &rng);
    float *w = randn(C, &rng), *bias = randn(C, &rng), *mean = lm_alloc(N * 4), *rstd = lm_alloc(N * 4);
    TIME("gelu_tanh fwd [N,4C]", 1, lm_gelu_tanh_forward(y, x, n4), lm_gelu_tanh_forward_ref(y, x, n4));
    TIME("gelu_tanh bwd [N,4C]", 1, lm_gelu_tanh_backward(z, x, y, n4), lm_gelu_tanh_backward_ref(z, x, y, n4));
    TIME("gelu_erf fwd [N,4C]", 1, lm_gelu_erf_forward(y, x, n4), lm_gelu_erf_forward_ref(y, x, n4));
    TIME("swiglu fwd [N,4C]", 1, lm_swiglu_forward(z, x, y, n4), lm_swiglu_forward_ref(z, x, y, n4));
    TIME("add [N,4C]", 1, lm_add(z, x, y, n4), lm_add_ref(z, x, y, n4));
    TIME("layernorm fwd [N,C]", 1, lm_layernorm_forward(y, mean, rstd, x, w, bias, N, C, 1e-5f),
         lm_layernorm_forward_ref(y, mean, rstd, x, w, bias, N, C, 1e-5f));
    TIME("layernorm bwd [N,C]", 1, lm_layernorm_backward(z, w, bias, y, x, w, mean, rstd, N, C),
         lm_layernorm_backward_ref(z, w, bias, y, x, w, mean, rstd, N, C));
    lm_free(x); lm_free(y); lm_free(z);

    float *logits = randn((size_t)N * V, &rng), *losses = lm_alloc(N * 4);
    int32_t *tg = malloc(N * sizeof(int32_t));
    for (int i = 0; i < N; i++) tg[i] = (int32_t)lm_rng_below(&rng, V);
    float *dl = lm_alloc((size_t)N * V * 4);
    TIME("cross-entropy fwd+bwd [N,V]", 1, lm_cross_entropy_forward_backward(losses, dl, logits, tg, N, V, 1.0f / N),
         lm_cross_entropy_forward_backward_ref(losses, dl, logits, tg, N, V, 1.0f / N));
    lm_free(dl);
    size_t np = 124000000 / 4; /* a quarter of GPT-2's parameters */
    float *p = randn(np, &rng), *g = randn(np, &rng), *m = lm_alloc(np * 4), *vv = lm_alloc(np * 4);
    TIME("adamw 31M params", 1, lm_adamw_update(p, g, m, vv, np, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 3),
         lm_adamw_update_ref(p, g, m, vv, np, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 1.0f));
    lm_free(p); lm_free(g); lm_free(m); lm_free(vv); lm_free(logits); lm_free(losses); free(tg);

    int Ts[] = {T, 256, 1024};
    for (int ti = 0; ti < 3; ti++) {
        int TT = Ts[ti], BB = ti == 0 ? B : 1;
        lm_attention_shape s = {.B = BB, .T = TT, .NH = NH, .NKV = NH, .HS = HS, .q_stride = 3 * C,
                                .kv_stride = 3 * C, .scale = 1.0f / sqrtf(HS), .causal = 1};
        size_t nq = (size_t)BB * TT * 3 * C, no = (size_t)BB * TT * C;
        float *qkv = randn(nq, &rng), *dqkv = lm_alloc(nq * 4), *out = lm_alloc(no * 4), *dout = randn(no, &rng);
        float *lse = lm_alloc((size_t)BB * NH * TT * 4), *scr = lm_alloc(lm_attention_backward_scratch(&s) * 4);
        char lab[64];
        double fl = 4.0 * BB * NH * (double)TT * TT / 2 * HS;
        snprintf(lab, sizeof lab, "attention fwd B=%d T=%d", BB, TT);
        TIME(lab, TT <= 256, lm_attention_forward(out, lse, qkv, qkv + C, qkv + 2 * C, &s),
             lm_attention_forward_ref(out, lse, qkv, qkv + C, qkv + 2 * C, &s));
        {
            double t0 = lm_now_seconds();
            lm_attention_forward(out, lse, qkv, qkv + C, qkv + 2 * C, &s);
            printf("%-34s %10.1f GFLOP/s (causal half)\n", "", fl / (lm_now_seconds() - t0) * 1e-9);
        }
        snprintf(lab, sizeof lab, "attention bwd B=%d T=%d", BB, TT);
        TIME(lab, TT <= 256,
             lm_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dout, qkv, qkv + C, qkv + 2 * C, out, lse, &s, scr),
             lm_attention_backward_ref(dqkv, dqkv + C, dqkv + 2 * C, dout, qkv, qkv + C, qkv + 2 * C, out, lse, &s));
        {
            double t0 = lm_now_seconds();
            lm_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dout, qkv, qkv + C, qkv + 2 * C, out, lse, &s, scr);
            printf("%-34s %10.1f GFLOP/s (2.5x fwd flops)\n", "", 2.5 * fl / (lm_now_seconds() - t0) * 1e-9);
        }
        lm_free(qkv); lm_free(dqkv); lm_free(out); lm_free(dout); lm_free(lse); lm_free(scr);
    }
    lm_free(w); lm_free(bias); lm_free(mean); lm_free(rstd);
    return 0;
}

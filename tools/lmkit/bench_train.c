/* lmkit bench train: milliseconds per training step and achieved GFLOP/s
 * for a GPT-2 of a given preset on random tokens. */
#include "args.h"
#include "bench.h"

#include "lmkit/model.h"
#include "lmkit/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lm_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int lm_bench_train(int argc, char **argv) {
    const char *arch = "gpt2", *preset = "124M";
    int B = 4, T = 64, steps = 5, threads = 0, json = 0, parts = 0;
    const lm_arg specs[] = {
        {"--arch", LM_ARG_STR, &arch, "gpt2"},
        {"--preset", LM_ARG_STR, &preset, "124M | 350M | tiny (124M)"},
        {"--batch", LM_ARG_INT, &B, "batch size (4)"},
        {"--seq-len", LM_ARG_INT, &T, "sequence length (64)"},
        {"--steps", LM_ARG_INT, &steps, "timed steps after one warm-up step; the median is reported (5)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {"--data-parallel", LM_ARG_INT, &parts, "batch slices run side by side, one per thread (default: as lmkit train picks)"},
        {"--json", LM_ARG_FLAG, &json, "print one JSON object on stdout"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit bench train --arch gpt2 --preset 124M --batch B --seq-len T --steps N", specs, argc, argv, NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (strcmp(arch, "gpt2") != 0) return lm_fail("bench train: --arch '%s' is not supported (gpt2)", arch);
    lm_model_config c = {LM_ARCH_GPT2, 50257, 1024, 768, 12, 12, 3072, 1e-5f, 50256, 50256};
    if (!strcmp(preset, "350M")) c.n_embd = 1024, c.n_layer = 24, c.n_head = 16, c.n_inner = 4096;
    else if (!strcmp(preset, "tiny")) c.vocab_size = 256, c.n_ctx = 256, c.n_embd = 128, c.n_layer = 4, c.n_head = 4, c.n_inner = 512;
    else if (strcmp(preset, "124M") != 0) return lm_fail("bench train: unknown --preset '%s' (124M, 350M, tiny)", preset);
    if (B < 1 || T < 1 || T > c.n_ctx || steps < 1) return lm_fail("bench train: need --batch >= 1, 1 <= --seq-len <= %d, --steps >= 1", c.n_ctx);
    lm_set_threads(threads);
    lm_gpt2 *m = NULL;
    if (lm_gpt2_create(&c, 1, 1, &m) != LM_OK) return lm_fail_status();
    if (parts == 0) parts = lm_gpt2_auto_parts(&c, B, lm_get_threads());
    if (lm_gpt2_set_data_parallel(m, parts) != LM_OK) {
        lm_gpt2_free(m);
        return lm_fail_status();
    }
    const lm_param_table *tab = lm_gpt2_params(m);
    lm_adamw opt;
    if (lm_adamw_init(&opt, tab->total, 0.9f, 0.95f, 1e-8f, 0.1f) != LM_OK) {
        lm_gpt2_free(m);
        return lm_fail_status();
    }
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *tg = malloc((size_t)B * T * sizeof *tg);
    uint8_t *covered = malloc((size_t)tab->n);
    lm_rng rng;
    lm_rng_seed(&rng, 42, 0);
    for (int i = 0; ids && tg && i < B * T; i++) {
        ids[i] = (int32_t)lm_rng_below(&rng, (uint32_t)c.vocab_size);
        tg[i] = (int32_t)lm_rng_below(&rng, (uint32_t)c.vocab_size);
    }
    /* Wall and CPU time per step: on a shared machine the CPU time (all
     * threads) is the steadier figure; with 1 thread it equals the step's work. */
    double *times = malloc((size_t)(steps + 1) * sizeof *times), *cpu = malloc((size_t)(steps + 1) * sizeof *cpu);
    /* and the phases: forward, backward, norm + AdamW (medians apart) */
    double *t_fwd = malloc((size_t)(steps + 1) * sizeof *t_fwd), *t_bwd = malloc((size_t)(steps + 1) * sizeof *t_bwd);
    double *t_opt = malloc((size_t)(steps + 1) * sizeof *t_opt);
    lm_status s = LM_OK;
    if (!ids || !tg || !covered || !times || !cpu || !t_fwd || !t_bwd || !t_opt)
        s = lm_error(LM_ERR_NOMEM, "bench train: out of memory for %d steps", steps);
    for (int i = 0; i <= steps && s == LM_OK; i++) {
        double t0 = lm_now_seconds(), c0 = lm_cpu_seconds();
        float loss;
        lm_gpt2_zero_grad(m);
        s = lm_gpt2_forward(m, ids, tg, B, T, &loss);
        double t1 = lm_now_seconds();
        if (s == LM_OK) s = lm_gpt2_backward(m, 1.0f);
        double t2 = lm_now_seconds();
        /* as lmkit train does it: the norm partly from the gradient GEMMs,
         * the clip factor riding on the AdamW pass */
        double sq = lm_gpt2_fused_sum_squares(m, covered);
        float clip_scale = lm_clip_scale(sqrt(sq + lm_grad_sum_squares(tab, lm_gpt2_grad_data(m), NULL, covered)), 1.0f);
        lm_adamw_step_scaled(&opt, tab, lm_gpt2_param_data(m), lm_gpt2_grad_data(m), 1e-4f, clip_scale);
        times[i] = lm_now_seconds() - t0;
        cpu[i] = lm_cpu_seconds() - c0;
        t_fwd[i] = t1 - t0;
        t_bwd[i] = t2 - t1;
        t_opt[i] = times[i] - (t2 - t0);
    }
    int rc = 0;
    if (s != LM_OK) rc = lm_fail_status();
    else {
        qsort(times + 1, (size_t)steps, sizeof *times, lm_cmp_double); /* times[0] is the warm-up */
        double med = times[1 + steps / 2];
        qsort(cpu + 1, (size_t)steps, sizeof *cpu, lm_cmp_double);
        double cpu_med = cpu[1 + steps / 2];
        double *phase[3] = {t_fwd, t_bwd, t_opt}, ph[3];
        for (int k = 0; k < 3; k++) {
            qsort(phase[k] + 1, (size_t)steps, sizeof *phase[k], lm_cmp_double);
            ph[k] = phase[k][1 + steps / 2];
        }
        /* Matmul FLOPs of one step: forward per token is L*(24 C^2 + 2 T C)
         * (projections + causal attention) + 2 C V (LM head); backward is
         * twice the forward. */
        double C = c.n_embd, L = c.n_layer, V = c.vocab_size;
        double flops = 3.0 * B * T * (L * (24 * C * C + 2.0 * T * C) + 2 * C * V);
        double params = (double)tab->total;
        if (json)
            printf("{\"arch\": \"gpt2\", \"preset\": \"%s\", \"params\": %.0f, \"batch\": %d, \"seq_len\": %d, \"threads\": %d, "
                   "\"data_parallel\": %d, \"steps\": %d, \"ms_per_step\": %.3f, \"ms_min\": %.3f, \"cpu_ms_per_step\": %.3f, \"tokens_per_sec\": %.1f, "
                   "\"gflops\": %.2f, \"forward_ms\": %.3f, \"backward_ms\": %.3f, \"optimizer_ms\": %.3f}\n",
                   preset, params, B, T, lm_get_threads(), parts, steps, med * 1e3, times[1] * 1e3, cpu_med * 1e3, B * T / med,
                   flops / med * 1e-9, ph[0] * 1e3, ph[1] * 1e3, ph[2] * 1e3);
        else
            printf("gpt2 %s (%.1fM params), batch %d x %d, %d threads, %d parts: %.1f ms/step (median of %d; min %.1f; CPU %.1f ms), "
                   "%.0f tokens/s, %.1f GFLOP/s; forward %.1f, backward %.1f, norm + AdamW %.1f ms (medians)\n",
                   preset, params / 1e6, B, T, lm_get_threads(), parts, med * 1e3, steps, times[1] * 1e3, cpu_med * 1e3, B * T / med,
                   flops / med * 1e-9, ph[0] * 1e3, ph[1] * 1e3, ph[2] * 1e3);
    }
    free(times);
    free(cpu);
    free(t_fwd);
    free(t_bwd);
    free(t_opt);
    free(ids);
    free(tg);
    free(covered);
    lm_adamw_free(&opt);
    lm_gpt2_free(m);
    return rc;
}

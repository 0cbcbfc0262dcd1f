/* lmkit bench generate: prefill and decode speed of a LLaMA-family model,
 * with N sequences decoded together (--parallel). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

/* A field of /proc/self/status in MiB ("VmRSS", "VmHWM"), -1 if absent. */
static double proc_status_mib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') v = atof(line + kl + 1) / 1024.0;
    if (f) fclose(f);
    return v;
}
#include "lmkit/engine.h"
#include "lmkit/llama.h"

int lm_bench_generate(int argc, char **argv) {
    const char *model = NULL;
    int pp = 512, tg = 128, threads = 0, par = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "--prompt-tokens") && i + 1 < argc) pp = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--gen-tokens") && i + 1 < argc) tg = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--parallel") && i + 1 < argc) par = atoi(argv[++i]);
        else {
            fprintf(stderr, "lmkit: error: unknown option '%s' for bench generate\n", argv[i]);
            return 2;
        }
    }
    if (!model || pp < 1 || tg < 1 || par < 1 || par > 64) {
        fprintf(stderr, "lmkit: error: bench generate needs --model; --prompt-tokens/--gen-tokens >= 1, --parallel 1..64\n");
        return 2;
    }
    if (threads > 0) lm_set_threads(threads);
    lm_llama_model m;
    if (lm_llama_load(model, &m) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    lm_engine_opts o = {.max_seqs = par, .ctx_len = pp + tg, .max_batch = 512};
    lm_engine *e;
    if (pp + tg > m.cfg.max_seq_len || lm_engine_new(&m, &o, &e) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", pp + tg > m.cfg.max_seq_len ? "prompt + gen tokens exceed the model's context" : lm_last_error());
        lm_llama_free(&m);
        return 1;
    }
    int V = m.cfg.vocab_size;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(pp > par ? pp : par));
    int *seqs = malloc(sizeof(int) * (size_t)(pp > par ? pp : par));
    float *logits = malloc(sizeof(float) * (size_t)V * (size_t)par);
    lm_rng r;
    lm_rng_seed(&r, 1, 0);
    for (int i = 0; i < pp; i++) toks[i] = (int32_t)lm_rng_below(&r, (uint32_t)V);
    double t0 = lm_now_seconds();
    lm_status s = LM_OK;
    for (int q = 0; q < par && s == LM_OK; q++) {
        for (int i = 0; i < pp; i++) seqs[i] = q;
        s = lm_engine_forward(e, pp, toks, seqs, NULL, logits);
    }
    double t_pp = lm_now_seconds() - t0;
    uint8_t *want = malloc((size_t)par);
    memset(want, 1, (size_t)par);
    t0 = lm_now_seconds();
    for (int step = 0; step < tg && s == LM_OK; step++) {
        for (int q = 0; q < par; q++) toks[q] = (int32_t)lm_rng_below(&r, (uint32_t)V), seqs[q] = q;
        s = lm_engine_forward(e, par, toks, seqs, want, logits);
    }
    double t_tg = lm_now_seconds() - t0;
    if (s != LM_OK) fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
    else {
        double gb = (double)m.weight_bytes / 1e9;
        printf("model %s: %.3f GB weights, load %.3f s, threads %d, kernels %s\n", model, gb, m.load_seconds, lm_get_threads(),
               lm_isa_name(lm_quant_isa()));
        printf("prefill: %d x %d tokens in %.3f s = %.1f tok/s\n", par, pp, t_pp, par * pp / t_pp);
        printf("decode:  %d x %d tokens in %.3f s = %.1f tok/s (%.1f steps/s, %.1f GB/s of weights)\n", par, tg, t_tg,
               par * tg / t_tg, tg / t_tg, gb * tg / t_tg);
        printf("memory: resident %.0f MiB now, peak %.0f MiB (KV cache %.0f MiB)\n", proc_status_mib("VmRSS"), proc_status_mib("VmHWM"),
               (double)lm_engine_kv_bytes(e) / (1 << 20));
    }
    free(want);
    free(toks);
    free(seqs);
    free(logits);
    lm_engine_free(e);
    lm_llama_free(&m);
    return s == LM_OK ? 0 : 1;
}

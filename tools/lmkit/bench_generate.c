/* lmkit bench generate: prefill and decode speed of a LLaMA-family model,
 * with N sequences decoded together (--parallel). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "bench.h"
#include "lmkit/engine.h"
#include "lmkit/llama.h"

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

int lm_bench_generate(int argc, char **argv) {
    const char *model = NULL, *kv = "f16";
    int pp = 512, tg = 128, threads = 0, par = 1, json = 0;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model, "GGUF file, HF checkpoint dir or llama2.c .bin"},
        {"--prompt-tokens", LM_ARG_INT, &pp, "tokens prefilled per sequence (512)"},
        {"--gen-tokens", LM_ARG_INT, &tg, "tokens decoded per sequence (128)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {"--parallel", LM_ARG_INT, &par, "sequences decoded together, 1..64 (1)"},
        /* F16 by default, as llama.cpp's cache, so the two read the same bytes. */
        {"--kv", LM_ARG_STR, &kv, "KV-cache type: f16 | f32 (f16)"},
        {"--json", LM_ARG_FLAG, &json, "print one JSON object on stdout"},
        {NULL, 0, NULL, NULL},
    };
    int pr = lm_args_parse("lmkit bench generate --model M [--prompt-tokens N] [--gen-tokens N] [--parallel N]", specs, argc, argv,
                          NULL, NULL);
    if (pr) return pr == 1 ? 0 : 2;
    if (strcmp(kv, "f16") && strcmp(kv, "f32")) {
        lm_fail("bench generate: --kv '%s': expected f16 or f32", kv);
        return 2;
    }
    int kv_f16 = !strcmp(kv, "f16");
    if (!model || pp < 1 || tg < 1 || par < 1 || par > 64) {
        lm_fail("bench generate needs --model; --prompt-tokens/--gen-tokens >= 1, --parallel 1..64");
        return 2;
    }
    if (threads > 0) lm_set_threads(threads);
    lm_llama_model m;
    if (lm_llama_load(model, &m) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    lm_engine_opts o = {.max_seqs = par, .ctx_len = pp + tg, .max_batch = 512, .kv_f16 = kv_f16};
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
        double gb = (double)m.weight_bytes / 1e9, step_gb = (double)lm_llama_decode_bytes(&m) / 1e9;
        if (json) {
            json_t *o = json_pack("{s:s, s:f, s:f, s:f, s:i, s:s, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:s, s:f}", "model", model,
                                  "weight_gb", gb, "decode_read_gb", step_gb, "load_s", m.load_seconds, "threads", lm_get_threads(), "kernels",
                                  lm_isa_name(lm_quant_isa()), "parallel", par, "prompt_tokens", pp, "gen_tokens", tg,
                                  "prefill_tok_s", par * pp / t_pp, "decode_tok_s", par * tg / t_tg, "decode_steps_s", tg / t_tg,
                                  "decode_weight_gb_s", step_gb * tg / t_tg, "rss_mib", proc_status_mib("VmRSS"), "peak_rss_mib",
                                  proc_status_mib("VmHWM"), "kv_cache", kv, "kv_cache_mib", (double)lm_engine_kv_bytes(e) / (1 << 20));
            char *txt = o ? json_dumps(o, JSON_REAL_PRECISION(6)) : NULL;
            if (txt) printf("%s\n", txt);
            free(txt);
            json_decref(o);
        } else {
            printf("model %s: %.3f GB weights, %.3f GB read per decode step, load %.3f s, threads %d, kernels %s\n", model, gb,
                   step_gb, m.load_seconds, lm_get_threads(), lm_isa_name(lm_quant_isa()));
            printf("prefill: %d x %d tokens in %.3f s = %.1f tok/s\n", par, pp, t_pp, par * pp / t_pp);
            printf("decode:  %d x %d tokens in %.3f s = %.1f tok/s (%.1f steps/s, %.1f GB/s of weights)\n", par, tg, t_tg,
                   par * tg / t_tg, tg / t_tg, step_gb * tg / t_tg);
            printf("memory: resident %.0f MiB now, peak %.0f MiB (KV cache %s %.0f MiB)\n", proc_status_mib("VmRSS"), proc_status_mib("VmHWM"), kv_f16 ? "f16" : "f32",
                   (double)lm_engine_kv_bytes(e) / (1 << 20));
        }
    }
    free(want);
    free(toks);
    free(seqs);
    free(logits);
    lm_engine_free(e);
    lm_llama_free(&m);
    return s == LM_OK ? 0 : 1;
}

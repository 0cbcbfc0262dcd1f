/* lmkit quantize / convert: rewrite a LLaMA-family model as GGUF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "lmkit/llama.h"

static int convert_main(int argc, char **argv, int need_type) {
    const char *type_name = NULL, *vocab_path = NULL, *in = NULL, *out = NULL;
    const lm_arg specs[] = {
        {"--type", LM_ARG_STR, &type_name, "q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32 (convert: default keeps each tensor's type)"},
        {"--vocab", LM_ARG_STR, &vocab_path, "llama2.c tokenizer.bin to embed instead of the model's own"},
        {NULL, 0, NULL, NULL},
    };
    char usage[160];
    snprintf(usage, sizeof usage, "lmkit %s %sIN OUT.gguf [--vocab tokenizer.bin]", argv[0],
             need_type ? "--type {q8_0|q4_0|q4_k|q6_k|f16|bf16|f32} " : "[--type T] ");
    char **pos = NULL;
    int npos = 0;
    int r = lm_args_parse(usage, specs, argc, argv, &pos, &npos);
    if (!r && npos > 2) {
        lm_fail("%s: unexpected argument '%s'", argv[0], pos[2]);
        r = 2;
    }
    if (!r) in = npos > 0 ? pos[0] : NULL, out = npos > 1 ? pos[1] : NULL;
    free(pos);
    if (r) return r == 1 ? 0 : 2;
    if (!in || !out || (need_type && !type_name)) {
        fprintf(stderr, "lmkit: error: %s needs %sIN and OUT (see --help)\n", argv[0], need_type ? "--type, " : "");
        return 2;
    }
    size_t ol = strlen(out);
    if (ol < 5 || strcmp(out + ol - 5, ".gguf")) {
        fprintf(stderr, "lmkit: error: output '%s': only .gguf output is supported\n", out);
        return 2;
    }
    int type = -1;
    if (type_name) {
        lm_qtype t;
        if (lm_qtype_from_name(type_name, &t) != LM_OK || t == LM_QT_Q8_K) {
            fprintf(stderr, "lmkit: error: --type '%s': expected q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32\n", type_name);
            return 2;
        }
        type = (int)t;
    }
    lm_llama_model m;
    if (lm_llama_load(in, &m) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    lm_llama2c_vocab v = {0};
    char **pieces = m.vocab;
    float *scores = m.vocab_scores;
    int nv = m.n_vocab_strings;
    if (vocab_path) {
        if (lm_llama2c_vocab_load(vocab_path, m.cfg.vocab_size, &v) != LM_OK) {
            fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
            lm_llama_free(&m);
            return 1;
        }
        pieces = v.pieces, scores = v.scores, nv = v.n;
    }
    double t0 = lm_now_seconds();
    lm_status s = lm_llama_save_gguf(&m, out, type, pieces, scores, nv);
    if (s != LM_OK) fprintf(stderr, "lmkit: error: %s: %s\n", out, lm_last_error());
    else
        printf("wrote %s (%s, %.2f s)\n", out, type >= 0 ? lm_qtype_name((lm_qtype)type) : "types kept", lm_now_seconds() - t0);
    lm_llama2c_vocab_free(&v);
    lm_llama_free(&m);
    return s == LM_OK ? 0 : 1;
}

int lm_cmd_quantize(int argc, char **argv) { return convert_main(argc, argv, 1); }
int lm_cmd_convert(int argc, char **argv) { return convert_main(argc, argv, 0); }

int lm_cmd_init(int argc, char **argv) {
    const char *arch = "llama", *preset = NULL, *out = NULL, *type_name = "f32";
    long seed_arg = 1;
    const lm_arg specs[] = {
        {"--arch", LM_ARG_STR, &arch, "architecture (llama)"},
        {"--preset", LM_ARG_STR, &preset, "shape: stories260K-shape, 1B or 7B"},
        {"--out", LM_ARG_STR, &out, "output .gguf"},
        {"--type", LM_ARG_STR, &type_name, "weight type: f32 (default), f16, bf16, q8_0, q4_0, q4_k, q6_k"},
        {"--seed", LM_ARG_LONG, &seed_arg, "random seed (1)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit init --arch llama --preset {stories260K-shape|1B|7B} --out M.gguf [--type T] [--seed N]", specs, argc,
                          argv, NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (seed_arg < 0) return lm_fail("init: --seed %ld must be >= 0", seed_arg), 2;
    unsigned long long seed = (unsigned long long)seed_arg;
    if (strcmp(arch, "llama")) {
        fprintf(stderr, "lmkit: error: --arch '%s': only llama is supported here\n", arch);
        return 2;
    }
    if (!preset || !out) {
        fprintf(stderr, "lmkit: error: init needs --preset and --out\n");
        return 2;
    }
    lm_qtype t;
    lm_llama_config c;
    lm_llama_model m;
    if (lm_qtype_from_name(type_name, &t) != LM_OK || lm_llama_preset(preset, &c) != LM_OK ||
        lm_llama_init_random(&c, seed, &m) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    char **pieces = NULL;
    float *scores = NULL;
    double t0 = lm_now_seconds();
    lm_status s = lm_llama_vocab_synthetic(c.vocab_size, &pieces, &scores);
    if (s == LM_OK) s = lm_llama_save_gguf(&m, out, (int)t, pieces, scores, c.vocab_size);
    if (s != LM_OK) fprintf(stderr, "lmkit: error: %s: %s\n", out, lm_last_error());
    else printf("wrote %s (%s, %s, %.1f s)\n", out, preset, lm_qtype_name(t), lm_now_seconds() - t0);
    lm_llama_vocab_synthetic_free(pieces, scores, c.vocab_size);
    lm_llama_free(&m);
    return s == LM_OK ? 0 : 1;
}

/* lmkit quantize / convert / init: write a LLaMA-family model as GGUF
 * (convert also as a llama2.c checkpoint and tokenizer.bin, or a Hugging
 * Face directory).
 * The "wrote ..." summary goes to stderr, as every command's status does:
 * stdout carries only a command's product (text, ids, JSON). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "args.h"
#include "cli.h"
#include "lmkit/causal_lm.h"
#include "lmkit/gguf.h"
#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"

/* Counts of each tensor type in a GGUF file just written (g), so the
 * summary says what was stored and not only what was asked for: matrices
 * whose row length does not fit the requested type's blocks fall back to
 * Q8_0 or F16 (lm_llama_save_gguf), which on small shapes can be all of them. */
static void lm_type_summary(const lm_gguf *g, int want, char *buf, size_t cap) {
    size_t at = 0;
    /* [type][is matrix] counts; GGUF type ids are below 64 */
    int n[64][2] = {{0}};
    for (size_t i = 0; i < g->n_tensors; i++)
        if ((unsigned)g->tensors[i].type < 64) n[g->tensors[i].type][g->tensors[i].n_dims >= 2]++;
#define PUT(...) (at += (size_t)snprintf(buf + at, at < cap ? cap - at : 0, __VA_ARGS__))
    if (want < 0) {
        PUT("types kept:");
        for (int t = 0, first = 1; t < 64; t++)
            if (n[t][0] + n[t][1]) PUT("%s %d %s", first ? "" : ",", n[t][0] + n[t][1], lm_qtype_name((lm_qtype)t)), first = 0;
    } else {
        PUT("%s requested: %d matri%s %s", lm_qtype_name((lm_qtype)want), n[want][1], n[want][1] == 1 ? "x" : "ces",
            lm_qtype_name((lm_qtype)want));
        /* Q8_0 is the first fallback, F16 the second (rows not a multiple of 32 either). */
        for (int i = -1; i < 64; i++) {
            int t = i < 0 ? LM_QT_Q8_0 : i;
            if (t != want && n[t][1] && (i < 0 || t != LM_QT_Q8_0))
                PUT(", %d %s fallback (row length not a multiple of %d)", n[t][1], lm_qtype_name((lm_qtype)t),
                    t == LM_QT_Q8_0 ? lm_qtype_block_elems((lm_qtype)want) : lm_qtype_block_elems(LM_QT_Q8_0));
        }
        int vec = 0;
        for (int t = 0; t < 64; t++) vec += n[t][0];
        if (vec) PUT(", %d f32 vector%s kept", vec, vec == 1 ? "" : "s");
    }
#undef PUT
}

/* lm_type_summary of the file at path, read once; *has_tokenizer (if not
 * NULL) says whether it carries a tokenizer (1 when unreadable: no note). */
static void lm_written_summary(const char *path, int want, char *buf, size_t cap, int *has_tokenizer) {
    lm_gguf g;
    if (has_tokenizer) *has_tokenizer = 1;
    if (lm_gguf_open(path, &g) != LM_OK) {
        snprintf(buf, cap, "%s", want >= 0 ? lm_qtype_name((lm_qtype)want) : "types kept");
        return;
    }
    lm_type_summary(&g, want, buf, cap);
    if (has_tokenizer) *has_tokenizer = lm_gguf_carries_tokenizer(&g);
    lm_gguf_close(&g);
}

/* Output kinds go by extension, in any case (OUT.BIN is a .bin). */
static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcasecmp(s + n - k, suffix);
}

/* --vocab for GGUF and llama2.c output, into *v: a llama2.c tokenizer.bin
 * of exactly the model's vocab_size pieces (the format has no count, so a
 * longer file would be cut silently), or a SentencePiece-style
 * tokenizer.json of that size. */
static lm_status load_vocab(const char *path, int vocab_size, lm_llama2c_vocab *v) {
    if (ends_with(path, ".json")) {
        lm_tokenizer *t;
        LM_TRY(lm_tokenizer_load(path, &t));
        lm_status s = lm_tokenizer_spm_vocab(t, &v->pieces, &v->scores, &v->n);
        lm_tokenizer_free(t);
        if (s != LM_OK) return lm_error(s, "%s: %s", path, lm_last_error());
    } else {
        struct stat st;
        LM_TRY(lm_llama2c_vocab_load(path, vocab_size, v));
        size_t bytes = 4;
        for (int i = 0; i < v->n; i++) bytes += 8 + strlen(v->pieces[i]);
        if (stat(path, &st) == 0 && (size_t)st.st_size != bytes)
            return lm_error(LM_ERR_FORMAT, "%s: not a tokenizer.bin of exactly the model's %d pieces (%lld bytes, %zu expected)",
                            path, vocab_size, (long long)st.st_size, bytes);
    }
    if (v->n != vocab_size)
        return lm_error(LM_ERR_FORMAT, "%s: %d tokens, but the model's vocabulary has %d", path, v->n, vocab_size);
    return LM_OK;
}

static int has_json(const char *dir) {
    char *p = lm_path_join(dir, "tokenizer.json");
    int e = p && lm_file_exists(p);
    free(p);
    return e;
}

/* An HF directory's tokenizer.json as SentencePiece pieces (held in *v so
 * the caller frees them), when it is SentencePiece-style BPE of the
 * model's size. */
static char *const *hf_spm_vocab(const lm_llama_model *m, lm_llama2c_vocab *v, const float **scores, const char **why) {
    if (!has_json(m->source_dir)) {
        *why = "the HF directory has no tokenizer.json; add --vocab tokenizer.bin";
        return NULL;
    }
    char *path = lm_path_join(m->source_dir, "tokenizer.json");
    lm_status s = path ? load_vocab(path, m->cfg.vocab_size, v) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(path);
    if (s != LM_OK) {
        *why = lm_last_error(); /* printed before any other call can set it */
        return NULL;
    }
    return *scores = v->scores, v->pieces;
}

/* The SentencePiece vocabulary a llama2.c tokenizer.bin can hold: --vocab's
 * (or the one beside a .bin input), an HF directory's tokenizer.json, else
 * a GGUF's "llama" tokenizer; NULL with *why set when there is none. */
static char *const *spm_vocab(const lm_llama_model *m, lm_llama2c_vocab *v, const float **scores, const char **why) {
    *scores = NULL;
    if (v->pieces) return *scores = v->scores, v->pieces;
    if (m->source_dir) return hf_spm_vocab(m, v, scores, why);
    if (!m->vocab) {
        *why = "the input carries no tokenizer; add --vocab tokenizer.bin";
        return NULL;
    }
    char *model = NULL;
    int spm = m->gguf && lm_gguf_get_str(m->gguf, "tokenizer.ggml.model", &model) == LM_OK && !strcmp(model, "llama");
    free(model);
    if (!spm) {
        *why = "the model's tokenizer is not SentencePiece (byte-level BPE has no llama2.c form)";
        return NULL;
    }
    if (m->n_vocab_strings != m->cfg.vocab_size) {
        *why = "the model's tokenizer and its embedding differ in size";
        return NULL;
    }
    return *scores = m->vocab_scores, m->vocab;
}

/* OUT.bin: the model as llama2.c's run.c reads it, and its tokenizer as
 * <OUT without .bin>.tokenizer.bin when it has a SentencePiece one. */
static lm_status convert_llama2c(const lm_llama_model *m, lm_llama2c_vocab *v, const char *out) {
    double t0 = lm_now_seconds();
    LM_TRY(lm_llama_save_llama2c(m, out));
    int shared = m->output.data == m->tok_emb.data;
    fprintf(stderr, "wrote %s (llama2.c legacy, f32, %s classifier; %.2f s)\n", out, shared ? "shared" : "own",
            lm_now_seconds() - t0);
    if (m->cfg.rms_eps != 1e-5f)
        fprintf(stderr, "lmkit: warning: %s: llama2.c fixes rms_norm_eps at 1e-5; this model's %g is not kept, so its outputs will differ slightly\n", out,
                (double)m->cfg.rms_eps);
    const float *scores;
    const char *why = NULL;
    char *const *pieces = spm_vocab(m, v, &scores, &why);
    size_t ol = strlen(out) - 4;
    char *tok = malloc(ol + sizeof ".tokenizer.bin");
    if (!tok) return lm_error(LM_ERR_NOMEM, "out of memory");
    snprintf(tok, ol + sizeof ".tokenizer.bin", "%.*s.tokenizer.bin", (int)ol, out);
    if (!pieces) {
        fprintf(stderr, "lmkit: note: no tokenizer.bin written: %s\n", why);
        /* one left from the checkpoint this one replaced would be taken
         * for this model's by generate and chat */
        if (lm_file_exists(tok) && remove(tok) == 0)
            fprintf(stderr, "lmkit: note: removed %s, which belonged to the %s this one replaces\n", tok, out);
        free(tok);
        return LM_OK;
    }
    lm_status s = lm_llama2c_vocab_save(tok, pieces, scores, m->cfg.vocab_size, m->cfg.bos_id, m->cfg.eos_id);
    if (s == LM_OK) fprintf(stderr, "wrote %s (%d pieces)\n", tok, m->cfg.vocab_size);
    free(tok);
    return s;
}


/* convert to a Hugging Face directory. The tokenizer: --vocab's, else the
 * GGUF's own, else an HF source's files; without one the model is still
 * written, with a note (transformers loads it; a tokenizer comes apart). */
static int convert_hf(lm_llama_model *m, const char *in, const char *out, int type, const char *vocab_path) {
    if (type >= 0 && type != LM_QT_F32 && type != LM_QT_F16 && type != LM_QT_BF16) {
        fprintf(stderr, "lmkit: error: --type '%s': a Hugging Face directory takes f32, f16 or bf16\n", lm_qtype_name((lm_qtype)type));
        return 2;
    }
    lm_tokenizer *tok = NULL;
    if (vocab_path && lm_tokenizer_load(vocab_path, &tok) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    if (tok && lm_tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        fprintf(stderr, "lmkit: error: %s: %d tokens, more than the model's vocabulary of %d\n", vocab_path,
                lm_tokenizer_vocab_size(tok), m->cfg.vocab_size);
        lm_tokenizer_free(tok);
        return 1;
    }
    if (!tok && m->gguf && lm_gguf_carries_tokenizer(m->gguf) && lm_tokenizer_from_gguf(m->gguf, in, &tok) != LM_OK)
        fprintf(stderr, "lmkit: note: %s: no tokenizer.json written: %s\n", out, lm_last_error());
    double t0 = lm_now_seconds();
    lm_status s = lm_llama_save_hf(m, out, type, tok);
    lm_tokenizer_free(tok);
    if (s != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    fprintf(stderr, "wrote %s (%s; %.2f s)\n", out, type >= 0 ? lm_qtype_name((lm_qtype)type) : "float types kept, others f32",
            lm_now_seconds() - t0);
    char *tj = lm_path_join(out, "tokenizer.json");
    if (tj && !lm_file_exists(tj))
        fprintf(stderr, "lmkit: note: %s carries no tokenizer.json (the input has none%s)\n", out, m->source_dir ? "" : "; add --vocab tokenizer.bin");
    free(tj);
    return 0;
}

static int convert_main(int argc, char **argv, int need_type) {
    const char *type_name = NULL, *vocab_path = NULL, *in = NULL, *out = NULL;
    const lm_arg specs[] = {
        {"--type", LM_ARG_STR, &type_name, "q8_0, q4_0, q4_k, q6_k, f16, bf16 or f32 (convert: default keeps each tensor's type)"},
        {"--vocab", LM_ARG_STR, &vocab_path, "tokenizer to use instead of the model's own: a llama2.c tokenizer.bin, or a SentencePiece-style tokenizer.json"},
        {NULL, 0, NULL, NULL},
    };
    char usage[512];
    snprintf(usage, sizeof usage, "lmkit %s %sIN %s [--vocab tokenizer.bin]%s", argv[0],
             need_type ? "--type {q8_0|q4_0|q4_k|q6_k|f16|bf16|f32} " : "[--type T] ", need_type ? "OUT.gguf" : "{OUT.gguf|OUT.bin|OUTDIR}",
             need_type ? "" : "\n  OUT.bin: a llama2.c checkpoint (legacy format, f32) and, for a SentencePiece\n"
                              "  vocabulary, its tokenizer.bin as OUT.tokenizer.bin (OUT without .bin)\n"
                              "  OUTDIR: a Hugging Face directory (--type f32, f16 or bf16; default keeps float types,\n"
                              "  quantized ones become f32)");
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
    if (!in[0] || !out[0]) {
        fprintf(stderr, "lmkit: error: %s: the %s path is empty\n", argv[0], !in[0] ? "input" : "output");
        return 2;
    }
    /* convert: OUT.gguf, OUT.bin (llama2.c), or else a directory (HF) */
    int l2c = !need_type && ends_with(out, ".bin");
    int hf = !need_type && !ends_with(out, ".gguf") && !l2c;
    if (!hf && !l2c && !ends_with(out, ".gguf")) {
        fprintf(stderr, "lmkit: error: output '%s': only .gguf output is supported%s\n", out, need_type ? "" : " (or .bin for llama2.c, or a directory)");
        return 2;
    }
    if (l2c && type_name) {
        fprintf(stderr, "lmkit: error: --type: a llama2.c checkpoint (%s) is always f32\n", out);
        return 2;
    }
    struct stat ost;
    if (!hf && stat(out, &ost) == 0 && S_ISDIR(ost.st_mode)) {
        fprintf(stderr, "lmkit: error: output '%s' is a directory (a .gguf or .bin output is a file)\n", out);
        return 2;
    }
    /* missing parent directories are made for every kind of output, as
     * transformers' save_pretrained does */
    size_t ol = strlen(out);
    while (ol > 1 && out[ol - 1] == '/') ol--; /* "dir/" names dir */
    const char *slash = memrchr(out, '/', ol);
    if (slash && slash > out) {
        char *parent = strndup(out, (size_t)(slash - out));
        lm_status ps = parent ? lm_mkdir_p(parent) : lm_error(LM_ERR_NOMEM, "out of memory");
        free(parent);
        if (ps != LM_OK) {
            fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
            return 1;
        }
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
    /* a llama2.c checkpoint's tokenizer lives beside it, where generate
     * finds it (X.tokenizer.bin, or tokenizer.json / tokenizer.bin) */
    char *sibling = !vocab_path && !m.gguf && !m.source_dir ? lm_causal_lm_sibling_tokenizer(in) : NULL;
    if (hf) {
        int rc = convert_hf(&m, in, out, type, vocab_path ? vocab_path : sibling);
        free(sibling);
        lm_llama_free(&m);
        return rc;
    }
    lm_llama2c_vocab v = {0};
    char **pieces = m.vocab;
    float *scores = m.vocab_scores;
    int nv = m.n_vocab_strings;
    const char *vp = vocab_path ? vocab_path : sibling;
    if (vp && load_vocab(vp, m.cfg.vocab_size, &v) != LM_OK) {
        if (vocab_path) {
            fprintf(stderr, "lmkit: error: --vocab: %s\n", lm_last_error());
            lm_llama2c_vocab_free(&v);
            lm_llama_free(&m);
            return 1;
        }
        fprintf(stderr, "lmkit: note: the tokenizer beside %s is not used: %s\n", in, lm_last_error());
        lm_llama2c_vocab_free(&v);
    } else if (vp) {
        if (sibling) fprintf(stderr, "lmkit: note: using the tokenizer beside %s: %s\n", in, sibling);
        pieces = v.pieces, scores = v.scores, nv = v.n;
    }
    free(sibling);
    double t0 = lm_now_seconds();
    lm_status s = l2c ? convert_llama2c(&m, &v, out) : lm_llama_save_gguf(&m, out, type, pieces, scores, nv);
    if (s != LM_OK) fprintf(stderr, "lmkit: error: %s: %s\n", out, lm_last_error());
    else if (!l2c) {
        char types[512];
        int has_tokenizer;
        lm_written_summary(out, type, types, sizeof types, &has_tokenizer);
        fprintf(stderr, "wrote %s (%s; %.2f s)\n", out, types, lm_now_seconds() - t0);
        /* llama.cpp refuses a GGUF without a tokenizer: say so now */
        if (!has_tokenizer)
            fprintf(stderr, "lmkit: note: %s carries no tokenizer (%s); llama.cpp needs one: add --vocab tokenizer.bin\n", out,
                    !m.source_dir ? "the input has none" : has_json(m.source_dir) ? "its directory's tokenizer.json is of no kind GGUF names" : "its directory has no tokenizer.json");
    }
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
    else {
        char types[512];
        lm_written_summary(out, (int)t, types, sizeof types, NULL);
        fprintf(stderr, "wrote %s (%s, %s; %.1f s)\n", out, preset, types, lm_now_seconds() - t0);
    }
    lm_llama_vocab_synthetic_free(pieces, scores, c.vocab_size);
    lm_llama_free(&m);
    return s == LM_OK ? 0 : 1;
}

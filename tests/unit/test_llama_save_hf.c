/* Hugging Face directories written by lm_llama_save_hf:
 *   - HF -> HF and HF -> GGUF -> HF for the transformers-written tiny
 *     models give back the same tensors (names, shapes, dtypes, bytes) and
 *     config values, and the same logits;
 *   - llama2.c stories260K (pair-rotation RoPE) -> HF gives the .bin's
 *     logits (the q/k rows went back to half rotation) and a tokenizer.json
 *     that encodes like tok512.bin;
 *   - quantized and --type exports are F32 / the asked type;
 *   - a non-empty target is refused and left alone. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmkit/engine.h"
#include "lmkit/llama.h"
#include "lmkit/safetensors.h"
#include "lmkit/tokenizer.h"
#include "test.h"

enum { T = 24 };

/* Logits of every position of ids[0..n) as one sequence; malloc'd. */
static float *all_logits(const lm_llama_model *m, const int32_t *ids, int n) {
    int V = m->cfg.vocab_size;
    float *out = malloc(sizeof(float) * (size_t)n * V);
    int seqs[T];
    uint8_t want[T];
    for (int i = 0; i < n; i++) seqs[i] = 0, want[i] = 1;
    lm_engine *e;
    lm_engine_opts o = {.max_seqs = 1};
    CHECK_OK(lm_engine_new(m, &o, &e));
    CHECK_OK(lm_engine_forward(e, n, ids, seqs, want, out));
    lm_engine_free(e);
    return out;
}

static void check_same_logits(const lm_llama_model *a, const lm_llama_model *b, double tol, const char *what) {
    int32_t ids[T];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)((i * 37 + 5) % a->cfg.vocab_size);
    float *x = all_logits(a, ids, T), *y = all_logits(b, ids, T);
    double err = test_max_rel_err(x, y, (size_t)T * a->cfg.vocab_size, 1.0);
    CHECK_MSG(err <= tol, "%s: logits differ by %.3g", what, err);
    free(x);
    free(y);
}

/* Every tensor of want is in got with the same dtype, shape and bytes, and nothing else is. */
static void check_same_tensors(const char *want_dir, const char *got_dir, const char *what) {
    lm_safetensors a, b;
    CHECK_OK(lm_safetensors_open(want_dir, &a));
    CHECK_OK(lm_safetensors_open(got_dir, &b));
    CHECK_MSG(a.n_tensors == b.n_tensors, "%s: %d tensors, want %d", what, b.n_tensors, a.n_tensors);
    for (int i = 0; i < a.n_tensors; i++) {
        const lm_st_tensor *t = &a.tensors[i], *u = lm_safetensors_find(&b, t->name);
        CHECK_MSG(u != NULL, "%s: %s missing", what, t->name);
        if (!u) continue;
        int same = u->dtype == t->dtype && u->ndim == t->ndim && u->nbytes == t->nbytes && !memcmp(u->data, t->data, t->nbytes);
        for (int d = 0; d < t->ndim && same; d++) same = u->shape[d] == t->shape[d];
        CHECK_MSG(same, "%s: tensor %s differs", what, t->name);
    }
    lm_safetensors_close(&a);
    lm_safetensors_close(&b);
}

/* A config value as transformers reads it: 4.x top-level rope keys or
 * 5.x rope_parameters; head_dim defaulting to hidden / heads. */
static json_t *cfg_get(json_t *c, const char *key) {
    json_t *rp = json_object_get(c, "rope_parameters");
    if (!strcmp(key, "rope_theta") && rp) return json_object_get(rp, "rope_theta");
    if (!strcmp(key, "rope_scaling")) {
        json_t *s = rp ? rp : json_object_get(c, "rope_scaling");
        const char *ty = json_string_value(json_object_get(s, "rope_type"));
        return ty && strcmp(ty, "default") ? s : NULL;
    }
    if (!strcmp(key, "dtype") && !json_object_get(c, key)) return json_object_get(c, "torch_dtype");
    json_t *v = json_object_get(c, key);
    return v && !json_is_null(v) ? v : NULL;
}

static int same_json(json_t *a, json_t *b) {
    if (!a || !b) return !a && !b;
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    if (json_is_object(a) && json_is_object(b)) { /* rope scaling: the keys that matter */
        static const char *const k[] = {"rope_type", "factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
        for (int i = 0; i < 5; i++)
            if (!same_json(json_object_get(a, k[i]), json_object_get(b, k[i]))) return 0;
        return 1;
    }
    return json_equal(a, b);
}

static void check_same_config(const char *want_dir, const char *got_dir, int ids_kept, const char *what) {
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", want_dir);
    json_t *a = json_load_file(p, 0, NULL);
    snprintf(p, sizeof p, "%s/config.json", got_dir);
    json_t *b = json_load_file(p, 0, NULL);
    CHECK(a && b);
    if (!a || !b) return;
    static const char *const keys[] = {"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
                                       "num_attention_heads", "num_key_value_heads", "vocab_size", "max_position_embeddings",
                                       "rms_norm_eps", "rope_theta", "rope_scaling", "tie_word_embeddings", "sliding_window",
                                       "hidden_act", "dtype", "bos_token_id", "eos_token_id", "head_dim"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        const char *k = keys[i];
        /* GGUF has no "none" for BOS/EOS: its readers take 1 and 2 */
        if (!ids_kept && strstr(k, "_token_id") && !cfg_get(a, k)) continue;
        json_t *x = cfg_get(a, k), *y = cfg_get(b, k);
        json_t *hd = NULL;
        if (!strcmp(k, "head_dim") && !x)
            x = hd = json_integer(json_integer_value(cfg_get(a, "hidden_size")) / json_integer_value(cfg_get(a, "num_attention_heads")));
        CHECK_MSG(same_json(x, y), "%s: config %s differs", what, k);
        json_decref(hd);
    }
    json_decref(a);
    json_decref(b);
}

static char *tmp_dir(void) {
    char *d = strdup("/tmp/lmkit_savehf_XXXXXX");
    CHECK(mkdtemp(d) != NULL);
    return d;
}

static void rm_dir(const char *d) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    CHECK(system(cmd) == 0);
}

static void check_folder(const char *folder) {
    char src[512];
    snprintf(src, sizeof src, "%s", test_src_path("tests/golden/"));
    strncat(src, folder, sizeof src - strlen(src) - 1);
    strncat(src, "/model", sizeof src - strlen(src) - 1);
    lm_llama_model m;
    lm_status s = lm_llama_load(src, &m);
    CHECK_MSG(s == LM_OK, "%s", lm_last_error());
    if (s != LM_OK) return;
    char *t = tmp_dir(), hf[600], hf2[600], gg[600];
    snprintf(hf, sizeof hf, "%s/hf", t);
    snprintf(hf2, sizeof hf2, "%s/hf2", t);
    snprintf(gg, sizeof gg, "%s/m.gguf", t);

    /* HF -> HF: everything as it was */
    CHECK_OK(lm_llama_save_hf(&m, hf, -1, NULL));
    check_same_tensors(src, hf, folder);
    check_same_config(src, hf, 1, folder);

    /* HF -> GGUF (q/k rows permuted for llama-arch) -> HF */
    CHECK_OK(lm_llama_save_gguf(&m, gg, -1, NULL, NULL, 0));
    lm_llama_model g;
    CHECK_OK(lm_llama_load(gg, &g));
    CHECK_OK(lm_llama_save_hf(&g, hf2, -1, NULL));
    check_same_tensors(src, hf2, folder);
    check_same_config(src, hf2, 0, folder);
    lm_llama_model r;
    s = lm_llama_load(hf2, &r);
    CHECK_MSG(s == LM_OK, "%s: %s", folder, lm_last_error());
    if (s == LM_OK) {
        check_same_logits(&m, &r, 0, folder);
        lm_llama_free(&r);
    }
    lm_llama_free(&g);
    lm_llama_free(&m);
    rm_dir(t);
    free(t);
}

/* LLaMA 3 scaling recovered from rope_freqs.weight when two or more
 * frequencies lie between the wavelength bounds (LLaMA 3.1 has 8): the
 * tiny model's GGUF with another theta and high_freq_factor, as a real
 * GGUF stores them. */
static void check_llama3_fit(void) {
    lm_llama_model m, g;
    char *t = tmp_dir(), gg[600], hf[600], p[700];
    snprintf(gg, sizeof gg, "%s/m.gguf", t);
    snprintf(hf, sizeof hf, "%s/hf", t);
    snprintf(p, sizeof p, "%s/config.json", hf);
    CHECK_OK(lm_llama_load(test_src_path("tests/golden/llama3_tiny/model"), &m));
    CHECK_OK(lm_llama_save_gguf(&m, gg, -1, NULL, NULL, 0));
    CHECK_OK(lm_llama_load(gg, &g));
    lm_llama_config c = g.cfg;
    c.rope_theta = 500000, c.rope_factor = 8, c.rope_low_freq_factor = 1, c.rope_high_freq_factor = 16, c.rope_orig_ctx = 8192;
    float ff[8];
    lm_llama_rope_freq_factors(&c, ff);
    int mid = 0;
    for (int j = 0; j < 8; j++) mid += ff[j] > 1 && ff[j] < 8;
    CHECK(g.rope_freq_factors && g.cfg.rope_factor == 0 && mid == 2);
    g.cfg.rope_theta = c.rope_theta;
    g.rope_freq_factors = ff;
    CHECK_OK(lm_llama_save_hf(&g, hf, -1, NULL));
    json_t *j = json_load_file(p, 0, NULL), *rs = json_object_get(j, "rope_scaling");
    CHECK_MSG(json_real_value(json_object_get(rs, "factor")) == 8 && json_real_value(json_object_get(rs, "low_freq_factor")) == 1 &&
                  json_real_value(json_object_get(rs, "high_freq_factor")) == 16 &&
                  json_integer_value(json_object_get(rs, "original_max_position_embeddings")) == 8192 &&
                  json_real_value(json_object_get(j, "rope_theta")) == 500000,
              "rope_scaling not recovered");
    json_decref(j);
    lm_llama_free(&g);
    lm_llama_free(&m);
    rm_dir(t);
    free(t);
}

static void check_stories(void) {
    const char *bin = test_src_path("data/models/stories260K/stories260K.bin");
    const char *vocab = test_src_path("data/models/stories260K/tok512.bin");
    lm_llama_model m;
    lm_tokenizer *tok;
    if (lm_llama_load(bin, &m) != LM_OK || lm_tokenizer_load(vocab, &tok) != LM_OK) {
        CHECK_MSG(0, "%s", lm_last_error());
        return;
    }
    CHECK(m.cfg.rope_neox == 0);
    char *t = tmp_dir(), hf[600], f16[600], q8[600], gg[600], tj[700];
    snprintf(hf, sizeof hf, "%s/hf", t);
    snprintf(f16, sizeof f16, "%s/f16", t);
    snprintf(q8, sizeof q8, "%s/q8", t);
    snprintf(gg, sizeof gg, "%s/q8.gguf", t);
    CHECK_OK(lm_llama_save_hf(&m, hf, -1, tok));

    lm_llama_model r;
    lm_status s = lm_llama_load(hf, &r);
    CHECK_MSG(s == LM_OK, "%s", lm_last_error());
    if (s == LM_OK) {
        CHECK(r.cfg.rope_neox == 1 && r.cfg.bos_id == 1 && r.cfg.eos_id == 2 && r.output.data == r.tok_emb.data);
        check_same_logits(&m, &r, 1e-5, "stories260K");
        lm_llama_free(&r);
    }

    /* the tokenizer.json encodes like tokenizer.bin */
    snprintf(tj, sizeof tj, "%s/tokenizer.json", hf);
    lm_tokenizer *tok2;
    CHECK_OK(lm_tokenizer_load(tj, &tok2));
    static const char *const texts[] = {"Once upon a time, there was a little girl named Lily.", "  two  spaces\nand a newline",
                                        "unknown bytes: \xC3\xA9t\xC3\xA9 \xE2\x98\x83 \xF0\x9F\x98\x80", "", "<s> not special text </s>"};
    for (int i = 0; i < 5; i++) {
        int32_t *a = NULL, *b = NULL;
        size_t na = 0, nb = 0;
        CHECK_OK(lm_tokenizer_encode(tok, texts[i], strlen(texts[i]), 1, &a, &na));
        CHECK_OK(lm_tokenizer_encode(tok2, texts[i], strlen(texts[i]), 1, &b, &nb));
        CHECK_MSG(na == nb && (!na || !memcmp(a, b, na * sizeof *a)), "tokenizer.json encodes '%s' differently", texts[i]);
        free(a);
        free(b);
    }
    lm_tokenizer_free(tok2);

    /* --type f16: every tensor F16; a Q8_0 GGUF: dequantized to F32 */
    CHECK_OK(lm_llama_save_hf(&m, f16, LM_QT_F16, NULL));
    lm_safetensors st;
    CHECK_OK(lm_safetensors_open(f16, &st));
    int all = st.n_tensors > 0;
    for (int i = 0; i < st.n_tensors; i++) all &= st.tensors[i].dtype == LM_DTYPE_F16;
    CHECK(all);
    lm_safetensors_close(&st);
    CHECK_OK(lm_llama_save_gguf(&m, gg, LM_QT_Q8_0, NULL, NULL, 0));
    lm_llama_model q;
    CHECK_OK(lm_llama_load(gg, &q));
    CHECK_OK(lm_llama_save_hf(&q, q8, -1, NULL));
    if (lm_llama_load(q8, &r) == LM_OK) {
        /* exactly the GGUF's values (the quantized model itself multiplies
         * Q8 activations, so its logits are no reference) */
        const lm_weight *w = &q.layers[0].w_gate;
        float *want = malloc(sizeof(float) * (size_t)w->rows * w->cols);
        CHECK_OK(lm_dequantize(w->type, w->data, want, w->rows, w->cols));
        CHECK(w->type == LM_QT_Q8_0 && r.layers[0].w_gate.type == LM_QT_F32 &&
              !memcmp(r.layers[0].w_gate.data, want, sizeof(float) * (size_t)w->rows * w->cols));
        free(want);
        lm_llama_free(&r);
    } else CHECK_MSG(0, "%s", lm_last_error());
    lm_llama_free(&q);

    /* a non-empty target: refused, untouched */
    s = lm_llama_save_hf(&m, hf, -1, tok);
    CHECK(s == LM_ERR_ARG && strstr(lm_last_error(), "not empty"));
    CHECK(lm_file_exists(tj));
    lm_tokenizer_free(tok);
    lm_llama_free(&m);
    rm_dir(t);
    free(t);
}

int main(void) {
    const char *folders[] = {"llama_tiny", "llama3_tiny", "mistral_tiny", "qwen2_tiny"};
    for (int i = 0; i < 4; i++) check_folder(folders[i]);
    check_llama3_fit();
    check_stories();
    TEST_MAIN_END();
}

/* Parity with transformers for Hugging Face LLaMA-family directories
 * (tests/golden/{llama,llama3,mistral,qwen2}_tiny, see their README):
 * logits of a batched prefill and of token-by-token decoding, greedy
 * generation, and the same after a round trip through GGUF. */
#include <stdlib.h>
#include <unistd.h>

#include "lmkit/engine.h"
#include "lmkit/llama.h"
#include "lmkit/safetensors.h"
#include "test.h"

enum { B = 2, T = 20, V = 97 };

/* Largest |a-b| over the largest |b|: the relative error the parity
 * bound is stated in (logits near zero would make per-element ratios
 * meaningless). */
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= d)) d = e;
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    }
    return d / mx;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static int load_ids(const char *path, const char *key, int *ids, int cap) {
    char *text;
    size_t len;
    if (lm_read_file(path, &text, &len) != LM_OK) return 0;
    const char *p = strstr(text, key);
    int n = 0;
    if (p && (p = strchr(p, '[')))
        for (p++; n < cap && *p && *p != ']';) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) p++;
            else ids[n++] = (int)v, p = end;
        }
    free(text);
    return n;
}

/* Checks one loaded model against the golden folder. */
static void check_model(const lm_llama_model *m, const char *folder, const char *what) {
    char path[512];
    snprintf(path, sizeof path, "tests/golden/%s/golden.safetensors", folder);
    lm_safetensors g;
    CHECK_OK(lm_safetensors_open(test_src_path(path), &g));
    const lm_st_tensor *ids_t = lm_safetensors_find(&g, "input_ids"), *lg = lm_safetensors_find(&g, "logits");
    CHECK(ids_t && lg && ids_t->numel == B * T && lg->numel == B * T * V);
    if (!ids_t || !lg) return;
    const int32_t *ids = ids_t->data;
    float *want = malloc(sizeof(float) * B * T * V), *got = malloc(sizeof(float) * B * T * V);
    CHECK_OK(lm_st_tensor_to_f32(lg, want, B * T * V));

    /* Both rows in one batched step (GEMM path), as two sequences. */
    lm_engine *e;
    lm_engine_opts o = {.max_seqs = 2};
    CHECK_OK(lm_engine_new(m, &o, &e));
    int seqs[B * T];
    uint8_t all[B * T];
    for (int i = 0; i < B * T; i++) seqs[i] = i / T, all[i] = 1;
    CHECK_OK(lm_engine_forward(e, B * T, ids, seqs, all, got));
    double err = rel_err(got, want, B * T * V);
    CHECK_MSG(err <= 1e-4, "%s %s: batched logits rel err %.3g", folder, what, err);

    /* F16 KV cache: K/V rounded to 11 bits, so a looser bound. */
    lm_engine *e16;
    lm_engine_opts o16 = {.max_seqs = 2, .kv_f16 = 1};
    CHECK_OK(lm_engine_new(m, &o16, &e16));
    CHECK_OK(lm_engine_forward(e16, B * T, ids, seqs, all, got));
    err = rel_err(got, want, B * T * V);
    CHECK_MSG(err <= 5e-3, "%s %s: F16 KV cache logits rel err %.3g", folder, what, err);
    lm_engine_free(e16);

    /* Token by token, both sequences in each step (the dot-kernel path). */
    for (int s = 0; s < B; s++) lm_engine_reset(e, s);
    float step[B * V];
    for (int t = 0; t < T; t++) {
        int32_t tk[B] = {ids[t], ids[T + t]};
        int sq[B] = {0, 1};
        uint8_t w[B] = {1, 1};
        CHECK_OK(lm_engine_forward(e, B, tk, sq, w, step));
        for (int s = 0; s < B; s++) memcpy(got + ((size_t)s * T + t) * V, step + s * V, sizeof(float) * V);
    }
    err = rel_err(got, want, B * T * V);
    CHECK_MSG(err <= 1e-4, "%s %s: decoded logits rel err %.3g", folder, what, err);

    /* Greedy generation (prefill the prompt, then one token per step). */
    int prompt[16], out[32];
    snprintf(path, sizeof path, "tests/golden/%s/generate.json", folder);
    int np = load_ids(test_src_path(path), "\"prompt\"", prompt, 16);
    int nw = load_ids(test_src_path(path), "\"new_tokens\"", out, 32);
    CHECK(np == 6 && nw == 12);
    lm_engine_reset(e, 0);
    int32_t p32[16];
    for (int i = 0; i < np; i++) p32[i] = prompt[i];
    float row[V];
    CHECK_OK(lm_engine_forward(e, np, p32, NULL, NULL, row));
    int same = 1;
    for (int i = 0; i < nw; i++) {
        int32_t next = argmax(row, V);
        if (next != out[i]) same = 0;
        CHECK_OK(lm_engine_forward(e, 1, &next, NULL, NULL, row));
    }
    CHECK_MSG(same, "%s %s: greedy tokens differ from transformers", folder, what);
    lm_engine_free(e);
    free(want);
    free(got);
    lm_safetensors_close(&g);
}

static void check_folder(const char *folder) {
    char path[512];
    snprintf(path, sizeof path, "tests/golden/%s/model", folder);
    lm_llama_model m;
    lm_status s = lm_llama_load(test_src_path(path), &m);
    CHECK_MSG(s == LM_OK, "%s: %s", folder, lm_last_error());
    if (s != LM_OK) return;
    CHECK(m.cfg.rope_neox == 1 && m.tok_emb.type == LM_QT_F32);

    /* RoPE table against transformers' rotary_emb.inv_freq. */
    snprintf(path, sizeof path, "tests/golden/%s/golden.safetensors", folder);
    lm_safetensors g;
    CHECK_OK(lm_safetensors_open(test_src_path(path), &g));
    const lm_st_tensor *rf = lm_safetensors_find(&g, "rope_inv_freq");
    float inv[8];
    lm_llama_rope_inv_freq(&m, inv);
    CHECK(rf && rf->numel == 8 && test_max_rel_err(inv, rf->data, 8, 1e-30) <= 1e-6);
    lm_safetensors_close(&g);
    check_model(&m, folder, "hf");

    /* GGUF round trip, F32 kept: LLaMA/Mistral rows are permuted to the
     * pair layout (llama arch), Qwen2 keeps half rotation (qwen2 arch). */
    char tmp[] = "/tmp/lmkit_hf_XXXXXX";
    int fd = mkstemp(tmp);
    CHECK(fd >= 0);
    close(fd);
    CHECK_OK(lm_llama_save_gguf(&m, tmp, -1, NULL, NULL, 0));
    lm_llama_model r;
    s = lm_llama_load(tmp, &r);
    CHECK_MSG(s == LM_OK, "%s", lm_last_error());
    if (s == LM_OK) {
        CHECK(r.cfg.rope_neox == m.cfg.qkv_bias && r.cfg.sliding_window == m.cfg.sliding_window);
        CHECK((r.output.data == r.tok_emb.data) == (m.output.data == m.tok_emb.data));
        check_model(&r, folder, "gguf");
        lm_llama_free(&r);
    }
    unlink(tmp);
    lm_llama_free(&m);
}

/* A transformers 4.x config (top-level rope_theta, rope_scaling with the
 * old "type" key) must load the same model as 5.x's rope_parameters. */
static void check_v4_config(void) {
    char dir[] = "/tmp/lmkit_hf4_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cfg[600], st[600];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    FILE *f = fopen(cfg, "w");
    fputs("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 3,"
          " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 97, \"max_position_embeddings\": 64,"
          " \"rms_norm_eps\": 1e-06, \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, \"bos_token_id\": 1,"
          " \"eos_token_id\": [2, 3], \"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0,"
          " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 16}}",
          f);
    fclose(f);
    char *target = realpath(test_src_path("tests/golden/llama3_tiny/model/model.safetensors"), NULL);
    CHECK(target && symlink(target, st) == 0);
    free(target);
    lm_llama_model m;
    lm_status s = lm_llama_load(dir, &m);
    CHECK_MSG(s == LM_OK, "%s", lm_last_error());
    if (s == LM_OK) {
        CHECK(m.cfg.bos_id == 1 && m.cfg.eos_id == 2 && m.cfg.rope_factor == 8.f);
        check_model(&m, "llama3_tiny", "4.x config");
        lm_llama_free(&m);
    }
    /* Unsupported settings are refused by name, not run wrongly. */
    f = fopen(cfg, "w");
    fputs("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 3,"
          " \"num_attention_heads\": 4, \"vocab_size\": 97, \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}}",
          f);
    fclose(f);
    s = lm_llama_load(dir, &m);
    CHECK(s == LM_ERR_UNSUPPORTED && strstr(lm_last_error(), "yarn"));
    /* Values a float or an int cannot hold, and ids past the vocabulary:
     * refused by name at load, not met later as inf or a bad token. */
    static const char *const bad[][2] = {
        {"\"rope_theta\": 1e300", "rope_theta"},
        {"\"rope_scaling\": {\"rope_type\": \"llama3\", \"original_max_position_embeddings\": 1e30}", "original_max_position_embeddings"},
        {"\"bos_token_id\": 100000", "bos/eos token id 100000"},
    };
    for (int i = 0; i < 3; i++) {
        f = fopen(cfg, "w");
        fprintf(f, "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 96, \"num_hidden_layers\": 3,"
                   " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\": 97, %s}", bad[i][0]);
        fclose(f);
        s = lm_llama_load(dir, &m);
        CHECK_MSG(s == LM_ERR_FORMAT && strstr(lm_last_error(), bad[i][1]), "%s: %s", bad[i][0], lm_last_error());
    }
    unlink(cfg);
    unlink(st);
    rmdir(dir);
}

int main(void) {
    const char *folders[] = {"llama_tiny", "llama3_tiny", "mistral_tiny", "qwen2_tiny"};
    for (int i = 0; i < 4; i++) check_folder(folders[i]);
    check_v4_config();
    TEST_MAIN_END();
}

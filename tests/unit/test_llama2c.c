/* stories260K (llama2.c format) end to end: greedy decoding reproduces
 * llama2.c's own output token for token and byte for byte; batched
 * prefill, several sequences in one step, the context limit, corrupt
 * headers, and a GGUF round trip. */
#include <ctype.h>

#include "lmkit/engine.h"
#include "lmkit/llama.h"
#include "test.h"

static int load_ids(const char *rel, int32_t *ids, int max) {
    FILE *f = fopen(test_src_path(rel), "r");
    int n = 0;
    if (!f) return 0;
    while (n < max && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    return n;
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

/* Greedy from `prompt` (BOS first) for `steps` positions the way run.c
 * loops: prompt tokens are forced, then argmax. out gets every token after
 * BOS. One token per step, so this is the decode path. */
static int greedy(lm_engine *e, const int32_t *prompt, int np, int steps, int32_t *out, int V) {
    float *logits = malloc(sizeof(float) * (size_t)V);
    int32_t tok = prompt[0];
    int n = 0;
    lm_engine_reset(e, 0);
    for (int pos = 0; pos < steps; pos++) {
        if (lm_engine_forward(e, 1, &tok, NULL, NULL, logits) != LM_OK) break;
        int32_t next = pos < np - 1 ? prompt[pos + 1] : argmax(logits, V);
        out[n++] = next;
        if (next == 1) break;
        tok = next;
    }
    free(logits);
    return n;
}

static void test_golden(lm_llama_model *m, const lm_llama2c_vocab *v) {
    int32_t want[512], got[512];
    int nw = load_ids("tests/golden/llama2c_stories260K/greedy_bos_256.ids", want, 512);
    CHECK(nw == 256);
    lm_engine *e;
    CHECK_OK(lm_engine_new(m, NULL, &e));
    int32_t bos = 1;
    int ng = greedy(e, &bos, 1, 256, got, m->cfg.vocab_size);
    CHECK(ng == nw && !memcmp(got, want, sizeof(int32_t) * (size_t)nw));
    /* The text as run.c prints it (safe_printf drops unprintable bytes). */
    char text[8192] = "", buf[2];
    int prev = 1;
    for (int i = 0; i < ng; i++) {
        const char *p = lm_llama2c_vocab_piece(v, prev, got[i], buf);
        if (!(p[0] && !p[1] && !(isprint((unsigned char)p[0]) || isspace((unsigned char)p[0]))))
            strncat(text, p, sizeof text - strlen(text) - 2);
        prev = got[i];
    }
    strcat(text, "\n");
    char *golden;
    size_t gl;
    CHECK_OK(lm_read_file(test_src_path("tests/golden/llama2c_stories260K/greedy_bos_256.txt"), &golden, &gl));
    CHECK_MSG(gl == strlen(text) && !memcmp(golden, text, gl), "text differs:\n%s", text);
    free(golden);

    /* With a prompt. */
    int32_t prompt[] = {1, 291, 280, 294, 262, 294};
    nw = load_ids("tests/golden/llama2c_stories260K/greedy_prompt_120.ids", want, 512);
    CHECK(nw == 120);
    ng = greedy(e, prompt, 6, 120, got, m->cfg.vocab_size);
    CHECK(ng == nw && !memcmp(got, want, sizeof(int32_t) * (size_t)nw));
    lm_engine_free(e);
}

/* A 40-token prefill in one call (GEMM path) predicts what one-at-a-time
 * decoding predicted; logits of every row agree to 1e-4. */
static void test_prefill(lm_llama_model *m) {
    int32_t want[512], toks[41];
    load_ids("tests/golden/llama2c_stories260K/greedy_bos_256.ids", want, 512);
    toks[0] = 1;
    memcpy(toks + 1, want, 40 * sizeof(int32_t));
    int V = m->cfg.vocab_size;
    lm_engine *a, *b;
    CHECK_OK(lm_engine_new(m, NULL, &a));
    CHECK_OK(lm_engine_new(m, NULL, &b));
    uint8_t all[41];
    memset(all, 1, sizeof all);
    float *batch = malloc(sizeof(float) * 41 * (size_t)V), *one = malloc(sizeof(float) * (size_t)V);
    CHECK_OK(lm_engine_forward(a, 41, toks, NULL, all, batch));
    double worst = 0;
    for (int i = 0; i < 41; i++) {
        CHECK_OK(lm_engine_forward(b, 1, &toks[i], NULL, NULL, one));
        double err = test_max_rel_err(batch + (size_t)i * V, one, (size_t)V, 1.0);
        if (err > worst) worst = err;
    }
    CHECK_MSG(worst <= 1e-4, "prefill vs decode logits: %g", worst);
    CHECK(argmax(batch + 40 * (size_t)V, V) == want[40]);
    CHECK(lm_engine_seq_len(a, 0) == 41);
    free(batch);
    free(one);
    lm_engine_free(a);
    lm_engine_free(b);
}

/* Two sequences decoded together, each at its own position, reproduce
 * their single-sequence goldens; the second joins 7 steps late. */
static void test_multi_seq(lm_llama_model *m) {
    int32_t w0[512], w1[512], g0[64], g1[64];
    load_ids("tests/golden/llama2c_stories260K/greedy_bos_256.ids", w0, 512);
    load_ids("tests/golden/llama2c_stories260K/greedy_prompt_120.ids", w1, 512);
    lm_engine_opts o = {.max_seqs = 3};
    lm_engine *e;
    CHECK_OK(lm_engine_new(m, &o, &e));
    int V = m->cfg.vocab_size;
    float *logits = malloc(sizeof(float) * 2 * (size_t)V);
    int32_t t0 = 1, t1 = 1;
    int n0 = 0, n1 = 0;
    int32_t p1[] = {1, 291, 280, 294, 262, 294};
    for (int step = 0; step < 47; step++) {
        int32_t toks[2];
        int seqs[2], n = 0;
        toks[n] = t0, seqs[n++] = 0;
        if (step >= 7) toks[n] = t1, seqs[n++] = 2;
        uint8_t want[2] = {1, 1};
        CHECK_OK(lm_engine_forward(e, n, toks, seqs, want, logits));
        t0 = g0[n0++] = argmax(logits, V);
        if (step >= 7) {
            int pos = n1;
            t1 = g1[n1++] = pos < 5 ? p1[pos + 1] : argmax(logits + V, V);
        }
    }
    CHECK(!memcmp(g0, w0, sizeof(int32_t) * 47));
    CHECK(n1 == 40 && !memcmp(g1, w1, sizeof(int32_t) * 40));
    CHECK(lm_engine_seq_len(e, 1) == 0 && lm_engine_seq_len(e, 2) == 40);
    free(logits);
    lm_engine_free(e);
}

static void test_limits(lm_llama_model *m) {
    lm_engine_opts o = {.ctx_len = 8, .kv_f16 = 1};
    lm_engine *e;
    CHECK_OK(lm_engine_new(m, &o, &e));
    int32_t toks[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float *logits = malloc(sizeof(float) * (size_t)m->cfg.vocab_size);
    CHECK_OK(lm_engine_forward(e, 8, toks, NULL, NULL, logits));
    CHECK(lm_engine_forward(e, 1, toks, NULL, NULL, logits) == LM_ERR_RANGE);
    CHECK(strstr(lm_last_error(), "context length 8") != NULL);
    lm_engine_reset(e, 0);
    CHECK(lm_engine_forward(e, 9, toks, NULL, NULL, logits) == LM_ERR_RANGE);
    CHECK(lm_engine_seq_len(e, 0) == 0);
    int32_t bad = 512;
    CHECK(lm_engine_forward(e, 1, &bad, NULL, NULL, logits) == LM_ERR_ARG);
    int seq = 1;
    CHECK(lm_engine_forward(e, 1, toks, &seq, NULL, logits) == LM_ERR_ARG);
    free(logits);
    lm_engine_free(e);
}

static void test_corrupt(const char *path) {
    char *buf;
    size_t n;
    CHECK_OK(lm_read_file(path, &buf, &n));
    lm_llama_model m;
    CHECK(lm_llama_parse_llama2c(buf, 1000, &m) == LM_ERR_FORMAT);
    CHECK_MSG(strstr(lm_last_error(), "bytes of weights") != NULL, "%s", lm_last_error());
    lm_llama_free(&m);
    CHECK(lm_llama_parse_llama2c(buf, 10, &m) == LM_ERR_FORMAT);
    lm_llama_free(&m);
    int32_t neg = -3;
    memcpy(buf + 12, &neg, 4); /* n_heads */
    CHECK(lm_llama_parse_llama2c(buf, n, &m) == LM_ERR_FORMAT);
    CHECK_MSG(strstr(lm_last_error(), "n_heads") != NULL, "%s", lm_last_error());
    lm_llama_free(&m);
    int32_t vmin = INT32_MIN; /* found by fuzz_llama2c: negating it overflowed */
    memcpy(buf + 12, &(int32_t){8}, 4);
    memcpy(buf + 20, &vmin, 4);
    CHECK(lm_llama_parse_llama2c(buf, n, &m) == LM_ERR_FORMAT);
    CHECK_MSG(strstr(lm_last_error(), "vocab_size") != NULL, "%s", lm_last_error());
    lm_llama_free(&m);
    memcpy(buf + 20, &(int32_t){512}, 4);
    int32_t seven = 7;
    memcpy(buf + 12, &seven, 4); /* dim 64 not divisible by 7 */
    CHECK(lm_llama_parse_llama2c(buf, n, &m) == LM_ERR_FORMAT);
    lm_llama_free(&m);
    free(buf);
    CHECK(lm_llama_load("/nonexistent/model.bin", &m) == LM_ERR_IO);
    lm_llama2c_vocab v;
    CHECK_OK(lm_read_file(test_src_path("data/models/stories260K/tok512.bin"), &buf, &n));
    CHECK(lm_llama2c_vocab_parse(buf, n - 3, 512, &v) == LM_ERR_FORMAT);
    CHECK(strstr(lm_last_error(), "truncated") || strstr(lm_last_error(), "length"));
    free(buf);
}

int main(void) {
    char path[4096]; /* test_src_path's buffers rotate: keep a copy */
    snprintf(path, sizeof path, "%s", test_src_path("data/models/stories260K/stories260K.bin"));
    lm_llama_model m;
    CHECK_OK(lm_llama_load(path, &m));
    CHECK(m.cfg.dim == 64 && m.cfg.hidden_dim == 172 && m.cfg.n_layers == 5 && m.cfg.n_heads == 8 &&
          m.cfg.n_kv_heads == 4 && m.cfg.vocab_size == 512 && m.cfg.max_seq_len == 512);
    lm_llama2c_vocab v;
    CHECK_OK(lm_llama2c_vocab_load(test_src_path("data/models/stories260K/tok512.bin"), 512, &v));
    test_golden(&m, &v);
    test_prefill(&m);
    test_multi_seq(&m);
    test_limits(&m);
    test_corrupt(path);
    lm_llama2c_vocab_free(&v);
    lm_llama_free(&m);
    TEST_MAIN_END();
}

/* Quantization quality where Q4_K really applies: perplexity of
 * data/models/shakespeare_llama_tiny (a 4-layer LLaMA trained by
 * ref/train_tiny_llama.py; every matrix row 256 or 512 wide, so Q4_K's
 * 256-element super-blocks fit all of them, unlike stories260K's in
 * test_llama_ppl.c) over held-out Shakespeare it was not trained on: the
 * last ~8 KB of data/tinyshakespeare/input.txt.
 *
 * "F32" is the model's F16 weights written as an F32 GGUF (F16 -> F32 is
 * exact), so it is the trained model itself; its summed NLL must match
 * transformers' on the same F16 weights in float64 over the same strided
 * windows (tests/golden/shakespeare_llama_tiny/perplexity.json) to 1e-4.
 * The HF directory as loaded (F16 weights widened in the matmul) must
 * agree with it too. Then Q8_0 (bound +1%), Q4_K (bound +5%), and, with
 * loose bounds since they are not the claims, Q6_K and Q4_0.
 * The Q4_K file is checked to hold every matrix, the embedding and the
 * output included, as Q4_K: lmkit's "q4_k" is Q4_K throughout, like
 * llama.cpp's Q4_K_S without its Q6_K/Q5_K exceptions. */
#include <jansson.h>

#include "llama_ppl_util.h"

#define MODEL_DIR "data/models/shakespeare_llama_tiny"

/* The held-out text's ids by tok: BOS, then the text encoded. */
static int32_t *encode(const char *tok_path, const char *text, size_t len, int bos, long *n) {
    lm_tokenizer *tok;
    int32_t *raw = NULL, *ids = NULL;
    size_t k = 0;
    *n = 0;
    CHECK_OK(lm_tokenizer_load(tok_path, &tok));
    if (!tok) return NULL;
    CHECK_OK(lm_tokenizer_encode(tok, text, len, 0, &raw, &k));
    ids = malloc((k + 1) * sizeof *ids);
    ids[0] = bos;
    memcpy(ids + 1, raw, k * sizeof *raw);
    *n = (long)k + 1;
    free(raw);
    lm_tokenizer_free(tok);
    return ids;
}

int main(void) {
    json_t *g = json_load_file(test_src_path("tests/golden/shakespeare_llama_tiny/perplexity.json"), 0, NULL);
    CHECK(g != NULL);
    if (!g) TEST_MAIN_END();
    lm_llama_model m;
    lm_llama2c_vocab v;
    CHECK_OK(lm_llama_load(test_src_path(MODEL_DIR), &m));
    CHECK_OK(lm_llama2c_vocab_load(test_src_path("data/models/stories260K/tok512.bin"), m.cfg.vocab_size, &v));
    int ctx = (int)json_integer_value(json_object_get(g, "ctx")), stride = (int)json_integer_value(json_object_get(g, "stride"));
    CHECK(m.cfg.max_seq_len == ctx && m.cfg.dim % 256 == 0 && m.cfg.hidden_dim % 256 == 0);

    /* The held-out bytes, tokenized by tok512.bin and by the directory's
     * tokenizer.json: both must give SentencePiece's ids from the golden. */
    char *all;
    size_t all_len;
    CHECK_OK(lm_read_file(test_src_path("data/tinyshakespeare/input.txt"), &all, &all_len));
    size_t off = (size_t)json_integer_value(json_object_get(g, "text_offset"));
    size_t len = (size_t)json_integer_value(json_object_get(g, "text_bytes"));
    CHECK(off + len == all_len);
    json_t *jids = json_object_get(g, "ids");
    long n = (long)json_array_size(jids), n_bin, n_json;
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (long i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, (size_t)i));
    int32_t *ids_bin = encode(test_src_path("data/models/stories260K/tok512.bin"), all + off, len, m.cfg.bos_id, &n_bin);
    int32_t *ids_json = encode(test_src_path(MODEL_DIR "/tokenizer.json"), all + off, len, m.cfg.bos_id, &n_json);
    CHECK_MSG(n_bin == n && !memcmp(ids_bin, ids, (size_t)n * sizeof *ids), "tok512.bin: %ld ids, golden %ld", n_bin, n);
    CHECK_MSG(n_json == n && !memcmp(ids_json, ids, (size_t)n * sizeof *ids), "tokenizer.json: %ld ids, golden %ld", n_json, n);

    /* Under the sanitizers the first quarter keeps the run short; the
     * golden scores that prefix too. */
    json_t *want = json_object_get(g, "full");
    if (getenv("LMKIT_SANITIZED")) {
        want = json_object_get(g, "first_quarter");
        n = (long)json_integer_value(json_object_get(want, "n_ids"));
    }
    CHECK(n > 1000 / (getenv("LMKIT_SANITIZED") ? 4 : 1));

    /* F32 against transformers. */
    int c[64];
    char tmp[] = "/tmp/lmkit_ppl_q4k_XXXXXX";
    int fd = mkstemp(tmp);
    close(fd);
    CHECK_OK(lm_llama_save_gguf(&m, tmp, LM_QT_F32, v.pieces, v.scores, v.n));
    lm_llama_model m32;
    CHECK_OK(lm_llama_load(tmp, &m32));
    unlink(tmp);
    lm_perplexity_result r32 = lp_run(&m32, ids, n, stride), r16 = lp_run(&m, ids, n, stride);
    lm_llama_free(&m32);
    double gold = json_number_value(json_object_get(want, "nll_sum"));
    CHECK_MSG(r32.tokens == json_integer_value(json_object_get(want, "tokens")) &&
                  r32.windows == json_integer_value(json_object_get(want, "windows")),
              "%ld tokens in %ld windows", (long)r32.tokens, (long)r32.windows);
    CHECK_MSG(fabs(r32.nll_sum / gold - 1) <= 1e-4, "f32 nll %.6f, transformers %.6f", r32.nll_sum, gold);
    CHECK_MSG(fabs(r16.nll_sum / r32.nll_sum - 1) <= 1e-5, "hf dir (f16) nll %.6f, f32 %.6f", r16.nll_sum, r32.nll_sum);
    double f32 = lp_ppl(r32);
    /* Measured: 17.99 per token over the held-out text (21.33 over its
     * first quarter); tok512 splits it into 1.53 bytes a token, so 2.7
     * bits a byte. The model learned: untrained it scores ~530 (vocab
     * 512), and its validation loss fell from 6.28 to 2.56 nats. */
    CHECK_MSG(f32 > 2 && f32 < 40, "f32 perplexity %.3f", f32);

    const int n_mat = 2 + 7 * m.cfg.n_layers;
    double q8 = lp_quantized(&m, &v, LM_QT_Q8_0, ids, n, stride, c);
    CHECK(c[LM_QT_Q8_0] == n_mat);
    double q4k = lp_quantized(&m, &v, LM_QT_Q4_K, ids, n, stride, c);
    CHECK_MSG(c[LM_QT_Q4_K] == n_mat, "q4_k file: %d of %d matrices q4_k", c[LM_QT_Q4_K], n_mat);
    double q6k = lp_quantized(&m, &v, LM_QT_Q6_K, ids, n, stride, c);
    CHECK(c[LM_QT_Q6_K] == n_mat);
    double q40 = lp_quantized(&m, &v, LM_QT_Q4_0, ids, n, stride, c);
    CHECK(c[LM_QT_Q4_0] == n_mat);
    printf("perplexity over %ld held-out tokens: f32 %.4f (transformers %.4f), q8_0 %.4f (%+.2f%%), q6_k %.4f (%+.2f%%), "
           "q4_k %.4f (%+.2f%%), q4_0 %.4f (%+.2f%%)\n",
           n - 1, f32, exp(gold / (double)r32.tokens), q8, 100 * (q8 / f32 - 1), q6k, 100 * (q6k / f32 - 1), q4k,
           100 * (q4k / f32 - 1), q40, 100 * (q40 / f32 - 1));
    CHECK_MSG(fabs(q8 / f32 - 1) <= 0.01, "q8_0 perplexity %.4f vs f32 %.4f", q8, f32);
    CHECK_MSG(fabs(q4k / f32 - 1) <= 0.05, "q4_k perplexity %.4f vs f32 %.4f", q4k, f32);
    CHECK_MSG(fabs(q6k / f32 - 1) <= 0.01, "q6_k perplexity %.4f vs f32 %.4f", q6k, f32);
    /* Measured: q8_0 -0.19%, q6_k +0.02%, q4_k +1.59%, q4_0 +2.03%. Q6_K
     * is held to Q8_0's bound; Q4_0 (one scale per 32 weights, no
     * offset) only loosely, as the issue claims nothing for it. */
    CHECK_MSG(q40 / f32 - 1 <= 0.10, "q4_0 perplexity %.4f vs f32 %.4f", q40, f32);

    free(ids);
    free(ids_bin);
    free(ids_json);
    free(all);
    json_decref(g);
    lm_llama2c_vocab_free(&v);
    lm_llama_free(&m);
    TEST_MAIN_END();
}

/* GGUF: writer/reader round trip, every corrupt-field case named in the
 * error, truncation at every byte, and stories260K through GGUF (F32 keeps
 * llama2.c's greedy output exactly; Q8_0 stays close). */
#include <unistd.h>

#include "lmkit/engine.h"
#include "lmkit/gguf.h"
#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) & 3;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* A tiny file: one string key, one [2, 8] F32 tensor. Field offsets:
 * version 4, tensor_count 8, kv_count 16, tensor n_dims 78, dims 82/90,
 * type 98, offset 102, data at 128. */
static uint8_t *tiny(size_t *n) {
    lm_gguf_writer *w = lm_gguf_writer_new();
    float data[16];
    for (int i = 0; i < 16; i++) data[i] = (float)i;
    int64_t dims[2] = {8, 2};
    CHECK_OK(lm_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(lm_gguf_writer_add_tensor(w, "a", LM_QT_F32, 2, dims, data));
    CHECK_OK(lm_gguf_writer_write(w, tmp("tiny.gguf")));
    lm_gguf_writer_free(w);
    char *buf;
    CHECK_OK(lm_read_file(tmp("tiny.gguf"), &buf, n));
    return (uint8_t *)buf;
}

static void expect_err(const uint8_t *buf, size_t n, lm_status want, const char *needle) {
    lm_gguf g;
    lm_status s = lm_gguf_parse(buf, n, &g);
    CHECK_MSG(s == want, "status %d (want %d): %s", s, want, lm_last_error());
    CHECK_MSG(strstr(lm_last_error(), needle) != NULL, "'%s' not in: %s", needle, lm_last_error());
}

static void write_file(const char *path, const void *buf, size_t n) {
    FILE *o = fopen(path, "wb");
    CHECK(o != NULL);
    if (!o) return;
    CHECK(fwrite(buf, 1, n, o) == n);
    fclose(o);
}

static void patch_u32(uint8_t *b, size_t off, uint32_t v) { memcpy(b + off, &v, 4); }
static void patch_u64(uint8_t *b, size_t off, uint64_t v) { memcpy(b + off, &v, 8); }

static void test_tiny(void) {
    size_t n;
    uint8_t *buf = tiny(&n);
    CHECK(n == 192);
    lm_gguf g;
    CHECK_OK(lm_gguf_parse(buf, n, &g));
    CHECK(g.n_kv == 1 && g.n_tensors == 1 && g.data_offset == 128);
    const lm_gguf_tensor *t = lm_gguf_find_tensor(&g, "a");
    CHECK(t && t->dims[0] == 8 && t->dims[1] == 2 && t->type == LM_QT_F32 && ((const float *)t->data)[15] == 15.f);
    char *arch;
    CHECK_OK(lm_gguf_get_str(&g, "general.architecture", &arch));
    CHECK(!strcmp(arch, "llama"));
    free(arch);
    int64_t v;
    CHECK(lm_gguf_get_int(&g, "general.architecture", 0, 10, &v) == LM_ERR_FORMAT);
    CHECK(lm_gguf_get_int(&g, "llama.block_count", 0, 10, &v) == LM_ERR_FORMAT);
    CHECK(strstr(lm_last_error(), "llama.block_count") != NULL);
    lm_gguf_close(&g);

    uint8_t *c = malloc(n);
#define FRESH() memcpy(c, buf, n)
    FRESH(); c[0] = 'X'; expect_err(c, n, LM_ERR_FORMAT, "magic");
    FRESH(); patch_u32(c, 4, 4); expect_err(c, n, LM_ERR_UNSUPPORTED, "version 4");
    FRESH(); patch_u64(c, 8, 1ull << 60); expect_err(c, n, LM_ERR_FORMAT, "tensor_count");
    FRESH(); patch_u64(c, 16, 1000); expect_err(c, n, LM_ERR_FORMAT, "kv_count");
    FRESH(); patch_u64(c, 24, 1ull << 40); expect_err(c, n, LM_ERR_FORMAT, "truncated");
    FRESH(); patch_u32(c, 52, 77); expect_err(c, n, LM_ERR_FORMAT, "unknown value type 77");
    FRESH(); patch_u32(c, 78, 5); expect_err(c, n, LM_ERR_FORMAT, "n_dims 5");
    FRESH(); patch_u64(c, 82, 0); expect_err(c, n, LM_ERR_FORMAT, "dim 0 = 0");
    FRESH(); patch_u64(c, 90, 1ull << 45); expect_err(c, n, LM_ERR_FORMAT, "out of range");
    FRESH(); patch_u32(c, 98, 99); expect_err(c, n, LM_ERR_UNSUPPORTED, "ggml type 99");
    FRESH(); patch_u32(c, 98, LM_QT_Q8_0); expect_err(c, n, LM_ERR_FORMAT, "block size");
    FRESH(); patch_u64(c, 102, 4); expect_err(c, n, LM_ERR_FORMAT, "alignment");
    FRESH(); patch_u64(c, 102, 32); expect_err(c, n, LM_ERR_FORMAT, "past the end");
    expect_err(buf, n - 1, LM_ERR_FORMAT, "past the end");
    /* Every truncation of the header and tensor infos is a clean error. */
    int clean = 1;
    for (size_t cut = 0; cut < 128; cut++) {
        lm_gguf g2;
        if (lm_gguf_parse(buf, cut, &g2) != LM_ERR_FORMAT) clean = 0;
    }
    CHECK(clean);
    free(c);
    free(buf);
}

static int argmax(const float *x, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static void test_stories_gguf(void) {
    lm_llama_model src, f32, q8;
    CHECK_OK(lm_llama_load(test_src_path("data/models/stories260K/stories260K.bin"), &src));
    lm_llama2c_vocab v;
    CHECK_OK(lm_llama2c_vocab_load(test_src_path("data/models/stories260K/tok512.bin"), 512, &v));
    CHECK_OK(lm_llama_save_gguf(&src, tmp("s.gguf"), -1, v.pieces, v.scores, v.n));
    CHECK_OK(lm_llama_save_gguf(&src, tmp("s_q8.gguf"), LM_QT_Q8_0, v.pieces, v.scores, v.n));
    CHECK_OK(lm_llama_load(tmp("s.gguf"), &f32));
    CHECK_OK(lm_llama_load(tmp("s_q8.gguf"), &q8));
    /* The vocabulary as SentencePiece spells it (what llama.cpp reads):
     * llama2.c's spaces become U+2581 and its "\n<s>\n" is "<s>". */
    CHECK(f32.n_vocab_strings == 512);
    CHECK_MSG(!strcmp(v.pieces[265], " the") && !strcmp(f32.vocab[265], "\xE2\x96\x81the"), "'%s'", f32.vocab[265]);
    CHECK(!strcmp(f32.vocab[300], v.pieces[300]) == !strchr(v.pieces[300], ' '));
    CHECK(!strcmp(f32.vocab[1], "<s>") && !strcmp(f32.vocab[2], "</s>"));
    CHECK(q8.layers[0].wq.type == LM_QT_Q8_0 && q8.layers[0].w_down.type == LM_QT_F16); /* 172 % 32 != 0 */
    CHECK(f32.output.data == f32.tok_emb.data);
    /* Bytes a decode step reads: with tied embeddings every tensor; with
     * a separate output matrix the table's one row, not its 512. */
    CHECK(lm_llama_decode_bytes(&f32) == f32.weight_bytes);
    lm_llama_model untied = f32;
    untied.output.data = f32.layers[0].wq.data;
    CHECK(lm_llama_decode_bytes(&untied) == f32.weight_bytes - 511 * 64 * sizeof(float));
    /* Greedy decode over both, against the llama2.c golden ids. */
    FILE *f = fopen(test_src_path("tests/golden/llama2c_stories260K/greedy_bos_256.ids"), "r");
    int32_t want[256];
    int nw = 0;
    while (f && nw < 256 && fscanf(f, "%d", &want[nw]) == 1) nw++;
    if (f) fclose(f);
    CHECK(nw == 256);
    lm_engine *a, *b;
    CHECK_OK(lm_engine_new(&f32, NULL, &a));
    CHECK_OK(lm_engine_new(&q8, NULL, &b));
    float la[512], lb[512];
    int32_t ta = 1, tb = 1, same_a = 1;
    double worst = 0;
    for (int i = 0; i < nw; i++) {
        CHECK_OK(lm_engine_forward(a, 1, &ta, NULL, NULL, la));
        CHECK_OK(lm_engine_forward(b, 1, &tb, NULL, NULL, lb));
        double e = test_rel_l2(lb, la, 512);
        if (e > worst) worst = e;
        ta = argmax(la, 512);
        same_a &= ta == want[i];
        tb = ta; /* teacher-force q8 with the F32 path's tokens */
    }
    CHECK(same_a);
    printf("stories260K Q8_0 vs F32 logits: worst rel L2 %.4f over %d positions\n", worst, nw);
    CHECK_MSG(worst < 0.05, "q8_0 logits drift %g", worst);
    lm_engine_free(a);
    lm_engine_free(b);
    lm_llama_free(&q8);
    lm_llama_free(&f32);

    /* Missing tensor and shape mismatch through the model loader. */
    lm_llama_model m2;
    char *buf;
    size_t n;
    CHECK_OK(lm_read_file(tmp("s.gguf"), &buf, &n));
    char *p = memmem(buf, n, "blk.3.ffn_up.weight", 19);
    CHECK(p != NULL);
    if (p) {
        p[4] = 'X';
        FILE *o = fopen(tmp("bad.gguf"), "wb");
        fwrite(buf, 1, n, o);
        fclose(o);
        CHECK(lm_llama_load(tmp("bad.gguf"), &m2) == LM_ERR_FORMAT);
        CHECK_MSG(strstr(lm_last_error(), "missing tensor 'blk.3.ffn_up.weight'"), "%s", lm_last_error());
        p[4] = '3';
        /* dims of ffn_up follow its name: [64, 172] -> [64, 171] */
        uint64_t d1;
        memcpy(&d1, p + 19 + 4 + 8, 8);
        CHECK(d1 == 172);
        d1 = 171;
        memcpy(p + 19 + 4 + 8, &d1, 8);
        o = fopen(tmp("bad.gguf"), "wb");
        fwrite(buf, 1, n, o);
        fclose(o);
        CHECK(lm_llama_load(tmp("bad.gguf"), &m2) == LM_ERR_FORMAT);
        CHECK_MSG(strstr(lm_last_error(), "blk.3.ffn_up.weight' has shape"), "%s", lm_last_error());
    }
    /* Every required hyperparameter key, missing (its first letter
     * changed) and then out of range (block_count 0): a clear error naming
     * it, never a half-built model. */
    static const char *const required[] = {"llama.context_length", "llama.embedding_length", "llama.block_count",
                                           "llama.feed_forward_length", "llama.attention.head_count"};
    for (size_t k = 0; k < sizeof required / sizeof *required; k++) {
        char *key = memmem(buf, n, required[k], strlen(required[k]));
        CHECK_MSG(key != NULL, "%s not in s.gguf", required[k]);
        if (!key) continue;
        key[6] = 'X'; /* "llama.Xontext_length" */
        write_file(tmp("bad.gguf"), buf, n);
        CHECK(lm_llama_load(tmp("bad.gguf"), &m2) == LM_ERR_FORMAT);
        CHECK_MSG(strstr(lm_last_error(), required[k]) && strstr(lm_last_error(), "missing key"), "%s", lm_last_error());
        key[6] = required[k][6];
    }
    char *bc = memmem(buf, n, "llama.block_count", 17);
    if (bc) {
        uint32_t type, zero = 0;
        memcpy(&type, bc + 17, 4);
        CHECK(type == 4); /* u32 */
        memcpy(bc + 17 + 4, &zero, 4);
        write_file(tmp("bad.gguf"), buf, n);
        CHECK(lm_llama_load(tmp("bad.gguf"), &m2) == LM_ERR_FORMAT);
        CHECK_MSG(strstr(lm_last_error(), "llama.block_count"), "%s", lm_last_error());
    }
    /* A .gguf cut to 3 bytes is reported as a truncated GGUF, not as a
     * llama2.c file. */
    write_file(tmp("cut.gguf"), buf, 3);
    CHECK(lm_llama_load(tmp("cut.gguf"), &m2) == LM_ERR_FORMAT);
    CHECK_MSG(strstr(lm_last_error(), "gguf: truncated"), "%s", lm_last_error());
    free(buf);
    lm_llama2c_vocab_free(&v);
    lm_llama_free(&src);
}

/* A model GGUF carrying a byte-level BPE tokenizer ("gpt2": merges,
 * pre-tokenizer, chat template) keeps it key for key through a re-save
 * (quantize, convert): rebuilt from the token strings alone it would have
 * become a SentencePiece vocabulary without merges. */
static void test_tokenizer_kept(void) {
    lm_gguf src;
    CHECK_OK(lm_gguf_open(tmp("s.gguf"), &src));
    lm_gguf_writer *w = lm_gguf_writer_new();
    for (size_t i = 0; i < src.n_kv; i++)
        if (strncmp(src.kv[i].key, "tokenizer.", 10)) CHECK_OK(lm_gguf_writer_copy_kv(w, &src, &src.kv[i]));
    char toks[512][8], *tokp[512], *merges[2] = {"a b", "ab c"};
    for (int i = 0; i < 512; i++) {
        snprintf(toks[i], sizeof toks[i], i == 0 ? "ab" : i == 1 ? "abc" : "t%d", i);
        tokp[i] = toks[i];
    }
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.pre", "qwen2"));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokp, 512));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, 2));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.chat_template", "{{ messages }}"));
    for (size_t i = 0; i < src.n_tensors; i++) {
        const lm_gguf_tensor *t = &src.tensors[i];
        CHECK_OK(lm_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->dims, t->data));
    }
    CHECK_OK(lm_gguf_writer_write(w, tmp("bpe.gguf")));
    lm_gguf_writer_free(w);
    lm_gguf_close(&src);

    lm_llama_model m;
    CHECK_OK(lm_llama_load(tmp("bpe.gguf"), &m));
    CHECK_OK(lm_llama_save_gguf(&m, tmp("bpe_q8.gguf"), LM_QT_Q8_0, m.vocab, m.vocab_scores, m.n_vocab_strings));
    lm_llama_free(&m);
    lm_gguf out;
    CHECK_OK(lm_gguf_open(tmp("bpe_q8.gguf"), &out));
    char *model = NULL, *pre = NULL, *tmpl = NULL;
    CHECK_OK(lm_gguf_get_str(&out, "tokenizer.ggml.model", &model));
    CHECK_OK(lm_gguf_get_str(&out, "tokenizer.ggml.pre", &pre));
    CHECK_OK(lm_gguf_get_str(&out, "tokenizer.chat_template", &tmpl));
    CHECK(model && !strcmp(model, "gpt2") && pre && !strcmp(pre, "qwen2") && tmpl && !strcmp(tmpl, "{{ messages }}"));
    const lm_gguf_kv *mk = lm_gguf_find(&out, "tokenizer.ggml.merges");
    CHECK(mk && mk->type == LM_GGUF_ARRAY && mk->arr_n == 2);
    CHECK(lm_gguf_find(&out, "tokenizer.ggml.bos_token_id") != NULL); /* from the config, once */
    free(model);
    free(pre);
    free(tmpl);
    lm_gguf_close(&out);
}

/* A tokenizer-only GGUF ("llama" model) with BOS id bos. */
static void write_spm_tokenizer(const char *path, const char *const *toks, int n, uint32_t bos) {
    lm_gguf_writer *w = lm_gguf_writer_new();
    CHECK_OK(lm_gguf_writer_set_str(w, "general.architecture", "llama"));
    CHECK_OK(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama"));
    CHECK_OK(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, (uint64_t)n));
    CHECK_OK(lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", bos));
    CHECK_OK(lm_gguf_writer_write(w, path));
    lm_gguf_writer_free(w);
}

/* The GGUF tokenizer takes the file's bytes as they are (a BOS that is not
 * UTF-8 was reported as "out of memory") and names an id past its tokens. */
static void test_tokenizer_ids(void) {
    const char *toks[] = {"<unk>", "<s\xff>", "</s>", "\xE2\x96\x81", "a", "b", "\xE2\x96\x81" "a"};
    write_spm_tokenizer(tmp("tok.gguf"), toks, 7, 1);
    lm_tokenizer *t = NULL;
    CHECK_OK(lm_tokenizer_load(tmp("tok.gguf"), &t));
    int32_t *ids = NULL;
    size_t n = 0;
    if (t) CHECK_OK(lm_tokenizer_encode(t, "a b", 3, 1, &ids, &n));
    CHECK_MSG(n == 4 && ids[0] == 1 && ids[1] == 6 && ids[2] == 3 && ids[3] == 5, "n %zu first %d %d", n, n ? ids[0] : -1,
              n > 1 ? ids[1] : -1); /* <s> _a _ b */
    free(ids);
    lm_tokenizer_free(t);
    write_spm_tokenizer(tmp("tok.gguf"), toks, 7, 600);
    CHECK(lm_tokenizer_load(tmp("tok.gguf"), &t) == LM_ERR_FORMAT);
    CHECK_MSG(strstr(lm_last_error(), "tok.gguf") && strstr(lm_last_error(), "tokenizer.ggml.bos_token_id"), "%s", lm_last_error());
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lmkit_test_gguf_%d", (int)getpid());
    CHECK_OK(lm_mkdir_p(tmpdir));
    test_tiny();
    test_stories_gguf();
    test_tokenizer_kept();
    test_tokenizer_ids();
    const char *names[] = {"tiny.gguf", "s.gguf", "s_q8.gguf", "bad.gguf", "cut.gguf", "bpe.gguf", "bpe_q8.gguf", "tok.gguf"};
    for (int i = 0; i < 8; i++) unlink(tmp(names[i]));
    rmdir(tmpdir);
    TEST_MAIN_END();
}

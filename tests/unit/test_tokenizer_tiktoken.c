/* GPT-2 (encoder.json + vocab.bpe), cl100k_base (tiktoken file) and the
 * byte tokenizer against golden ids written by tiktoken (ref/tokenizer_golden.py):
 * 100 KB of Shakespeare and 20 KB of Chinese ci poetry, exact match. */
#include "lmkit/tokenizer.h"
#include "test.h"

#include <stdint.h>

static int32_t *read_ids(const char *rel, size_t *n) {
    char *buf;
    size_t len;
    if (lm_read_file(test_src_path(rel), &buf, &len) != LM_OK) return NULL;
    size_t cap = 1024, k = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *p = buf;
    while (*p) {
        char *e;
        long v = strtol(p, &e, 10);
        if (e == p) break;
        if (k == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
        ids[k++] = (int32_t)v;
        p = e;
        while (*p == '\n') p++;
    }
    free(buf);
    *n = k;
    return ids;
}

static void check_corpus(const lm_tokenizer *t, const char *text_rel, const char *ids_rel) {
    char *text;
    size_t len, ng = 0, n = 0;
    CHECK_OK(lm_read_file(test_src_path(text_rel), &text, &len));
    int32_t *gold = read_ids(ids_rel, &ng), *ids = NULL;
    CHECK_MSG(gold && ng > 1000, "golden %s", ids_rel);
    lm_set_threads(1);
    CHECK_OK(lm_tokenizer_encode(t, text, len, 0, &ids, &n));
    size_t first_diff = 0;
    while (first_diff < n && first_diff < ng && ids[first_diff] == gold[first_diff]) first_diff++;
    CHECK_MSG(n == ng && first_diff == n, "%s: %zu ids vs %zu golden, first difference at %zu", ids_rel, n, ng,
              first_diff);
    /* the threaded path (input cut at line starts) must give the same ids;
     * small inputs are encoded in one piece, so repeat the text to 1 MB+ */
    size_t reps = ((size_t)1 << 20) / len + 1;
    char *big = malloc(len * reps);
    for (size_t r = 0; r < reps; r++) memcpy(big + r * len, text, len);
    int32_t *one = NULL, *two = NULL;
    size_t n1 = 0, n2 = 0;
    lm_set_threads(1);
    CHECK_OK(lm_tokenizer_encode(t, big, len * reps, 0, &one, &n1));
    lm_set_threads(2);
    CHECK_OK(lm_tokenizer_encode(t, big, len * reps, 0, &two, &n2));
    CHECK_MSG(n1 == n2 && n1 && !memcmp(one, two, n1 * sizeof *one), "%s: 2-thread encode differs", text_rel);
    lm_set_threads(1);
    /* decode gives the text back byte for byte */
    char *dec = NULL;
    size_t dl = 0;
    CHECK_OK(lm_tokenizer_decode(t, ids, n, &dec, &dl));
    CHECK_MSG(dl == len && !memcmp(dec, text, len), "%s: decode(encode(x)) != x", text_rel);
    /* streaming decode, one token at a time, buffers split characters */
    char *acc = malloc(len + 16);
    size_t al = 0, emitted = 0;
    int utf8_ok = 1;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t pl;
        if (lm_tokenizer_decode_piece(t, ids[i], i == 0, &p, &pl) != LM_OK) break;
        memcpy(acc + al, p, pl);
        al += pl;
        size_t ready = lm_utf8_complete_prefix(acc, al);
        if (ready < emitted) utf8_ok = 0;
        emitted = ready;
    }
    CHECK_MSG(al == len && !memcmp(acc, text, len) && utf8_ok && emitted == len, "%s: streaming decode", text_rel);
    free(acc);
    free(dec);
    free(one);
    free(two);
    free(big);
    free(ids);
    free(gold);
    free(text);
}

static void check_bytes(void) {
    lm_tokenizer *t = NULL;
    CHECK_OK(lm_tokenizer_load("bytes", &t));
    if (!t) return;
    CHECK(lm_tokenizer_vocab_size(t) == 256);
    unsigned char text[300];
    for (int i = 0; i < 300; i++) text[i] = (unsigned char)(i * 7 + 3);
    int32_t *ids;
    size_t n;
    CHECK_OK(lm_tokenizer_encode(t, (const char *)text, sizeof text, 1, &ids, &n));
    int same = n == sizeof text;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == text[i];
    CHECK_MSG(same, "bytes: id = byte value, invalid UTF-8 included");
    char *dec;
    size_t dl;
    CHECK_OK(lm_tokenizer_decode(t, ids, n, &dec, &dl));
    CHECK(dl == sizeof text && !memcmp(dec, text, dl));
    free(dec);
    free(ids);
    /* save and reload: still id = byte */
    const char *path = "test_tok_bytes.json";
    CHECK_OK(lm_tokenizer_save(t, path));
    lm_tokenizer *r = NULL;
    CHECK_OK(lm_tokenizer_load(path, &r));
    if (r) {
        /* (a loaded tokenizer.json repairs invalid UTF-8 like any other; only
         * the builtin keeps raw bytes) */
        CHECK_OK(lm_tokenizer_encode(r, "hi\xe2\x82\xac", 5, 0, &ids, &n));
        CHECK(n == 5 && ids[0] == 'h' && ids[1] == 'i' && ids[2] == 0xe2 && ids[3] == 0x82 && ids[4] == 0xac);
        free(ids);
        lm_tokenizer_free(r);
    }
    remove(path);
    lm_tokenizer_free(t);
}

static void check_gpt2_api(lm_tokenizer *t) {
    CHECK(lm_tokenizer_vocab_size(t) == 50257);
    CHECK(lm_tokenizer_eos_id(t) == 50256);
    CHECK(lm_tokenizer_bos_id(t) == 50256);
    CHECK(lm_tokenizer_token_to_id(t, "Hello") == 15496);
    CHECK(lm_tokenizer_token_to_id(t, "no-such-token-here") == -1);
    CHECK(lm_tokenizer_id_to_token(t, 50256) && !strcmp(lm_tokenizer_id_to_token(t, 50256), "<|endoftext|>"));
    CHECK(lm_tokenizer_id_to_token(t, 50257) == NULL);
    int32_t *ids;
    size_t n;
    /* special token text is recognised; empty input gives no ids */
    CHECK_OK(lm_tokenizer_encode(t, "a<|endoftext|>b", 15, 0, &ids, &n));
    CHECK(n == 3 && ids[0] == 64 && ids[1] == 50256 && ids[2] == 65);
    free(ids);
    CHECK_OK(lm_tokenizer_encode(t, "", 0, 1, &ids, &n));
    CHECK(n == 0);
    free(ids);
    char *dec;
    size_t dl;
    int32_t bad = 99999;
    CHECK(lm_tokenizer_decode(t, &bad, 1, &dec, &dl) == LM_ERR_RANGE);
    /* save -> load gives the same encodings */
    const char *path = "test_tok_gpt2.json";
    CHECK_OK(lm_tokenizer_save(t, path));
    lm_tokenizer *r = NULL;
    CHECK_OK(lm_tokenizer_load(path, &r));
    if (r) {
        check_corpus(r, "tests/golden/tokenizer/zh_songci.txt", "tests/golden/tokenizer/zh_songci.gpt2.ids");
        lm_tokenizer_free(r);
    }
    remove(path);
}

int main(void) {
    lm_tokenizer *t = NULL;
    CHECK_OK(lm_tokenizer_load("gpt2", &t));
    if (t) {
        check_corpus(t, "tests/golden/tokenizer/shakespeare_100k.txt", "tests/golden/tokenizer/shakespeare_100k.gpt2.ids");
        check_corpus(t, "tests/golden/tokenizer/zh_songci.txt", "tests/golden/tokenizer/zh_songci.gpt2.ids");
        check_gpt2_api(t);
        lm_tokenizer_free(t);
    }
    t = NULL;
    CHECK_OK(lm_tokenizer_load(test_src_path("data/tokenizers/tiktoken/cl100k_base.tiktoken"), &t));
    if (t) {
        check_corpus(t, "tests/golden/tokenizer/shakespeare_100k.txt", "tests/golden/tokenizer/shakespeare_100k.cl100k.ids");
        check_corpus(t, "tests/golden/tokenizer/zh_songci.txt", "tests/golden/tokenizer/zh_songci.cl100k.ids");
        lm_tokenizer_free(t);
    }
    check_bytes();
    TEST_MAIN_END();
}

/* Tokenizer training: lmkit trains BPE and WordPiece on repo corpora; the
 * held-out encodings must equal what HF `tokenizers` produced from the
 * file lmkit saved when the golden was made (ref/tokenizer_train_check.py
 * golden), so a change in what is learned, or a saved file HF would read
 * differently, fails here. Training must not depend on the thread count. */
#include <jansson.h>
#include <unistd.h>

#include "lmkit/tokenizer.h"
#include "test.h"

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *o = malloc(l + 1);
    for (size_t i = 0; i < l; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        o[i] = (char)v;
    }
    o[l] = 0;
    *n = l;
    return o;
}

static char *save_text(const lm_tokenizer *t, const char *tag, size_t *len) {
    char path[256], *buf = NULL;
    snprintf(path, sizeof path, "/tmp/lmkit_test_train_%d_%s.json", (int)getpid(), tag);
    CHECK_OK(lm_tokenizer_save(t, path));
    CHECK_OK(lm_read_file(path, &buf, len));
    unlink(path);
    return buf;
}

static void run(json_t *g, const char *kind, char **texts, size_t *lens, size_t nt) {
    json_t *k = json_object_get(g, kind);
    json_t *sp = json_object_get(k, "special");
    const char *special[8];
    size_t i;
    json_t *v;
    json_array_foreach(sp, i, v) special[i] = json_string_value(v);
    lm_toktrain_opts o = {!strcmp(kind, "bpe") ? LM_TOKTRAIN_BPE : LM_TOKTRAIN_WORDPIECE,
                          (int)json_integer_value(json_object_get(k, "vocab_size")),
                          (int)json_integer_value(json_object_get(k, "min_frequency")),
                          special, (int)json_array_size(sp),
                          json_is_true(json_object_get(k, "lowercase"))};
    lm_tokenizer *t = NULL, *t1 = NULL;
    lm_set_threads(2);
    CHECK_OK(lm_tokenizer_train(&o, (const char *const *)texts, lens, nt, &t));
    lm_set_threads(1);
    CHECK_OK(lm_tokenizer_train(&o, (const char *const *)texts, lens, nt, &t1));
    lm_set_threads(0);
    if (!t || !t1) return;
    /* WordPiece keeps every character seen, as HF does, even past the size */
    if (o.type == LM_TOKTRAIN_BPE) CHECK(lm_tokenizer_vocab_size(t) == o.vocab_size);
    else CHECK(lm_tokenizer_vocab_size(t) >= o.vocab_size);
    size_t l2, l1;
    char *s2 = save_text(t, "a", &l2), *s1 = save_text(t1, "b", &l1);
    CHECK_MSG(s1 && s2 && l1 == l2 && !memcmp(s1, s2, l1), "%s: 1 and 2 threads train different tokenizers", kind);
    free(s1);
    free(s2);
    json_array_foreach(json_object_get(k, "vocab_sha_tokens"), i, v) {
        const char *tok = lm_tokenizer_id_to_token(t, (int32_t)(i * 97));
        CHECK_MSG(tok && !strcmp(tok, json_string_value(v)), "%s: token %zu is '%s', HF read '%s'", kind, i * 97,
                  tok ? tok : "(null)", json_string_value(v));
    }
    size_t bad = 0, total = 0;
    json_t *held = json_object_get(g, "held_hex"), *ids = json_object_get(k, "ids");
    json_array_foreach(held, i, v) {
        size_t n;
        char *text = unhex(json_string_value(v), &n);
        int32_t *out = NULL;
        size_t no = 0;
        CHECK_OK(lm_tokenizer_encode(t, text, n, 0, &out, &no));
        json_t *want = json_array_get(ids, i);
        int ok = no == json_array_size(want);
        for (size_t j = 0; ok && j < no; j++) ok = out[j] == json_integer_value(json_array_get(want, j));
        if (!ok && bad++ < 3) fprintf(stderr, "%s: held-out line %zu encodes differently: %s\n", kind, i, text);
        total++;
        free(out);
        free(text);
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu held-out lines differ from HF", kind, bad, total);
    printf("%-9s vocab %d (asked %d): %zu held-out lines match HF, 1 thread == 2 threads\n", kind, lm_tokenizer_vocab_size(t), o.vocab_size,
           total);
    lm_tokenizer_free(t);
    lm_tokenizer_free(t1);
}

static void errors(void) {
    const char *txt = "hello world";
    size_t len = strlen(txt);
    lm_tokenizer *t = NULL;
    lm_toktrain_opts o = {LM_TOKTRAIN_WORDPIECE, 100, 2, NULL, 0, 0};
    CHECK(lm_tokenizer_train(&o, &txt, &len, 1, &t) == LM_ERR_ARG); /* no [UNK] */
    o.type = LM_TOKTRAIN_BPE;
    CHECK(lm_tokenizer_train(&o, &txt, &len, 1, &t) == LM_ERR_ARG); /* below 256 bytes */
    const char *bad = "ab\xff";
    size_t bl = 3;
    o.vocab_size = 300;
    CHECK(lm_tokenizer_train(&o, &bad, &bl, 1, &t) != LM_OK);
    CHECK(t == NULL);
}

int main(void) {
    json_error_t je;
    json_t *g = json_load_file(test_src_path("tests/golden/tokenizer/trained.golden.json"), 0, &je);
    CHECK_MSG(g != NULL, "trained.golden.json: %s", je.text);
    if (!g) TEST_MAIN_END();
    json_t *files = json_object_get(g, "files");
    size_t nt = json_array_size(files), i;
    char *texts[4] = {0};
    size_t lens[4] = {0};
    json_t *v;
    json_array_foreach(files, i, v) CHECK_OK(lm_read_file(test_src_path(json_string_value(v)), &texts[i], &lens[i]));
    run(g, "bpe", texts, lens, nt);
    run(g, "wordpiece", texts, lens, nt);
    errors();
    for (i = 0; i < nt; i++) free(texts[i]);
    json_decref(g);
    TEST_MAIN_END();
}

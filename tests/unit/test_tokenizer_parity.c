/* Parity with HF tokenizers: ids, byte offsets and decoded text for every
 * case in tests/golden/tokenizer/<name>.golden.json (written by
 * ref/tokenizer_golden.py: English, Chinese, code/emoji, adversarial and
 * 150 random Unicode strings with a fixed seed). Match must be exact. */
#include <jansson.h>

#include "lmkit/tokenizer.h"
#include "test.h"

static int hexval(int c) { return c <= '9' ? c - '0' : (c | 32) - 'a' + 10; }

static char *unhex(const char *h, size_t *n) {
    size_t l = strlen(h) / 2;
    char *o = malloc(l + 1);
    for (size_t i = 0; i < l; i++) o[i] = (char)(hexval(h[2 * i]) * 16 + hexval(h[2 * i + 1]));
    o[l] = 0;
    *n = l;
    return o;
}

/* file: a golden file path; name: label for messages */
static void run_file(const char *name, const char *file) {
    const char *rel = file;
    json_error_t je;
    json_t *g = json_load_file(file, 0, &je);
    CHECK_MSG(g != NULL, "%s: %s", rel, je.text);
    if (!g) return;
    lm_tokenizer *t = NULL;
    CHECK_OK(lm_tokenizer_load(test_src_path(json_string_value(json_object_get(g, "tokenizer"))), &t));
    if (!t) {
        json_decref(g);
        return;
    }
    lm_encode_opts o = {1, 1, 0, 0, 0};
    size_t i, bad_ids = 0, bad_off = 0, bad_dec = 0, total = 0;
    json_t *c;
    json_array_foreach(json_object_get(g, "cases"), i, c) {
        size_t len;
        char *text = unhex(json_string_value(json_object_get(c, "hex")), &len);
        lm_encoding e = {0};
        lm_status st = lm_tokenizer_encode_full(t, text, len, &o, &e);
        CHECK_MSG(st == LM_OK, "%s case %zu: %s", name, i, lm_last_error());
        json_t *ids = json_object_get(c, "ids"), *offs = json_object_get(c, "offsets");
        total++;
        int ok = st == LM_OK && e.n == json_array_size(ids);
        for (size_t k = 0; ok && k < e.n; k++) ok = e.ids[k] == json_integer_value(json_array_get(ids, k));
        if (!ok) {
            if (bad_ids++ < 3) {
                fprintf(stderr, "%s case %zu ids differ (text %.60s)\n  ours:", name, i, text);
                for (size_t k = 0; k < e.n && k < 30; k++) fprintf(stderr, " %d", e.ids[k]);
                fprintf(stderr, "\n  hf:  ");
                for (size_t k = 0; k < json_array_size(ids) && k < 30; k++)
                    fprintf(stderr, " %lld", json_integer_value(json_array_get(ids, k)));
                fprintf(stderr, "\n");
            }
        } else if (json_is_array(offs)) {
            int oo = 1;
            size_t k;
            for (k = 0; oo && k < e.n; k++) {
                json_t *p = json_array_get(offs, k);
                oo = e.offsets[k][0] == json_integer_value(json_array_get(p, 0)) &&
                     e.offsets[k][1] == json_integer_value(json_array_get(p, 1));
            }
            if (!oo && bad_off++ < 3)
                fprintf(stderr, "%s case %zu offsets differ at token %zu: ours (%u,%u) hf (%lld,%lld) (text %.60s)\n",
                        name, i, k - 1, e.offsets[k - 1][0], e.offsets[k - 1][1],
                        json_integer_value(json_array_get(json_array_get(offs, k - 1), 0)),
                        json_integer_value(json_array_get(json_array_get(offs, k - 1), 1)), text);
        }
        if (ok) {
            char *dec = NULL;
            size_t dl = 0, gl;
            char *gold = unhex(json_string_value(json_object_get(c, "decoded_hex")), &gl);
            CHECK_OK(lm_tokenizer_decode(t, e.ids, e.n, &dec, &dl));
            /* HF returns lossy UTF-8; we return the raw bytes: compare where ours is valid */
            size_t k = 0;
            while (k < dl && (unsigned char)dec[k] < 0x80) k++;
            int valid = 1;
            for (; k < dl;) {
                unsigned char b = (unsigned char)dec[k];
                size_t need = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
                if (b >= 0x80 && b < 0xC0) { valid = 0; break; }
                if (k + need > dl) { valid = 0; break; }
                k += need;
            }
            if (dec && valid && (dl != gl || memcmp(dec, gold, dl)) && bad_dec++ < 3)
                fprintf(stderr, "%s case %zu decode differs:\n  ours: %s\n  hf:   %s\n", name, i, dec, gold);
            free(dec);
            free(gold);
        }
        lm_encoding_free(&e);
        free(text);
    }
    CHECK_MSG(bad_ids == 0, "%s: %zu of %zu cases with different ids", name, bad_ids, total);
    CHECK_MSG(bad_off == 0, "%s: %zu of %zu cases with different offsets", name, bad_off, total);
    CHECK_MSG(bad_dec == 0, "%s: %zu of %zu cases decode differently", name, bad_dec, total);
    printf("%-22s %zu cases: ids %zu differ, offsets %zu differ, decode %zu differ\n", name, total, bad_ids, bad_off,
           bad_dec);
    lm_tokenizer_free(t);
    json_decref(g);
}

static void run(const char *name, const char *kind) {
    char rel[256], label[128];
    snprintf(rel, sizeof rel, "tests/golden/tokenizer/%s.%sgolden.json", name, kind);
    snprintf(label, sizeof label, "%s%s%.*s", name, *kind ? "." : "", *kind ? (int)strlen(kind) - 1 : 0, kind);
    run_file(label, test_src_path(rel));
}

/* The stress goldens (ref/tokenizer_stress_golden.py) hammer combining
 * marks, Hangul, compatibility forms, controls and unassigned code points.
 * argv: a tokenizer name (both goldens), or a golden file path. */
int main(int argc, char **argv) {
    static const char *const names[] = {"hf_gpt2", "llama3_style", "qwen2_style", "hf_llama2", "llama2_style",
                                        "metaspace_style", "bert_uncased", "bert_cased", "wordpiece_misc", "unigram",
                                        NULL};
    if (argc > 1 && strchr(argv[1], '/')) run_file(argv[1], argv[1]);
    else if (argc > 1) {
        run(argv[1], "");
        if (strcmp(argv[1], "hf_gpt2") && strcmp(argv[1], "hf_llama2")) run(argv[1], "stress.");
    } else
        for (int i = 0; names[i]; i++) {
            run(names[i], "");
            if (strcmp(names[i], "hf_gpt2") && strcmp(names[i], "hf_llama2")) run(names[i], "stress.");
        }
    TEST_MAIN_END();
}

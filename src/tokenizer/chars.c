/* A character-level tokenizer built from a corpus: one id per distinct
 * Unicode character, in code-point order (what nanoGPT's shakespeare_char
 * does). It is expressed as an HF BPE model with no merges and no
 * pre-tokenizer, so tokenizer.json round-trips through HF tokenizers. */
#include "tokenizer/tok_internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* Length of the UTF-8 sequence starting at s (1 for invalid bytes). */
static size_t lm_utf8_len(const unsigned char *s, size_t left) {
    size_t n = s[0] < 0x80 ? 1 : (s[0] >> 5) == 6 ? 2 : (s[0] >> 4) == 14 ? 3 : (s[0] >> 3) == 30 ? 4 : 1;
    if (n > left) return 1;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80) return 1;
    return n;
}

static int lm_cmp_str(const void *a, const void *b) {
    /* Byte order of UTF-8 equals code-point order. */
    return strcmp(*(char *const *)a, *(char *const *)b);
}

lm_status lm_tokenizer_chars(const char *const *texts, const size_t *lens, size_t n_texts, lm_tokenizer **out) {
    *out = NULL;
    json_t *seen = json_object();
    for (size_t t = 0; t < n_texts; t++) {
        const unsigned char *s = (const unsigned char *)texts[t];
        for (size_t i = 0; i < lens[t];) {
            size_t k = lm_utf8_len(s + i, lens[t] - i);
            if (k == 1 && s[i] >= 0x80) {
                json_decref(seen);
                return lm_error(LM_ERR_FORMAT, "character tokenizer: input %zu has invalid UTF-8 at byte %zu", t, i);
            }
            char ch[5] = {0};
            memcpy(ch, s + i, k);
            json_object_set_new(seen, ch, json_true());
            i += k;
        }
    }
    size_t n = json_object_size(seen);
    if (n == 0) {
        json_decref(seen);
        return lm_error(LM_ERR_ARG, "character tokenizer: the corpus is empty");
    }
    const char **chars = malloc(n * sizeof *chars);
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(seen, key, val) chars[k++] = key;
    qsort(chars, n, sizeof *chars, lm_cmp_str);
    json_t *vocab = json_object();
    for (size_t i = 0; i < n; i++) json_object_set_new(vocab, chars[i], json_integer((json_int_t)i));
    free(chars);
    json_decref(seen);
    json_t *root = json_pack("{s:s, s:n, s:n, s:[], s:n, s:n, s:{s:s, s:o, s:[], s:n, s:b, s:b, s:b}, s:n, s:{s:s}}", "version", "1.0",
                             "truncation", "padding", "added_tokens", "normalizer", "pre_tokenizer", "model", "type", "BPE",
                             "vocab", vocab, "merges", "unk_token", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0,
                             "post_processor", "decoder", "type", "Fuse");
    if (!root) return lm_error(LM_ERR_NOMEM, "character tokenizer: cannot build tokenizer.json");
    lm_status s = lm_tok_from_json(root, "character tokenizer", out);
    json_decref(root);
    return s;
}

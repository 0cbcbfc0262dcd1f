/* lm_tokenizer -> tokenizer.json that HF tokenizers loads. The pipeline
 * stages are written back as they were loaded (or as the builtin loaders
 * described them); the model is rebuilt from the vocabulary and merges. */
#include "tokenizer/tok_internal.h"

#include "base/json_field.h"

#include <stdlib.h>
#include <string.h>

static json_t *jstrn(const char *s, size_t n) { return json_stringn_nocheck(s, n); }

static json_t *model_json(const lm_tokenizer *t) {
    json_t *m = json_object();
    if (!m) return NULL;
    const char *unk = t->unk_id >= 0 && t->unk_id < t->n_vocab ? t->tok[t->unk_id] : NULL;
    if (t->model == LM_MODEL_UNIGRAM) {
        json_object_set_new(m, "type", json_string("Unigram"));
        json_object_set_new(m, "unk_id", t->unk_id >= 0 ? json_integer(t->unk_id) : json_null());
        json_t *v = json_array();
        for (int32_t i = 0; i < t->n_vocab; i++)
            json_array_append_new(v, json_pack("[o, f]", jstrn(t->tok[i] ? t->tok[i] : "", t->tok[i] ? t->tok_len[i] : 0),
                                               t->scores ? t->scores[i] : 0.0));
        json_object_set_new(m, "vocab", v);
        json_object_set_new(m, "byte_fallback", json_boolean(t->byte_fallback));
        return m;
    }
    /* model vocabulary: ids the vocab map knows (added-only tokens are not in it) */
    json_t *v = json_object();
    for (int32_t i = 0; i < t->n_vocab; i++)
        if (t->tok[i] && lm_strmap_get(&t->vocab, t->tok[i], t->tok_len[i]) == i)
            json_object_setn_new_nocheck(v, t->tok[i], t->tok_len[i], json_integer(i));
    if (t->model == LM_MODEL_WORDPIECE) {
        json_object_set_new(m, "type", json_string("WordPiece"));
        json_object_set_new(m, "unk_token", json_string(unk ? unk : "[UNK]"));
        json_object_set_new(m, "continuing_subword_prefix", jstrn(t->cont_prefix ? t->cont_prefix : "##",
                                                                   t->cont_prefix ? t->cont_prefix_len : 2));
        json_object_set_new(m, "max_input_chars_per_word", json_integer(t->max_input_chars));
        json_object_set_new(m, "vocab", v);
        return m;
    }
    json_object_set_new(m, "type", json_string("BPE"));
    json_object_set_new(m, "dropout", json_null());
    json_object_set_new(m, "unk_token", unk ? json_string(unk) : json_null());
    json_object_set_new(m, "continuing_subword_prefix",
                        t->cont_prefix ? jstrn(t->cont_prefix, t->cont_prefix_len) : json_null());
    json_object_set_new(m, "end_of_word_suffix", t->eow_suffix ? jstrn(t->eow_suffix, t->eow_suffix_len) : json_null());
    json_object_set_new(m, "fuse_unk", json_boolean(t->fuse_unk));
    json_object_set_new(m, "byte_fallback", json_boolean(t->byte_fallback));
    json_object_set_new(m, "ignore_merges", json_boolean(t->ignore_merges));
    json_object_set_new(m, "vocab", v);
    json_t *mg = json_array();
    if (t->tiktoken_ranks) {
        /* every two-token split of each token, ordered by the token's rank */
        for (int32_t i = 0; i < t->n_vocab; i++) {
            if (!t->tok[i]) continue;
            const char *s = t->tok[i];
            size_t n = t->tok_len[i];
            for (size_t k = 1; k < n; k++) {
                if ((s[k] & 0xC0) == 0x80) continue;
                int32_t a = lm_strmap_get(&t->vocab, s, k), b = lm_strmap_get(&t->vocab, s + k, n - k);
                uint32_t r;
                int32_t id;
                if (a < 0 || b < 0 || !lm_pairmap_get(&t->merges, a, b, &r, &id) || id != i) continue;
                json_array_append_new(mg, json_pack("[o, o]", jstrn(s, k), jstrn(s + k, n - k)));
            }
        }
    } else {
        for (uint32_t i = 0; i < t->n_merges; i++) {
            int32_t a = t->merge_list[i][0], b = t->merge_list[i][1];
            json_array_append_new(mg, json_pack("[o, o]", jstrn(t->tok[a], t->tok_len[a]), jstrn(t->tok[b], t->tok_len[b])));
        }
    }
    json_object_set_new(m, "merges", mg);
    return m;
}

json_t *lm_tok_to_json(const lm_tokenizer *t) {
    json_t *root = json_object();
    json_object_set_new(root, "version", json_string("1.0"));
    json_object_set_new(root, "truncation", t->j_trunc ? json_incref(t->j_trunc) : json_null());
    json_object_set_new(root, "padding", t->j_pad ? json_incref(t->j_pad) : json_null());
    json_t *added = json_array();
    for (int i = 0; i < t->n_added; i++) {
        const lm_added *a = &t->added[i];
        json_array_append_new(added, json_pack("{s:i, s:o, s:b, s:b, s:b, s:b, s:b}", "id", a->id, "content",
                                               jstrn(a->content, a->len), "single_word", a->single_word, "lstrip",
                                               a->lstrip, "rstrip", a->rstrip, "normalized", a->normalized, "special",
                                               a->special));
    }
    json_object_set_new(root, "added_tokens", added);
    json_object_set_new(root, "normalizer", t->j_norm ? json_incref(t->j_norm) : json_null());
    json_object_set_new(root, "pre_tokenizer", t->j_pre ? json_incref(t->j_pre) : json_null());
    json_object_set_new(root, "post_processor", t->j_post ? json_incref(t->j_post) : json_null());
    json_object_set_new(root, "decoder", t->j_dec ? json_incref(t->j_dec) : json_null());
    json_t *m = model_json(t);
    if (!m) {
        json_decref(root);
        return NULL;
    }
    json_object_set_new(root, "model", m);
    return root;
}

lm_status lm_tokenizer_save(const lm_tokenizer *t, const char *path) {
    json_t *root = lm_tok_to_json(t);
    if (!root) return lm_error(LM_ERR_NOMEM, "%s: out of memory building tokenizer.json", path);
    return lm_json_save(root, path);
}

/* tokenizer.json -> lm_tokenizer. Every error names the JSON path of the
 * offending value (e.g. "model.merges[12]"). */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_tok_add_merge(lm_tokenizer *t, const char *a, size_t al, const char *b, size_t bl, const char *where,
                           size_t idx);

static int has_bytelevel(const lm_pre *p) {
    if (!p) return 0;
    if (p->type == LM_PRE_BYTELEVEL) return 1;
    for (int i = 0; i < p->n_seq; i++)
        if (has_bytelevel(p->seq[i])) return 1;
    return 0;
}

static int jb(json_t *j, const char *k, int def) {
    json_t *v = json_object_get(j, k);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static lm_status opt_str(json_t *m, const char *key, char **out, size_t *len) {
    json_t *v = json_object_get(m, key);
    *out = NULL;
    *len = 0;
    if (!v || json_is_null(v)) return LM_OK;
    if (!json_is_string(v)) return lm_error(LM_ERR_FORMAT, "model.%s: expected a string or null", key);
    *len = json_string_length(v);
    *out = malloc(*len + 1);
    if (!*out) return lm_error(LM_ERR_NOMEM, "out of memory");
    memcpy(*out, json_string_value(v), *len + 1);
    return LM_OK;
}

static lm_status vocab_object(lm_tokenizer *t, json_t *v) {
    if (!json_is_object(v)) return lm_error(LM_ERR_FORMAT, "model.vocab: expected an object of token -> id");
    LM_TRY(lm_tok_alloc_vocab(t, (int32_t)json_object_size(v)));
    const char *key;
    size_t klen;
    json_t *val;
    json_object_keylen_foreach(v, key, klen, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= INT32_MAX)
            return lm_error(LM_ERR_FORMAT, "model.vocab[\"%.*s\"]: id must be a non-negative integer",
                            (int)(klen > 60 ? 60 : klen), key);
        int32_t id = (int32_t)json_integer_value(val);
        LM_TRY(lm_tok_set_token(t, id, key, klen));
        LM_TRY(lm_strmap_put(&t->vocab, t->tok[id], t->tok_len[id], id));
    }
    return LM_OK;
}

static lm_status unk_from_token(lm_tokenizer *t, json_t *m) {
    json_t *u = json_object_get(m, "unk_token");
    if (!u || json_is_null(u)) return LM_OK;
    if (!json_is_string(u)) return lm_error(LM_ERR_FORMAT, "model.unk_token: expected a string or null");
    t->unk_id = lm_strmap_get(&t->vocab, json_string_value(u), json_string_length(u));
    if (t->unk_id < 0)
        return lm_error(LM_ERR_FORMAT, "model.unk_token: '%s' is not in model.vocab", json_string_value(u));
    return LM_OK;
}

static lm_status parse_bpe(lm_tokenizer *t, json_t *m) {
    t->model = LM_MODEL_BPE;
    LM_TRY(vocab_object(t, json_object_get(m, "vocab")));
    LM_TRY(unk_from_token(t, m));
    LM_TRY(opt_str(m, "continuing_subword_prefix", &t->cont_prefix, &t->cont_prefix_len));
    LM_TRY(opt_str(m, "end_of_word_suffix", &t->eow_suffix, &t->eow_suffix_len));
    t->fuse_unk = jb(m, "fuse_unk", 0);
    t->byte_fallback = jb(m, "byte_fallback", 0);
    t->ignore_merges = jb(m, "ignore_merges", 0);
    json_t *dr = json_object_get(m, "dropout");
    if (dr && !json_is_null(dr) && !(json_is_number(dr) && json_number_value(dr) == 0))
        return lm_error(LM_ERR_UNSUPPORTED, "model.dropout: BPE dropout is a training-time option; set it to null");
    json_t *mg = json_object_get(m, "merges");
    if (!json_is_array(mg)) return lm_error(LM_ERR_FORMAT, "model.merges: expected an array");
    size_t i;
    json_t *v;
    json_array_foreach(mg, i, v) {
        if (json_is_string(v)) {
            const char *s = json_string_value(v);
            size_t n = json_string_length(v);
            const char *sp = memchr(s, ' ', n);
            if (!sp) return lm_error(LM_ERR_FORMAT, "model.merges[%zu]: expected \"left right\", got \"%s\"", i, s);
            LM_TRY(lm_tok_add_merge(t, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, "model.merges", i));
        } else if (json_is_array(v) && json_array_size(v) == 2 && json_is_string(json_array_get(v, 0)) &&
                   json_is_string(json_array_get(v, 1))) {
            json_t *a = json_array_get(v, 0), *b = json_array_get(v, 1);
            LM_TRY(lm_tok_add_merge(t, json_string_value(a), json_string_length(a), json_string_value(b),
                                    json_string_length(b), "model.merges", i));
        } else
            return lm_error(LM_ERR_FORMAT, "model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"]", i);
    }
    return LM_OK;
}

static lm_status parse_wordpiece(lm_tokenizer *t, json_t *m) {
    t->model = LM_MODEL_WORDPIECE;
    LM_TRY(vocab_object(t, json_object_get(m, "vocab")));
    LM_TRY(unk_from_token(t, m));
    LM_TRY(opt_str(m, "continuing_subword_prefix", &t->cont_prefix, &t->cont_prefix_len));
    if (!t->cont_prefix) {
        t->cont_prefix = strdup("##");
        t->cont_prefix_len = 2;
    }
    json_t *mx = json_object_get(m, "max_input_chars_per_word");
    if (json_is_integer(mx)) t->max_input_chars = (int)json_integer_value(mx);
    return LM_OK;
}

static lm_status parse_unigram(lm_tokenizer *t, json_t *m) {
    t->model = LM_MODEL_UNIGRAM;
    json_t *v = json_object_get(m, "vocab");
    if (!json_is_array(v)) return lm_error(LM_ERR_FORMAT, "model.vocab: expected an array of [piece, score]");
    size_t n = json_array_size(v);
    LM_TRY(lm_tok_alloc_vocab(t, (int32_t)n));
    t->scores = calloc(n + 1, sizeof *t->scores);
    if (!t->scores) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        json_t *p = json_array_get(e, 0), *s = json_array_get(e, 1);
        if (!json_is_string(p) || !json_is_number(s))
            return lm_error(LM_ERR_FORMAT, "model.vocab[%zu]: expected [piece, score]", i);
        LM_TRY(lm_tok_set_token(t, (int32_t)i, json_string_value(p), json_string_length(p)));
        if (lm_strmap_get(&t->vocab, t->tok[i], t->tok_len[i]) < 0)
            LM_TRY(lm_strmap_put(&t->vocab, t->tok[i], t->tok_len[i], (int32_t)i));
        t->scores[i] = json_number_value(s);
    }
    json_t *u = json_object_get(m, "unk_id");
    if (json_is_integer(u)) {
        t->unk_id = (int32_t)json_integer_value(u);
        if (t->unk_id < 0 || (size_t)t->unk_id >= n)
            return lm_error(LM_ERR_FORMAT, "model.unk_id: %d is outside the vocabulary (%zu pieces)", t->unk_id, n);
    }
    t->byte_fallback = jb(m, "byte_fallback", 0);
    t->fuse_unk = 1;
    return LM_OK;
}

static lm_status parse_added(lm_tokenizer *t, json_t *a) {
    if (!a || json_is_null(a)) return LM_OK;
    if (!json_is_array(a)) return lm_error(LM_ERR_FORMAT, "added_tokens: expected an array");
    t->added = calloc(json_array_size(a) + 1, sizeof *t->added);
    if (!t->added) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        json_t *id = json_object_get(v, "id"), *c = json_object_get(v, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
            return lm_error(LM_ERR_FORMAT, "added_tokens[%zu].id: expected a non-negative integer", i);
        if (!json_is_string(c) || json_string_length(c) == 0)
            return lm_error(LM_ERR_FORMAT, "added_tokens[%zu].content: expected a non-empty string", i);
        lm_added *d = &t->added[t->n_added];
        d->id = (int32_t)json_integer_value(id);
        d->len = json_string_length(c);
        d->content = malloc(d->len + 1);
        if (!d->content) return lm_error(LM_ERR_NOMEM, "out of memory");
        memcpy(d->content, json_string_value(c), d->len + 1);
        d->special = jb(v, "special", 0);
        d->normalized = jb(v, "normalized", !d->special);
        d->lstrip = jb(v, "lstrip", 0);
        d->rstrip = jb(v, "rstrip", 0);
        d->single_word = jb(v, "single_word", 0);
        t->n_added++;
        lm_status st = lm_tok_set_token(t, d->id, d->content, d->len);
        if (st != LM_OK)
            return lm_error(st, "added_tokens[%zu]: %s", i, lm_last_error());
    }
    return LM_OK;
}

static lm_status parse_trunc_pad(lm_tokenizer *t, json_t *root) {
    json_t *tr = json_object_get(root, "truncation"), *pd = json_object_get(root, "padding");
    if (tr && !json_is_null(tr)) {
        json_t *ml = json_object_get(tr, "max_length");
        if (!json_is_integer(ml) || json_integer_value(ml) <= 0)
            return lm_error(LM_ERR_FORMAT, "truncation.max_length: expected a positive integer");
        t->trunc_max = (size_t)json_integer_value(ml);
        t->j_trunc = json_incref(tr);
    }
    if (pd && !json_is_null(pd)) {
        t->pad_enabled = 1;
        json_t *s = json_object_get(pd, "strategy");
        json_t *fx = json_object_get(s, "Fixed");
        if (json_is_integer(fx)) t->pad_fixed = (int)json_integer_value(fx);
        json_t *pid = json_object_get(pd, "pad_id");
        if (json_is_integer(pid)) t->pad_id_cfg = (int32_t)json_integer_value(pid);
        t->j_pad = json_incref(pd);
    }
    return LM_OK;
}

lm_status lm_tok_from_json(json_t *root, const char *what, lm_tokenizer **out) {
    if (!json_is_object(root)) return lm_error(LM_ERR_FORMAT, "%s: expected a JSON object at the top level", what);
    lm_tokenizer *t = lm_tok_new();
    if (!t) return LM_ERR_NOMEM;
    lm_status st = LM_OK;
    json_t *m = json_object_get(root, "model");
    const char *ty = json_string_value(json_object_get(m, "type"));
    if (!json_is_object(m)) st = lm_error(LM_ERR_FORMAT, "model: missing or not an object");
    else if (!ty) {
        /* older files omit model.type: infer it */
        if (json_is_array(json_object_get(m, "merges"))) ty = "BPE";
        else if (json_is_array(json_object_get(m, "vocab"))) ty = "Unigram";
        else if (json_object_get(m, "max_input_chars_per_word")) ty = "WordPiece";
        else st = lm_error(LM_ERR_FORMAT, "model.type: missing and cannot be inferred");
    }
    if (st == LM_OK) {
        if (!strcmp(ty, "BPE")) st = parse_bpe(t, m);
        else if (!strcmp(ty, "WordPiece")) st = parse_wordpiece(t, m);
        else if (!strcmp(ty, "Unigram")) st = parse_unigram(t, m);
        else st = lm_error(LM_ERR_UNSUPPORTED, "model.type: unsupported model '%s' (BPE, WordPiece, Unigram)", ty);
    }
    if (st == LM_OK) st = parse_added(t, json_object_get(root, "added_tokens"));
    json_t *jn = json_object_get(root, "normalizer"), *jp = json_object_get(root, "pre_tokenizer");
    json_t *jq = json_object_get(root, "post_processor"), *jd = json_object_get(root, "decoder");
    if (st == LM_OK && jn && !json_is_null(jn)) {
        t->j_norm = json_incref(jn);
        st = lm_norm_parse(jn, "normalizer", &t->norm);
    }
    if (st == LM_OK && jp && !json_is_null(jp)) {
        t->j_pre = json_incref(jp);
        st = lm_pre_parse(jp, "pre_tokenizer", &t->pre);
    }
    if (st == LM_OK && jd && !json_is_null(jd)) {
        t->j_dec = json_incref(jd);
        st = lm_dec_parse(jd, "decoder", &t->dec);
    }
    if (st == LM_OK && jq && !json_is_null(jq)) {
        t->j_post = json_incref(jq);
        st = lm_post_parse(t, jq, "post_processor");
    }
    if (st == LM_OK) st = parse_trunc_pad(t, root);
    if (st == LM_OK) {
        t->byte_level = has_bytelevel(t->pre);
        st = lm_tok_finish(t);
    }
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        if (strncmp(lm_last_error(), what, strlen(what)) != 0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", lm_last_error());
            return lm_error(st, "%s: %s", what, msg);
        }
        return st;
    }
    *out = t;
    return LM_OK;
}

lm_status lm_tok_load_json(const char *path, lm_tokenizer **out) {
    json_error_t je;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    if (!root) {
        if (!lm_file_exists(path)) return lm_error(LM_ERR_IO, "%s: cannot open tokenizer file", path);
        return lm_error(LM_ERR_FORMAT, "%s:%d:%d: invalid JSON: %s", path, je.line, je.column, je.text);
    }
    lm_status st = lm_tok_from_json(root, path, out);
    json_decref(root);
    return st;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token a float
 * score, an int32 length and the bytes. Its encoder is SentencePiece BPE:
 * merge the adjacent pair whose concatenation is the highest-scoring
 * token, with <0xXX> byte fallback and a dummy leading space. We rebuild
 * it as the equivalent HF LLaMA tokenizer.json pipeline (spaces become
 * U+2581 in the vocabulary, as in SentencePiece). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>


static const double *sort_scores;
static int by_score(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_scores[x] != sort_scores[y]) return sort_scores[x] > sort_scores[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

char *lm_spm_spelling(const char *p, size_t l, size_t *out_len) {
    /* llama2.c writes BOS/EOS as "\n<s>\n" and "\n</s>\n": use the real names */
    if (l >= 5 && p[0] == '\n' && p[1] == '<' && p[l - 2] == '>' && p[l - 1] == '\n') p++, l -= 2;
    char *s = malloc(l * 3 + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < l; i++) {
        if (p[i] == ' ') {
            memcpy(s + k, "\xE2\x96\x81", 3);
            k += 3;
        } else s[k++] = p[i];
    }
    s[k] = 0;
    if (out_len) *out_len = k;
    return s;
}

json_t *lm_tok_bos_template(const char *bos, size_t len, int32_t id) {
    /* the token as a JSON string by length and unchecked: a piece from a
     * file need not be UTF-8 (json_pack's "s" would refuse it) */
    json_t *b = json_stringn_nocheck(bos, len), *special = json_object();
    if (!b || !special || json_object_setn_new_nocheck(special, bos, len, json_pack("{s:O, s:[i], s:[O]}", "id", b, "ids", (json_int_t)id, "tokens", b))) {
        json_decref(b);
        json_decref(special);
        return NULL;
    }
    json_t *j = json_pack("{s:s, s:[{s:{s:O, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:O, s:i}}, {s:{s:s, s:i}}, "
                          "{s:{s:O, s:i}}, {s:{s:s, s:i}}], s:o}",
                          "type", "TemplateProcessing", "single", "SpecialToken", "id", b, "type_id", 0, "Sequence", "id",
                          "A", "type_id", 0, "pair", "SpecialToken", "id", b, "type_id", 0, "Sequence", "id", "A", "type_id",
                          0, "SpecialToken", "id", b, "type_id", 1, "Sequence", "id", "B", "type_id", 1, "special_tokens",
                          special);
    json_decref(b);
    return j;
}

/* Appends an added token (special or not) to t. */
static lm_status add_added(lm_tokenizer *t, int32_t id, const char *content, size_t len, int special) {
    lm_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return lm_error(LM_ERR_NOMEM, "out of memory");
    t->added = a;
    a = &t->added[t->n_added++];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->len = len;
    a->special = special;
    /* by length: a piece read from a file may hold a NUL byte */
    if (!(a->content = malloc(len + 1))) return lm_error(LM_ERR_NOMEM, "out of memory");
    memcpy(a->content, content, len);
    a->content[len] = 0;
    return LM_OK;
}

lm_status lm_tok_build_spm(const lm_spm_vocab *v, const char *path, lm_tokenizer **out) {
    *out = NULL;
    size_t n = v->n;
    if (n < 3) return lm_error(LM_ERR_FORMAT, "%s: only %zu tokens", path, n);
    lm_tokenizer *t = lm_tok_new();
    if (!t) return LM_ERR_NOMEM;
    lm_status st = lm_tok_alloc_vocab(t, (int32_t)n);
    for (size_t i = 0; i < n && st == LM_OK; i++) {
        st = lm_tok_set_token(t, (int32_t)i, v->piece[i], v->len[i]);
        if (st == LM_OK && lm_strmap_get(&t->vocab, t->tok[i], t->tok_len[i]) < 0)
            st = lm_strmap_put(&t->vocab, t->tok[i], t->tok_len[i], (int32_t)i);
    }
    /* merges: the higher a token's score, the earlier its merge (rank 0) */
    uint32_t *rank = malloc(n * sizeof *rank);
    int32_t *order = malloc(n * sizeof *order);
    if (st == LM_OK && (!rank || !order)) st = lm_error(LM_ERR_NOMEM, "out of memory");
    if (st == LM_OK) {
        for (size_t i = 0; i < n; i++) order[i] = (int32_t)i;
        sort_scores = v->score;
        qsort(order, n, sizeof *order, by_score);
        for (size_t i = 0; i < n; i++) rank[order[i]] = (uint32_t)i;
        st = lm_tok_merges_from_ranks(t, (int32_t)n, v->piece, v->len, rank, path);
    }
    free(rank);
    free(order);
    t->model = LM_MODEL_BPE;
    t->byte_fallback = 1;
    t->fuse_unk = 1;
    t->unk_id = v->unk_id >= 0 ? v->unk_id : lm_strmap_get(&t->vocab, "<unk>", 5);
    /* Control tokens are special added tokens (as HF's LLaMA conversion
     * declares them); user-defined ones are matched whole but not special. */
    for (size_t i = 0; i < n && st == LM_OK; i++)
        if (v->kind[i] == LM_SPM_CONTROL || v->kind[i] == LM_SPM_USER)
            st = add_added(t, (int32_t)i, v->piece[i], v->len[i], v->kind[i] == LM_SPM_CONTROL);
    if (st == LM_OK) {
        json_t *prepend = json_pack("{s:s, s:s}", "type", "Prepend", "prepend", "\xE2\x96\x81");
        json_t *replace = json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xE2\x96\x81");
        t->j_norm = v->add_space_prefix ? json_pack("{s:s, s:[o, o]}", "type", "Sequence", "normalizers", prepend, replace)
                                        : json_pack("{s:s, s:[o]}", "type", "Sequence", "normalizers", replace);
        if (!v->add_space_prefix) json_decref(prepend);
        /* the decoder strips the dummy space the normalizer prepended */
        t->j_dec = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                             "decoders", "type", "Replace", "pattern", "String", "\xE2\x96\x81", "content", " ", "type",
                             "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start",
                             v->add_space_prefix ? 1 : 0, "stop", 0);
        if (!t->j_norm || !t->j_dec) st = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (st == LM_OK && v->bos_id >= 0 && (size_t)v->bos_id < n) {
        t->j_post = lm_tok_bos_template(v->piece[v->bos_id], v->len[v->bos_id], v->bos_id);
        if (!t->j_post) st = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (st == LM_OK) st = lm_norm_parse(t->j_norm, "normalizer", &t->norm);
    if (st == LM_OK) st = lm_dec_parse(t->j_dec, "decoder", &t->dec);
    if (st == LM_OK && t->j_post) st = lm_post_parse(t, t->j_post, "post_processor");
    if (st == LM_OK) st = lm_tok_finish(t);
    if (st == LM_OK) {
        if (v->bos_id >= 0) t->bos_id = v->bos_id;
        if (v->eos_id >= 0) t->eos_id = v->eos_id;
    }
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

void lm_spm_vocab_free(lm_spm_vocab *v) {
    for (size_t i = 0; i < v->n; i++) free(v->piece[i]);
    free(v->piece);
    free(v->len);
    free(v->score);
    free(v->kind);
    memset(v, 0, sizeof *v);
}

/* Room for one more token in v. */
static lm_status spm_grow(lm_spm_vocab *v, size_t *cap) {
    if (v->n < *cap) return LM_OK;
    size_t c = *cap ? *cap * 2 : 1024;
    char **p = realloc(v->piece, c * sizeof *p);
    if (p) v->piece = p;
    uint32_t *l = p ? realloc(v->len, c * sizeof *l) : NULL;
    if (l) v->len = l;
    double *s = l ? realloc(v->score, c * sizeof *s) : NULL;
    if (s) v->score = s;
    uint8_t *k = s ? realloc(v->kind, c * sizeof *k) : NULL;
    if (k) v->kind = k;
    if (!k) return lm_error(LM_ERR_NOMEM, "out of memory");
    *cap = c;
    return LM_OK;
}

lm_status lm_spm_vocab_add(lm_spm_vocab *v, size_t *cap, const char *p, size_t l, double score, int kind) {
    LM_TRY(spm_grow(v, cap));
    size_t k;
    if (!(v->piece[v->n] = lm_spm_spelling(p, l, &k))) return lm_error(LM_ERR_NOMEM, "out of memory");
    v->len[v->n] = (uint32_t)k;
    v->score[v->n] = score;
    v->kind[v->n] = (uint8_t)kind;
    v->n++;
    return LM_OK;
}

lm_status lm_tok_load_llama2c(const char *path, lm_tokenizer **out) {
    char *buf;
    size_t len;
    LM_TRY(lm_read_file(path, &buf, &len));
    lm_spm_vocab v = {.unk_id = -1, .bos_id = -1, .eos_id = -1, .add_space_prefix = 1};
    size_t cap = 0, pos = 4;
    lm_status st = LM_OK;
    if (len < 4) st = lm_error(LM_ERR_FORMAT, "%s: too short for a llama2.c tokenizer", path);
    while (st == LM_OK && pos < len) {
        float sc;
        int32_t l;
        if (pos + 8 > len) {
            st = lm_error(LM_ERR_FORMAT, "%s: truncated at token %zu (offset %zu)", path, v.n, pos);
            break;
        }
        memcpy(&sc, buf + pos, 4);
        memcpy(&l, buf + pos + 4, 4);
        pos += 8;
        if (l < 0 || (size_t)l > len - pos) {
            st = lm_error(LM_ERR_FORMAT, "%s: token %zu: bad length %d", path, v.n, l);
            break;
        }
        st = lm_spm_vocab_add(&v, &cap, buf + pos, (size_t)l, sc, LM_SPM_NORMAL);
        pos += (size_t)l;
    }
    free(buf);
    /* control tokens as HF's LLaMA conversion declares them */
    static const char *const ctl[] = {"<unk>", "<s>", "</s>"};
    for (size_t i = 0; i < v.n && st == LM_OK; i++)
        for (int c = 0; c < 3; c++)
            if (v.len[i] == strlen(ctl[c]) && !memcmp(v.piece[i], ctl[c], v.len[i])) {
                v.kind[i] = LM_SPM_CONTROL;
                if (c == 1 && v.bos_id < 0) v.bos_id = (int32_t)i;
            }
    lm_tokenizer *t = NULL;
    if (st == LM_OK) st = lm_tok_build_spm(&v, path, &t);
    lm_spm_vocab_free(&v);
    if (st == LM_OK) *out = t;
    return st;
}

/* llama2.c tokenizer.bin: int32 max_token_length, then per token a float
 * score, an int32 length and the bytes. Its encoder is SentencePiece BPE:
 * merge the adjacent pair whose concatenation is the highest-scoring
 * token, with <0xXX> byte fallback and a dummy leading space. We rebuild
 * it as the equivalent HF LLaMA tokenizer.json pipeline (spaces become
 * U+2581 in the vocabulary, as in SentencePiece). */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

lm_status lm_tok_merges_from_ranks(lm_tokenizer *t, int32_t n, char **raw, uint32_t *rlen, const uint32_t *rank,
                                   const char *path);

static const double *sort_scores;
static int by_score(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (sort_scores[x] != sort_scores[y]) return sort_scores[x] > sort_scores[y] ? -1 : 1;
    return x < y ? -1 : x > y;
}

lm_status lm_tok_load_llama2c(const char *path, lm_tokenizer **out) {
    char *buf;
    size_t len;
    LM_TRY(lm_read_file(path, &buf, &len));
    lm_tokenizer *t = lm_tok_new();
    if (!t) {
        free(buf);
        return LM_ERR_NOMEM;
    }
    lm_status st = LM_OK;
    size_t pos = 4, n = 0, cap = 0;
    char **raw = NULL;
    uint32_t *rlen = NULL;
    double *score = NULL;
    if (len < 4) st = lm_error(LM_ERR_FORMAT, "%s: too short for a llama2.c tokenizer", path);
    while (st == LM_OK && pos < len) {
        float sc;
        int32_t l;
        if (pos + 8 > len) {
            st = lm_error(LM_ERR_FORMAT, "%s: truncated at token %zu (offset %zu)", path, n, pos);
            break;
        }
        memcpy(&sc, buf + pos, 4);
        memcpy(&l, buf + pos + 4, 4);
        pos += 8;
        if (l < 0 || (size_t)l > len - pos) {
            st = lm_error(LM_ERR_FORMAT, "%s: token %zu: bad length %d", path, n, l);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            char **r2 = realloc(raw, cap * sizeof *r2);
            uint32_t *l2 = r2 ? realloc(rlen, cap * sizeof *l2) : NULL;
            double *s2 = l2 ? realloc(score, cap * sizeof *s2) : NULL;
            if (r2) raw = r2;
            if (l2) rlen = l2;
            if (s2) score = s2;
            if (!s2) {
                st = lm_error(LM_ERR_NOMEM, "out of memory");
                break;
            }
        }
        /* llama2.c writes BOS/EOS as "\n<s>\n" and "\n</s>\n": use the real names */
        size_t skip_after = 0;
        if (l >= 5 && buf[pos] == '\n' && buf[pos + 1] == '<' && buf[pos + (size_t)l - 1] == '\n' &&
            buf[pos + (size_t)l - 2] == '>') {
            pos++;
            l -= 2;
            skip_after = 1;
        }
        /* ' ' -> U+2581 */
        char *s = malloc((size_t)l * 3 + 1);
        if (!s) {
            st = lm_error(LM_ERR_NOMEM, "out of memory");
            break;
        }
        size_t k = 0;
        for (int32_t i = 0; i < l; i++) {
            if (buf[pos + (size_t)i] == ' ') {
                memcpy(s + k, "\xE2\x96\x81", 3);
                k += 3;
            } else s[k++] = buf[pos + (size_t)i];
        }
        raw[n] = s;
        rlen[n] = (uint32_t)k;
        score[n] = sc;
        pos += (size_t)l + skip_after;
        st = lm_tok_set_token(t, (int32_t)n, s, k);
        if (st == LM_OK && lm_strmap_get(&t->vocab, t->tok[n], t->tok_len[n]) < 0)
            st = lm_strmap_put(&t->vocab, t->tok[n], t->tok_len[n], (int32_t)n);
        n++;
    }
    free(buf);
    uint32_t *rank = NULL;
    int32_t *order = NULL;
    if (st == LM_OK && n < 3) st = lm_error(LM_ERR_FORMAT, "%s: only %zu tokens", path, n);
    if (st == LM_OK) {
        rank = malloc(n * sizeof *rank);
        order = malloc(n * sizeof *order);
        if (!rank || !order) st = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (st == LM_OK) {
        for (size_t i = 0; i < n; i++) order[i] = (int32_t)i;
        sort_scores = score;
        qsort(order, n, sizeof *order, by_score);
        for (size_t i = 0; i < n; i++) rank[order[i]] = (uint32_t)i;
        st = lm_tok_alloc_vocab(t, (int32_t)n);
    }
    if (st == LM_OK) st = lm_tok_merges_from_ranks(t, (int32_t)n, raw, rlen, rank, path);
    for (size_t i = 0; i < n; i++) free(raw[i]);
    free(raw);
    free(rlen);
    free(score);
    free(rank);
    free(order);
    t->model = LM_MODEL_BPE;
    t->byte_fallback = 1;
    t->fuse_unk = 1;
    t->unk_id = lm_strmap_get(&t->vocab, "<unk>", 5);
    /* control tokens as HF's LLaMA conversion declares them */
    static const char *const ctl[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3 && st == LM_OK; i++) {
        int32_t id = lm_strmap_get(&t->vocab, ctl[i], strlen(ctl[i]));
        if (id < 0) continue;
        lm_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
        if (!a) {
            st = lm_error(LM_ERR_NOMEM, "out of memory");
            break;
        }
        t->added = a;
        a = &t->added[t->n_added++];
        memset(a, 0, sizeof *a);
        a->id = id;
        a->content = strdup(ctl[i]);
        a->len = strlen(ctl[i]);
        a->special = 1;
        if (!a->content) st = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (st == LM_OK) {
        t->j_norm = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:{s:s}, s:s}]}", "type", "Sequence", "normalizers", "type",
                              "Prepend", "prepend", "\xE2\x96\x81", "type", "Replace", "pattern", "String", " ",
                              "content", "\xE2\x96\x81");
        t->j_dec = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s}, {s:s}, {s:s}, {s:s, s:s, s:i, s:i}]}", "type", "Sequence",
                             "decoders", "type", "Replace", "pattern", "String", "\xE2\x96\x81", "content", " ", "type",
                             "ByteFallback", "type", "Fuse", "type", "Strip", "content", " ", "start", 1, "stop", 0);
        t->j_post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, "
                              "{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
                              "type", "TemplateProcessing", "single", "SpecialToken", "id", "<s>", "type_id", 0,
                              "Sequence", "id", "A", "type_id", 0, "pair", "SpecialToken", "id", "<s>", "type_id", 0,
                              "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", "<s>", "type_id", 1, "Sequence",
                              "id", "B", "type_id", 1, "special_tokens", "<s>", "id", "<s>", "ids", 1, "tokens", "<s>");
        if (!t->j_norm || !t->j_dec || !t->j_post) st = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (st == LM_OK) st = lm_norm_parse(t->j_norm, "normalizer", &t->norm);
    if (st == LM_OK) st = lm_dec_parse(t->j_dec, "decoder", &t->dec);
    if (st == LM_OK) st = lm_post_parse(t, t->j_post, "post_processor");
    if (st == LM_OK) st = lm_tok_finish(t);
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

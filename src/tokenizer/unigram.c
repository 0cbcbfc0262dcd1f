/* Unigram (SentencePiece): the segmentation of highest total log
 * probability, by Viterbi over all vocabulary pieces that start at each
 * character. A character no piece covers is [UNK] with a score well below
 * every piece (HF: min score - 10); consecutive unknowns fuse. */
#include "tokenizer/tok_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_unigram_build(lm_tokenizer *t) {
    t->min_score = DBL_MAX;
    t->max_piece_bytes = 1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!t->tok[i]) continue;
        if (t->scores && t->scores[i] < t->min_score) t->min_score = t->scores[i];
        if (t->tok_len[i] > t->max_piece_bytes) t->max_piece_bytes = t->tok_len[i];
    }
    if (t->min_score == DBL_MAX) t->min_score = 0;
    return LM_OK;
}

lm_status lm_unigram_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out) {
    if (!n) return LM_OK;
    double *best = malloc((n + 1) * sizeof *best);
    int32_t *from = malloc((n + 1) * sizeof *from), *tokid = malloc((n + 1) * sizeof *tokid);
    if (!best || !from || !tokid) {
        free(best);
        free(from);
        free(tokid);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i <= n; i++) {
        best[i] = -DBL_MAX;
        from[i] = -1;
    }
    best[0] = 0;
    double unk_score = t->min_score - 10.0;
    for (size_t i = 0; i < n; i++) {
        if ((w[i] & 0xC0) == 0x80) continue; /* not a character boundary */
        if (i > 0 && from[i] < 0) continue;  /* unreachable */
        uint32_t cp;
        int cl = lm_utf8_decode(w + i, n - i, &cp);
        if (!cl) cl = 1;
        int single = 0;
        for (size_t e = i + 1; e <= n && e - i <= t->max_piece_bytes; e++) {
            if (e < n && (w[e] & 0xC0) == 0x80) continue;
            int32_t id = lm_strmap_get(&t->vocab, (const char *)w + i, e - i);
            if (id < 0) continue;
            if (e - i == (size_t)cl) single = 1;
            double s = best[i] + t->scores[id];
            if (from[e] < 0 || s > best[e]) {
                best[e] = s;
                from[e] = (int32_t)i;
                tokid[e] = id;
            }
        }
        if (!single) {
            size_t e = i + (size_t)cl;
            double s = best[i] + unk_score;
            if (from[e] < 0 || s > best[e]) {
                best[e] = s;
                from[e] = (int32_t)i;
                tokid[e] = -1; /* unk */
            }
        }
    }
    /* walk back */
    size_t cnt = 0;
    for (size_t e = n; e > 0; e = (size_t)from[e]) cnt++;
    size_t *ends = malloc(cnt * sizeof *ends);
    int32_t *ids = malloc(cnt * sizeof *ids);
    lm_status st = ends && ids ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    size_t k = cnt;
    for (size_t e = n; st == LM_OK && e > 0; e = (size_t)from[e]) {
        k--;
        ends[k] = e;
        ids[k] = tokid[e];
    }
    size_t prev = 0;
    for (size_t i = 0; i < cnt && st == LM_OK; i++) {
        if (ids[i] < 0) {
            int fb = t->byte_fallback;
            for (size_t b = prev; fb && b < ends[i]; b++)
                if (t->byte_fallback_id[w[b]] < 0) fb = 0;
            if (fb) {
                st = lm_toks_reserve(out, ends[i] - prev);
                for (size_t b = prev; st == LM_OK && b < ends[i]; b++) {
                    out->ids[out->n] = t->byte_fallback_id[w[b]];
                    out->ends[out->n++] = (uint32_t)(b + 1);
                }
            } else if (t->unk_id < 0) {
                st = lm_error(LM_ERR_FORMAT, "tokenizer: Unigram found an unknown character and there is no unk_id");
            } else if (out->n > 0 && i > 0 && ids[i - 1] < 0 && out->ids[out->n - 1] == t->unk_id) {
                out->ends[out->n - 1] = (uint32_t)ends[i]; /* fuse */
            } else {
                st = lm_toks_reserve(out, 1);
                if (st == LM_OK) {
                    out->ids[out->n] = t->unk_id;
                    out->ends[out->n++] = (uint32_t)ends[i];
                }
            }
        } else {
            st = lm_toks_reserve(out, 1);
            if (st == LM_OK) {
                out->ids[out->n] = ids[i];
                out->ends[out->n++] = (uint32_t)ends[i];
            }
        }
        prev = ends[i];
    }
    free(best);
    free(from);
    free(tokid);
    free(ends);
    free(ids);
    return st;
}

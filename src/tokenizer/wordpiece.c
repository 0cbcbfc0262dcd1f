/* WordPiece (BERT): greedy longest match from the left, continuation
 * pieces carry the "##" prefix; a word with an unmatched part, or longer
 * than max_input_chars_per_word characters, is one [UNK]. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

lm_status lm_wordpiece_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out) {
    if (!n) return LM_OK;
    size_t nchars = 0;
    for (size_t i = 0; i < n; i++) nchars += (w[i] & 0xC0) != 0x80;
    size_t n0 = out->n;
    if (nchars <= (size_t)t->max_input_chars) {
        size_t pl = t->cont_prefix_len;
        char stackbuf[512];
        char *buf = n + pl <= sizeof stackbuf ? stackbuf : malloc(n + pl);
        if (!buf) return lm_error(LM_ERR_NOMEM, "out of memory");
        size_t start = 0;
        int ok = 1;
        while (start < n) {
            size_t end = n;
            int32_t id = -1;
            while (start < end) {
                size_t bl = 0;
                if (start > 0) {
                    memcpy(buf, t->cont_prefix, pl);
                    bl = pl;
                }
                memcpy(buf + bl, w + start, end - start);
                id = lm_strmap_get(&t->vocab, buf, bl + end - start);
                if (id >= 0) break;
                end--;
                while (end > start && (w[end] & 0xC0) == 0x80) end--;
            }
            if (id < 0) {
                ok = 0;
                break;
            }
            lm_status st = lm_toks_reserve(out, 1);
            if (st != LM_OK) {
                if (buf != stackbuf) free(buf);
                return st;
            }
            out->ids[out->n] = id;
            out->ends[out->n++] = (uint32_t)end;
            start = end;
        }
        if (buf != stackbuf) free(buf);
        if (ok) return LM_OK;
    }
    out->n = n0;
    if (t->unk_id < 0) return lm_error(LM_ERR_FORMAT, "tokenizer: WordPiece word has no match and there is no unk_token");
    LM_TRY(lm_toks_reserve(out, 1));
    out->ids[out->n] = t->unk_id;
    out->ends[out->n++] = (uint32_t)n;
    return LM_OK;
}

/* Decoding: ids -> token strings -> the decoder chain -> text. The chain
 * works on a list of byte strings, as HF's decoders work on a list of
 * token strings, so each stage is a small map over that list. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *s; size_t n; } str;
typedef struct { str *v; size_t n; } strs;

static void strs_free(strs *l) {
    for (size_t i = 0; i < l->n; i++) free(l->v[i].s);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Replaces every occurrence of pat in s with rep (malloc'd result). */
static char *replace_all(const char *s, size_t n, const char *pat, size_t pl, const char *rep, size_t rl, size_t *on) {
    size_t cap = n + 1, o = 0;
    if (rl > pl && pl) cap = n / pl * rl + n + 1;
    char *out = malloc(cap);
    if (!out) return NULL;
    for (size_t i = 0; i < n;) {
        if (pl && i + pl <= n && !memcmp(s + i, pat, pl)) {
            memcpy(out + o, rep, rl);
            o += rl;
            i += pl;
        } else out[o++] = s[i++];
    }
    out[o] = 0;
    *on = o;
    return out;
}

static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    unsigned v;
    char hex[3] = {s[3], s[4], 0};
    if (sscanf(hex, "%2X", &v) != 1) return -1;
    return (int)v;
}

static const char *const cleanup_pairs[][2] = {
    {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
    {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
};

static lm_status dec_step(const lm_dec *d, strs *l) {
    if (d->type == LM_DEC_SEQ) {
        for (int i = 0; i < d->n_seq; i++) LM_TRY(dec_step(d->seq[i], l));
        return LM_OK;
    }
    if (d->type == LM_DEC_BYTELEVEL || d->type == LM_DEC_FUSE) {
        size_t total = 0;
        for (size_t i = 0; i < l->n; i++) total += l->v[i].n;
        char *o = malloc(total + 1);
        if (!o) return lm_error(LM_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < l->n; i++) {
            long b = d->type == LM_DEC_BYTELEVEL ? lm_bytelevel_to_bytes(l->v[i].s, l->v[i].n, o + k) : -1;
            if (b < 0) { /* not byte-level text (e.g. an added token): keep as is */
                memcpy(o + k, l->v[i].s, l->v[i].n);
                b = (long)l->v[i].n;
            }
            k += (size_t)b;
        }
        o[k] = 0;
        strs_free(l);
        l->v = malloc(sizeof *l->v);
        if (!l->v) {
            free(o);
            return lm_error(LM_ERR_NOMEM, "out of memory");
        }
        l->v[0] = (str){o, k};
        l->n = 1;
        return LM_OK;
    }
    if (d->type == LM_DEC_BYTEFALLBACK) {
        /* runs of <0xXX> become their bytes; an invalid UTF-8 run becomes
         * one U+FFFD per byte token, as HF does */
        strs o = {calloc(l->n + 1, sizeof(str)), 0};
        if (!o.v) return lm_error(LM_ERR_NOMEM, "out of memory");
        for (size_t i = 0; i < l->n;) {
            size_t j = i;
            while (j < l->n && byte_token(l->v[j].s, l->v[j].n) >= 0) j++;
            if (j == i) {
                o.v[o.n++] = l->v[i];
                l->v[i].s = NULL;
                i++;
                continue;
            }
            size_t nb = j - i;
            char *b = malloc(nb * 3 + 1);
            if (!b) return lm_error(LM_ERR_NOMEM, "out of memory");
            for (size_t k = 0; k < nb; k++) b[k] = (char)byte_token(l->v[i + k].s, l->v[i + k].n);
            size_t bl = nb;
            if (lm_utf8_first_invalid((const uint8_t *)b, nb) != nb) {
                bl = 0;
                for (size_t k = 0; k < nb; k++) {
                    memcpy(b + bl, "\xEF\xBF\xBD", 3);
                    bl += 3;
                }
            }
            b[bl] = 0;
            o.v[o.n++] = (str){b, bl};
            i = j;
        }
        strs_free(l);
        *l = o;
        return LM_OK;
    }
    for (size_t i = 0; i < l->n; i++) {
        str *s = &l->v[i];
        char *ns = NULL;
        size_t nn = 0;
        switch (d->type) {
        case LM_DEC_METASPACE: {
            char rep[4];
            int rl = lm_utf8_encode(d->replacement, rep);
            ns = replace_all(s->s, s->n, rep, (size_t)rl, " ", 1, &nn);
            if (ns && i == 0 && d->prepend && nn && ns[0] == ' ') memmove(ns, ns + 1, nn--);
            break;
        }
        case LM_DEC_WORDPIECE: {
            if (i > 0) {
                if (s->n >= d->a_len && !memcmp(s->s, d->a, d->a_len)) {
                    nn = s->n - d->a_len;
                    ns = malloc(nn + 1);
                    if (ns) memcpy(ns, s->s + d->a_len, nn + 1);
                } else {
                    nn = s->n + 1;
                    ns = malloc(nn + 1);
                    if (ns) {
                        ns[0] = ' ';
                        memcpy(ns + 1, s->s, s->n + 1);
                    }
                }
            } else {
                nn = s->n;
                ns = malloc(nn + 1);
                if (ns) memcpy(ns, s->s, nn + 1);
            }
            for (size_t c = 0; ns && d->cleanup && c < sizeof cleanup_pairs / sizeof *cleanup_pairs; c++) {
                size_t n2;
                char *r = replace_all(ns, nn, cleanup_pairs[c][0], strlen(cleanup_pairs[c][0]), cleanup_pairs[c][1],
                                      strlen(cleanup_pairs[c][1]), &n2);
                free(ns);
                ns = r;
                nn = n2;
            }
            break;
        }
        case LM_DEC_BPE:
            ns = replace_all(s->s, s->n, d->a, d->a_len, i + 1 < l->n ? " " : "", i + 1 < l->n, &nn);
            break;
        case LM_DEC_REPLACE: ns = replace_all(s->s, s->n, d->a, d->a_len, d->b, d->b_len, &nn); break;
        case LM_DEC_STRIP: {
            size_t b = 0, e = s->n;
            for (int k = 0; k < d->start && b + d->a_len <= e && !memcmp(s->s + b, d->a, d->a_len); k++) b += d->a_len;
            for (int k = 0; k < d->stop && e >= b + d->a_len && !memcmp(s->s + e - d->a_len, d->a, d->a_len); k++)
                e -= d->a_len;
            nn = e - b;
            ns = malloc(nn + 1);
            if (ns) {
                memcpy(ns, s->s + b, nn);
                ns[nn] = 0;
            }
            break;
        }
        default: continue;
        }
        if (!ns) return lm_error(LM_ERR_NOMEM, "out of memory");
        free(s->s);
        s->s = ns;
        s->n = nn;
    }
    return LM_OK;
}

lm_status lm_dec_apply(const lm_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                       size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    strs l = {calloc(n + 1, sizeof(str)), 0};
    if (!l.v) return lm_error(LM_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= t->n_vocab || !t->tok[id]) {
            strs_free(&l);
            return lm_error(LM_ERR_RANGE, "tokenizer: id %d at position %zu is not in the vocabulary (size %d)", id, i,
                            t->n_vocab);
        }
        if (skip_special && t->is_special[id]) continue;
        l.v[l.n].s = malloc(t->tok_len[id] + 1);
        if (!l.v[l.n].s) {
            strs_free(&l);
            return lm_error(LM_ERR_NOMEM, "out of memory");
        }
        memcpy(l.v[l.n].s, t->tok[id], t->tok_len[id] + 1);
        l.v[l.n].n = t->tok_len[id];
        l.n++;
    }
    lm_status st = t->dec ? dec_step(t->dec, &l) : LM_OK;
    if (st == LM_OK && !t->dec) {
        /* no decoder: HF joins tokens with spaces */
        size_t total = 0;
        for (size_t i = 0; i < l.n; i++) total += l.v[i].n + 1;
        char *o = malloc(total + 1);
        if (!o) st = lm_error(LM_ERR_NOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; o && i < l.n; i++) {
            if (i) o[k++] = ' ';
            memcpy(o + k, l.v[i].s, l.v[i].n);
            k += l.v[i].n;
        }
        if (o) {
            o[k] = 0;
            *text = o;
            if (len) *len = k;
        }
        strs_free(&l);
        return st;
    }
    size_t total = 0;
    for (size_t i = 0; i < l.n; i++) total += l.v[i].n;
    char *o = st == LM_OK ? malloc(total + 1) : NULL;
    if (st == LM_OK && !o) st = lm_error(LM_ERR_NOMEM, "out of memory");
    if (o) {
        size_t k = 0;
        for (size_t i = 0; i < l.n; i++) {
            memcpy(o + k, l.v[i].s, l.v[i].n);
            k += l.v[i].n;
        }
        o[k] = 0;
        *text = o;
        if (len) *len = k;
    }
    strs_free(&l);
    return st;
}

lm_status lm_tokenizer_decode_ex(const lm_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **text,
                                 size_t *len) {
    return lm_dec_apply(t, ids, n, skip_special, text, len);
}

lm_status lm_tokenizer_decode(const lm_tokenizer *t, const int32_t *ids, size_t n, char **text, size_t *len) {
    return lm_dec_apply(t, ids, n, 0, text, len);
}

/* One token's bytes in context: decode [ref, id] and drop what [ref] alone
 * gives, so context-dependent decoders (WordPiece's space, Metaspace's
 * first-token strip) behave as in a full decode. Byte-fallback tokens give
 * their raw byte so a caller can assemble split characters. */
static _Thread_local char piece_buf[1024];

lm_status lm_tokenizer_decode_piece(const lm_tokenizer *t, int32_t id, int first, const char **bytes, size_t *len) {
    if (id < 0 || id >= t->n_vocab || !t->tok[id])
        return lm_error(LM_ERR_RANGE, "tokenizer: id %d is not in the vocabulary (size %d)", id, t->n_vocab);
    int b = byte_token(t->tok[id], t->tok_len[id]);
    if (b >= 0 && t->byte_fallback_id[b] == id) {
        piece_buf[0] = (char)b;
        *bytes = piece_buf;
        *len = 1;
        return LM_OK;
    }
    if (t->byte_level && t->dec && (t->dec->type == LM_DEC_BYTELEVEL)) {
        long k = lm_bytelevel_to_bytes(t->tok[id], t->tok_len[id], piece_buf);
        if (k >= 0) {
            *bytes = piece_buf;
            *len = (size_t)k;
            return LM_OK;
        }
    }
    char *whole = NULL, *pre = NULL;
    size_t wl = 0, pl = 0;
    lm_status st;
    /* a plain reference token: the first non-special id (none in a
     * vocabulary of special tokens only: the id is then decoded alone) */
    int32_t ref = 0;
    while (ref < t->n_vocab && (!t->tok[ref] || t->is_special[ref] || byte_token(t->tok[ref], t->tok_len[ref]) >= 0)) ref++;
    if (first || ref == t->n_vocab) st = lm_dec_apply(t, &id, 1, 0, &whole, &wl);
    else {
        int32_t two[2] = {ref, id};
        st = lm_dec_apply(t, two, 2, 0, &whole, &wl);
        if (st == LM_OK) st = lm_dec_apply(t, &ref, 1, 0, &pre, &pl);
        if (st == LM_OK && (pl > wl || memcmp(whole, pre, pl))) pl = 0;
    }
    if (st == LM_OK) {
        size_t n = wl - pl;
        if (n > sizeof piece_buf) n = sizeof piece_buf;
        memcpy(piece_buf, whole + pl, n);
        *bytes = piece_buf;
        *len = n;
    }
    free(whole);
    free(pre);
    return st;
}

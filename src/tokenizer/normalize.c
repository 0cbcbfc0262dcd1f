/* Normalizers. Each rewrites the working string character by character
 * and carries every output byte's original range along, so offsets still
 * point into the caller's text after lowercasing, NFKC, Chinese-character
 * padding and so on. Unicode data comes from utf8proc. */
#include "tokenizer/tok_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/unicode_hf.h"

int lm_char_is_whitespace(uint32_t c);

lm_status lm_nstr_push(lm_nstr *ns, const char *b, size_t n, uint32_t o0, uint32_t o1) {
    if (!n) return LM_OK;
    /* b may point into ns->s itself (a stage copying a piece to the end):
     * keep it valid across the realloc */
    size_t self_off = SIZE_MAX;
    if (ns->s && b >= ns->s && b < ns->s + ns->len) self_off = (size_t)(b - ns->s);
    if (ns->len + n > ns->cap) {
        size_t nc = ns->cap ? ns->cap * 2 : 256;
        while (nc < ns->len + n) nc *= 2;
        char *s = realloc(ns->s, nc + 1);
        if (!s) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        ns->s = s;
        uint32_t *a0 = realloc(ns->a0, nc * sizeof *a0);
        if (!a0) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        ns->a0 = a0;
        uint32_t *a1 = realloc(ns->a1, nc * sizeof *a1);
        if (!a1) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        ns->a1 = a1;
        ns->cap = nc;
    }
    if (self_off != SIZE_MAX) b = ns->s + self_off;
    memcpy(ns->s + ns->len, b, n);
    for (size_t i = 0; i < n; i++) {
        ns->a0[ns->len + i] = o0;
        ns->a1[ns->len + i] = o1;
    }
    ns->len += n;
    ns->s[ns->len] = 0;
    return LM_OK;
}

void lm_nstr_free(lm_nstr *ns) {
    free(ns->s);
    free(ns->a0);
    free(ns->a1);
    memset(ns, 0, sizeof *ns);
}

/* Appends all of in (bytes and alignment) to o. */
static lm_status nstr_append(lm_nstr *o, const lm_nstr *in) {
    if (!in->len) return LM_OK;
    LM_TRY(lm_nstr_push(o, in->s, in->len, 0, 0));
    memcpy(o->a0 + o->len - in->len, in->a0, in->len * sizeof *in->a0);
    memcpy(o->a1 + o->len - in->len, in->a1, in->len * sizeof *in->a1);
    return LM_OK;
}

/* Removed characters (filters) are dropped with their offsets, as HF's
 * NormalizedString::filter does. */
static lm_status push_cp(lm_nstr *o, uint32_t cp, uint32_t o0, uint32_t o1) {
    char b[4];
    int k = lm_utf8_encode(cp, b);
    return lm_nstr_push(o, b, (size_t)k, o0, o1);
}

/* Iterates characters: cp, byte start i, length k, original range. */
#define FOR_CHARS(ns, i, k, cp)                                                                        \
    for (size_t i = 0, k = 0; i < (ns)->len; i += k)                                                   \
        if ((k = (size_t)lm_utf8_decode((const uint8_t *)(ns)->s + i, (ns)->len - i, &cp)) == 0 ? (k = 1, cp = 0xFFFD, 1) : 1)

static lm_status replace_lit(const lm_norm *n, const lm_nstr *in, lm_nstr *o) {
    size_t i = 0, pl = n->pattern_len;
    while (i < in->len) {
        if (pl && i + pl <= in->len && !memcmp(in->s + i, n->pattern, pl)) {
            LM_TRY(lm_nstr_push(o, n->content, n->content_len, in->a0[i], in->a1[i + pl - 1]));
            i += pl;
        } else {
            LM_TRY(lm_nstr_push(o, in->s + i, 1, in->a0[i], in->a1[i]));
            i++;
        }
    }
    return LM_OK;
}

static lm_status replace_re(const lm_norm *n, const lm_nstr *in, lm_nstr *o) {
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t i = 0, pos = 0;
    lm_status st = LM_OK;
    while (pos <= in->len && st == LM_OK) {
        int rc = pcre2_match(n->re, (PCRE2_SPTR)in->s, in->len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        for (; i < ms && st == LM_OK; i++) st = lm_nstr_push(o, in->s + i, 1, in->a0[i], in->a1[i]);
        if (me > ms && st == LM_OK) st = lm_nstr_push(o, n->content, n->content_len, in->a0[ms], in->a1[me - 1]);
        i = me;
        pos = me > ms ? me : me + 1;
    }
    for (; i < in->len && st == LM_OK; i++) st = lm_nstr_push(o, in->s + i, 1, in->a0[i], in->a1[i]);
    pcre2_match_data_free(md);
    return st;
}

static lm_status apply_one(const lm_norm *n, const lm_nstr *in, lm_nstr *o) {
    uint32_t cp;
    switch (n->type) {
    case LM_NORM_NFC: return lm_unorm_hf(in, o, 1, 0);
    case LM_NORM_NFD: return lm_unorm_hf(in, o, 0, 0);
    case LM_NORM_NFKC: return lm_unorm_hf(in, o, 1, 1);
    case LM_NORM_NFKD: return lm_unorm_hf(in, o, 0, 1);
    case LM_NORM_LOWER: return lm_lower_hf(in, o);
    case LM_NORM_STRIP_ACCENTS: {
        FOR_CHARS(in, i, k, cp) {
            if (lm_uhf_is_mark(cp)) {
                continue;
            }
            LM_TRY(lm_nstr_push(o, in->s + i, k, in->a0[i], in->a1[i + k - 1]));
        }
        return LM_OK;
    }
    case LM_NORM_REPLACE: return n->re ? replace_re(n, in, o) : replace_lit(n, in, o);
    case LM_NORM_PREPEND:
        if (in->len) LM_TRY(lm_nstr_push(o, n->content, n->content_len, in->a0[0], in->a1[0]));
        return nstr_append(o, in);
    case LM_NORM_STRIP: {
        size_t s = 0, e = in->len;
        while (n->strip_left && s < e) {
            int k = lm_utf8_decode((const uint8_t *)in->s + s, e - s, &cp);
            if (!k || !lm_char_is_whitespace(cp)) break;
            s += (size_t)k;
        }
        while (n->strip_right && e > s) {
            size_t b = e - 1;
            while (b > s && (in->s[b] & 0xC0) == 0x80) b--;
            int k = lm_utf8_decode((const uint8_t *)in->s + b, e - b, &cp);
            if (!k || !lm_char_is_whitespace(cp)) break;
            e = b;
        }
        for (size_t i = s; i < e; i++) LM_TRY(lm_nstr_push(o, in->s + i, 1, in->a0[i], in->a1[i]));
        return LM_OK;
    }
    case LM_NORM_BERT: {
        lm_nstr a = {0};
        lm_status st = LM_OK;
        FOR_CHARS(in, i, k, cp) {
            uint32_t o0 = in->a0[i], o1 = in->a1[i + k - 1];
            if (n->clean_text) {
                if (cp == 0 || cp == 0xFFFD || lm_uhf_is_control(cp)) continue;
                if (lm_uhf_is_bert_ws(cp)) cp = ' ';
            }
            if (n->chinese && lm_uhf_is_chinese(cp)) {
                st = push_cp(&a, ' ', o0, o1);
                if (st == LM_OK) st = push_cp(&a, cp, o0, o1);
                if (st == LM_OK) st = push_cp(&a, ' ', o0, o1);
            } else st = push_cp(&a, cp, o0, o1);
            if (st) break;
        }
        int strip = n->strip_accents < 0 ? n->lowercase : n->strip_accents;
        if (st == LM_OK && strip) {
            lm_nstr b = {0};
            st = lm_unorm_hf(&a, &b, 0, 0);
            lm_nstr_free(&a);
            a = (lm_nstr){0};
            FOR_CHARS(&b, i, k, cp) {
                if (st) break;
                if (lm_uhf_is_mn(cp)) {
                    continue;
                }
                st = lm_nstr_push(&a, b.s + i, k, b.a0[i], b.a1[i + k - 1]);
            }
            lm_nstr_free(&b);
        }
        if (st == LM_OK && n->lowercase) {
            st = lm_lower_hf(&a, o);
        } else if (st == LM_OK) {
            st = nstr_append(o, &a);
        }
        lm_nstr_free(&a);
        return st;
    }
    case LM_NORM_SEQ: break;
    }
    return LM_OK;
}

lm_status lm_norm_apply(const lm_norm *n, lm_nstr *ns) {
    if (!n) return LM_OK;
    if (n->type == LM_NORM_SEQ) {
        for (int i = 0; i < n->n_seq; i++) LM_TRY(lm_norm_apply(n->seq[i], ns));
        return LM_OK;
    }
    lm_nstr o = {0};
    lm_status st = apply_one(n, ns, &o);
    if (st != LM_OK) {
        lm_nstr_free(&o);
        return st;
    }
    lm_nstr_free(ns);
    *ns = o;
    return LM_OK;
}

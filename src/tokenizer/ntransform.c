/* HF's NormalizedString::transform, reproduced so offsets match exactly.
 * A normalizer emits the new string as (char, change) pairs: change 0
 * replaces the next old char, +1 inserts a char, -N replaces the next old
 * char and removes the N after it. Alignment is positional: a replacing
 * char takes the original range of the old char at the cursor, an inserted
 * char that of the byte before the cursor, whatever the chars "are". NFD
 * and NFC streams follow unicode-normalization-alignments: each
 * decomposition's first char replaces, the rest insert; canonical
 * reordering moves chars with their change; a composition folds the
 * absorbed char's change, minus one, into the composite. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode_hf.h"

lm_status lm_tstream_push(lm_tstream *t, uint32_t cp, int32_t change) {
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 64;
        lm_tchar *v = realloc(t->v, nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        t->v = v;
        t->cap = nc;
    }
    t->v[t->n++] = (lm_tchar){cp, change};
    return LM_OK;
}

static size_t char_len_at(const lm_nstr *in, size_t i) {
    uint32_t cp;
    int k = lm_utf8_decode((const uint8_t *)in->s + i, in->len - i, &cp);
    return k ? (size_t)k : 1;
}

lm_status lm_ntransform(const lm_nstr *in, const lm_tstream *t, size_t initial_chars, lm_nstr *o) {
    size_t off = 0;
    for (size_t k = 0; k < initial_chars && off < in->len; k++) off += char_len_at(in, off);
    for (size_t k = 0; k < t->n; k++) {
        uint32_t a0 = 0, a1 = 0;
        int32_t ch = t->v[k].change;
        if (ch > 0) {
            if (off > 0) {
                a0 = in->a0[off - 1];
                a1 = in->a1[off - 1];
            }
        } else if (off < in->len) {
            a0 = in->a0[off];
            a1 = in->a1[off];
            off += char_len_at(in, off);
            for (int32_t r = 0; r < -ch && off < in->len; r++) off += char_len_at(in, off);
        } else if (off > 0) { /* past the end (HF would panic): keep the last range */
            a0 = in->a0[off - 1];
            a1 = in->a1[off - 1];
        }
        char b[4];
        int n = lm_utf8_encode(t->v[k].cp, b);
        LM_TRY(lm_nstr_push(o, b, (size_t)n, a0, a1));
    }
    return LM_OK;
}

/* Stable insertion sort of the non-starter run v[s, e) by combining class. */
static void reorder(lm_tchar *v, const int *cls, size_t s, size_t e, int *tmpcls) {
    for (size_t i = s; i < e; i++) tmpcls[i] = cls[i];
    for (size_t i = s + 1; i < e; i++) {
        lm_tchar x = v[i];
        int c = tmpcls[i];
        size_t j = i;
        while (j > s && tmpcls[j - 1] > c) {
            v[j] = v[j - 1];
            tmpcls[j] = tmpcls[j - 1];
            j--;
        }
        v[j] = x;
        tmpcls[j] = c;
    }
}

static lm_status decompose_stream(const lm_nstr *in, int compat, lm_tstream *t) {
    uint32_t d[32], cp;
    for (size_t i = 0, k; i < in->len; i += k) {
        k = (size_t)lm_utf8_decode((const uint8_t *)in->s + i, in->len - i, &cp);
        if (!k) {
            k = 1;
            cp = 0xFFFD;
        }
        int n = lm_uhf_decompose(cp, compat, d);
        for (int j = 0; j < n; j++) LM_TRY(lm_tstream_push(t, d[j], j > 0));
    }
    /* canonical ordering of each run of non-starters */
    int *cls = malloc((t->n + 1) * sizeof *cls), *tmp = malloc((t->n + 1) * sizeof *tmp);
    if (!cls || !tmp) {
        free(cls);
        free(tmp);
        return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    }
    for (size_t i = 0; i < t->n; i++) cls[i] = lm_uhf_ccc(t->v[i].cp);
    for (size_t i = 0; i < t->n;) {
        if (!cls[i]) {
            i++;
            continue;
        }
        size_t e = i;
        while (e < t->n && cls[e]) e++;
        if (e - i > 1) reorder(t->v, cls, i, e, tmp);
        i = e;
    }
    free(cls);
    free(tmp);
    return LM_OK;
}

/* Canonical composition over a decomposed stream, in place. */
static void compose_stream(lm_tstream *t) {
    size_t w = 0, comp = SIZE_MAX; /* output length; index of the composee in the output */
    int last = -1;                 /* class of the last char kept after the composee, -1 none */
    for (size_t r = 0; r < t->n; r++) {
        lm_tchar c = t->v[r];
        int cls = lm_uhf_ccc(c.cp);
        if (comp == SIZE_MAX) {
            if (cls == 0) comp = w;
            t->v[w++] = c;
            continue;
        }
        if (last < 0 || last < cls) {
            uint32_t x = lm_uhf_compose(t->v[comp].cp, c.cp);
            if (x) {
                t->v[comp].cp = x;
                t->v[comp].change += c.change - 1;
                continue;
            }
        }
        if (cls == 0) {
            comp = w;
            last = -1;
        } else last = cls;
        t->v[w++] = c;
    }
    t->n = w;
}

lm_status lm_unorm_hf(const lm_nstr *in, lm_nstr *o, int compose, int compat) {
    lm_tstream t = {0};
    lm_status st = decompose_stream(in, compat, &t);
    if (st == LM_OK && compose) compose_stream(&t);
    if (st == LM_OK) st = lm_ntransform(in, &t, 0, o);
    free(t.v);
    return st;
}

lm_status lm_lower_hf(const lm_nstr *in, lm_nstr *o) {
    uint32_t cp, l[3];
    for (size_t i = 0, k; i < in->len; i += k) {
        k = (size_t)lm_utf8_decode((const uint8_t *)in->s + i, in->len - i, &cp);
        if (!k) {
            k = 1;
            cp = 0xFFFD;
        }
        int n = lm_uhf_lower(cp, l);
        if (n == 1) {
            char b[4];
            int m = lm_utf8_encode(l[0], b);
            LM_TRY(lm_nstr_push(o, b, (size_t)m, in->a0[i], in->a1[i + k - 1]));
            continue;
        }
        /* extra chars are insertions: they share the range of the byte before */
        for (int j = 0; j < n; j++) {
            char b[4];
            int m = lm_utf8_encode(l[j], b);
            LM_TRY(lm_nstr_push(o, b, (size_t)m, in->a0[i], in->a1[i + k - 1]));
        }
    }
    return LM_OK;
}

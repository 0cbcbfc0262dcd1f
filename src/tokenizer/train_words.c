/* Tokenizer training, step 1: the corpus as (pre-token, count) pairs.
 * The text is cut into ~1 MiB chunks at line ends; each OpenMP thread
 * counts its chunks into its own hash table, the tables are summed and the
 * words sorted by bytes, so the result does not depend on the thread
 * count. Pre-tokens come from the same normalizer and pre-tokenizer code
 * that encoding uses, so training sees exactly what encoding will. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_internal.h"
#include "tokenizer/train.h"

typedef struct {
    uint32_t cap, n;
    struct wslot { char *k; uint32_t len; int64_t cnt; uint64_t h; } *s;
} wmap;

static lm_status wmap_add(wmap *m, const char *k, uint32_t len, int64_t cnt) {
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t nc = m->cap ? m->cap * 2 : 4096;
        struct wslot *ns = calloc(nc, sizeof *ns);
        if (!ns) return lm_error(LM_ERR_NOMEM, "train: out of memory");
        for (uint32_t i = 0; i < m->cap; i++)
            if (m->s[i].k) {
                uint32_t j = (uint32_t)m->s[i].h & (nc - 1);
                while (ns[j].k) j = (j + 1) & (nc - 1);
                ns[j] = m->s[i];
            }
        free(m->s);
        m->s = ns;
        m->cap = nc;
    }
    uint64_t h = lm_hash_bytes(k, len);
    uint32_t j = (uint32_t)h & (m->cap - 1);
    while (m->s[j].k) {
        if (m->s[j].h == h && m->s[j].len == len && !memcmp(m->s[j].k, k, len)) {
            m->s[j].cnt += cnt;
            return LM_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *c = malloc(len + 1);
    if (!c) return lm_error(LM_ERR_NOMEM, "train: out of memory");
    memcpy(c, k, len);
    c[len] = 0;
    m->s[j] = (struct wslot){c, len, cnt, h};
    m->n++;
    return LM_OK;
}

static void wmap_free(wmap *m) {
    for (uint32_t i = 0; i < m->cap; i++) free(m->s[i].k);
    free(m->s);
    memset(m, 0, sizeof *m);
}

/* One line (or chunk) of text into m. */
static lm_status count_text(const lm_norm *norm, const lm_pre *pre, const char *text, size_t len, wmap *m,
                            lm_spans *sp) {
    lm_nstr ns = {0};
    lm_status st = LM_OK;
    const char *s;
    if (norm) {
        for (size_t i = 0; i < len && st == LM_OK;) {
            uint32_t cp;
            int k = lm_utf8_decode((const uint8_t *)text + i, len - i, &cp);
            if (!k) k = 1;
            st = lm_nstr_push(&ns, text + i, (size_t)k, (uint32_t)i, (uint32_t)(i + (size_t)k));
            i += (size_t)k;
        }
        if (st == LM_OK) st = lm_norm_apply(norm, &ns);
        s = ns.s;
        len = ns.len;
    } else s = text;
    sp->n = 0;
    if (st == LM_OK && len) {
        lm_nstr view = {(char *)s, len, len, ns.a0, ns.a1};
        st = lm_spans_push(sp, 0, (uint32_t)len);
        if (st == LM_OK) st = lm_pre_apply(pre, &view, sp, 1);
        for (size_t i = 0; i < sp->n && st == LM_OK; i++)
            if (sp->v[i].e > sp->v[i].s) st = wmap_add(m, view.s + sp->v[i].s, sp->v[i].e - sp->v[i].s, 1);
    }
    lm_nstr_free(&ns);
    return st;
}

static int cmp_word(const void *a, const void *b) {
    const lm_trword *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

lm_status lm_train_count_words(const lm_norm *norm, const lm_pre *pre, const char *const *texts, const size_t *lens,
                               size_t n_texts, lm_trword **out, size_t *n_out) {
    /* chunks: [text, start, end), cut after a newline near every 1 MiB */
    size_t nch = 0, cap = 64;
    struct chunk { size_t t, s, e; } *ch = malloc(cap * sizeof *ch);
    if (!ch) return lm_error(LM_ERR_NOMEM, "train: out of memory");
    for (size_t t = 0; t < n_texts; t++) {
        if (lm_utf8_first_invalid((const uint8_t *)texts[t], lens[t]) != lens[t]) {
            free(ch);
            return lm_error(LM_ERR_FORMAT, "train: text %zu is not valid UTF-8", t);
        }
        for (size_t s = 0; s < lens[t];) {
            size_t e = s + (1u << 20) < lens[t] ? s + (1u << 20) : lens[t];
            while (e < lens[t] && texts[t][e - 1] != '\n') e++;
            if (nch == cap) {
                struct chunk *c2 = realloc(ch, (cap *= 2) * sizeof *ch);
                if (!c2) {
                    free(ch);
                    return lm_error(LM_ERR_NOMEM, "train: out of memory");
                }
                ch = c2;
            }
            ch[nch++] = (struct chunk){t, s, e};
            s = e;
        }
    }
    int nt = lm_get_threads();
    if (nt < 1) nt = 1;
    wmap *maps = calloc((size_t)nt, sizeof *maps);
    lm_status st = maps ? LM_OK : lm_error(LM_ERR_NOMEM, "train: out of memory");
#pragma omp parallel num_threads(nt)
    {
        int me = omp_get_thread_num();
        lm_spans sp = {0};
#pragma omp for schedule(dynamic, 1)
        for (size_t c = 0; c < nch; c++) {
            if (st != LM_OK) continue;
            const char *tx = texts[ch[c].t];
            lm_status s2 = LM_OK;
            /* line by line, as HF's trainer reads files */
            for (size_t i = ch[c].s; i < ch[c].e && s2 == LM_OK;) {
                const char *nl = memchr(tx + i, '\n', ch[c].e - i);
                size_t e = nl ? (size_t)(nl - tx) + 1 : ch[c].e;
                s2 = count_text(norm, pre, tx + i, e - i, &maps[me], &sp);
                i = e;
            }
            if (s2 != LM_OK) {
#pragma omp critical(lm_train_err)
                st = s2;
            }
        }
        free(sp.v);
    }
    free(ch);
    for (int i = 1; i < nt && st == LM_OK; i++)
        for (uint32_t j = 0; j < maps[i].cap && st == LM_OK; j++)
            if (maps[i].s[j].k) st = wmap_add(&maps[0], maps[i].s[j].k, maps[i].s[j].len, maps[i].s[j].cnt);
    lm_trword *w = NULL;
    size_t n = 0;
    if (st == LM_OK) {
        w = malloc((maps[0].n + 1) * sizeof *w);
        if (!w) st = lm_error(LM_ERR_NOMEM, "train: out of memory");
        for (uint32_t j = 0; w && j < maps[0].cap; j++)
            if (maps[0].s[j].k) {
                w[n++] = (lm_trword){maps[0].s[j].k, maps[0].s[j].len, maps[0].s[j].cnt};
                maps[0].s[j].k = NULL; /* ownership moves to w */
            }
        if (w) qsort(w, n, sizeof *w, cmp_word);
    }
    for (int i = 0; maps && i < nt; i++) wmap_free(&maps[i]);
    free(maps);
    *out = w;
    *n_out = n;
    return st;
}

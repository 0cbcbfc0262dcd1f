/* Tokenizer training, step 2: the BPE merge loop (also used for
 * WordPiece, as HF's WordPieceTrainer does). Pair counts live in an open
 * addressing table; each pair keeps the list of words it occurs in, so a
 * merge only revisits those words. A max-heap picks the best pair; rather
 * than updating entries in place, every count change pushes a fresh entry
 * and entries whose count is out of date are dropped when they surface. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/train.h"

typedef struct {
    uint64_t key;  /* a << 32 | b, ~0 empty */
    int64_t cnt;
    uint32_t *where, n_where, cap_where; /* word indices, may repeat */
} pslot;
typedef struct { uint32_t cap, n; pslot *s; } ptab;

static uint32_t slot_of(const ptab *t, uint64_t key) {
    uint32_t i = (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (t->cap - 1);
    while (t->s[i].key != key && t->s[i].key != ~0ull) i = (i + 1) & (t->cap - 1);
    return i;
}

static lm_status ptab_grow(ptab *t) {
    uint32_t nc = t->cap ? t->cap * 2 : 1u << 16;
    pslot *old = t->s;
    uint32_t oc = t->cap;
    t->s = malloc((size_t)nc * sizeof *t->s);
    if (!t->s) {
        t->s = old;
        return lm_error(LM_ERR_NOMEM, "train: out of memory");
    }
    for (uint32_t i = 0; i < nc; i++) t->s[i].key = ~0ull;
    t->cap = nc;
    for (uint32_t i = 0; i < oc; i++)
        if (old[i].key != ~0ull) t->s[slot_of(t, old[i].key)] = old[i];
    free(old);
    return LM_OK;
}

/* The slot of pair key, created with count 0 if new. */
static lm_status ptab_get(ptab *t, uint64_t key, pslot **out) {
    if ((t->n + 1) * 4 > t->cap * 3) LM_TRY(ptab_grow(t));
    uint32_t i = slot_of(t, key);
    if (t->s[i].key == ~0ull) {
        t->s[i] = (pslot){key, 0, NULL, 0, 0};
        t->n++;
    }
    *out = &t->s[i];
    return LM_OK;
}

static lm_status add_where(pslot *p, uint32_t w) {
    if (p->n_where && p->where[p->n_where - 1] == w) return LM_OK;
    if (p->n_where == p->cap_where) {
        uint32_t nc = p->cap_where ? p->cap_where * 2 : 4;
        uint32_t *v = realloc(p->where, nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "train: out of memory");
        p->where = v;
        p->cap_where = nc;
    }
    p->where[p->n_where++] = w;
    return LM_OK;
}

typedef struct { int64_t cnt; uint64_t key; } hent;
typedef struct { hent *v; size_t n, cap; } heap;

static int hbetter(const hent *x, const hent *y) { return x->cnt > y->cnt || (x->cnt == y->cnt && x->key < y->key); }

static lm_status hpush(heap *h, int64_t cnt, uint64_t key) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 1 << 16;
        hent *v = realloc(h->v, nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "train: out of memory");
        h->v = v;
        h->cap = nc;
    }
    size_t i = h->n++;
    h->v[i] = (hent){cnt, key};
    while (i && hbetter(&h->v[i], &h->v[(i - 1) / 2])) {
        hent t = h->v[i];
        h->v[i] = h->v[(i - 1) / 2];
        h->v[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return LM_OK;
}

static hent hpop(heap *h) {
    hent top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, b = i;
        if (l < h->n && hbetter(&h->v[l], &h->v[b])) b = l;
        if (r < h->n && hbetter(&h->v[r], &h->v[b])) b = r;
        if (b == i) break;
        hent t = h->v[i];
        h->v[i] = h->v[b];
        h->v[b] = t;
        i = b;
    }
    return top;
}

static uint64_t pkey(uint32_t a, uint32_t b) { return (uint64_t)a << 32 | b; }

lm_status lm_trsyms_add(lm_trsyms *s, const char *str, uint32_t len, int32_t *id) {
    if (s->n_sym == s->cap_sym) {
        int32_t nc = s->cap_sym ? s->cap_sym * 2 : 1024;
        char **v = realloc(s->sym, (size_t)nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "train: out of memory");
        s->sym = v;
        uint32_t *l = realloc(s->sym_len, (size_t)nc * sizeof *l);
        if (!l) return lm_error(LM_ERR_NOMEM, "train: out of memory");
        s->sym_len = l;
        s->cap_sym = nc;
    }
    char *c = malloc(len + 1);
    if (!c) return lm_error(LM_ERR_NOMEM, "train: out of memory");
    memcpy(c, str, len);
    c[len] = 0;
    s->sym[s->n_sym] = c;
    s->sym_len[s->n_sym] = len;
    *id = s->n_sym++;
    return LM_OK;
}

void lm_trsyms_free(lm_trsyms *s) {
    for (int32_t i = 0; i < s->n_sym; i++) free(s->sym[i]);
    free(s->sym);
    free(s->sym_len);
    free(s->merges);
    memset(s, 0, sizeof *s);
}

/* Adds (sign +1) or removes (-1) the pairs of word w; touched pairs get a
 * fresh heap entry later (listed in *touched). */
static lm_status word_pairs(ptab *t, const uint32_t *wd, uint32_t n, int64_t cnt, uint32_t w, int sign,
                            uint64_t **touched, size_t *nt, size_t *ct) {
    for (uint32_t i = 0; i + 1 < n; i++) {
        pslot *p;
        LM_TRY(ptab_get(t, pkey(wd[i], wd[i + 1]), &p));
        p->cnt += sign * cnt;
        if (sign > 0) LM_TRY(add_where(p, w));
        if (*nt == *ct) {
            size_t nc = *ct ? *ct * 2 : 1024;
            uint64_t *v = realloc(*touched, nc * sizeof *v);
            if (!v) return lm_error(LM_ERR_NOMEM, "train: out of memory");
            *touched = v;
            *ct = nc;
        }
        (*touched)[(*nt)++] = p->key;
    }
    return LM_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

lm_status lm_train_merge(lm_trsyms *syms, uint32_t **words, uint32_t *wlen, const int64_t *wcnt, size_t n_words,
                         int vocab_size, int64_t min_freq, const char *strip_prefix) {
    ptab t = {0};
    heap h = {0};
    uint64_t *touched = NULL;
    size_t nt = 0, ct = 0;
    uint32_t *stamp = calloc(n_words + 1, sizeof *stamp);
    lm_strmap names = {0};
    char *buf = NULL;
    size_t buf_cap = 0, spl = strip_prefix ? strlen(strip_prefix) : 0;
    lm_status st = stamp ? LM_OK : lm_error(LM_ERR_NOMEM, "train: out of memory");
    for (int32_t i = 0; i < syms->n_sym && st == LM_OK; i++)
        st = lm_strmap_put(&names, syms->sym[i], syms->sym_len[i], i);
    for (size_t w = 0; w < n_words && st == LM_OK; w++)
        st = word_pairs(&t, words[w], wlen[w], wcnt[w], (uint32_t)w, 1, &touched, &nt, &ct);
    for (uint32_t i = 0; i < t.cap && st == LM_OK; i++)
        if (t.s[i].key != ~0ull && t.s[i].cnt > 0) st = hpush(&h, t.s[i].cnt, t.s[i].key);
    int32_t cap_m = 0;
    for (uint32_t round = 1; st == LM_OK && syms->n_sym < vocab_size && h.n; round++) {
        hent best = hpop(&h);
        pslot *p;
        st = ptab_get(&t, best.key, &p);
        if (st || p->cnt != best.cnt || p->cnt <= 0) continue; /* stale */
        if (p->cnt < min_freq) break;
        uint32_t a = (uint32_t)(best.key >> 32), b = (uint32_t)best.key;
        /* the merged symbol's text */
        uint32_t la = syms->sym_len[a], lb = syms->sym_len[b];
        const char *sb = syms->sym[b];
        if (spl && lb >= spl && !memcmp(sb, strip_prefix, spl)) sb += spl, lb -= (uint32_t)spl;
        if (la + lb + 1 > buf_cap) {
            buf_cap = (la + lb + 1) * 2;
            char *nb = realloc(buf, buf_cap);
            if (!nb) {
                st = lm_error(LM_ERR_NOMEM, "train: out of memory");
                break;
            }
            buf = nb;
        }
        memcpy(buf, syms->sym[a], la);
        memcpy(buf + la, sb, lb);
        int32_t id = lm_strmap_get(&names, buf, la + lb);
        if (id < 0) {
            st = lm_trsyms_add(syms, buf, la + lb, &id);
            if (st == LM_OK) st = lm_strmap_put(&names, syms->sym[id], la + lb, id);
            if (st) break;
        }
        if (syms->n_merges == cap_m) {
            cap_m = cap_m ? cap_m * 2 : 1024;
            int32_t(*m)[3] = realloc(syms->merges, (size_t)cap_m * sizeof *m);
            if (!m) {
                st = lm_error(LM_ERR_NOMEM, "train: out of memory");
                break;
            }
            syms->merges = m;
        }
        syms->merges[syms->n_merges][0] = (int32_t)a;
        syms->merges[syms->n_merges][1] = (int32_t)b;
        syms->merges[syms->n_merges++][2] = id;
        /* the words list may grow while we walk it (a == b): copy it */
        uint32_t nw = p->n_where, *ws = malloc((nw + 1) * sizeof *ws);
        if (!ws) {
            st = lm_error(LM_ERR_NOMEM, "train: out of memory");
            break;
        }
        memcpy(ws, p->where, nw * sizeof *ws);
        free(p->where);
        p->where = NULL;
        p->n_where = p->cap_where = 0;
        nt = 0;
        for (uint32_t k = 0; k < nw && st == LM_OK; k++) {
            uint32_t w = ws[k];
            if (stamp[w] == round) continue;
            stamp[w] = round;
            uint32_t *wd = words[w], n = wlen[w], i;
            for (i = 0; i + 1 < n && !(wd[i] == a && wd[i + 1] == b); i++) {}
            if (i + 1 >= n) continue;
            st = word_pairs(&t, wd, n, wcnt[w], w, -1, &touched, &nt, &ct);
            uint32_t o = 0;
            for (i = 0; i < n; i++) {
                if (i + 1 < n && wd[i] == a && wd[i + 1] == b) {
                    wd[o++] = (uint32_t)id;
                    i++;
                } else wd[o++] = wd[i];
            }
            wlen[w] = o;
            if (st == LM_OK) st = word_pairs(&t, wd, o, wcnt[w], w, 1, &touched, &nt, &ct);
        }
        free(ws);
        /* fresh heap entries for every pair whose count moved */
        qsort(touched, nt, sizeof *touched, cmp_u64);
        for (size_t k = 0; k < nt && st == LM_OK; k++) {
            if (k && touched[k] == touched[k - 1]) continue;
            pslot *q;
            st = ptab_get(&t, touched[k], &q);
            if (st == LM_OK && q->cnt > 0) st = hpush(&h, q->cnt, q->key);
        }
    }
    for (uint32_t i = 0; i < t.cap; i++)
        if (t.s[i].key != ~0ull) free(t.s[i].where);
    free(t.s);
    free(h.v);
    free(touched);
    free(stamp);
    free(buf);
    lm_strmap_free(&names);
    return st;
}

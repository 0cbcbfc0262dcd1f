/* BPE on one pre-token: split into initial symbols (bytes for byte-level
 * models, characters otherwise, with byte fallback / unk), then merge the
 * adjacent pair of lowest rank, leftmost first, until none is mergeable.
 * Short words use a linear scan (they are most words); long ones a heap,
 * so a gigantic single "word" costs O(n log n), not O(n^2).
 * A per-thread cache of recent words makes repeated words cost one hash
 * lookup. */
#include "tokenizer/tok_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_toks_reserve(lm_toks *o, size_t extra) {
    if (o->n + extra <= o->cap) return LM_OK;
    size_t nc = o->cap ? o->cap : 64;
    while (nc < o->n + extra) nc *= 2;
    int32_t *ids = realloc(o->ids, nc * sizeof *ids);
    if (!ids) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    o->ids = ids;
    uint32_t *ends = realloc(o->ends, nc * sizeof *ends);
    if (!ends) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    o->ends = ends;
    o->cap = nc;
    return LM_OK;
}

typedef struct {
    int32_t id;
    uint32_t end; /* byte end of this symbol in the word */
    int32_t prev, next;
} sym;

/* ---- per-thread word cache ---- */
#define WC_BITS 14
#define WC_WORD 23
#define WC_IDS 8
typedef struct {
    uint64_t serial;
    uint64_t h;
    uint8_t wlen, n;
    char w[WC_WORD];
    int32_t ids[WC_IDS];
    uint8_t ends[WC_IDS];
} wc_entry;

static pthread_key_t wc_key;
static pthread_once_t wc_once = PTHREAD_ONCE_INIT;
static void wc_make_key(void) { pthread_key_create(&wc_key, free); }

static wc_entry *wc_table(void) {
    pthread_once(&wc_once, wc_make_key);
    wc_entry *t = pthread_getspecific(wc_key);
    if (!t) {
        t = calloc((size_t)1 << WC_BITS, sizeof *t);
        if (t && pthread_setspecific(wc_key, t)) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

/* ---- initial symbols ---- */
static lm_status initial_symbols(const lm_tokenizer *t, const uint8_t *w, size_t n, sym **syms, size_t *ns) {
    sym *s = *syms;
    size_t k = 0;
    if (t->byte_level) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->byte_to_id[w[i]];
            if (id < 0) {
                if (t->unk_id < 0)
                    return lm_error(LM_ERR_FORMAT, "tokenizer: byte 0x%02X has no token and there is no unk_token",
                                    w[i]);
                id = t->unk_id;
                if (t->fuse_unk && k && s[k - 1].id == t->unk_id) {
                    s[k - 1].end = (uint32_t)(i + 1);
                    continue;
                }
            }
            s[k].id = id;
            s[k].end = (uint32_t)(i + 1);
            k++;
        }
        *ns = k;
        return LM_OK;
    }
    char buf[256];
    int32_t pend_unk = -1; /* pending (fused) unk ends here */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int cl = lm_utf8_decode(w + i, n - i, &cp);
        if (!cl) cl = 1; /* input is sanitized; be safe anyway */
        size_t bl = 0;
        if (i > 0 && t->cont_prefix_len && t->cont_prefix_len < 128) {
            memcpy(buf, t->cont_prefix, t->cont_prefix_len);
            bl = t->cont_prefix_len;
        }
        memcpy(buf + bl, w + i, (size_t)cl);
        bl += (size_t)cl;
        if (i + (size_t)cl == n && t->eow_suffix_len && t->eow_suffix_len < 100) {
            memcpy(buf + bl, t->eow_suffix, t->eow_suffix_len);
            bl += t->eow_suffix_len;
        }
        int32_t id = lm_strmap_get(&t->vocab, buf, bl);
        size_t i_end = i + (size_t)cl;
        if (id >= 0) {
            if (pend_unk >= 0) {
                s[k].id = t->unk_id;
                s[k].end = (uint32_t)pend_unk;
                k++;
                pend_unk = -1;
            }
            s[k].id = id;
            s[k].end = (uint32_t)i_end;
            k++;
        } else {
            int fb = t->byte_fallback;
            for (int b = 0; fb && b < cl; b++)
                if (t->byte_fallback_id[w[i + (size_t)b]] < 0) fb = 0;
            if (fb) {
                if (pend_unk >= 0) {
                    s[k].id = t->unk_id;
                    s[k].end = (uint32_t)pend_unk;
                    k++;
                    pend_unk = -1;
                }
                for (int b = 0; b < cl; b++) {
                    s[k].id = t->byte_fallback_id[w[i + (size_t)b]];
                    s[k].end = (uint32_t)(i + (size_t)b + 1);
                    k++;
                }
            } else if (t->unk_id >= 0) {
                if (pend_unk >= 0 && !t->fuse_unk) {
                    s[k].id = t->unk_id;
                    s[k].end = (uint32_t)pend_unk;
                    k++;
                }
                pend_unk = (int32_t)i_end;
            }
            /* no unk token: HF drops the character; so do we */
        }
        i = i_end;
    }
    if (pend_unk >= 0) {
        s[k].id = t->unk_id;
        s[k].end = (uint32_t)pend_unk;
        k++;
    }
    *ns = k;
    return LM_OK;
}

/* ---- merging ---- */
static void merge_scan(const lm_tokenizer *t, sym *s, size_t ns) {
    /* rank[i]: rank of pair (i, next(i)); live symbols form a list. */
    uint32_t rk[64];
    int32_t nid[64];
    if (!ns) return;
    for (size_t i = 0; i + 1 < ns; i++)
        if (!lm_pairmap_get(&t->merges, s[i].id, s[i + 1].id, &rk[i], &nid[i])) rk[i] = UINT32_MAX;
    if (ns) rk[ns - 1] = UINT32_MAX;
    for (size_t i = 0; i < ns; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < ns ? (int32_t)(i + 1) : -1;
    }
    for (;;) {
        uint32_t best = UINT32_MAX;
        int32_t bi = -1;
        for (int32_t i = 0; i >= 0; i = s[i].next)
            if (rk[i] < best) { best = rk[i]; bi = i; }
        if (bi < 0) break;
        int32_t j = s[bi].next;
        s[bi].id = nid[bi];
        s[bi].end = s[j].end;
        s[bi].next = s[j].next;
        if (s[j].next >= 0) s[s[j].next].prev = bi;
        if (s[bi].next < 0 || !lm_pairmap_get(&t->merges, s[bi].id, s[s[bi].next].id, &rk[bi], &nid[bi]))
            rk[bi] = UINT32_MAX;
        int32_t p = s[bi].prev;
        if (p >= 0 && !lm_pairmap_get(&t->merges, s[p].id, s[bi].id, &rk[p], &nid[p])) rk[p] = UINT32_MAX;
    }
}

typedef struct { uint32_t rank; int32_t pos; int32_t id; } hent;

static int hless(const hent *a, const hent *b) { return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos); }

static void hpush(hent *h, size_t *n, hent e) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (!hless(&e, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static hent hpop(hent *h, size_t *n) {
    hent top = h[0], last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && hless(&h[c + 1], &h[c])) c++;
        if (!hless(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = last;
    return top;
}

static lm_status merge_heap(const lm_tokenizer *t, sym *s, size_t ns) {
    /* Every merge pushes at most two entries, so 3*ns bounds the heap. */
    hent *h = malloc(3 * ns * sizeof *h);
    if (!h) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for a %zu-symbol word", ns);
    size_t hn = 0;
    for (size_t i = 0; i < ns; i++) {
        s[i].prev = (int32_t)i - 1;
        s[i].next = i + 1 < ns ? (int32_t)(i + 1) : -1;
    }
    for (size_t i = 0; i + 1 < ns; i++) {
        hent e = {0, (int32_t)i, 0};
        if (lm_pairmap_get(&t->merges, s[i].id, s[i + 1].id, &e.rank, &e.id)) hpush(h, &hn, e);
    }
    while (hn) {
        hent e = hpop(h, &hn);
        int32_t i = e.pos;
        if (s[i].id < 0 || s[i].next < 0) continue; /* merged away, or last */
        int32_t j = s[i].next;
        uint32_t r;
        int32_t id;
        if (!lm_pairmap_get(&t->merges, s[i].id, s[j].id, &r, &id) || id != e.id || r != e.rank) continue;
        s[i].id = id;
        s[i].end = s[j].end;
        s[i].next = s[j].next;
        if (s[j].next >= 0) s[s[j].next].prev = i;
        s[j].id = -1;
        hent ne = {0, 0, 0};
        if (s[i].prev >= 0 && lm_pairmap_get(&t->merges, s[s[i].prev].id, s[i].id, &ne.rank, &ne.id)) {
            ne.pos = s[i].prev;
            hpush(h, &hn, ne);
        }
        if (s[i].next >= 0 && lm_pairmap_get(&t->merges, s[i].id, s[s[i].next].id, &ne.rank, &ne.id)) {
            ne.pos = i;
            hpush(h, &hn, ne);
        }
    }
    free(h);
    return LM_OK;
}

/* ignore_merges (and tiktoken): a word that is itself a token is one token. */
static int32_t whole_word(const lm_tokenizer *t, const uint8_t *w, size_t n) {
    if (t->byte_level) {
        char buf[512];
        if (n > sizeof buf / 2) return -1;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) o += (size_t)lm_utf8_encode(lm_bytelevel_char(w[i]), buf + o);
        return lm_strmap_get(&t->vocab, buf, o);
    }
    return lm_strmap_get(&t->vocab, (const char *)w, n);
}

static lm_status bpe_uncached(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out) {
    if (t->ignore_merges) {
        int32_t id = whole_word(t, w, n);
        if (id >= 0) {
            LM_TRY(lm_toks_reserve(out, 1));
            out->ids[out->n] = id;
            out->ends[out->n++] = (uint32_t)n;
            return LM_OK;
        }
    }
    sym stack[64];
    sym *s = stack;
    size_t ns = 0;
    if (n > 64) {
        s = malloc(n * sizeof *s);
        if (!s) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for a %zu-byte word", n);
    }
    lm_status st = initial_symbols(t, w, n, &s, &ns);
    if (st == LM_OK) {
        if (ns <= 64) merge_scan(t, s, ns);
        else st = merge_heap(t, s, ns);
    }
    if (st == LM_OK) st = lm_toks_reserve(out, ns);
    if (st == LM_OK && ns) {
        for (int32_t i = 0; i >= 0; i = s[i].next) {
            out->ids[out->n] = s[i].id;
            out->ends[out->n++] = s[i].end;
        }
    }
    if (s != stack) free(s);
    return st;
}

lm_status lm_bpe_word(const lm_tokenizer *t, const uint8_t *w, size_t n, lm_toks *out) {
    if (n == 0) return LM_OK;
    if (n == 1 && t->byte_level && t->byte_to_id[w[0]] >= 0) {
        LM_TRY(lm_toks_reserve(out, 1));
        out->ids[out->n] = t->byte_to_id[w[0]];
        out->ends[out->n++] = 1;
        return LM_OK;
    }
    wc_entry *wc = n <= WC_WORD ? wc_table() : NULL;
    wc_entry *e = NULL;
    uint64_t h = 0;
    if (wc) {
        h = lm_hash_bytes(w, n);
        e = &wc[h & (((uint64_t)1 << WC_BITS) - 1)];
        if (e->serial == t->serial && e->h == h && e->wlen == n && !memcmp(e->w, w, n)) {
            LM_TRY(lm_toks_reserve(out, e->n));
            for (int i = 0; i < e->n; i++) {
                out->ids[out->n] = e->ids[i];
                out->ends[out->n++] = e->ends[i];
            }
            return LM_OK;
        }
    }
    size_t n0 = out->n;
    LM_TRY(bpe_uncached(t, w, n, out));
    size_t k = out->n - n0;
    if (e && k <= WC_IDS) {
        e->serial = t->serial;
        e->h = h;
        e->wlen = (uint8_t)n;
        e->n = (uint8_t)k;
        memcpy(e->w, w, n);
        for (size_t i = 0; i < k; i++) {
            e->ids[i] = out->ids[n0 + i];
            e->ends[i] = (uint8_t)out->ends[n0 + i];
        }
    }
    return LM_OK;
}

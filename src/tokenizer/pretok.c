/* Pre-tokenizers: cut the (normalized) text into pieces the model encodes
 * one at a time, with HF's split behaviours (removed, isolated, merged
 * with previous / next, contiguous). Regexes run on PCRE2's JIT. */
#include "tokenizer/tok_internal.h"
#include "tokenizer/unicode_hf.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

lm_status lm_spans_push(lm_spans *sp, uint32_t s, uint32_t e) {
    if (s >= e) return LM_OK; /* HF drops empty pieces */
    if (sp->n == sp->cap) {
        size_t nc = sp->cap ? sp->cap * 2 : 256;
        lm_span *v = realloc(sp->v, nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        sp->v = v;
        sp->cap = nc;
    }
    sp->v[sp->n].s = s;
    sp->v[sp->n].e = e;
    sp->n++;
    return LM_OK;
}

/* ---- per-thread PCRE2 match state (match data is not shareable) ---- */
typedef struct {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
} re_tls;
static pthread_key_t re_key;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;
static void re_free(void *p) {
    re_tls *r = p;
    pcre2_match_data_free(r->md);
    pcre2_match_context_free(r->mc);
    pcre2_jit_stack_free(r->js);
    free(r);
}
static void re_make_key(void) { pthread_key_create(&re_key, re_free); }
static re_tls *re_state(void) {
    pthread_once(&re_once, re_make_key);
    re_tls *r = pthread_getspecific(re_key);
    if (r) return r;
    r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->md = pcre2_match_data_create(1, NULL);
    r->mc = pcre2_match_context_create(NULL);
    r->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!r->md || !r->mc || !r->js) {
        re_free(r);
        return NULL;
    }
    pcre2_jit_stack_assign(r->mc, NULL, r->js);
    pthread_setspecific(re_key, r);
    return r;
}

lm_status lm_regex_compile(const char *pattern, size_t len, const char *path, pcre2_code **out) {
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, len, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return lm_error(LM_ERR_FORMAT, "%s: bad regex at offset %zu: %s", path, (size_t)off, (char *)msg);
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* falls back to the interpreter if JIT is unavailable */
    *out = re;
    return LM_OK;
}

/* A match list covering [s, e): (start, end, is_match) triples. */
typedef struct { uint32_t s, e; int m; } seg;
typedef struct { seg *v; size_t n, cap; } segs;

static lm_status segs_push(segs *g, uint32_t s, uint32_t e, int m) {
    if (s >= e) return LM_OK;
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 64;
        seg *v = realloc(g->v, nc * sizeof *v);
        if (!v) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        g->v = v;
        g->cap = nc;
    }
    g->v[g->n++] = (seg){s, e, m};
    return LM_OK;
}

static lm_status find_regex(const pcre2_code *re, const char *text, uint32_t s, uint32_t e, segs *g) {
    re_tls *r = re_state();
    if (!r) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for regex state");
    PCRE2_SPTR subj = (PCRE2_SPTR)(text + s);
    size_t n = e - s, pos = 0, prev = 0;
    while (pos <= n) {
        int rc = pcre2_match(re, subj, n, pos, PCRE2_NO_UTF_CHECK, r->md, r->mc);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return lm_error(LM_ERR_RANGE, "tokenizer: regex failed on a %zu-byte piece: %s", n, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev) LM_TRY(segs_push(g, s + (uint32_t)prev, s + (uint32_t)ms, 0));
        LM_TRY(segs_push(g, s + (uint32_t)ms, s + (uint32_t)me, 1));
        prev = me;
        if (me == ms) { /* empty match: step one character */
            if (me >= n) break;
            pos = me + 1;
            while (pos < n && (subj[pos] & 0xC0) == 0x80) pos++;
        } else pos = me;
    }
    if (prev < n) LM_TRY(segs_push(g, s + (uint32_t)prev, e, 0));
    return LM_OK;
}

static lm_status find_literal(const char *lit, size_t ll, const char *text, uint32_t s, uint32_t e, segs *g) {
    uint32_t prev = s, i = s;
    while (ll && i + ll <= e) {
        if (!memcmp(text + i, lit, ll)) {
            LM_TRY(segs_push(g, prev, i, 0));
            LM_TRY(segs_push(g, i, i + (uint32_t)ll, 1));
            i += (uint32_t)ll;
            prev = i;
        } else i++;
    }
    return segs_push(g, prev, e, 0);
}

/* Whitespace: maximal runs of word chars or of other non-space chars are
 * the matches (HF's regex \w+|[^\w\s]+ with Rust's Unicode classes) */
static lm_status find_word_runs(const char *text, uint32_t s, uint32_t e, segs *g) {
    uint32_t prev = s, i = s;
    while (i < e) {
        uint32_t cp;
        int k = lm_utf8_decode((const uint8_t *)text + i, e - i, &cp);
        if (!k) { cp = 0xFFFD; k = 1; }
        int c = lm_uhf_ws_class(cp);
        if (!c) {
            i += (uint32_t)k;
            continue;
        }
        uint32_t j = i + (uint32_t)k;
        while (j < e) {
            uint32_t c2;
            int k2 = lm_utf8_decode((const uint8_t *)text + j, e - j, &c2);
            if (!k2) { c2 = 0xFFFD; k2 = 1; }
            if (lm_uhf_ws_class(c2) != c) break;
            j += (uint32_t)k2;
        }
        if (i > prev) LM_TRY(segs_push(g, prev, i, 0));
        LM_TRY(segs_push(g, i, j, 1));
        prev = i = j;
    }
    return prev < e ? segs_push(g, prev, e, 0) : LM_OK;
}

typedef int (*char_pred)(uint32_t cp, const lm_pre *p);

static lm_status find_chars(char_pred f, const lm_pre *p, const char *text, uint32_t s, uint32_t e, segs *g) {
    uint32_t prev = s, i = s;
    while (i < e) {
        uint32_t cp;
        int k = lm_utf8_decode((const uint8_t *)text + i, e - i, &cp);
        if (!k) { cp = 0xFFFD; k = 1; }
        if (f(cp, p)) {
            LM_TRY(segs_push(g, prev, i, 0));
            LM_TRY(segs_push(g, i, i + (uint32_t)k, 1));
            prev = i + (uint32_t)k;
        }
        i += (uint32_t)k;
    }
    return segs_push(g, prev, e, 0);
}

/* Rust's char::is_whitespace: the White_Space property. */
static int is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
int lm_char_is_whitespace(uint32_t c) { return is_ws(c); }
static int pred_ws(uint32_t c, const lm_pre *p) { (void)p; return is_ws(c); }
int lm_char_is_punct(uint32_t c) {
    return lm_uhf_is_punct(c);
}
static int pred_punct(uint32_t c, const lm_pre *p) { (void)p; return lm_char_is_punct(c); }
static int pred_digit(uint32_t c, const lm_pre *p) {
    (void)p;
    return lm_uhf_is_numeric(c);
}
static int pred_repl(uint32_t c, const lm_pre *p) { return c == p->replacement; }

/* Applies a split behaviour to the match list and appends the pieces. */
static lm_status emit(segs *g, lm_split_behavior b, int invert, lm_spans *out) {
    if (invert)
        for (size_t i = 0; i < g->n; i++) g->v[i].m = !g->v[i].m;
    size_t first = out->n;
    int prevm = 0;
    switch (b) {
    case LM_SPLIT_REMOVED:
        for (size_t i = 0; i < g->n; i++)
            if (!g->v[i].m) LM_TRY(lm_spans_push(out, g->v[i].s, g->v[i].e));
        break;
    case LM_SPLIT_ISOLATED:
        for (size_t i = 0; i < g->n; i++) LM_TRY(lm_spans_push(out, g->v[i].s, g->v[i].e));
        break;
    case LM_SPLIT_MERGED_PREV:
        for (size_t i = 0; i < g->n; i++) {
            if (g->v[i].m && !prevm && out->n > first) out->v[out->n - 1].e = g->v[i].e;
            else LM_TRY(lm_spans_push(out, g->v[i].s, g->v[i].e));
            prevm = g->v[i].m;
        }
        break;
    case LM_SPLIT_MERGED_NEXT: {
        /* walk backwards, then reverse what was added */
        for (size_t k = g->n; k-- > 0;) {
            if (g->v[k].m && !prevm && out->n > first) out->v[out->n - 1].s = g->v[k].s;
            else LM_TRY(lm_spans_push(out, g->v[k].s, g->v[k].e));
            prevm = g->v[k].m;
        }
        for (size_t a = first, z = out->n; a + 1 < z; a++, z--) {
            lm_span t = out->v[a];
            out->v[a] = out->v[z - 1];
            out->v[z - 1] = t;
        }
        break;
    }
    case LM_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < g->n; i++) {
            if (i > 0 && g->v[i].m == prevm && out->n > first) out->v[out->n - 1].e = g->v[i].e;
            else LM_TRY(lm_spans_push(out, g->v[i].s, g->v[i].e));
            prevm = g->v[i].m;
        }
        break;
    }
    return LM_OK;
}

/* Copies bytes [s, e) of ns to its end, with its alignment, so a stage can
 * rewrite a piece. */
static lm_status nstr_prepend_copy(lm_nstr *ns, uint32_t s, uint32_t e, const char *pre, size_t pre_len,
                                   uint32_t *ns_start) {
    *ns_start = (uint32_t)ns->len;
    uint32_t o0 = s < e ? ns->a0[s] : (s ? ns->a1[s - 1] : 0);
    if (pre_len) LM_TRY(lm_nstr_push(ns, pre, pre_len, o0, o0));
    for (uint32_t i = s; i < e; i++) LM_TRY(lm_nstr_push(ns, ns->s + i, 1, ns->a0[i], ns->a1[i]));
    return LM_OK;
}

static lm_status metaspace(const lm_pre *p, lm_nstr *ns, lm_span sp, int first, lm_spans *out) {
    char rep[4];
    int rl = lm_utf8_encode(p->replacement, rep);
    uint32_t start = (uint32_t)ns->len;
    int starts_with_rep = sp.e - sp.s >= (uint32_t)rl && !memcmp(ns->s + sp.s, rep, (size_t)rl);
    int is_start = sp.s < sp.e && ns->a0[sp.s] == 0;
    int starts_space = sp.s < sp.e && ns->s[sp.s] == ' ';
    if (!starts_with_rep && !starts_space && (p->prepend == 2 || (p->prepend == 1 && first && is_start))) {
        /* HF aligns the inserted marker with the first character */
        LM_TRY(lm_nstr_push(ns, rep, (size_t)rl, ns->a0[sp.s], ns->a1[sp.s]));
    }
    for (uint32_t i = sp.s; i < sp.e; i++) {
        if (ns->s[i] == ' ') LM_TRY(lm_nstr_push(ns, rep, (size_t)rl, ns->a0[i], ns->a1[i]));
        else LM_TRY(lm_nstr_push(ns, ns->s + i, 1, ns->a0[i], ns->a1[i]));
    }
    lm_span nsp = {start, (uint32_t)ns->len};
    if (!p->split) return lm_spans_push(out, nsp.s, nsp.e);
    segs g = {0};
    lm_status st = find_chars(pred_repl, p, ns->s, nsp.s, nsp.e, &g);
    if (st == LM_OK) st = emit(&g, LM_SPLIT_MERGED_NEXT, 0, out);
    free(g.v);
    return st;
}

static lm_status apply_one(const lm_pre *p, lm_nstr *ns, const lm_spans *in, lm_spans *out, int first) {
    segs g = {0};
    lm_status st = LM_OK;
    static const lm_pre no_args;
    for (size_t k = 0; k < in->n && st == LM_OK; k++) {
        lm_span sp = in->v[k];
        g.n = 0;
        switch (p->type) {
        case LM_PRE_BYTELEVEL:
            if (p->add_prefix_space && ns->s[sp.s] != ' ') {
                uint32_t s2;
                st = nstr_prepend_copy(ns, sp.s, sp.e, " ", 1, &s2);
                if (st) break;
                sp.s = s2;
                sp.e = (uint32_t)ns->len;
            }
            if (p->re) {
                st = find_regex(p->re, ns->s, sp.s, sp.e, &g);
                if (st == LM_OK) st = emit(&g, LM_SPLIT_ISOLATED, 0, out);
            } else st = lm_spans_push(out, sp.s, sp.e);
            break;
        case LM_PRE_SPLIT:
            st = p->re ? find_regex(p->re, ns->s, sp.s, sp.e, &g)
                       : find_literal(p->literal, p->literal_len, ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, p->behavior, p->invert, out);
            break;
        case LM_PRE_WHITESPACE:
            st = find_word_runs(ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, LM_SPLIT_REMOVED, 1, out);
            break;
        case LM_PRE_WHITESPACE_SPLIT:
            st = find_chars(pred_ws, &no_args, ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, LM_SPLIT_REMOVED, 0, out);
            break;
        case LM_PRE_BERT: {
            lm_spans tmp = {0};
            st = find_chars(pred_ws, &no_args, ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, LM_SPLIT_REMOVED, 0, &tmp);
            for (size_t i = 0; i < tmp.n && st == LM_OK; i++) {
                g.n = 0;
                st = find_chars(pred_punct, &no_args, ns->s, tmp.v[i].s, tmp.v[i].e, &g);
                if (st == LM_OK) st = emit(&g, LM_SPLIT_ISOLATED, 0, out);
            }
            free(tmp.v);
            break;
        }
        case LM_PRE_PUNCT:
            st = find_chars(pred_punct, &no_args, ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, p->behavior, 0, out);
            break;
        case LM_PRE_DIGITS:
            st = find_chars(pred_digit, &no_args, ns->s, sp.s, sp.e, &g);
            if (st == LM_OK) st = emit(&g, p->individual_digits ? LM_SPLIT_ISOLATED : LM_SPLIT_CONTIGUOUS, 0, out);
            break;
        case LM_PRE_METASPACE:
            st = metaspace(p, ns, sp, first, out);
            break;
        case LM_PRE_SEQ:
            break;
        }
    }
    free(g.v);
    return st;
}

lm_status lm_pre_apply(const lm_pre *p, lm_nstr *ns, lm_spans *io, int first) {
    if (!p) return LM_OK;
    if (p->type == LM_PRE_SEQ) {
        for (int i = 0; i < p->n_seq; i++) LM_TRY(lm_pre_apply(p->seq[i], ns, io, first));
        return LM_OK;
    }
    lm_spans out = {0};
    lm_status st = apply_one(p, ns, io, &out, first);
    if (st != LM_OK) {
        free(out.v);
        return st;
    }
    free(io->v);
    *io = out;
    return LM_OK;
}

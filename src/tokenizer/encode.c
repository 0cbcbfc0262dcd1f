/* The encode pipeline: added tokens are cut out of the raw text, the rest
 * is normalized, pre-tokenized and run through the model; then the
 * post-processor truncates, adds special tokens and pads.
 * Tokenizers without a normalizer or rewriting pre-tokenizer (GPT-2,
 * tiktoken, LLaMA-3, Qwen2) take a fast path that never copies the text. */
#include "tokenizer/tok_internal.h"

#include <stdlib.h>
#include <string.h>

int lm_char_is_whitespace(uint32_t c);

typedef struct {
    int32_t *ids;
    uint32_t (*off)[2];
    uint8_t *special;
    size_t n, cap;
} encbuf;

static lm_status eb_push(encbuf *b, int32_t id, uint32_t o0, uint32_t o1, uint8_t special) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        int32_t *ids = realloc(b->ids, nc * sizeof *ids);
        if (!ids) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        b->ids = ids;
        uint32_t(*off)[2] = realloc(b->off, nc * sizeof *off);
        if (!off) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        b->off = off;
        uint8_t *sp = realloc(b->special, nc);
        if (!sp) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        b->special = sp;
        b->cap = nc;
    }
    b->ids[b->n] = id;
    b->off[b->n][0] = o0;
    b->off[b->n][1] = o1;
    b->special[b->n] = special;
    b->n++;
    return LM_OK;
}

static int fast_pre(const lm_pre *p) {
    if (!p) return 1;
    switch (p->type) {
    case LM_PRE_BYTELEVEL: return !p->add_prefix_space;
    case LM_PRE_METASPACE: return 0;
    case LM_PRE_SEQ:
        for (int i = 0; i < p->n_seq; i++)
            if (!fast_pre(p->seq[i])) return 0;
        return 1;
    default: return 1;
    }
}

int lm_tok_is_fast(const lm_tokenizer *t) { return !t->norm && fast_pre(t->pre); }

/* ---- added tokens ---- */
static int is_word_char(uint32_t c) {
    return c == '_' || (c < 128 ? ((c | 32) >= 'a' && (c | 32) <= 'z') || (c >= '0' && c <= '9') : c > 127);
}

/* Finds the next added token at or after `from` in s[0, n): sets
 * [*ms, *me) (with lstrip/rstrip whitespace) and returns its index, or -1. */
static int next_added(const lm_tokenizer *t, const char *s, size_t n, size_t from, int normalized_pass,
                      int split_special, size_t *ms, size_t *me) {
    /* Most text holds no added token: skip, byte by byte, the positions no
     * added token can start at (and with a single possible first byte, let
     * memchr do the skipping). */
    uint8_t starts[256] = {0};
    int n_first = 0, only = -1;
    for (int k = 0; k < t->n_added; k++) {
        uint8_t b = (uint8_t)t->added[k].content[0];
        if (!starts[b]) n_first++, only = b;
        starts[b] = 1;
    }
    for (size_t i = from; i < n; i++) {
        if (n_first == 1) {
            const char *hit = memchr(s + i, only, n - i);
            if (!hit) break;
            i = (size_t)(hit - s);
        } else if (!starts[(uint8_t)s[i]]) {
            continue;
        }
        int best = -1;
        size_t blen = 0;
        for (int k = 0; k < t->n_added; k++) {
            const lm_added *a = &t->added[k];
            if (a->content[0] != s[i] || a->len <= blen || i + a->len > n) continue;
            if ((t->norm && a->normalized) != normalized_pass) continue;
            if (a->special && !split_special) continue;
            if (memcmp(s + i, a->content, a->len)) continue;
            if (a->single_word) {
                uint32_t c;
                if (i > 0) {
                    size_t b = i - 1;
                    while (b > 0 && (s[b] & 0xC0) == 0x80) b--;
                    if (lm_utf8_decode((const uint8_t *)s + b, n - b, &c) && is_word_char(c)) continue;
                }
                if (i + a->len < n && lm_utf8_decode((const uint8_t *)s + i + a->len, n - i - a->len, &c) &&
                    is_word_char(c))
                    continue;
            }
            best = k;
            blen = a->len;
        }
        if (best < 0) continue;
        const lm_added *a = &t->added[best];
        size_t s0 = i, e0 = i + a->len;
        while (a->lstrip && s0 > from) {
            size_t b = s0 - 1;
            while (b > from && (s[b] & 0xC0) == 0x80) b--;
            uint32_t c;
            if (!lm_utf8_decode((const uint8_t *)s + b, n - b, &c) || !lm_char_is_whitespace(c)) break;
            s0 = b;
        }
        while (a->rstrip && e0 < n) {
            uint32_t c;
            int k = lm_utf8_decode((const uint8_t *)s + e0, n - e0, &c);
            if (!k || !lm_char_is_whitespace(c)) break;
            e0 += (size_t)k;
        }
        *ms = s0;
        *me = e0;
        return best;
    }
    return -1;
}

/* ---- one text segment ---- */
typedef struct {
    const lm_tokenizer *t;
    encbuf *out;
    lm_toks toks;
    lm_spans spans;
    int want_offsets;
} enc_ctx;

static lm_status run_model(enc_ctx *c, const char *s, uint32_t ws, uint32_t we, lm_toks *tk) {
    const uint8_t *w = (const uint8_t *)s + ws;
    switch (c->t->model) {
    case LM_MODEL_BPE: return lm_bpe_word(c->t, w, we - ws, tk);
    case LM_MODEL_WORDPIECE: return lm_wordpiece_word(c->t, w, we - ws, tk);
    case LM_MODEL_UNIGRAM: return lm_unigram_word(c->t, w, we - ws, tk);
    }
    return LM_OK;
}

/* Model over the spans of ns; a0 == NULL means ns is the caller's text
 * and offsets are the character ranges of the token's bytes. */
static lm_status model_spans(enc_ctx *c, const lm_nstr *ns) {
    for (size_t k = 0; k < c->spans.n; k++) {
        uint32_t ws = c->spans.v[k].s, we = c->spans.v[k].e;
        c->toks.n = 0;
        LM_TRY(run_model(c, ns->s, ws, we, &c->toks));
        uint32_t prev = 0;
        for (size_t i = 0; i < c->toks.n; i++) {
            uint32_t b = ws + prev, e = ws + c->toks.ends[i], o0 = 0, o1 = 0;
            prev = c->toks.ends[i];
            if (c->want_offsets && e > b) {
                if (ns->a0) {
                    o0 = ns->a0[b];
                    o1 = ns->a1[e - 1];
                } else {
                    while (b > 0 && (ns->s[b] & 0xC0) == 0x80) b--;
                    while (e < ns->len && (ns->s[e] & 0xC0) == 0x80) e++;
                    o0 = b;
                    o1 = e;
                }
            }
            LM_TRY(eb_push(c->out, c->toks.ids[i], o0, o1, 0));
        }
    }
    return LM_OK;
}

static lm_status text_segment(enc_ctx *c, const char *text, size_t s, size_t e, int split_special) {
    const lm_tokenizer *t = c->t;
    if (s >= e) return LM_OK;
    c->spans.n = 0;
    if (lm_tok_is_fast(t)) {
        lm_nstr view = {(char *)text, e, e, NULL, NULL}; /* read only: fast pre-tokenizers never write */
        LM_TRY(lm_spans_push(&c->spans, (uint32_t)s, (uint32_t)e));
        LM_TRY(lm_pre_apply(t->pre, &view, &c->spans, s == 0));
        return model_spans(c, &view);
    }
    lm_nstr ns = {0};
    lm_status st = LM_OK;
    for (size_t i = s; i < e && st == LM_OK;) {
        uint32_t cp;
        int k = lm_utf8_decode((const uint8_t *)text + i, e - i, &cp);
        if (!k) k = 1;
        st = lm_nstr_push(&ns, text + i, (size_t)k, (uint32_t)i, (uint32_t)(i + (size_t)k));
        i += (size_t)k;
    }
    if (st == LM_OK) st = lm_norm_apply(t->norm, &ns);
    /* added tokens that match the normalized text */
    size_t pos = 0;
    while (st == LM_OK && pos <= ns.len) {
        size_t ms = ns.len, me = ns.len;
        int k = t->has_norm_added ? next_added(t, ns.s, ns.len, pos, 1, split_special, &ms, &me) : -1;
        if (k < 0) ms = me = ns.len;
        if (ms > pos) {
            c->spans.n = 0;
            st = lm_spans_push(&c->spans, (uint32_t)pos, (uint32_t)ms);
            if (st == LM_OK) st = lm_pre_apply(t->pre, &ns, &c->spans, s == 0 && pos == 0);
            if (st == LM_OK) st = model_spans(c, &ns);
        }
        if (k < 0) break;
        if (st == LM_OK) st = eb_push(c->out, t->added[k].id, ns.a0[ms], ns.a1[me - 1], 0);
        pos = me;
    }
    lm_nstr_free(&ns);
    return st;
}

/* Encodes text (valid UTF-8) into out, with no post-processing. */
static lm_status encode_raw(const lm_tokenizer *t, const char *text, size_t len, int split_special, int want_offsets,
                            encbuf *out) {
    enc_ctx c = {t, out, {0}, {0}, want_offsets};
    lm_status st = LM_OK;
    size_t pos = 0;
    while (st == LM_OK && pos <= len) {
        size_t ms = len, me = len;
        int k = t->n_added ? next_added(t, text, len, pos, 0, split_special, &ms, &me) : -1;
        if (k < 0) ms = me = len;
        st = text_segment(&c, text, pos, ms, split_special);
        if (k < 0 || st != LM_OK) break;
        st = eb_push(out, t->added[k].id, (uint32_t)ms, (uint32_t)me, 0);
        pos = me;
    }
    free(c.toks.ids);
    free(c.toks.ends);
    free(c.spans.v);
    return st;
}

/* Invalid UTF-8 becomes U+FFFD per maximal subpart (Python's "replace");
 * map[i] keeps the original range of each byte of the clean copy. */
static lm_status sanitize(const char *text, size_t len, size_t bad, char **clean, size_t *clen, uint32_t (**map)[2]) {
    char *o = malloc(len * 3 + 1);
    uint32_t(*m)[2] = malloc((len * 3 + 1) * sizeof *m);
    if (!o || !m) {
        free(o);
        free(m);
        return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t n = 0, i = 0;
    while (i < len) {
        if (i < bad) {
            o[n] = text[i];
            m[n][0] = (uint32_t)i;
            m[n][1] = (uint32_t)i + 1;
            n++;
            i++;
            continue;
        }
        uint32_t cp;
        int k = lm_utf8_decode((const uint8_t *)text + i, len - i, &cp);
        if (k) {
            for (int j = 0; j < k; j++, n++) {
                o[n] = text[i + (size_t)j];
                m[n][0] = (uint32_t)(i + (size_t)j);
                m[n][1] = (uint32_t)(i + (size_t)j) + 1;
            }
            i += (size_t)k;
        } else {
            size_t bl = lm_utf8_bad_len((const uint8_t *)text + i, len - i);
            static const char rep[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
            for (int j = 0; j < 3; j++, n++) {
                o[n] = rep[j];
                m[n][0] = (uint32_t)i;
                m[n][1] = (uint32_t)(i + bl);
            }
            i += bl;
        }
    }
    o[n] = 0;
    *clean = o;
    *clen = n;
    *map = m;
    return LM_OK;
}

static lm_status encode_any(const lm_tokenizer *t, const char *text, size_t len, int split_special, int want_offsets,
                            encbuf *out) {
    if (len > UINT32_MAX / 4) return lm_error(LM_ERR_RANGE, "tokenizer: input of %zu bytes is too large (max 1 GiB)", len);
    size_t bad = t->raw_bytes ? len : lm_utf8_first_invalid((const uint8_t *)text, len);
    if (bad == len) return encode_raw(t, text, len, split_special, want_offsets, out);
    char *clean = NULL;
    size_t clen = 0;
    uint32_t(*map)[2] = NULL;
    LM_TRY(sanitize(text, len, bad, &clean, &clen, &map));
    lm_status st = encode_raw(t, clean, clen, split_special, want_offsets, out);
    if (st == LM_OK && want_offsets)
        for (size_t i = 0; i < out->n; i++) {
            uint32_t o0 = out->off[i][0], o1 = out->off[i][1];
            if (o1 > o0) {
                out->off[i][0] = map[o0][0];
                out->off[i][1] = map[o1 - 1][1];
            }
        }
    free(clean);
    free(map);
    return st;
}

/* ---- post-processing ---- */
static size_t n_special_items(const lm_tokenizer *t) {
    size_t k = 0;
    if (t->post.type == LM_POST_TEMPLATE)
        for (int i = 0; i < t->post.n_single; i++) k += t->post.single[i].id >= 0;
    return k;
}

/* ByteLevel trim_offsets: leading/trailing spaces of a token are not part
 * of the word it names. */
static void trim_offsets(const lm_tokenizer *t, encbuf *b) {
    for (size_t i = 0; i < b->n; i++) {
        int32_t id = b->ids[i];
        if (id < 0 || id >= t->n_vocab || !t->tok[id] || b->special[i]) continue;
        const char *s = t->tok[id];
        size_t n = t->tok_len[id], lead = 0, trail = 0;
        while (lead + 2 <= n && (unsigned char)s[lead] == 0xC4 && (unsigned char)s[lead + 1] == 0xA0) lead += 2;
        while (trail + 2 <= n - lead && (unsigned char)s[n - trail - 2] == 0xC4 &&
               (unsigned char)s[n - trail - 1] == 0xA0)
            trail += 2;
        lead /= 2;
        trail /= 2;
        if (lead) {
            uint32_t ns = b->off[i][0] + (uint32_t)lead;
            b->off[i][0] = ns < b->off[i][1] ? ns : b->off[i][1];
        }
        if (trail && b->off[i][1] >= trail) {
            uint32_t ne = b->off[i][1] - (uint32_t)trail;
            b->off[i][1] = ne > b->off[i][0] ? ne : b->off[i][0];
        }
    }
}

lm_encode_opts lm_tokenizer_default_opts(const lm_tokenizer *t) {
    lm_encode_opts o = {1, 1, t->trunc_max, (size_t)(t->pad_enabled ? t->pad_fixed : 0), t->pad_enabled && !t->pad_fixed};
    return o;
}

void lm_encoding_free(lm_encoding *e) {
    free(e->ids);
    free(e->offsets);
    free(e->attention_mask);
    free(e->special_mask);
    free(e->type_ids);
    memset(e, 0, sizeof *e);
}

static lm_status finish(const lm_tokenizer *t, encbuf *b, const lm_encode_opts *o, size_t pad_len, lm_encoding *e) {
    if (t->post.trim_offsets) trim_offsets(t, b);
    size_t nsp = o->add_special ? n_special_items(t) : 0;
    size_t keep = b->n;
    if (o->max_length) {
        size_t room = o->max_length > nsp ? o->max_length - nsp : 0;
        if (keep > room) keep = room;
    }
    size_t total = keep + nsp;
    size_t padded = total < pad_len ? pad_len : total;
    memset(e, 0, sizeof *e);
    e->ids = malloc((padded + 1) * sizeof *e->ids);
    e->offsets = malloc((padded + 1) * sizeof *e->offsets);
    e->attention_mask = malloc(padded + 1);
    e->special_mask = malloc(padded + 1);
    e->type_ids = malloc(padded + 1);
    if (!e->ids || !e->offsets || !e->attention_mask || !e->special_mask || !e->type_ids) {
        lm_encoding_free(e);
        return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t n = 0;
    if (nsp) {
        for (int i = 0; i < t->post.n_single; i++) {
            const lm_tmpl_item *it = &t->post.single[i];
            if (it->id >= 0) {
                e->ids[n] = it->id;
                e->offsets[n][0] = e->offsets[n][1] = 0;
                e->special_mask[n] = 1;
                e->type_ids[n] = it->type_id;
                e->attention_mask[n] = 1;
                n++;
            } else
                for (size_t k = 0; k < keep; k++, n++) {
                    e->ids[n] = b->ids[k];
                    e->offsets[n][0] = b->off[k][0];
                    e->offsets[n][1] = b->off[k][1];
                    e->special_mask[n] = 0;
                    e->type_ids[n] = it->type_id;
                    e->attention_mask[n] = 1;
                }
        }
    } else {
        for (size_t k = 0; k < keep; k++, n++) {
            e->ids[n] = b->ids[k];
            e->offsets[n][0] = b->off[k][0];
            e->offsets[n][1] = b->off[k][1];
            e->special_mask[n] = 0;
            e->type_ids[n] = 0;
            e->attention_mask[n] = 1;
        }
    }
    for (; n < padded; n++) {
        e->ids[n] = t->pad_id >= 0 ? t->pad_id : 0;
        e->offsets[n][0] = e->offsets[n][1] = 0;
        e->special_mask[n] = 1;
        e->type_ids[n] = 0;
        e->attention_mask[n] = 0;
    }
    e->n = n;
    return LM_OK;
}

lm_status lm_tokenizer_encode_full(const lm_tokenizer *t, const char *text, size_t len, const lm_encode_opts *opts,
                                   lm_encoding *enc) {
    lm_encode_opts o = opts ? *opts : lm_tokenizer_default_opts(t);
    encbuf b = {0};
    lm_status st = encode_any(t, text, len, o.split_special, 1, &b);
    if (st == LM_OK) st = finish(t, &b, &o, o.pad_to, enc);
    free(b.ids);
    free(b.off);
    free(b.special);
    return st;
}

lm_status lm_tokenizer_encode_batch(const lm_tokenizer *t, const char *const *texts, const size_t *lens, size_t n,
                                    const lm_encode_opts *opts, lm_encoding *encs) {
    lm_encode_opts o = opts ? *opts : lm_tokenizer_default_opts(t);
    lm_status st = LM_OK;
    memset(encs, 0, n * sizeof *encs);
    lm_encode_opts o1 = o;
    if (o.pad_to_longest) o1.pad_to = 0;
#pragma omp parallel for schedule(dynamic, 4) num_threads(lm_get_threads())
    for (size_t i = 0; i < n; i++) {
        lm_status s = lm_tokenizer_encode_full(t, texts[i], lens[i], &o1, &encs[i]);
        if (s != LM_OK) {
#pragma omp critical(lm_tok_batch_err)
            if (st == LM_OK) st = s;
        }
    }
    if (st == LM_OK && o.pad_to_longest) {
        size_t longest = o.pad_to;
        for (size_t i = 0; i < n; i++)
            if (encs[i].n > longest) longest = encs[i].n;
        for (size_t i = 0; i < n && st == LM_OK; i++) {
            if (encs[i].n >= longest) continue;
            /* re-run with a fixed pad: simple, and padding is cheap next to encoding */
            lm_encoding_free(&encs[i]);
            lm_encode_opts o2 = o1;
            o2.pad_to = longest;
            st = lm_tokenizer_encode_full(t, texts[i], lens[i], &o2, &encs[i]);
        }
    }
    if (st != LM_OK)
        for (size_t i = 0; i < n; i++) lm_encoding_free(&encs[i]);
    return st;
}

/* Large inputs for fast tokenizers are cut where a pre-token must end: a
 * lone newline between two non-space characters. (A newline ending a longer
 * whitespace run is not safe: "\n\nF" splits as "\n" "\n" "F", but a part
 * ending in "\n\n" would keep the run whole.) */
static size_t cut_point(const char *s, size_t len, size_t want) {
    for (size_t i = want > 0 ? want : 1; i + 1 < len; i++) {
        if (s[i] != '\n') continue;
        size_t b = i - 1;
        while (b > 0 && (s[b] & 0xC0) == 0x80) b--;
        uint32_t prev, next;
        int kp = lm_utf8_decode((const uint8_t *)s + b, i - b, &prev);
        int kn = lm_utf8_decode((const uint8_t *)s + i + 1, len - i - 1, &next);
        if (kp && kn && !lm_char_is_whitespace(prev) && !lm_char_is_whitespace(next)) return i + 1;
    }
    return len;
}

lm_status lm_tokenizer_encode(const lm_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                              size_t *n) {
    *ids = NULL;
    *n = 0;
    lm_encode_opts o = {add_special, 1, 0, 0, 0};
    int threads = lm_get_threads();
    if (threads > 1 && len >= ((size_t)1 << 20) && lm_tok_is_fast(t)) {
        /* Several parts per thread, handed out dynamically: text of
         * different kinds (English, Chinese) encodes at different speeds,
         * and equal byte halves would leave one thread idle. */
        enum { MAXP = 64, PARTS_PER_THREAD = 8, MIN_PART = 1 << 16 };
        int np = threads * PARTS_PER_THREAD;
        if (np > MAXP) np = MAXP;
        if ((size_t)np > len / MIN_PART) np = (int)(len / MIN_PART);
        size_t cuts[MAXP + 1];
        cuts[0] = 0;
        for (int i = 1; i < np; i++) {
            size_t c = cut_point(text, len, len / (size_t)np * (size_t)i);
            cuts[i] = c < cuts[i - 1] ? cuts[i - 1] : c;
        }
        cuts[np] = len;
        encbuf parts[MAXP];
        lm_status sts[MAXP];
        memset(parts, 0, sizeof parts);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
        for (int i = 0; i < np; i++) {
            /* the later parts must not see an offset-0 "start of text" */
            sts[i] = cuts[i + 1] > cuts[i] ? encode_any(t, text + cuts[i], cuts[i + 1] - cuts[i], 1, 0, &parts[i]) : LM_OK;
        }
        lm_status st = LM_OK;
        size_t total = 0;
        for (int i = 0; i < np; i++) {
            if (sts[i] != LM_OK && st == LM_OK) st = sts[i];
            total += parts[i].n;
        }
        encbuf all = {0};
        if (st == LM_OK) {
            all.ids = malloc((total + 1) * sizeof *all.ids);
            all.off = calloc(total + 1, sizeof *all.off);
            all.special = calloc(total + 1, 1);
            if (!all.ids || !all.off || !all.special) st = lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        }
        for (int i = 0; i < np; i++) {
            if (st == LM_OK && parts[i].n) {
                memcpy(all.ids + all.n, parts[i].ids, parts[i].n * sizeof *all.ids);
                all.n += parts[i].n;
            }
            free(parts[i].ids);
            free(parts[i].off);
            free(parts[i].special);
        }
        lm_encoding e;
        if (st == LM_OK) st = finish(t, &all, &o, 0, &e);
        free(all.ids);
        free(all.off);
        free(all.special);
        if (st != LM_OK) return st;
        *ids = e.ids;
        *n = e.n;
        e.ids = NULL;
        lm_encoding_free(&e);
        return LM_OK;
    }
    encbuf b = {0};
    lm_status st = encode_any(t, text, len, 1, 0, &b);
    lm_encoding e;
    if (st == LM_OK) st = finish(t, &b, &o, 0, &e);
    free(b.ids);
    free(b.off);
    free(b.special);
    if (st != LM_OK) return st;
    *ids = e.ids;
    *n = e.n;
    e.ids = NULL;
    lm_encoding_free(&e);
    return LM_OK;
}

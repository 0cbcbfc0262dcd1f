/* Loaders for the formats other than tokenizer.json: GPT-2's
 * encoder.json + vocab.bpe, tiktoken rank files, llama2.c tokenizer.bin,
 * and the builtin 256-symbol byte tokenizer. Each builds the same internal
 * pipeline a tokenizer.json would describe (and keeps that JSON for save). */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define R50K_PATTERN "'(?:[sdmt]|ll|ve|re)| ?\\p{L}++| ?\\p{N}++| ?[^\\s\\p{L}\\p{N}]++|\\s++$|\\s+(?!\\S)|\\s"
#define CL100K_PATTERN                                                                                          \
    "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|" \
    "\\s*[\\r\\n]|\\s+(?!\\S)|\\s"
#define O200K_PATTERN                                                                                         \
    "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'" \
    "ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'" \
    "ve|'m|'ll|'d)?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* Installs the stage JSON objects (stolen references) and parses them. */
static lm_status set_stages(lm_tokenizer *t, json_t *norm, json_t *pre, json_t *post, json_t *dec) {
    t->j_norm = norm;
    t->j_pre = pre;
    t->j_post = post;
    t->j_dec = dec;
    if (norm) LM_TRY(lm_norm_parse(norm, "normalizer", &t->norm));
    if (pre) LM_TRY(lm_pre_parse(pre, "pre_tokenizer", &t->pre));
    if (dec) LM_TRY(lm_dec_parse(dec, "decoder", &t->dec));
    return LM_OK;
}

static json_t *bytelevel_json(int use_regex, int trim) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", trim,
                     "use_regex", use_regex);
}

static lm_status add_added(lm_tokenizer *t, int32_t id, const char *s, int special) {
    lm_added *a = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *a);
    if (!a) return lm_error(LM_ERR_NOMEM, "out of memory");
    t->added = a;
    a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    a->id = id;
    a->len = strlen(s);
    a->content = strdup(s);
    a->special = special;
    if (!a->content) return lm_error(LM_ERR_NOMEM, "out of memory");
    t->n_added++;
    LM_TRY(lm_tok_set_token(t, id, s, a->len));
    return LM_OK;
}

lm_status lm_tok_make_bytes(lm_tokenizer **out) {
    lm_tokenizer *t = lm_tok_new();
    if (!t) return LM_ERR_NOMEM;
    lm_status st = lm_tok_alloc_vocab(t, 256);
    for (int b = 0; b < 256 && st == LM_OK; b++) {
        char buf[4];
        int k = lm_utf8_encode(lm_bytelevel_char((uint8_t)b), buf);
        st = lm_tok_set_token(t, b, buf, (size_t)k);
        if (st == LM_OK) st = lm_strmap_put(&t->vocab, t->tok[b], t->tok_len[b], b);
    }
    t->model = LM_MODEL_BPE;
    t->byte_level = 1;
    t->raw_bytes = 1;
    /* No regex split: every byte is its own symbol and there are no merges,
     * so the whole text is one pre-token and id = byte value. */
    if (st == LM_OK) st = set_stages(t, NULL, bytelevel_json(0, 1), NULL, bytelevel_json(0, 1));
    if (st == LM_OK) st = lm_tok_finish(t);
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

/* Adds merges in "a b" text form (rank = order). */
static lm_status add_merge(lm_tokenizer *t, const char *a, size_t al, const char *b, size_t bl, const char *where,
                           size_t idx) {
    int32_t ia = lm_strmap_get(&t->vocab, a, al), ib = lm_strmap_get(&t->vocab, b, bl);
    char buf[1024];
    if (al + bl >= sizeof buf) return lm_error(LM_ERR_FORMAT, "%s[%zu]: merge too long", where, idx);
    memcpy(buf, a, al);
    memcpy(buf + al, b, bl);
    int32_t im = lm_strmap_get(&t->vocab, buf, al + bl);
    if (ia < 0 || ib < 0 || im < 0)
        return lm_error(LM_ERR_FORMAT, "%s[%zu]: merge '%.*s %.*s' uses a token missing from the vocabulary", where,
                        idx, (int)al, a, (int)bl, b);
    if (t->n_merges % 1024 == 0) {
        int32_t (*ml)[2] = realloc(t->merge_list, (t->n_merges + 1024) * sizeof *ml);
        if (!ml) return lm_error(LM_ERR_NOMEM, "out of memory");
        t->merge_list = ml;
    }
    t->merge_list[t->n_merges][0] = ia;
    t->merge_list[t->n_merges][1] = ib;
    LM_TRY(lm_pairmap_put(&t->merges, ia, ib, t->n_merges, im));
    t->n_merges++;
    return LM_OK;
}

lm_status lm_tok_add_merge(lm_tokenizer *t, const char *a, size_t al, const char *b, size_t bl, const char *where,
                           size_t idx) {
    return add_merge(t, a, al, b, bl, where, idx);
}

lm_status lm_tok_load_gpt2_files(const char *encoder_json, const char *vocab_bpe, lm_tokenizer **out) {
    json_error_t je;
    json_t *enc = json_load_file(encoder_json, JSON_ALLOW_NUL, &je);
    if (!enc) return lm_error(LM_ERR_FORMAT, "%s:%d: %s", encoder_json, je.line, je.text);
    if (!json_is_object(enc)) {
        json_decref(enc);
        return lm_error(LM_ERR_FORMAT, "%s: expected a JSON object of token -> id", encoder_json);
    }
    lm_tokenizer *t = lm_tok_new();
    if (!t) {
        json_decref(enc);
        return LM_ERR_NOMEM;
    }
    lm_status st = lm_tok_alloc_vocab(t, (int32_t)json_object_size(enc));
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(enc, key, klen, v) {
        if (st != LM_OK) break;
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
            st = lm_error(LM_ERR_FORMAT, "%s: token '%s': id must be a non-negative integer", encoder_json, key);
            break;
        }
        int32_t id = (int32_t)json_integer_value(v);
        st = lm_tok_set_token(t, id, key, klen);
        if (st == LM_OK) st = lm_strmap_put(&t->vocab, t->tok[id], t->tok_len[id], id);
    }
    json_decref(enc);
    char *bpe = NULL;
    size_t blen = 0;
    if (st == LM_OK) st = lm_read_file(vocab_bpe, &bpe, &blen);
    size_t line = 0;
    for (char *p = bpe; st == LM_OK && p && p < bpe + blen;) {
        char *nl = memchr(p, '\n', (size_t)(bpe + blen - p));
        char *e = nl ? nl : bpe + blen;
        line++;
        size_t ll = (size_t)(e - p);
        if (ll && p[ll - 1] == '\r') ll--;
        if (ll && !(line == 1 && p[0] == '#')) {
            char *sp = memchr(p, ' ', ll);
            if (!sp) st = lm_error(LM_ERR_FORMAT, "%s:%zu: expected 'left right'", vocab_bpe, line);
            else
                st = add_merge(t, p, (size_t)(sp - p), sp + 1, ll - (size_t)(sp - p) - 1, vocab_bpe,
                               (size_t)t->n_merges);
        }
        p = e + 1;
    }
    free(bpe);
    t->model = LM_MODEL_BPE;
    t->byte_level = 1;
    int32_t eot = lm_strmap_get(&t->vocab, "<|endoftext|>", 13);
    if (st == LM_OK && eot >= 0) {
        st = add_added(t, eot, "<|endoftext|>", 1);
        if (st == LM_OK) t->added[t->n_added - 1].normalized = 1;
    }
    if (st == LM_OK)
        st = set_stages(t, NULL, bytelevel_json(1, 1),
                        json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0,
                                  "use_regex", 1),
                        bytelevel_json(1, 1));
    if (st == LM_OK) st = lm_post_parse(t, t->j_post, "post_processor");
    if (st == LM_OK) st = lm_tok_finish(t);
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

static long b64dec(const char *s, size_t n, char *out) {
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') break;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    return (long)o;
}

/* Every way to cut a token into two tokens is a merge of the token's rank:
 * that is exactly tiktoken's rule "merge the adjacent pair whose
 * concatenation has the lowest rank". raw[id] holds each token's bytes. */
static lm_status merges_from_ranks(lm_tokenizer *t, int32_t n, char **raw, uint32_t *rlen, const uint32_t *rank,
                                   const char *path) {
    lm_strmap m = {0};
    lm_status st = LM_OK;
    for (int32_t i = 0; i < n && st == LM_OK; i++)
        if (raw[i]) st = lm_strmap_put(&m, raw[i], rlen[i], i);
    for (int32_t i = 0; i < n && st == LM_OK; i++) {
        if (!raw[i] || rlen[i] < 2) continue;
        for (uint32_t k = 1; k < rlen[i] && st == LM_OK; k++) {
            int32_t a = lm_strmap_get(&m, raw[i], k), b = lm_strmap_get(&m, raw[i] + k, rlen[i] - k);
            if (a < 0 || b < 0) continue;
            st = lm_pairmap_put(&t->merges, a, b, rank[i], i);
        }
    }
    lm_strmap_free(&m);
    (void)path;
    t->tiktoken_ranks = 1;
    return st;
}

lm_status lm_tok_merges_from_ranks(lm_tokenizer *t, int32_t n, char **raw, uint32_t *rlen, const uint32_t *rank,
                                   const char *path) {
    return merges_from_ranks(t, n, raw, rlen, rank, path);
}

lm_status lm_tok_load_tiktoken(const char *path, lm_tokenizer **out) {
    char *buf = NULL;
    size_t len = 0;
    LM_TRY(lm_read_file(path, &buf, &len));
    lm_tokenizer *t = lm_tok_new();
    if (!t) {
        free(buf);
        return LM_ERR_NOMEM;
    }
    lm_status st = LM_OK;
    char **raw = NULL;
    uint32_t *rlen = NULL, *rank = NULL;
    size_t cap = 0, line = 0;
    int32_t maxid = -1;
    for (char *p = buf; st == LM_OK && p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *e = nl ? nl : buf + len;
        line++;
        if (e > p) {
            char *sp = memchr(p, ' ', (size_t)(e - p));
            char tokb[1024];
            long tl = sp && sp - p < 1300 ? b64dec(p, (size_t)(sp - p), tokb) : -1;
            char *endp = NULL;
            long r = sp ? strtol(sp + 1, &endp, 10) : -1;
            if (tl <= 0 || r < 0 || r > INT32_MAX || (endp != e && *endp != '\r')) {
                st = lm_error(LM_ERR_FORMAT, "%s:%zu: expected '<base64 token> <rank>'", path, line);
                break;
            }
            if ((size_t)r >= cap) {
                size_t nc = cap ? cap : 1024;
                while (nc <= (size_t)r) nc *= 2;
                char **nr = realloc(raw, nc * sizeof *nr);
                uint32_t *nl2 = nr ? realloc(rlen, nc * sizeof *nl2) : NULL;
                if (nr) raw = nr;
                if (nl2) rlen = nl2;
                if (!nr || !nl2) {
                    st = lm_error(LM_ERR_NOMEM, "out of memory");
                    break;
                }
                for (size_t i = cap; i < nc; i++) raw[i] = NULL;
                cap = nc;
            }
            if (raw[r]) {
                st = lm_error(LM_ERR_FORMAT, "%s:%zu: rank %ld appears twice", path, line, r);
                break;
            }
            raw[r] = malloc((size_t)tl);
            if (!raw[r]) {
                st = lm_error(LM_ERR_NOMEM, "out of memory");
                break;
            }
            memcpy(raw[r], tokb, (size_t)tl);
            rlen[r] = (uint32_t)tl;
            if (r > maxid) maxid = (int32_t)r;
            size_t bl;
            char *s = lm_bytelevel_from_bytes(tokb, (size_t)tl, &bl);
            if (!s) st = lm_error(LM_ERR_NOMEM, "out of memory");
            if (st == LM_OK) st = lm_tok_set_token(t, (int32_t)r, s, bl);
            if (st == LM_OK) st = lm_strmap_put(&t->vocab, t->tok[r], t->tok_len[r], (int32_t)r);
            free(s);
        }
        p = e + 1;
    }
    free(buf);
    if (st == LM_OK && maxid < 255) st = lm_error(LM_ERR_FORMAT, "%s: fewer than 256 tokens", path);
    if (st == LM_OK) {
        rank = malloc((size_t)(maxid + 1) * sizeof *rank);
        if (!rank) st = lm_error(LM_ERR_NOMEM, "out of memory");
        for (int32_t i = 0; rank && i <= maxid; i++) rank[i] = (uint32_t)i;
    }
    if (st == LM_OK) st = lm_tok_alloc_vocab(t, maxid + 1);
    if (st == LM_OK) st = merges_from_ranks(t, maxid + 1, raw, rlen, rank, path);
    for (size_t i = 0; i < cap; i++) free(raw[i]);
    free(raw);
    free(rlen);
    free(rank);
    t->model = LM_MODEL_BPE;
    t->byte_level = 1;
    t->ignore_merges = 1; /* tiktoken looks a whole piece up before merging */
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *pat = R50K_PATTERN;
    if (strstr(base, "cl100k")) {
        pat = CL100K_PATTERN;
        static const char *const sp[] = {"<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"};
        for (int i = 0; i < 4 && st == LM_OK; i++) st = add_added(t, 100257 + i, sp[i], 1);
        if (st == LM_OK) st = add_added(t, 100276, "<|endofprompt|>", 1);
    } else if (strstr(base, "o200k")) {
        pat = O200K_PATTERN;
        if (st == LM_OK) st = add_added(t, 199999, "<|endoftext|>", 1);
        if (st == LM_OK) st = add_added(t, 200018, "<|endofprompt|>", 1);
    } else if (st == LM_OK && maxid == 50255) {
        st = add_added(t, 50256, "<|endoftext|>", 1);
    }
    if (st == LM_OK) {
        json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type",
                                "Split", "pattern", "Regex", pat, "behavior", "Isolated", "invert", 0,
                                bytelevel_json(0, 0));
        st = set_stages(t, NULL, pre, NULL, bytelevel_json(1, 1));
    }
    if (st == LM_OK) st = lm_tok_finish(t);
    if (st != LM_OK) {
        lm_tokenizer_free(t);
        return st;
    }
    *out = t;
    return LM_OK;
}

/* Parsing the pipeline stages of tokenizer.json (normalizer,
 * pre_tokenizer, post_processor, decoder). Errors name the JSON path of
 * the offending value, e.g. "pre_tokenizer.pretokenizers[1].type". */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jtype(json_t *j, const char *path, lm_status *st) {
    json_t *ty = json_object_get(j, "type");
    if (!json_is_string(ty)) {
        *st = lm_error(LM_ERR_FORMAT, "%s.type: missing or not a string", path);
        return NULL;
    }
    return json_string_value(ty);
}

static int jbool(json_t *j, const char *key, int def) {
    json_t *v = json_object_get(j, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

static char *jstrdup(json_t *j, const char *key, size_t *len) {
    json_t *v = json_object_get(j, key);
    if (!json_is_string(v)) return NULL;
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, json_string_value(v), n + 1);
    if (len) *len = n;
    return s;
}

/* {"String": "..."} or {"Regex": "..."} */
static lm_status parse_pattern(json_t *j, const char *path, char **lit, size_t *lit_len, pcre2_code **re) {
    json_t *p = json_object_get(j, "pattern");
    json_t *s = json_object_get(p, "String"), *r = json_object_get(p, "Regex");
    if (json_is_string(s)) {
        *lit_len = json_string_length(s);
        *lit = malloc(*lit_len + 1);
        if (!*lit) return lm_error(LM_ERR_NOMEM, "out of memory");
        memcpy(*lit, json_string_value(s), *lit_len + 1);
        return LM_OK;
    }
    if (json_is_string(r)) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.pattern.Regex", path);
        return lm_regex_compile(json_string_value(r), json_string_length(r), sub, re);
    }
    return lm_error(LM_ERR_FORMAT, "%s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", path);
}

static lm_status parse_seq(json_t *j, const char *key, const char *path, void ***items, int *n,
                           lm_status (*one)(json_t *, const char *, void **)) {
    json_t *a = json_object_get(j, key);
    if (!json_is_array(a)) return lm_error(LM_ERR_FORMAT, "%s.%s: expected an array", path, key);
    *items = calloc(json_array_size(a) + 1, sizeof **items);
    if (!*items) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", path, key, i);
        LM_TRY(one(v, sub, &(*items)[i]));
        (*n)++;
    }
    return LM_OK;
}

/* ---- normalizers ---- */
static lm_status norm_one(json_t *j, const char *path, void **out) { return lm_norm_parse(j, path, (lm_norm **)out); }

lm_status lm_norm_parse(json_t *j, const char *path, lm_norm **out) {
    *out = NULL;
    if (json_is_null(j)) return LM_OK;
    if (!json_is_object(j)) return lm_error(LM_ERR_FORMAT, "%s: expected an object", path);
    lm_status st = LM_OK;
    const char *ty = jtype(j, path, &st);
    if (!ty) return st;
    lm_norm *n = calloc(1, sizeof *n);
    if (!n) return lm_error(LM_ERR_NOMEM, "out of memory");
    *out = n;
    if (!strcmp(ty, "NFC")) n->type = LM_NORM_NFC;
    else if (!strcmp(ty, "NFD")) n->type = LM_NORM_NFD;
    else if (!strcmp(ty, "NFKC")) n->type = LM_NORM_NFKC;
    else if (!strcmp(ty, "NFKD")) n->type = LM_NORM_NFKD;
    else if (!strcmp(ty, "Lowercase")) n->type = LM_NORM_LOWER;
    else if (!strcmp(ty, "StripAccents")) n->type = LM_NORM_STRIP_ACCENTS;
    else if (!strcmp(ty, "Strip")) {
        n->type = LM_NORM_STRIP;
        n->strip_left = jbool(j, "strip_left", 1);
        n->strip_right = jbool(j, "strip_right", 1);
    } else if (!strcmp(ty, "BertNormalizer")) {
        n->type = LM_NORM_BERT;
        n->clean_text = jbool(j, "clean_text", 1);
        n->chinese = jbool(j, "handle_chinese_chars", 1);
        n->lowercase = jbool(j, "lowercase", 1);
        json_t *sa = json_object_get(j, "strip_accents");
        n->strip_accents = json_is_boolean(sa) ? json_is_true(sa) : -1;
    } else if (!strcmp(ty, "Replace")) {
        n->type = LM_NORM_REPLACE;
        LM_TRY(parse_pattern(j, path, &n->pattern, &n->pattern_len, &n->re));
        n->content = jstrdup(j, "content", &n->content_len);
        if (!n->content) return lm_error(LM_ERR_FORMAT, "%s.content: missing or not a string", path);
    } else if (!strcmp(ty, "Prepend")) {
        n->type = LM_NORM_PREPEND;
        n->content = jstrdup(j, "prepend", &n->content_len);
        if (!n->content) return lm_error(LM_ERR_FORMAT, "%s.prepend: missing or not a string", path);
    } else if (!strcmp(ty, "Sequence")) {
        n->type = LM_NORM_SEQ;
        return parse_seq(j, "normalizers", path, (void ***)&n->seq, &n->n_seq, norm_one);
    } else
        return lm_error(LM_ERR_UNSUPPORTED, "%s.type: unsupported normalizer '%s'", path, ty);
    return LM_OK;
}

void lm_norm_free(lm_norm *n) {
    if (!n) return;
    for (int i = 0; i < n->n_seq; i++) lm_norm_free(n->seq[i]);
    free(n->seq);
    free(n->pattern);
    free(n->content);
    pcre2_code_free(n->re);
    free(n);
}

/* ---- pre-tokenizers ---- */
static lm_status pre_one(json_t *j, const char *path, void **out) { return lm_pre_parse(j, path, (lm_pre **)out); }

static lm_status parse_behavior(json_t *j, const char *path, lm_split_behavior def, lm_split_behavior *b) {
    json_t *v = json_object_get(j, "behavior");
    *b = def;
    if (!v) return LM_OK;
    const char *s = json_string_value(v);
    static const char *const names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, names[i])) {
            *b = (lm_split_behavior)i;
            return LM_OK;
        }
    return lm_error(LM_ERR_FORMAT, "%s.behavior: unknown split behavior '%s'", path, s ? s : "(not a string)");
}

static lm_status parse_prepend_scheme(json_t *j, const char *path, int *out) {
    json_t *ps = json_object_get(j, "prepend_scheme");
    if (json_is_string(ps)) {
        const char *s = json_string_value(ps);
        if (!strcmp(s, "always")) *out = 2;
        else if (!strcmp(s, "first")) *out = 1;
        else if (!strcmp(s, "never")) *out = 0;
        else return lm_error(LM_ERR_FORMAT, "%s.prepend_scheme: unknown value '%s'", path, s);
    } else *out = jbool(j, "add_prefix_space", 1) ? 2 : 0; /* older files */
    return LM_OK;
}

static lm_status parse_replacement(json_t *j, const char *path, uint32_t *cp) {
    json_t *r = json_object_get(j, "replacement");
    if (!r) {
        *cp = 0x2581;
        return LM_OK;
    }
    const char *s = json_string_value(r);
    if (!s || !*s || !lm_utf8_decode((const uint8_t *)s, strlen(s), cp))
        return lm_error(LM_ERR_FORMAT, "%s.replacement: expected a one-character string", path);
    return LM_OK;
}

#define GPT2_RE "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

lm_status lm_pre_parse(json_t *j, const char *path, lm_pre **out) {
    *out = NULL;
    if (json_is_null(j)) return LM_OK;
    if (!json_is_object(j)) return lm_error(LM_ERR_FORMAT, "%s: expected an object", path);
    lm_status st = LM_OK;
    const char *ty = jtype(j, path, &st);
    if (!ty) return st;
    lm_pre *p = calloc(1, sizeof *p);
    if (!p) return lm_error(LM_ERR_NOMEM, "out of memory");
    *out = p;
    if (!strcmp(ty, "ByteLevel")) {
        p->type = LM_PRE_BYTELEVEL;
        p->add_prefix_space = jbool(j, "add_prefix_space", 1);
        if (jbool(j, "use_regex", 1)) LM_TRY(lm_regex_compile(GPT2_RE, strlen(GPT2_RE), path, &p->re));
    } else if (!strcmp(ty, "Split")) {
        p->type = LM_PRE_SPLIT;
        LM_TRY(parse_pattern(j, path, &p->literal, &p->literal_len, &p->re));
        LM_TRY(parse_behavior(j, path, LM_SPLIT_ISOLATED, &p->behavior));
        p->invert = jbool(j, "invert", 0);
    } else if (!strcmp(ty, "Whitespace")) {
        p->type = LM_PRE_WHITESPACE;
        /* split by hand with HF's own character classes (pretok.c) */
    } else if (!strcmp(ty, "WhitespaceSplit")) p->type = LM_PRE_WHITESPACE_SPLIT;
    else if (!strcmp(ty, "BertPreTokenizer")) p->type = LM_PRE_BERT;
    else if (!strcmp(ty, "Punctuation")) {
        p->type = LM_PRE_PUNCT;
        LM_TRY(parse_behavior(j, path, LM_SPLIT_ISOLATED, &p->behavior));
    } else if (!strcmp(ty, "Digits")) {
        p->type = LM_PRE_DIGITS;
        p->individual_digits = jbool(j, "individual_digits", 0);
    } else if (!strcmp(ty, "Metaspace")) {
        p->type = LM_PRE_METASPACE;
        LM_TRY(parse_replacement(j, path, &p->replacement));
        LM_TRY(parse_prepend_scheme(j, path, &p->prepend));
        p->split = jbool(j, "split", 1);
    } else if (!strcmp(ty, "Sequence")) {
        p->type = LM_PRE_SEQ;
        return parse_seq(j, "pretokenizers", path, (void ***)&p->seq, &p->n_seq, pre_one);
    } else
        return lm_error(LM_ERR_UNSUPPORTED, "%s.type: unsupported pre-tokenizer '%s'", path, ty);
    return LM_OK;
}

void lm_pre_free(lm_pre *p) {
    if (!p) return;
    for (int i = 0; i < p->n_seq; i++) lm_pre_free(p->seq[i]);
    free(p->seq);
    free(p->literal);
    pcre2_code_free(p->re);
    free(p);
}

/* ---- decoders ---- */
static lm_status dec_one(json_t *j, const char *path, void **out) { return lm_dec_parse(j, path, (lm_dec **)out); }

lm_status lm_dec_parse(json_t *j, const char *path, lm_dec **out) {
    *out = NULL;
    if (json_is_null(j)) return LM_OK;
    if (!json_is_object(j)) return lm_error(LM_ERR_FORMAT, "%s: expected an object", path);
    lm_status st = LM_OK;
    const char *ty = jtype(j, path, &st);
    if (!ty) return st;
    lm_dec *d = calloc(1, sizeof *d);
    if (!d) return lm_error(LM_ERR_NOMEM, "out of memory");
    *out = d;
    if (!strcmp(ty, "ByteLevel")) d->type = LM_DEC_BYTELEVEL;
    else if (!strcmp(ty, "ByteFallback")) d->type = LM_DEC_BYTEFALLBACK;
    else if (!strcmp(ty, "Fuse")) d->type = LM_DEC_FUSE;
    else if (!strcmp(ty, "Metaspace")) {
        d->type = LM_DEC_METASPACE;
        LM_TRY(parse_replacement(j, path, &d->replacement));
        int ps;
        LM_TRY(parse_prepend_scheme(j, path, &ps));
        d->prepend = ps != 0;
    } else if (!strcmp(ty, "WordPiece")) {
        d->type = LM_DEC_WORDPIECE;
        d->a = jstrdup(j, "prefix", &d->a_len);
        if (!d->a) {
            d->a = strdup("##");
            d->a_len = 2;
        }
        d->cleanup = jbool(j, "cleanup", 1);
    } else if (!strcmp(ty, "BPEDecoder")) {
        d->type = LM_DEC_BPE;
        d->a = jstrdup(j, "suffix", &d->a_len);
        if (!d->a) {
            d->a = strdup("</w>");
            d->a_len = 4;
        }
    } else if (!strcmp(ty, "Strip")) {
        d->type = LM_DEC_STRIP;
        d->a = jstrdup(j, "content", &d->a_len);
        json_t *s = json_object_get(j, "start"), *e = json_object_get(j, "stop");
        if (!d->a || !json_is_integer(s) || !json_is_integer(e))
            return lm_error(LM_ERR_FORMAT, "%s: Strip needs content, start and stop", path);
        d->start = (int)json_integer_value(s);
        d->stop = (int)json_integer_value(e);
    } else if (!strcmp(ty, "Replace")) {
        d->type = LM_DEC_REPLACE;
        pcre2_code *re = NULL;
        LM_TRY(parse_pattern(j, path, &d->a, &d->a_len, &re));
        if (re) {
            pcre2_code_free(re);
            return lm_error(LM_ERR_UNSUPPORTED, "%s.pattern: Regex patterns in a Replace decoder are not supported",
                            path);
        }
        d->b = jstrdup(j, "content", &d->b_len);
        if (!d->b) return lm_error(LM_ERR_FORMAT, "%s.content: missing or not a string", path);
    } else if (!strcmp(ty, "Sequence")) {
        d->type = LM_DEC_SEQ;
        return parse_seq(j, "decoders", path, (void ***)&d->seq, &d->n_seq, dec_one);
    } else
        return lm_error(LM_ERR_UNSUPPORTED, "%s.type: unsupported decoder '%s'", path, ty);
    return LM_OK;
}

void lm_dec_free(lm_dec *d) {
    if (!d) return;
    for (int i = 0; i < d->n_seq; i++) lm_dec_free(d->seq[i]);
    free(d->seq);
    free(d->a);
    free(d->b);
    free(d);
}

/* ---- post-processors ---- */
static lm_status tmpl_token(lm_tokenizer *t, json_t *specials, const char *name, const char *path, int32_t *id) {
    json_t *sp = json_object_get(specials, name);
    json_t *ids = json_object_get(sp, "ids");
    if (json_is_array(ids) && json_array_size(ids) == 1 && json_is_integer(json_array_get(ids, 0))) {
        *id = (int32_t)json_integer_value(json_array_get(ids, 0));
        return LM_OK;
    }
    if (json_is_array(ids))
        return lm_error(LM_ERR_UNSUPPORTED, "%s: special token '%s' with %zu ids is not supported", path, name,
                        json_array_size(ids));
    *id = lm_tokenizer_token_to_id(t, name);
    if (*id < 0) return lm_error(LM_ERR_FORMAT, "%s: unknown special token '%s'", path, name);
    return LM_OK;
}

static lm_status parse_template(lm_tokenizer *t, json_t *j, const char *key, const char *path, lm_tmpl_item **items,
                                int *n) {
    json_t *a = json_object_get(j, key), *specials = json_object_get(j, "special_tokens");
    if (!json_is_array(a)) return lm_error(LM_ERR_FORMAT, "%s.%s: expected an array", path, key);
    *items = calloc(json_array_size(a) + 1, sizeof **items);
    if (!*items) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s.%s[%zu]", path, key, i);
        json_t *sp = json_object_get(v, "SpecialToken"), *sq = json_object_get(v, "Sequence");
        lm_tmpl_item *it = &(*items)[i];
        if (sp) {
            const char *name = json_string_value(json_object_get(sp, "id"));
            if (!name) return lm_error(LM_ERR_FORMAT, "%s.SpecialToken.id: expected a string", sub);
            LM_TRY(tmpl_token(t, specials, name, sub, &it->id));
            it->type_id = (uint8_t)json_integer_value(json_object_get(sp, "type_id"));
        } else if (sq) {
            const char *name = json_string_value(json_object_get(sq, "id"));
            it->id = -1;
            it->seq = name && !strcmp(name, "B");
            it->type_id = (uint8_t)json_integer_value(json_object_get(sq, "type_id"));
        } else
            return lm_error(LM_ERR_FORMAT, "%s: expected SpecialToken or Sequence", sub);
        (*n)++;
    }
    return LM_OK;
}

/* BertProcessing / RobertaProcessing are templates: CLS A SEP (B SEP). */
static lm_status pair_token(json_t *j, const char *key, const char *path, int32_t *id) {
    json_t *a = json_object_get(j, key);
    if (!json_is_array(a) || json_array_size(a) != 2 || !json_is_integer(json_array_get(a, 1)))
        return lm_error(LM_ERR_FORMAT, "%s.%s: expected [token, id]", path, key);
    *id = (int32_t)json_integer_value(json_array_get(a, 1));
    return LM_OK;
}

lm_status lm_post_parse(lm_tokenizer *t, json_t *j, const char *path) {
    lm_post *p = &t->post;
    if (!j || json_is_null(j)) return LM_OK;
    lm_status st = LM_OK;
    const char *ty = jtype(j, path, &st);
    if (!ty) return st;
    if (!strcmp(ty, "TemplateProcessing")) {
        p->type = LM_POST_TEMPLATE;
        LM_TRY(parse_template(t, j, "single", path, &p->single, &p->n_single));
        LM_TRY(parse_template(t, j, "pair", path, &p->pair, &p->n_pair));
    } else if (!strcmp(ty, "BertProcessing") || !strcmp(ty, "RobertaProcessing")) {
        int roberta = ty[0] == 'R';
        int32_t cls, sep;
        LM_TRY(pair_token(j, "cls", path, &cls));
        LM_TRY(pair_token(j, "sep", path, &sep));
        p->type = LM_POST_TEMPLATE;
        p->trim_offsets = roberta && jbool(j, "trim_offsets", 1);
        p->single = calloc(3, sizeof *p->single);
        p->pair = calloc(6, sizeof *p->pair);
        if (!p->single || !p->pair) return lm_error(LM_ERR_NOMEM, "out of memory");
        p->single[0] = (lm_tmpl_item){cls, 0, 0};
        p->single[1] = (lm_tmpl_item){-1, 0, 0};
        p->single[2] = (lm_tmpl_item){sep, 0, 0};
        p->n_single = 3;
        /* BERT gives the second sequence type 1; RoBERTa uses 0 throughout */
        uint8_t tb = roberta ? 0 : 1;
        p->pair[0] = (lm_tmpl_item){cls, 0, 0};
        p->pair[1] = (lm_tmpl_item){-1, 0, 0};
        p->pair[2] = (lm_tmpl_item){sep, 0, 0};
        int k = 3;
        if (roberta) p->pair[k++] = (lm_tmpl_item){sep, 0, 0};
        p->pair[k++] = (lm_tmpl_item){-1, 1, tb};
        p->pair[k++] = (lm_tmpl_item){sep, 0, tb};
        p->n_pair = k;
    } else if (!strcmp(ty, "ByteLevel")) {
        p->type = LM_POST_BYTELEVEL;
        p->trim_offsets = jbool(j, "trim_offsets", 1);
    } else if (!strcmp(ty, "Sequence")) {
        json_t *a = json_object_get(j, "processors");
        if (!json_is_array(a)) return lm_error(LM_ERR_FORMAT, "%s.processors: expected an array", path);
        /* The real-world sequences are ByteLevel(trim) + TemplateProcessing
         * (LLaMA-3): keep the template and the offset trimming. */
        size_t i;
        json_t *v;
        int trim = 0;
        json_array_foreach(a, i, v) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, i);
            lm_post save = *p;
            memset(p, 0, sizeof *p);
            LM_TRY(lm_post_parse(t, v, sub));
            if (p->type == LM_POST_BYTELEVEL) {
                trim |= p->trim_offsets;
                *p = save;
            } else {
                if (save.type == LM_POST_TEMPLATE)
                    return lm_error(LM_ERR_UNSUPPORTED, "%s: two template processors in one sequence", sub);
                trim |= save.trim_offsets;
            }
        }
        p->trim_offsets = trim;
        if (p->type == LM_POST_NONE) p->type = LM_POST_BYTELEVEL;
    } else
        return lm_error(LM_ERR_UNSUPPORTED, "%s.type: unsupported post-processor '%s'", path, ty);
    return LM_OK;
}

void lm_post_free(lm_post *p) {
    free(p->single);
    free(p->pair);
    memset(p, 0, sizeof *p);
}

/* Filters, tests, string/dict methods and global functions that chat
 * templates call. Each mirrors its Python counterpart (str.strip,
 * str.title, json.dumps...) because the reference renderer is Python. */
#include "jinja.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static const char *const jb_filters[] = {"trim", "length", "count", "upper", "lower", "title", "capitalize", "default", "d",
                                         "tojson", "string", "int", "float", "list", "first", "last", "join", "replace",
                                         "safe", "items", "reverse", "abs", NULL};
static const char *const jb_tests[] = {"defined", "undefined", "none", "string", "number", "integer", "float", "boolean",
                                       "true", "false", "mapping", "iterable", "sequence", "even", "odd", "eq", "equalto",
                                       "ne", "divisibleby", NULL};

static int jb_in(const char *const *list, const char *name) {
    for (int k = 0; list[k]; k++)
        if (!strcmp(list[k], name)) return 1;
    return 0;
}
int jinja_known_filter(const char *name) { return jb_in(jb_filters, name); }
int jinja_known_test(const char *name) { return jb_in(jb_tests, name); }

/* ---- argument helpers ---- */
typedef struct {
    jctx *c;
    const jnode *n;
    const char *what;
    jv *args;
    const char **kw;
    size_t nargs;
} jcall;

/* The argument at position i or named `name`; `dflt` if absent. */
static jv jb_arg(const jcall *k, size_t i, const char *name, jv dflt) {
    for (size_t j = 0; j < k->nargs; j++)
        if (k->kw && k->kw[j] && name && !strcmp(k->kw[j], name)) return k->args[j];
    size_t pos = 0;
    for (size_t j = 0; j < k->nargs; j++) {
        if (k->kw && k->kw[j]) continue;
        if (pos++ == i) return k->args[j];
    }
    return dflt;
}

static void jb_max_args(const jcall *k, size_t max) {
    if (k->nargs > max) jinja_fail(k->c->a, LM_ERR_ARG, k->n->pos, "%s takes at most %zu argument(s), got %zu", k->what, max, k->nargs);
}

static jv jb_need_str(const jcall *k, jv v, const char *role) {
    if (v.t == JV_UNDEF) jinja_fail(k->c->a, LM_ERR_ARG, k->n->pos, "%s: '%s' is undefined", k->what, v.u.s.p ? v.u.s.p : role);
    if (v.t != JV_STR) jinja_fail(k->c->a, LM_ERR_ARG, k->n->pos, "%s: %s must be a string, not '%s'", k->what, role, jv_type_name(v));
    return v;
}

/* ---- Unicode-aware string helpers ---- */
static utf8proc_int32_t jb_cp(const char *s, size_t n, size_t *len) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &cp);
    if (r <= 0) {
        *len = 1;
        return (unsigned char)s[0];
    }
    *len = (size_t)r;
    return cp;
}

/* Python's str.isspace(). */
static int jb_isspace(utf8proc_int32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F);
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) return 1;
    return utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS;
}

static int jb_in_chars(utf8proc_int32_t cp, jv chars) {
    for (size_t i = 0, l; i < chars.u.s.n; i += l)
        if (jb_cp(chars.u.s.p + i, chars.u.s.n - i, &l) == cp) return 1;
    return 0;
}

/* str.strip / lstrip / rstrip with optional chars (none = whitespace). */
static jv jb_strip(jv s, jv chars, int left, int right) {
    size_t b = 0, e = s.u.s.n, l;
    int use_chars = chars.t == JV_STR;
    while (left && b < e) {
        utf8proc_int32_t cp = jb_cp(s.u.s.p + b, e - b, &l);
        if (use_chars ? !jb_in_chars(cp, chars) : !jb_isspace(cp)) break;
        b += l;
    }
    while (right && e > b) {
        size_t st = e - 1;
        while (st > b && ((unsigned char)s.u.s.p[st] & 0xC0) == 0x80) st--;
        utf8proc_int32_t cp = jb_cp(s.u.s.p + st, e - st, &l);
        if (use_chars ? !jb_in_chars(cp, chars) : !jb_isspace(cp)) break;
        e = st;
    }
    return jv_str(s.u.s.p + b, e - b);
}

/* JB_TITLE is Python's str.title(); JB_WORDS is Jinja's `title` filter,
 * which splits words only at whitespace, '-' and opening brackets and
 * upper-cases (not title-cases) their first letter. */
enum { JB_UPPER, JB_LOWER, JB_TITLE, JB_CAPITALIZE, JB_WORDS };

/* upper/lower/title/capitalize by code point. title: a cased letter
 * after an uncased character starts a word, as in Python. */
static jv jb_case(jarena *a, jv s, int mode) {
    jbuf b = {a, NULL, 0, 0};
    jbuf_put(&b, "", 0);
    int prev_cased = 0, prev_sep = 1;
    for (size_t i = 0, l; i < s.u.s.n; i += l) {
        utf8proc_int32_t cp = jb_cp(s.u.s.p + i, s.u.s.n - i, &l), out = cp;
        int cased = utf8proc_toupper(cp) != cp || utf8proc_tolower(cp) != cp;
        /* which mapping this character gets: 1 upper/title, 0 lower */
        int up = mode == JB_UPPER || (mode == JB_TITLE && !prev_cased) || (mode == JB_CAPITALIZE && i == 0) ||
                 (mode == JB_WORDS && prev_sep);
        prev_cased = cased;
        prev_sep = jb_isspace(cp) || (cp < 0x80 && strchr("-({[<", (int)cp));
        if (cp == 0xDF && up) {
            /* ß has no one-letter capital: Python's full case mapping gives SS / Ss */
            jbuf_puts(&b, mode == JB_UPPER || mode == JB_WORDS ? "SS" : "Ss");
            continue;
        }
        if (up) out = mode == JB_UPPER || mode == JB_WORDS ? utf8proc_toupper(cp) : utf8proc_totitle(cp);
        else if (mode != JB_UPPER) out = utf8proc_tolower(cp);
        utf8proc_uint8_t enc[4];
        utf8proc_ssize_t n = out == cp ? 0 : utf8proc_encode_char(out, enc);
        if (n > 0) jbuf_put(&b, (const char *)enc, (size_t)n);
        else jbuf_put(&b, s.u.s.p + i, l);
    }
    return jv_str(b.p, b.n);
}

static jv jb_replace(jarena *a, jv s, jv old, jv new_, int64_t count) {
    jbuf b = {a, NULL, 0, 0};
    jbuf_put(&b, "", 0);
    size_t i = 0;
    int64_t done = 0;
    if (!old.u.s.n) return s; /* Python inserts between characters; no template needs it */
    while (i < s.u.s.n) {
        if ((count < 0 || done < count) && i + old.u.s.n <= s.u.s.n && !memcmp(s.u.s.p + i, old.u.s.p, old.u.s.n)) {
            jbuf_put(&b, new_.u.s.p, new_.u.s.n);
            i += old.u.s.n;
            done++;
        } else {
            jbuf_putc(&b, s.u.s.p[i++]);
        }
    }
    return jv_str(b.p, b.n);
}

static int jb_startswith(jv s, jv p, int end) {
    if (p.u.s.n > s.u.s.n) return 0;
    return !memcmp(s.u.s.p + (end ? s.u.s.n - p.u.s.n : 0), p.u.s.p, p.u.s.n);
}

static jv jb_split(jarena *a, jv s, jv sep) {
    jv out = jv_list(a, 0);
    size_t cap = 0;
    jv *items = NULL;
    size_t n = 0;
#define JB_ADD(p_, len_)                                                   \
    do {                                                                   \
        if (n == cap) {                                                    \
            cap = cap ? cap * 2 : 8;                                       \
            jv *v_ = jinja_alloc(a, cap * sizeof(jv));                     \
            if (n) memcpy(v_, items, n * sizeof(jv));                      \
            items = v_;                                                    \
        }                                                                  \
        items[n++] = jv_str((p_), (len_));                                 \
    } while (0)
    if (sep.t == JV_STR && sep.u.s.n) {
        size_t st = 0;
        for (size_t i = 0; i + sep.u.s.n <= s.u.s.n;) {
            if (!memcmp(s.u.s.p + i, sep.u.s.p, sep.u.s.n)) {
                JB_ADD(s.u.s.p + st, i - st);
                i += sep.u.s.n;
                st = i;
            } else i++;
        }
        JB_ADD(s.u.s.p + st, s.u.s.n - st);
    } else { /* runs of whitespace, no empty pieces */
        size_t i = 0, l;
        while (i < s.u.s.n) {
            while (i < s.u.s.n && jb_isspace(jb_cp(s.u.s.p + i, s.u.s.n - i, &l))) i += l;
            size_t st = i;
            while (i < s.u.s.n && !jb_isspace(jb_cp(s.u.s.p + i, s.u.s.n - i, &l))) i += l;
            if (i > st) JB_ADD(s.u.s.p + st, i - st);
        }
    }
#undef JB_ADD
    out.u.l->v = items ? items : out.u.l->v;
    out.u.l->n = n;
    return out;
}

static jv jb_items(jarena *a, jdict *d) {
    jv out = jv_list(a, d->n);
    for (size_t i = 0; i < d->n; i++) {
        jv pair = jv_list(a, 2);
        pair.u.l->v[0] = jv_str(d->e[i].key, d->e[i].klen);
        pair.u.l->v[1] = d->e[i].val;
        out.u.l->v[i] = pair;
    }
    return out;
}

static int64_t jb_length(const jcall *k, jv v) {
    switch (v.t) {
    case JV_UNDEF: return 0;
    case JV_STR: return (int64_t)ju8_len(v.u.s.p, v.u.s.n);
    case JV_LIST: return (int64_t)v.u.l->n;
    case JV_DICT: return (int64_t)v.u.d->n;
    default: jinja_fail(k->c->a, LM_ERR_ARG, k->n->pos, "object of type '%s' has no length", jv_type_name(v));
    }
}

jv jinja_filter(jctx *c, const jnode *n, jv v, jv *args, const char **kw, size_t nargs) {
    const char *f = n->name;
    jcall k = {c, n, f, args, kw, nargs};
    jarena *a = c->a;
    if (!strcmp(f, "trim")) {
        jb_max_args(&k, 1);
        return jb_strip(jv_to_str(a, v), jb_arg(&k, 0, "chars", jv_none()), 1, 1);
    }
    if (!strcmp(f, "length") || !strcmp(f, "count")) return jv_int(jb_length(&k, v));
    if (!strcmp(f, "upper")) return jb_case(a, jv_to_str(a, v), JB_UPPER);
    if (!strcmp(f, "lower")) return jb_case(a, jv_to_str(a, v), JB_LOWER);
    if (!strcmp(f, "title")) return jb_case(a, jv_to_str(a, v), JB_WORDS);
    if (!strcmp(f, "capitalize")) return jb_case(a, jv_to_str(a, v), JB_CAPITALIZE);
    if (!strcmp(f, "default") || !strcmp(f, "d")) {
        jb_max_args(&k, 2);
        int boolean = jv_truthy(jb_arg(&k, 1, "boolean", jv_bool(0)));
        if (v.t == JV_UNDEF || (boolean && !jv_truthy(v))) return jb_arg(&k, 0, "default_value", jv_str("", 0));
        return v;
    }
    if (!strcmp(f, "tojson")) {
        jv ind = jb_arg(&k, 0, "indent", jv_none());
        if (ind.t != JV_NONE && ind.t != JV_INT) jinja_fail(a, LM_ERR_ARG, n->pos, "tojson: indent must be an integer");
        jbuf b = {a, NULL, 0, 0};
        jbuf_put(&b, "", 0);
        jv_tojson(a, v, ind.t == JV_INT ? (int)ind.u.i : -1, 0, &b, n->pos);
        return jv_str(b.p, b.n);
    }
    if (!strcmp(f, "string")) return jv_to_str(a, v);
    if (!strcmp(f, "int")) {
        if (v.t == JV_INT || v.t == JV_BOOL) return jv_int(v.u.i);
        if (v.t == JV_FLOAT) return jv_int((int64_t)v.u.f);
        if (v.t == JV_STR) {
            char *s = jinja_strndup(a, v.u.s.p, v.u.s.n), *end;
            long long x = strtoll(s, &end, 10);
            if (end != s && !*end) return jv_int(x);
        }
        return jb_arg(&k, 0, "default", jv_int(0));
    }
    if (!strcmp(f, "float")) {
        if (v.t == JV_INT || v.t == JV_BOOL) return jv_float((double)v.u.i);
        if (v.t == JV_FLOAT) return v;
        if (v.t == JV_STR) {
            char *s = jinja_strndup(a, v.u.s.p, v.u.s.n), *end;
            double x = strtod(s, &end);
            if (end != s && !*end) return jv_float(x);
        }
        return jb_arg(&k, 0, "default", jv_float(0));
    }
    if (!strcmp(f, "abs")) {
        if (v.t == JV_INT || v.t == JV_BOOL) return jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        if (v.t == JV_FLOAT) return jv_float(v.u.f < 0 ? -v.u.f : v.u.f);
        jinja_fail(a, LM_ERR_ARG, n->pos, "abs: bad operand type '%s'", jv_type_name(v));
    }
    if (!strcmp(f, "safe")) return v;
    if (!strcmp(f, "items")) {
        if (v.t == JV_UNDEF) return jv_list(a, 0);
        if (v.t != JV_DICT) jinja_fail(a, LM_ERR_ARG, n->pos, "items: expected a mapping, got '%s'", jv_type_name(v));
        return jb_items(a, v.u.d);
    }
    /* the rest work on sequences */
    jv seq = v;
    if (v.t == JV_STR) {
        size_t len = ju8_len(v.u.s.p, v.u.s.n);
        seq = jv_list(a, len);
        for (size_t i = 0; i < len; i++) {
            size_t o = ju8_offset(v.u.s.p, v.u.s.n, (int64_t)i), e = ju8_offset(v.u.s.p, v.u.s.n, (int64_t)i + 1);
            seq.u.l->v[i] = jv_str(v.u.s.p + o, e - o);
        }
    } else if (v.t == JV_DICT) {
        seq = jv_list(a, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) seq.u.l->v[i] = jv_str(v.u.d->e[i].key, v.u.d->e[i].klen);
    } else if (v.t == JV_UNDEF) {
        seq = jv_list(a, 0);
    } else if (v.t != JV_LIST) {
        jinja_fail(a, LM_ERR_ARG, n->pos, "%s: '%s' object is not iterable", f, jv_type_name(v));
    }
    if (!strcmp(f, "list")) return seq;
    if (!strcmp(f, "first")) return seq.u.l->n ? seq.u.l->v[0] : jv_undef("first");
    if (!strcmp(f, "last")) return seq.u.l->n ? seq.u.l->v[seq.u.l->n - 1] : jv_undef("last");
    if (!strcmp(f, "reverse")) {
        if (v.t == JV_STR) {
            jbuf b = {a, NULL, 0, 0};
            jbuf_put(&b, "", 0);
            for (size_t i = seq.u.l->n; i-- > 0;) jbuf_put(&b, seq.u.l->v[i].u.s.p, seq.u.l->v[i].u.s.n);
            return jv_str(b.p, b.n);
        }
        jv r = jv_list(a, seq.u.l->n);
        for (size_t i = 0; i < seq.u.l->n; i++) r.u.l->v[i] = seq.u.l->v[seq.u.l->n - 1 - i];
        return r;
    }
    if (!strcmp(f, "join")) {
        jv sep = jv_to_str(a, jb_arg(&k, 0, "d", jv_str("", 0)));
        jbuf b = {a, NULL, 0, 0};
        jbuf_put(&b, "", 0);
        for (size_t i = 0; i < seq.u.l->n; i++) {
            if (i) jbuf_put(&b, sep.u.s.p, sep.u.s.n);
            jv s = jv_to_str(a, seq.u.l->v[i]);
            jbuf_put(&b, s.u.s.p, s.u.s.n);
        }
        return jv_str(b.p, b.n);
    }
    if (!strcmp(f, "replace")) {
        jv s = jv_to_str(a, v);
        jv old = jb_need_str(&k, jb_arg(&k, 0, "old", jv_undef("old")), "old");
        jv new_ = jb_need_str(&k, jb_arg(&k, 1, "new", jv_undef("new")), "new");
        jv cnt = jb_arg(&k, 2, "count", jv_none());
        return jb_replace(a, s, old, new_, cnt.t == JV_INT ? cnt.u.i : -1);
    }
    jinja_fail(a, LM_ERR_ARG, n->pos, "unknown filter '%s'", f);
}

int jinja_test(jctx *c, const jnode *n, jv v, jv *args, size_t nargs) {
    const char *t = n->name;
    jcall k = {c, n, t, args, NULL, nargs};
    if (!strcmp(t, "defined")) return v.t != JV_UNDEF;
    if (!strcmp(t, "undefined")) return v.t == JV_UNDEF;
    if (!strcmp(t, "none")) return v.t == JV_NONE;
    if (!strcmp(t, "string")) return v.t == JV_STR;
    if (!strcmp(t, "number")) return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL;
    if (!strcmp(t, "integer")) return v.t == JV_INT;
    if (!strcmp(t, "float")) return v.t == JV_FLOAT;
    if (!strcmp(t, "boolean")) return v.t == JV_BOOL;
    if (!strcmp(t, "true")) return v.t == JV_BOOL && v.u.i;
    if (!strcmp(t, "false")) return v.t == JV_BOOL && !v.u.i;
    if (!strcmp(t, "mapping")) return v.t == JV_DICT;
    if (!strcmp(t, "iterable")) return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT;
    if (!strcmp(t, "sequence")) return v.t == JV_STR || v.t == JV_LIST || v.t == JV_DICT;
    if (!strcmp(t, "even") || !strcmp(t, "odd")) {
        if (v.t != JV_INT && v.t != JV_BOOL) jinja_fail(c->a, LM_ERR_ARG, n->pos, "%s: expected an integer, got '%s'", t, jv_type_name(v));
        return (int)(v.u.i & 1) == (t[0] == 'o');
    }
    if (!strcmp(t, "eq") || !strcmp(t, "equalto") || !strcmp(t, "ne")) {
        if (nargs != 1) jinja_fail(c->a, LM_ERR_ARG, n->pos, "test '%s' takes one argument", t);
        return jv_equal(v, args[0]) == (t[0] == 'e');
    }
    if (!strcmp(t, "divisibleby")) {
        jv d = jb_arg(&k, 0, "num", jv_none());
        if ((v.t != JV_INT && v.t != JV_BOOL) || d.t != JV_INT || d.u.i == 0)
            jinja_fail(c->a, LM_ERR_ARG, n->pos, "divisibleby needs integers and a non-zero divisor");
        return v.u.i % d.u.i == 0;
    }
    jinja_fail(c->a, LM_ERR_ARG, n->pos, "unknown test '%s'", t);
}

jv jinja_method(jctx *c, const jnode *n, jv obj, const char *name, jv *args, const char **kw, size_t nargs) {
    jcall k = {c, n, name, args, kw, nargs};
    jarena *a = c->a;
    if (obj.t == JV_STR) {
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
            jb_max_args(&k, 1);
            jv chars = jb_arg(&k, 0, "chars", jv_none());
            if (chars.t != JV_NONE) jb_need_str(&k, chars, "chars");
            return jb_strip(obj, chars, name[0] != 'r', name[0] != 'l');
        }
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            jb_max_args(&k, 1);
            jv p = jb_arg(&k, 0, NULL, jv_undef("prefix"));
            if (p.t == JV_LIST) {
                for (size_t i = 0; i < p.u.l->n; i++)
                    if (jb_startswith(obj, jb_need_str(&k, p.u.l->v[i], "prefix"), name[0] == 'e')) return jv_bool(1);
                return jv_bool(0);
            }
            return jv_bool(jb_startswith(obj, jb_need_str(&k, p, "prefix"), name[0] == 'e'));
        }
        if (!strcmp(name, "upper")) return jb_case(a, obj, JB_UPPER);
        if (!strcmp(name, "lower")) return jb_case(a, obj, JB_LOWER);
        if (!strcmp(name, "title")) return jb_case(a, obj, JB_TITLE);
        if (!strcmp(name, "capitalize")) return jb_case(a, obj, JB_CAPITALIZE);
        if (!strcmp(name, "split")) {
            jv sep = jb_arg(&k, 0, "sep", jv_none());
            if (sep.t != JV_NONE) jb_need_str(&k, sep, "separator");
            if (sep.t == JV_STR && !sep.u.s.n) jinja_fail(a, LM_ERR_ARG, n->pos, "split: empty separator");
            return jb_split(a, obj, sep);
        }
        if (!strcmp(name, "replace")) {
            jv old = jb_need_str(&k, jb_arg(&k, 0, NULL, jv_undef("old")), "old");
            jv new_ = jb_need_str(&k, jb_arg(&k, 1, NULL, jv_undef("new")), "new");
            jv cnt = jb_arg(&k, 2, NULL, jv_int(-1));
            return jb_replace(a, obj, old, new_, cnt.t == JV_INT ? cnt.u.i : -1);
        }
    } else if (obj.t == JV_DICT) {
        if (!strcmp(name, "get")) {
            jb_max_args(&k, 2);
            jv key = jb_arg(&k, 0, NULL, jv_undef("key"));
            const jv *v = key.t == JV_STR ? jdict_get(obj.u.d, key.u.s.p, key.u.s.n) : NULL;
            return v ? *v : jb_arg(&k, 1, NULL, jv_none());
        }
        if (!strcmp(name, "items")) return jb_items(a, obj.u.d);
        if (!strcmp(name, "keys") || !strcmp(name, "values")) {
            jv r = jv_list(a, obj.u.d->n);
            for (size_t i = 0; i < obj.u.d->n; i++)
                r.u.l->v[i] = name[0] == 'k' ? jv_str(obj.u.d->e[i].key, obj.u.d->e[i].klen) : obj.u.d->e[i].val;
            return r;
        }
    }
    jinja_fail(a, LM_ERR_ARG, n->pos, "'%s' object has no method '%s'", jv_type_name(obj), name);
}

jv jinja_call_global(jctx *c, const jnode *n, const char *name, jv *args, const char **kw, size_t nargs) {
    jcall k = {c, n, name, args, kw, nargs};
    jarena *a = c->a;
    if (!strcmp(name, "raise_exception")) {
        jv msg = jv_to_str(a, jb_arg(&k, 0, "message", jv_str("", 0)));
        jinja_fail(a, LM_ERR_ARG, n->pos, "raise_exception: %.*s", (int)msg.u.s.n, msg.u.s.p);
    }
    if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
        jv d = {JV_DICT, {0}};
        d.u.d = jdict_new(a);
        d.u.d->is_namespace = name[0] == 'n';
        for (size_t i = 0; i < nargs; i++) {
            if (!kw || !kw[i]) jinja_fail(a, LM_ERR_UNSUPPORTED, n->pos, "%s() takes keyword arguments only here", name);
            jdict_set(a, d.u.d, kw[i], strlen(kw[i]), args[i]);
        }
        return d;
    }
    if (!strcmp(name, "range")) {
        int64_t r[3] = {0, 0, 1};
        if (nargs < 1 || nargs > 3) jinja_fail(a, LM_ERR_ARG, n->pos, "range expects 1 to 3 arguments");
        for (size_t i = 0; i < nargs; i++) {
            if (args[i].t != JV_INT && args[i].t != JV_BOOL) jinja_fail(a, LM_ERR_ARG, n->pos, "range arguments must be integers");
        }
        if (nargs == 1) r[1] = args[0].u.i;
        else {
            r[0] = args[0].u.i;
            r[1] = args[1].u.i;
            if (nargs == 3) r[2] = args[2].u.i;
        }
        if (!r[2]) jinja_fail(a, LM_ERR_ARG, n->pos, "range step must not be zero");
        int64_t cnt = 0;
        for (int64_t i = r[0]; r[2] > 0 ? i < r[1] : i > r[1]; i += r[2])
            if (++cnt > 1000000) jinja_fail(a, LM_ERR_RANGE, n->pos, "range too long");
        jv out = jv_list(a, (size_t)cnt);
        int64_t j = 0;
        for (int64_t i = r[0]; r[2] > 0 ? i < r[1] : i > r[1]; i += r[2]) out.u.l->v[j++] = jv_int(i);
        return out;
    }
    jinja_fail(a, LM_ERR_ARG, n->pos, "'%s' is undefined or not a function", name);
}

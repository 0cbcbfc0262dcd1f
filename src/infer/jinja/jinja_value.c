/* Values of the Jinja interpreter and how Python shows them: str() for
 * output, repr() inside printed containers, json.dumps for tojson. The
 * rules follow Python because the reference renderer is Python's Jinja. */
#include "jinja.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ---- */
struct jblock {
    jblock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *jinja_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        jblock *b = malloc(sizeof *b + cap);
        if (!b) jinja_fail(a, LM_ERR_NOMEM, (size_t)-1, "out of memory");
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *jinja_strndup(jarena *a, const char *s, size_t n) {
    char *p = jinja_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void jinja_arena_free(jarena *a) {
    while (a->head) {
        jblock *n = a->head->next;
        free(a->head);
        a->head = n;
    }
}

void jinja_fail(jarena *a, lm_status code, size_t pos, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (pos == (size_t)-1 || !a->src) {
        lm_error(code, "chat template: %s", msg);
    } else {
        int line = 1, col = 1;
        for (size_t i = 0; i < pos && a->src[i]; i++) {
            if (a->src[i] == '\n') line++, col = 1;
            else col++;
        }
        lm_error(code, "chat template line %d col %d: %s", line, col, msg);
    }
    a->code = code;
    longjmp(*a->on_error, 1);
}

/* ---- buffer ---- */
void jbuf_put(jbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = jinja_alloc(b->a, cap);
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
void jbuf_puts(jbuf *b, const char *s) { jbuf_put(b, s, strlen(s)); }
void jbuf_putc(jbuf *b, char c) { jbuf_put(b, &c, 1); }

/* ---- UTF-8 ---- */
size_t ju8_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

size_t ju8_offset(const char *s, size_t n, int64_t k) {
    size_t i = 0;
    for (int64_t c = 0; c < k && i < n; c++) {
        i++;
        while (i < n && ((unsigned char)s[i] & 0xC0) == 0x80) i++;
    }
    return i;
}

/* ---- constructors ---- */
jv jv_undef(const char *name) {
    jv v = {JV_UNDEF, {0}};
    v.u.s.p = name;
    return v;
}
jv jv_none(void) { return (jv){JV_NONE, {0}}; }
jv jv_bool(int b) {
    jv v = {JV_BOOL, {0}};
    v.u.i = b != 0;
    return v;
}
jv jv_int(int64_t i) {
    jv v = {JV_INT, {0}};
    v.u.i = i;
    return v;
}
jv jv_float(double f) {
    jv v = {JV_FLOAT, {0}};
    v.u.f = f;
    return v;
}
jv jv_str(const char *p, size_t n) {
    jv v = {JV_STR, {0}};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}
jv jv_cstr(const char *p) { return jv_str(p, strlen(p)); }
jv jv_list(jarena *a, size_t n) {
    jv v = {JV_LIST, {0}};
    v.u.l = jinja_alloc(a, sizeof *v.u.l);
    v.u.l->v = jinja_alloc(a, (n ? n : 1) * sizeof(jv));
    v.u.l->n = n;
    for (size_t i = 0; i < n; i++) v.u.l->v[i] = jv_none();
    return v;
}

jdict *jdict_new(jarena *a) { return jinja_alloc(a, sizeof(jdict)); }

const jv *jdict_get(const jdict *d, const char *key, size_t klen) {
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].klen == klen && !memcmp(d->e[i].key, key, klen)) return &d->e[i].val;
    return NULL;
}

void jdict_set(jarena *a, jdict *d, const char *key, size_t klen, jv val) {
    for (size_t i = 0; i < d->n; i++)
        if (d->e[i].klen == klen && !memcmp(d->e[i].key, key, klen)) {
            d->e[i].val = val;
            return;
        }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 8;
        jentry *e = jinja_alloc(a, cap * sizeof *e);
        if (d->n) memcpy(e, d->e, d->n * sizeof *e);
        d->e = e;
        d->cap = cap;
    }
    d->e[d->n++] = (jentry){key, klen, val};
}

/* ---- Python semantics ---- */
int jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF:
    case JV_NONE: return 0;
    case JV_BOOL:
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0;
    case JV_STR: return v.u.s.n != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    }
    return 0;
}

static int jv_is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double jv_num(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

int jv_equal(jv a, jv b) {
    /* Python: True == 1 and 1 == 1.0; an Undefined equals only another. */
    if (jv_is_num(a) && jv_is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT) return a.u.i == b.u.i;
        return jv_num(a) == jv_num(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF:
    case JV_NONE: return 1;
    case JV_STR: return a.u.s.n == b.u.s.n && !memcmp(a.u.s.p, b.u.s.p, a.u.s.n);
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            const jv *o = jdict_get(b.u.d, a.u.d->e[i].key, a.u.d->e[i].klen);
            if (!o || !jv_equal(a.u.d->e[i].val, *o)) return 0;
        }
        return 1;
    default: return 0;
    }
}

const char *jv_type_name(jv v) {
    static const char *names[] = {"undefined", "none", "bool", "int", "float", "string", "list", "dict"};
    if (v.t == JV_DICT && v.u.d->is_namespace) return "namespace";
    return names[v.t];
}

/* Python's float repr: the shortest digits that read back the same. */
static void jv_float_repr(double f, jbuf *b) {
    char tmp[40];
    if (isnan(f)) {
        jbuf_puts(b, "nan");
        return;
    }
    if (isinf(f)) {
        jbuf_puts(b, f < 0 ? "-inf" : "inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, f);
        if (strtod(tmp, NULL) == f) break;
    }
    jbuf_puts(b, tmp);
    if (!strpbrk(tmp, ".en")) jbuf_puts(b, ".0");
}

static void jv_str_into(jarena *a, jv v, jbuf *b) {
    char tmp[32];
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jbuf_puts(b, "None"); return;
    case JV_BOOL: jbuf_puts(b, v.u.i ? "True" : "False"); return;
    case JV_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.u.i);
        jbuf_puts(b, tmp);
        return;
    case JV_FLOAT: jv_float_repr(v.u.f, b); return;
    case JV_STR: jbuf_put(b, v.u.s.p, v.u.s.n); return;
    case JV_LIST:
    case JV_DICT: jv_repr(a, v, b); return;
    }
}

jv jv_to_str(jarena *a, jv v) {
    if (v.t == JV_STR) return v;
    jbuf b = {a, NULL, 0, 0};
    jbuf_put(&b, "", 0);
    jv_str_into(a, v, &b);
    return jv_str(b.p, b.n);
}

static void jv_repr_str(const char *p, size_t n, jbuf *b) {
    char q = memchr(p, '\'', n) && !memchr(p, '"', n) ? '"' : '\'';
    jbuf_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char tmp[8];
        if (c == '\\' || c == (unsigned char)q) {
            jbuf_putc(b, '\\');
            jbuf_putc(b, (char)c);
        } else if (c == '\n') jbuf_puts(b, "\\n");
        else if (c == '\r') jbuf_puts(b, "\\r");
        else if (c == '\t') jbuf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            jbuf_puts(b, tmp);
        } else jbuf_putc(b, (char)c);
    }
    jbuf_putc(b, q);
}

void jv_repr(jarena *a, jv v, jbuf *b) {
    if (v.t == JV_STR) {
        jv_repr_str(v.u.s.p, v.u.s.n, b);
    } else if (v.t == JV_LIST) {
        jbuf_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jbuf_puts(b, ", ");
            jv_repr(a, v.u.l->v[i], b);
        }
        jbuf_putc(b, ']');
    } else if (v.t == JV_DICT) {
        jbuf_puts(b, v.u.d->is_namespace ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jbuf_puts(b, ", ");
            jv_repr_str(v.u.d->e[i].key, v.u.d->e[i].klen, b);
            jbuf_puts(b, ": ");
            jv_repr(a, v.u.d->e[i].val, b);
        }
        jbuf_puts(b, v.u.d->is_namespace ? "}>" : "}");
    } else {
        jv_str_into(a, v, b);
    }
}

static void jv_json_str(const char *p, size_t n, jbuf *b) {
    jbuf_putc(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        char tmp[8];
        switch (c) {
        case '"': jbuf_puts(b, "\\\""); break;
        case '\\': jbuf_puts(b, "\\\\"); break;
        case '\n': jbuf_puts(b, "\\n"); break;
        case '\r': jbuf_puts(b, "\\r"); break;
        case '\t': jbuf_puts(b, "\\t"); break;
        case '\b': jbuf_puts(b, "\\b"); break;
        case '\f': jbuf_puts(b, "\\f"); break;
        default:
            if (c < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", c);
                jbuf_puts(b, tmp);
            } else jbuf_putc(b, (char)c);
        }
    }
    jbuf_putc(b, '"');
}

static void jv_json_newline(int indent, int depth, jbuf *b) {
    jbuf_putc(b, '\n');
    for (int i = 0; i < indent * depth; i++) jbuf_putc(b, ' ');
}

void jv_tojson(jarena *a, jv v, int indent, int depth, jbuf *b, size_t pos) {
    const char *sep = indent >= 0 ? "," : ", ";
    switch (v.t) {
    case JV_UNDEF: jinja_fail(a, LM_ERR_ARG, pos, "tojson: '%s' is undefined", v.u.s.p ? v.u.s.p : "value");
    case JV_NONE: jbuf_puts(b, "null"); return;
    case JV_BOOL: jbuf_puts(b, v.u.i ? "true" : "false"); return;
    case JV_INT:
    case JV_FLOAT: jv_str_into(a, v, b); return;
    case JV_STR: jv_json_str(v.u.s.p, v.u.s.n, b); return;
    case JV_LIST:
        if (!v.u.l->n) {
            jbuf_puts(b, "[]");
            return;
        }
        jbuf_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jbuf_puts(b, sep);
            if (indent >= 0) jv_json_newline(indent, depth + 1, b);
            jv_tojson(a, v.u.l->v[i], indent, depth + 1, b, pos);
        }
        if (indent >= 0) jv_json_newline(indent, depth, b);
        jbuf_putc(b, ']');
        return;
    case JV_DICT:
        if (!v.u.d->n) {
            jbuf_puts(b, "{}");
            return;
        }
        jbuf_putc(b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jbuf_puts(b, sep);
            if (indent >= 0) jv_json_newline(indent, depth + 1, b);
            jv_json_str(v.u.d->e[i].key, v.u.d->e[i].klen, b);
            jbuf_puts(b, ": ");
            jv_tojson(a, v.u.d->e[i].val, indent, depth + 1, b, pos);
        }
        if (indent >= 0) jv_json_newline(indent, depth, b);
        jbuf_putc(b, '}');
        return;
    }
}

/* Cuts a template into tokens. Whitespace control follows the Jinja
 * environment transformers uses (trim_blocks=True, lstrip_blocks=True):
 *   {%- / {{- / {#-   strip all whitespace before the tag,
 *   -%} / -}} / -#}   strip all whitespace after it,
 *   %} and #}         eat one newline right after (trim_blocks),
 *   {% and {# alone on a line lose the indentation before them
 *                     (lstrip_blocks), unless written {%+ .
 * Getting these exactly right is what makes the output byte-identical. */
#include "jinja.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    jarena *a;
    const char *src;
    size_t len;
    jtok *v;
    size_t n, cap;
} jlexer;

static void jl_push(jlexer *L, jtok t) {
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jtok *v = jinja_alloc(L->a, cap * sizeof *v);
        if (L->n) memcpy(v, L->v, L->n * sizeof *v);
        L->v = v;
        L->cap = cap;
    }
    L->v[L->n++] = t;
}

/* Python's \s for ASCII. */
static int jl_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void jl_put_utf8(jbuf *b, uint32_t cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) t[0] = (char)cp, n = 1;
    else if (cp < 0x800) t[0] = (char)(0xC0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        t[0] = (char)(0xE0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), t[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        t[0] = (char)(0xF0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3F)), t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        t[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    jbuf_put(b, t, n);
}

static int jl_hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal, decoded the way Jinja does (Python unicode-escape:
 * \n \t \\ \' \xhh \uXXXX ...; an unknown escape keeps its backslash). */
static size_t jl_string(jlexer *L, size_t p, jtok *t) {
    char q = L->src[p];
    size_t start = p++;
    jbuf b = {L->a, NULL, 0, 0};
    jbuf_put(&b, "", 0);
    while (p < L->len && L->src[p] != q) {
        char c = L->src[p];
        if (c != '\\') {
            jbuf_putc(&b, c);
            p++;
            continue;
        }
        if (p + 1 >= L->len) break;
        char e = L->src[p + 1];
        p += 2;
        switch (e) {
        case 'n': jbuf_putc(&b, '\n'); break;
        case 't': jbuf_putc(&b, '\t'); break;
        case 'r': jbuf_putc(&b, '\r'); break;
        case 'b': jbuf_putc(&b, '\b'); break;
        case 'f': jbuf_putc(&b, '\f'); break;
        case 'v': jbuf_putc(&b, '\v'); break;
        case 'a': jbuf_putc(&b, '\a'); break;
        case '\\': jbuf_putc(&b, '\\'); break;
        case '\'': jbuf_putc(&b, '\''); break;
        case '"': jbuf_putc(&b, '"'); break;
        case '\n': break; /* line continuation */
        case 'x':
        case 'u':
        case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                int h = p + (size_t)k < L->len ? jl_hex(L->src[p + k]) : -1;
                if (h < 0) jinja_fail(L->a, LM_ERR_FORMAT, p - 2, "truncated \\%c escape in a string", e);
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10FFFF) jinja_fail(L->a, LM_ERR_FORMAT, p - 2, "escape \\%c names no character", e);
            p += (size_t)digits;
            jl_put_utf8(&b, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                uint32_t cp = (uint32_t)(e - '0');
                for (int k = 0; k < 2 && p < L->len && L->src[p] >= '0' && L->src[p] <= '7'; k++) cp = cp * 8 + (uint32_t)(L->src[p++] - '0');
                jl_put_utf8(&b, cp);
            } else {
                jbuf_putc(&b, '\\');
                jbuf_putc(&b, e);
            }
        }
    }
    if (p >= L->len) jinja_fail(L->a, LM_ERR_FORMAT, start, "unterminated string literal");
    t->t = JT_STRING;
    t->pos = start;
    t->s = b.p;
    t->n = b.n;
    return p + 1;
}

static const char *const jl_ops2[] = {"==", "!=", "<=", ">=", "//", "**", NULL};
static const char jl_ops1[] = "+-*/%~<>()[]{}.,:|=";

/* Lexes the inside of a {{ }} or {% %} tag starting at p; returns the
 * offset right after the closing delimiter. */
static size_t jl_tag(jlexer *L, size_t open, size_t p, int is_block) {
    const char close = is_block ? '%' : '}';
    int depth = 0;
    for (;;) {
        while (p < L->len && jl_space(L->src[p])) p++;
        if (p >= L->len) jinja_fail(L->a, LM_ERR_FORMAT, open, "unclosed '%s' tag", is_block ? "{%" : "{{");
        const char *s = L->src + p;
        size_t rest = L->len - p;
        if (depth == 0) {
            int sign = (s[0] == '-' || (s[0] == '+' && is_block)) && rest >= 3 && s[1] == close && s[2] == '}';
            if (sign || (rest >= 2 && s[0] == close && s[1] == '}')) {
                jl_push(L, (jtok){is_block ? JT_BLOCK_END : JT_VAR_END, p, NULL, 0, 0, 0});
                p += sign ? 3 : 2;
                if (sign && s[0] == '-') {
                    while (p < L->len && jl_space(L->src[p])) p++;
                } else if (is_block && !sign && p < L->len && L->src[p] == '\n') {
                    p++; /* trim_blocks */
                }
                return p;
            }
        }
        jtok t = {JT_OP, p, NULL, 0, 0, 0};
        if (isalpha((unsigned char)s[0]) || s[0] == '_') {
            size_t n = 1;
            while (n < rest && (isalnum((unsigned char)s[n]) || s[n] == '_')) n++;
            t.t = JT_NAME;
            t.s = jinja_strndup(L->a, s, n);
            t.n = n;
            p += n;
        } else if (isdigit((unsigned char)s[0])) {
            size_t n = 0;
            int64_t v = 0;
            while (n < rest && isdigit((unsigned char)s[n])) {
                if (v > (INT64_MAX - 9) / 10) jinja_fail(L->a, LM_ERR_FORMAT, p, "integer literal too large");
                v = v * 10 + (s[n++] - '0');
            }
            if (n + 1 < rest && s[n] == '.' && isdigit((unsigned char)s[n + 1])) {
                n++;
                while (n < rest && isdigit((unsigned char)s[n])) n++;
                char *num = jinja_strndup(L->a, s, n);
                t.t = JT_FLOAT;
                t.f = strtod(num, NULL);
            } else {
                t.t = JT_INT;
                t.i = v;
            }
            p += n;
        } else if (s[0] == '\'' || s[0] == '"') {
            p = jl_string(L, p, &t);
        } else {
            size_t n = 0;
            for (int k = 0; jl_ops2[k]; k++)
                if (rest >= 2 && !memcmp(s, jl_ops2[k], 2)) n = 2;
            if (!n && s[0] && strchr(jl_ops1, s[0])) n = 1;
            if (!n) jinja_fail(L->a, LM_ERR_FORMAT, p, "unexpected character '%c'", s[0]);
            if (s[0] == '(' || s[0] == '[' || s[0] == '{') depth++;
            if ((s[0] == ')' || s[0] == ']' || s[0] == '}') && depth > 0) depth--;
            t.s = jinja_strndup(L->a, s, n);
            t.n = n;
            p += n;
        }
        jl_push(L, t);
    }
}

void jinja_lex(jarena *a, const char *src, jtok **toks, size_t *ntoks) {
    jlexer L = {a, src, strlen(src), NULL, 0, 0};
    size_t p = 0;
    int line_starting = 1;
    while (p < L.len) {
        const char *o = NULL;
        for (const char *q = strchr(src + p, '{'); q; q = strchr(q + 1, '{'))
            if (q[1] == '{' || q[1] == '%' || q[1] == '#') {
                o = q;
                break;
            }
        size_t open = o ? (size_t)(o - src) : L.len;
        size_t tl = open - p;
        if (o) {
            char kind = o[1], sign = o[2];
            if (sign == '-') {
                while (tl > 0 && jl_space(src[p + tl - 1])) tl--;
            } else if (sign != '+' && kind != '{') {
                /* lstrip_blocks: only whitespace between the line start and the tag */
                size_t l = tl;
                while (l > 0 && src[p + l - 1] != '\n') l--;
                if (l > 0 || line_starting) {
                    size_t k = l;
                    while (k < tl && jl_space(src[p + k])) k++;
                    if (k == tl) tl = l;
                }
            }
        }
        if (tl) jl_push(&L, (jtok){JT_TEXT, p, jinja_strndup(a, src + p, tl), tl, 0, 0});
        if (!o) break;
        char kind = o[1];
        size_t q = open + 2;
        if (src[q] == '-' || src[q] == '+') q++;
        if (kind == '#') {
            const char *end = strstr(src + q, "#}");
            if (!end) jinja_fail(a, LM_ERR_FORMAT, open, "unclosed comment");
            p = (size_t)(end - src) + 2;
            if (end > src + q && end[-1] == '-') {
                while (p < L.len && jl_space(src[p])) p++;
            } else if (!(end > src + q && end[-1] == '+') && p < L.len && src[p] == '\n') {
                p++;
            }
        } else {
            jl_push(&L, (jtok){kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, open, NULL, 0, 0, 0});
            p = jl_tag(&L, open, q, kind == '%');
        }
        line_starting = p > 0 && src[p - 1] == '\n';
    }
    jl_push(&L, (jtok){JT_EOF, L.len, NULL, 0, 0, 0});
    *toks = L.v;
    *ntoks = L.n;
}

/* Recursive-descent parser with Jinja's operator precedence, lowest first:
 *   x if c else y  <  or  <  and  <  not  <  == != < > <= >= in, not in
 *   <  + -  <  ~  <  * / // %  <  **  <  unary -  <  x.a x[i] x(...) x|f x is t
 * Filters and tests bind tighter than any operator, so
 * `'a' + content | trim + 'b'` trims only `content`, as in Jinja. */
#include "jinja.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    jarena *a;
    const jtok *t;
    size_t i, n;
    int depth; /* nesting, bounded so a hostile template cannot exhaust the stack */
} jparser;

enum { JP_MAX_DEPTH = 200 };

static void jp_enter(jparser *P);

typedef struct {
    jnodes list;
    size_t cap;
    const char **kw;
} jbuilder;

static void jb_push(jarena *a, jbuilder *b, jnode *x, const char *kw) {
    if (b->list.n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        jnode **v = jinja_alloc(a, cap * sizeof *v);
        const char **k = jinja_alloc(a, cap * sizeof *k);
        if (b->list.n) {
            memcpy(v, b->list.v, b->list.n * sizeof *v);
            memcpy(k, b->kw, b->list.n * sizeof *k);
        }
        b->list.v = v;
        b->kw = k;
        b->cap = cap;
    }
    b->kw[b->list.n] = kw;
    b->list.v[b->list.n++] = x;
}

static const jtok *jp_peek(jparser *P) { return &P->t[P->i]; }
static const jtok *jp_peek2(jparser *P) { return &P->t[P->i + 1 < P->n ? P->i + 1 : P->i]; }
static const jtok *jp_next(jparser *P) { return &P->t[P->i < P->n - 1 ? P->i++ : P->i]; }
static int jp_is_op(jparser *P, const char *op) { return jp_peek(P)->t == JT_OP && !strcmp(jp_peek(P)->s, op); }
static int jp_is_name(jparser *P, const char *name) { return jp_peek(P)->t == JT_NAME && !strcmp(jp_peek(P)->s, name); }

static const char *jp_describe(const jtok *t) {
    switch (t->t) {
    case JT_TEXT: return "text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: return t->s;
    case JT_STRING: return "a string";
    case JT_INT:
    case JT_FLOAT: return "a number";
    case JT_OP: return t->s;
    case JT_EOF: return "the end of the template";
    }
    return "?";
}

static void jp_expect_op(jparser *P, const char *op) {
    if (!jp_is_op(P, op)) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected '%s', got %s", op, jp_describe(jp_peek(P)));
    jp_next(P);
}

static void jp_expect(jparser *P, jtok_type t, const char *what) {
    if (jp_peek(P)->t != t) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected %s, got %s", what, jp_describe(jp_peek(P)));
    jp_next(P);
}

static const char *jp_expect_name(jparser *P) {
    if (jp_peek(P)->t != JT_NAME) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected a name, got %s", jp_describe(jp_peek(P)));
    return jp_next(P)->s;
}

static jnode *jp_node(jparser *P, jnode_kind k, size_t pos) {
    jnode *n = jinja_alloc(P->a, sizeof *n);
    n->k = k;
    n->pos = pos;
    return n;
}

static jnode *jp_expr(jparser *P, int allow_cond);

/* (a, b=c, ...) after the '(' was seen. */
static void jp_call_args(jparser *P, jnode *n) {
    jbuilder b = {{0}, 0, NULL};
    jp_expect_op(P, "(");
    while (!jp_is_op(P, ")")) {
        const char *kw = NULL;
        if (jp_peek(P)->t == JT_NAME && jp_peek2(P)->t == JT_OP && !strcmp(jp_peek2(P)->s, "=")) {
            kw = jp_next(P)->s;
            jp_next(P);
        } else if (b.list.n && b.kw[b.list.n - 1]) {
            jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "positional argument after a keyword argument");
        }
        jb_push(P->a, &b, jp_expr(P, 1), kw);
        if (!jp_is_op(P, ")")) jp_expect_op(P, ",");
    }
    jp_next(P);
    n->args = b.list;
    n->kwnames = b.kw;
}

static jnode *jp_primary(jparser *P) {
    const jtok *t = jp_next(P);
    jnode *n;
    switch (t->t) {
    case JT_NAME:
        n = jp_node(P, JN_LIT, t->pos);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) n->lit = jv_bool(1);
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) n->lit = jv_bool(0);
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) n->lit = jv_none();
        else {
            n->k = JN_NAME;
            n->name = t->s;
        }
        return n;
    case JT_STRING: {
        /* adjacent literals concatenate: 'a' 'b' */
        jbuf b = {P->a, NULL, 0, 0};
        jbuf_put(&b, t->s, t->n);
        while (jp_peek(P)->t == JT_STRING) {
            const jtok *u = jp_next(P);
            jbuf_put(&b, u->s, u->n);
        }
        n = jp_node(P, JN_LIT, t->pos);
        n->lit = jv_str(b.p, b.n);
        return n;
    }
    case JT_INT:
        n = jp_node(P, JN_LIT, t->pos);
        n->lit = jv_int(t->i);
        return n;
    case JT_FLOAT:
        n = jp_node(P, JN_LIT, t->pos);
        n->lit = jv_float(t->f);
        return n;
    case JT_OP:
        if (!strcmp(t->s, "(")) {
            n = jp_expr(P, 1);
            if (jp_is_op(P, ",")) jinja_fail(P->a, LM_ERR_UNSUPPORTED, jp_peek(P)->pos, "tuples are not supported");
            jp_expect_op(P, ")");
            return n;
        }
        if (!strcmp(t->s, "[") || !strcmp(t->s, "{")) {
            int dict = t->s[0] == '{';
            const char *close = dict ? "}" : "]";
            jbuilder b = {{0}, 0, NULL};
            n = jp_node(P, dict ? JN_DICTLIT : JN_LISTLIT, t->pos);
            while (!jp_is_op(P, close)) {
                jb_push(P->a, &b, jp_expr(P, 1), NULL);
                if (dict) {
                    jp_expect_op(P, ":");
                    jb_push(P->a, &b, jp_expr(P, 1), NULL);
                }
                if (!jp_is_op(P, close)) jp_expect_op(P, ",");
            }
            jp_next(P);
            n->args = b.list;
            return n;
        }
        break;
    default: break;
    }
    jinja_fail(P->a, LM_ERR_FORMAT, t->pos, "expected an expression, got %s", jp_describe(t));
}

static jnode *jp_postfix(jparser *P, jnode *n) {
    for (;;) {
        if (jp_is_op(P, ".")) {
            size_t pos = jp_next(P)->pos;
            if (jp_peek(P)->t == JT_INT) {
                jnode *x = jp_node(P, JN_INDEX, pos);
                x->a = n;
                x->b = jp_node(P, JN_LIT, pos);
                x->b->lit = jv_int(jp_next(P)->i);
                n = x;
                continue;
            }
            jnode *x = jp_node(P, JN_ATTR, pos);
            x->a = n;
            x->name = jp_expect_name(P);
            n = x;
        } else if (jp_is_op(P, "[")) {
            size_t pos = jp_next(P)->pos;
            jnode *parts[3] = {NULL, NULL, NULL};
            int colons = 0;
            for (;;) {
                if (jp_is_op(P, "]")) break;
                if (jp_is_op(P, ":")) {
                    if (++colons > 2) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "too many ':' in a slice");
                    jp_next(P);
                    continue;
                }
                if (parts[colons]) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected ']' or ':'");
                parts[colons] = jp_expr(P, 1);
            }
            jp_next(P);
            if (!colons && !parts[0]) jinja_fail(P->a, LM_ERR_FORMAT, pos, "empty subscript");
            jnode *x = jp_node(P, colons ? JN_SLICE : JN_INDEX, pos);
            x->a = n;
            x->b = parts[0];
            x->c = parts[1];
            x->d = parts[2];
            n = x;
        } else if (jp_is_op(P, "(")) {
            jnode *x = jp_node(P, JN_CALL, n->pos); /* errors point at the callee's name */
            x->a = n;
            jp_call_args(P, x);
            n = x;
        } else {
            return n;
        }
    }
}

static jnode *jp_filters(jparser *P, jnode *n) {
    for (;;) {
        if (jp_is_op(P, "|")) {
            jnode *x = jp_node(P, JN_FILTER, jp_next(P)->pos);
            x->a = n;
            size_t npos = jp_peek(P)->pos;
            x->name = jp_expect_name(P);
            if (!jinja_known_filter(x->name)) jinja_fail(P->a, LM_ERR_FORMAT, npos, "unknown filter '%s'", x->name);
            if (jp_is_op(P, "(")) jp_call_args(P, x);
            n = x;
        } else if (jp_is_name(P, "is")) {
            jnode *x = jp_node(P, JN_TEST, jp_next(P)->pos);
            x->a = n;
            if (jp_is_name(P, "not")) {
                jp_next(P);
                x->negate = 1;
            }
            size_t npos = jp_peek(P)->pos;
            /* `is none`, `is true`: the literal names are test names here */
            if (jp_peek(P)->t != JT_NAME) jinja_fail(P->a, LM_ERR_FORMAT, npos, "expected a test name after 'is'");
            x->name = jp_next(P)->s;
            if (!jinja_known_test(x->name)) jinja_fail(P->a, LM_ERR_FORMAT, npos, "unknown test '%s'", x->name);
            if (jp_is_op(P, "(")) jp_call_args(P, x);
            n = x;
        } else {
            return n;
        }
    }
}

static jnode *jp_unary(jparser *P, int with_filter) {
    if (jp_is_op(P, "-") || jp_is_op(P, "+")) {
        const jtok *t = jp_next(P);
        jp_enter(P);
        jnode *operand = jp_unary(P, 0);
        P->depth--;
        jnode *n = operand;
        if (t->s[0] == '-') {
            n = jp_node(P, JN_NEG, t->pos);
            n->a = operand;
        }
        return with_filter ? jp_filters(P, n) : n;
    }
    jnode *n = jp_postfix(P, jp_primary(P));
    return with_filter ? jp_filters(P, n) : n;
}

static jnode *jp_binop(jparser *P, const char *op, size_t pos, jnode *l, jnode *r) {
    jnode *n = jp_node(P, JN_BINOP, pos);
    snprintf(n->op, sizeof n->op, "%s", op);
    n->a = l;
    n->b = r;
    return n;
}

static jnode *jp_pow(jparser *P) {
    jnode *l = jp_unary(P, 1);
    while (jp_is_op(P, "**")) {
        size_t pos = jp_next(P)->pos;
        l = jp_binop(P, "**", pos, l, jp_unary(P, 1));
    }
    return l;
}

static jnode *jp_math2(jparser *P) {
    jnode *l = jp_pow(P);
    while (jp_is_op(P, "*") || jp_is_op(P, "/") || jp_is_op(P, "//") || jp_is_op(P, "%")) {
        const jtok *t = jp_next(P);
        l = jp_binop(P, t->s, t->pos, l, jp_pow(P));
    }
    return l;
}

static jnode *jp_concat(jparser *P) {
    jnode *l = jp_math2(P);
    while (jp_is_op(P, "~")) {
        size_t pos = jp_next(P)->pos;
        l = jp_binop(P, "~", pos, l, jp_math2(P));
    }
    return l;
}

static jnode *jp_math1(jparser *P) {
    jnode *l = jp_concat(P);
    while (jp_is_op(P, "+") || jp_is_op(P, "-")) {
        const jtok *t = jp_next(P);
        l = jp_binop(P, t->s, t->pos, l, jp_concat(P));
    }
    return l;
}

static jnode *jp_compare(jparser *P) {
    static const char *const ops[] = {"==", "!=", "<", ">", "<=", ">=", NULL};
    jnode *l = jp_math1(P);
    for (;;) {
        const char *op = NULL;
        for (int k = 0; ops[k]; k++)
            if (jp_is_op(P, ops[k])) op = ops[k];
        if (op) {
            size_t pos = jp_next(P)->pos;
            l = jp_binop(P, op, pos, l, jp_math1(P));
        } else if (jp_is_name(P, "in")) {
            size_t pos = jp_next(P)->pos;
            l = jp_binop(P, "in", pos, l, jp_math1(P));
        } else if (jp_is_name(P, "not") && jp_peek2(P)->t == JT_NAME && !strcmp(jp_peek2(P)->s, "in")) {
            size_t pos = jp_next(P)->pos;
            jp_next(P);
            l = jp_binop(P, "notin", pos, l, jp_math1(P));
        } else {
            return l;
        }
    }
}

static jnode *jp_not(jparser *P) {
    if (jp_is_name(P, "not")) {
        jp_enter(P);
        jnode *n = jp_node(P, JN_NOT, jp_next(P)->pos);
        n->a = jp_not(P);
        P->depth--;
        return n;
    }
    return jp_compare(P);
}

static jnode *jp_and(jparser *P) {
    jnode *l = jp_not(P);
    while (jp_is_name(P, "and")) {
        jnode *n = jp_node(P, JN_AND, jp_next(P)->pos);
        n->a = l;
        n->b = jp_not(P);
        l = n;
    }
    return l;
}

static jnode *jp_or(jparser *P) {
    jnode *l = jp_and(P);
    while (jp_is_name(P, "or")) {
        jnode *n = jp_node(P, JN_OR, jp_next(P)->pos);
        n->a = l;
        n->b = jp_and(P);
        l = n;
    }
    return l;
}

static jnode *jp_expr(jparser *P, int allow_cond) {
    jp_enter(P);
    jnode *e = jp_or(P);
    while (allow_cond && jp_is_name(P, "if")) {
        jnode *n = jp_node(P, JN_COND, jp_next(P)->pos);
        n->a = e;
        n->b = jp_or(P);
        if (jp_is_name(P, "else")) {
            jp_next(P);
            n->c = jp_expr(P, 1);
        }
        e = n;
    }
    P->depth--;
    return e;
}

/* ---- statements ---- */
static jnodes jp_body(jparser *P, const char *const *ends, size_t open_pos, const char *opener, const char **found);

static jnode *jp_if(jparser *P, size_t pos) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *n = jp_node(P, JN_IF, pos);
    n->a = jp_expr(P, 1);
    jp_expect(P, JT_BLOCK_END, "'%}'");
    const char *found;
    n->body = jp_body(P, ends, pos, "if", &found);
    if (!strcmp(found, "elif")) {
        jnode *e = jp_if(P, P->t[P->i - 1].pos);
        n->orelse.v = jinja_alloc(P->a, sizeof(jnode *));
        n->orelse.v[0] = e;
        n->orelse.n = 1;
        return n; /* the nested if consumed endif */
    }
    jp_expect(P, JT_BLOCK_END, "'%}'");
    if (!strcmp(found, "else")) {
        static const char *const endif[] = {"endif", NULL};
        n->orelse = jp_body(P, endif, pos, "if", &found);
        jp_expect(P, JT_BLOCK_END, "'%}'");
    }
    return n;
}

static jnode *jp_for(jparser *P, size_t pos) {
    static const char *const ends[] = {"else", "endfor", NULL};
    jnode *n = jp_node(P, JN_FOR, pos);
    n->name = jp_expect_name(P);
    if (jp_is_op(P, ","))
        jinja_fail(P->a, LM_ERR_UNSUPPORTED, jp_peek(P)->pos, "unpacking several loop variables is not supported");
    if (!jp_is_name(P, "in")) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected 'in' in a for loop");
    jp_next(P);
    n->a = jp_expr(P, 0);
    if (jp_is_name(P, "if")) {
        jp_next(P);
        n->b = jp_expr(P, 0);
    }
    jp_expect(P, JT_BLOCK_END, "'%}'");
    const char *found;
    n->body = jp_body(P, ends, pos, "for", &found);
    jp_expect(P, JT_BLOCK_END, "'%}'");
    if (!strcmp(found, "else")) {
        static const char *const endfor[] = {"endfor", NULL};
        n->orelse = jp_body(P, endfor, pos, "for", &found);
        jp_expect(P, JT_BLOCK_END, "'%}'");
    }
    return n;
}

static jnode *jp_set(jparser *P, size_t pos) {
    jnode *n = jp_node(P, JN_SET, pos);
    n->name = jp_expect_name(P);
    if (jp_is_op(P, ".")) {
        jp_next(P);
        n->k = JN_SET_ATTR;
        n->attr = jp_expect_name(P);
    }
    if (jp_is_op(P, ","))
        jinja_fail(P->a, LM_ERR_UNSUPPORTED, jp_peek(P)->pos, "assigning several variables at once is not supported");
    if (jp_peek(P)->t == JT_BLOCK_END && n->k == JN_SET) {
        /* {% set x %}...{% endset %}: x is the rendered body */
        static const char *const ends[] = {"endset", NULL};
        const char *found;
        jp_next(P);
        n->body = jp_body(P, ends, pos, "set", &found);
        jp_expect(P, JT_BLOCK_END, "'%}'");
        return n;
    }
    jp_expect_op(P, "=");
    n->a = jp_expr(P, 1);
    jp_expect(P, JT_BLOCK_END, "'%}'");
    return n;
}

static jnode *jp_statement(jparser *P) {
    size_t pos = P->t[P->i - 1].pos; /* the '{%' */
    if (jp_peek(P)->t != JT_NAME) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "expected a tag name after '{%%'");
    const char *name = jp_next(P)->s;
    if (!strcmp(name, "if")) return jp_if(P, pos);
    if (!strcmp(name, "for")) return jp_for(P, pos);
    if (!strcmp(name, "set")) return jp_set(P, pos);
    if (!strcmp(name, "break") || !strcmp(name, "continue")) {
        jp_expect(P, JT_BLOCK_END, "'%}'");
        return jp_node(P, name[0] == 'b' ? JN_BREAK : JN_CONTINUE, pos);
    }
    if (!strcmp(name, "generation")) {
        /* transformers' assistant-mask marker: renders its body unchanged */
        static const char *const ends[] = {"endgeneration", NULL};
        const char *found;
        jp_expect(P, JT_BLOCK_END, "'%}'");
        jnode *n = jp_node(P, JN_IF, pos);
        n->a = jp_node(P, JN_LIT, pos);
        n->a->lit = jv_bool(1);
        n->body = jp_body(P, ends, pos, "generation", &found);
        jp_expect(P, JT_BLOCK_END, "'%}'");
        return n;
    }
    static const char *const enders[] = {"elif", "else", "endif", "endfor", "endset", "endgeneration", NULL};
    for (int k = 0; enders[k]; k++)
        if (!strcmp(name, enders[k])) jinja_fail(P->a, LM_ERR_FORMAT, pos, "unexpected '%s' (no open block it could close)", name);
    jinja_fail(P->a, LM_ERR_UNSUPPORTED, pos, "unknown or unsupported tag '%s'", name);
}

/* Statements until one of `ends` (NULL: the end of the template). On
 * return the end tag's name was consumed and *found names it. */
static jnodes jp_body(jparser *P, const char *const *ends, size_t open_pos, const char *opener, const char **found) {
    jbuilder b = {{0}, 0, NULL};
    jp_enter(P);
    for (;;) {
        const jtok *t = jp_peek(P);
        if (t->t == JT_EOF) {
            if (ends) {
                size_t last = 0;
                while (ends[last + 1]) last++;
                jinja_fail(P->a, LM_ERR_FORMAT, open_pos, "'%s' block is never closed (expected '%s')", opener, ends[last]);
            }
            P->depth--;
            return b.list;
        }
        if (t->t == JT_TEXT) {
            jnode *n = jp_node(P, JN_TEXT, t->pos);
            n->lit = jv_str(t->s, t->n);
            jb_push(P->a, &b, n, NULL);
            jp_next(P);
        } else if (t->t == JT_VAR_BEGIN) {
            jp_next(P);
            jnode *n = jp_node(P, JN_OUTPUT, t->pos);
            n->a = jp_expr(P, 1);
            jp_expect(P, JT_VAR_END, "'}}'");
            jb_push(P->a, &b, n, NULL);
        } else if (t->t == JT_BLOCK_BEGIN) {
            const jtok *name = jp_peek2(P);
            if (ends && name->t == JT_NAME)
                for (int k = 0; ends[k]; k++)
                    if (!strcmp(name->s, ends[k])) {
                        jp_next(P);
                        jp_next(P);
                        *found = ends[k];
                        P->depth--;
                        return b.list;
                    }
            jp_next(P);
            jb_push(P->a, &b, jp_statement(P), NULL);
        } else {
            jinja_fail(P->a, LM_ERR_FORMAT, t->pos, "unexpected %s", jp_describe(t));
        }
    }
}

static void jp_enter(jparser *P) {
    if (++P->depth > JP_MAX_DEPTH) jinja_fail(P->a, LM_ERR_FORMAT, jp_peek(P)->pos, "nested too deeply (more than %d levels)", JP_MAX_DEPTH);
}

jnodes jinja_parse(jarena *a, const jtok *toks, size_t ntoks) {
    jparser P = {a, toks, 0, ntoks, 0};
    return jp_body(&P, NULL, 0, NULL, NULL);
}

/* Walks the tree: expressions to values with Python's rules (which is
 * what Jinja inherits), statements to output. Scoping follows Jinja: a
 * for loop body is its own scope, so `set` inside a loop is not seen
 * after it (templates use namespace() for that); `if` has no scope. */
#include "jinja.h"

#include <math.h>
#include <string.h>

static void jx_push_scope(jctx *c) {
    if (c->nscopes == c->capscopes) {
        size_t cap = c->capscopes ? c->capscopes * 2 : 8;
        jdict **s = jinja_alloc(c->a, cap * sizeof *s);
        if (c->nscopes) memcpy(s, c->scopes, c->nscopes * sizeof *s);
        c->scopes = s;
        c->capscopes = cap;
    }
    c->scopes[c->nscopes++] = jdict_new(c->a);
}

static jv jx_lookup(jctx *c, const char *name) {
    size_t n = strlen(name);
    for (size_t i = c->nscopes; i-- > 0;) {
        const jv *v = jdict_get(c->scopes[i], name, n);
        if (v) return *v;
    }
    const jv *v = jdict_get(c->globals, name, n);
    return v ? *v : jv_undef(name);
}

static void jx_assign(jctx *c, const char *name, jv v) { jdict_set(c->a, c->scopes[c->nscopes - 1], name, strlen(name), v); }

static _Noreturn void jx_undefined(jctx *c, size_t pos, jv v) {
    jinja_fail(c->a, LM_ERR_ARG, pos, "'%s' is undefined", v.u.s.p ? v.u.s.p : "value");
}

static int jx_is_num(jv v) { return v.t == JV_BOOL || v.t == JV_INT || v.t == JV_FLOAT; }
static double jx_num(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)v.u.i; }

/* Python's floor division and modulo (the sign follows the divisor). */
static int64_t jx_floordiv(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static jv jx_arith(jctx *c, const jnode *n, jv a, jv b) {
    const char *op = n->op;
    if (a.t == JV_UNDEF) jx_undefined(c, n->a->pos, a);
    if (b.t == JV_UNDEF) jx_undefined(c, n->b->pos, b);
    if (op[0] == '+' && a.t == JV_STR && b.t == JV_STR) {
        char *p = jinja_alloc(c->a, a.u.s.n + b.u.s.n + 1);
        memcpy(p, a.u.s.p, a.u.s.n);
        memcpy(p + a.u.s.n, b.u.s.p, b.u.s.n);
        return jv_str(p, a.u.s.n + b.u.s.n);
    }
    if (op[0] == '+' && a.t == JV_LIST && b.t == JV_LIST) {
        jv r = jv_list(c->a, a.u.l->n + b.u.l->n);
        memcpy(r.u.l->v, a.u.l->v, a.u.l->n * sizeof(jv));
        memcpy(r.u.l->v + a.u.l->n, b.u.l->v, b.u.l->n * sizeof(jv));
        return r;
    }
    if (!jx_is_num(a) || !jx_is_num(b))
        jinja_fail(c->a, LM_ERR_ARG, n->pos, "unsupported operand types for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
    int ints = a.t != JV_FLOAT && b.t != JV_FLOAT;
    double x = jx_num(a), y = jx_num(b);
    if ((!strcmp(op, "/") || !strcmp(op, "//") || !strcmp(op, "%")) && y == 0)
        jinja_fail(c->a, LM_ERR_ARG, n->pos, "division by zero");
    switch (op[0]) {
    case '+': return ints ? jv_int((int64_t)((uint64_t)a.u.i + (uint64_t)b.u.i)) : jv_float(x + y);
    case '-': return ints ? jv_int((int64_t)((uint64_t)a.u.i - (uint64_t)b.u.i)) : jv_float(x - y);
    case '*':
        if (op[1] == '*') return ints && b.u.i >= 0 ? jv_int((int64_t)pow(x, y)) : jv_float(pow(x, y));
        return ints ? jv_int((int64_t)((uint64_t)a.u.i * (uint64_t)b.u.i)) : jv_float(x * y);
    case '/':
        if (op[1] == '/') return ints ? jv_int(jx_floordiv(a.u.i, b.u.i)) : jv_float(floor(x / y));
        return jv_float(x / y);
    case '%':
        if (ints) return jv_int(a.u.i - jx_floordiv(a.u.i, b.u.i) * b.u.i);
        return jv_float(x - floor(x / y) * y);
    }
    jinja_fail(c->a, LM_ERR_ARG, n->pos, "unknown operator %s", op);
}

static int jx_compare(jctx *c, const jnode *n, jv a, jv b) {
    if (jx_is_num(a) && jx_is_num(b)) {
        double x = jx_num(a), y = jx_num(b);
        return x < y ? -1 : x > y;
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t m = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = memcmp(a.u.s.p, b.u.s.p, m);
        if (r) return r < 0 ? -1 : 1;
        return a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n;
    }
    if (a.t == JV_UNDEF) jx_undefined(c, n->a->pos, a);
    if (b.t == JV_UNDEF) jx_undefined(c, n->b->pos, b);
    jinja_fail(c->a, LM_ERR_ARG, n->pos, "'%s' not supported between '%s' and '%s'", n->op, jv_type_name(a), jv_type_name(b));
}

static int jx_contains(jctx *c, const jnode *n, jv item, jv box) {
    switch (box.t) {
    case JV_UNDEF: return 0;
    case JV_STR:
        if (item.t != JV_STR)
            jinja_fail(c->a, LM_ERR_ARG, n->pos, "'in <string>' requires a string on the left, not '%s'", jv_type_name(item));
        if (!item.u.s.n) return 1;
        for (size_t i = 0; i + item.u.s.n <= box.u.s.n; i++)
            if (!memcmp(box.u.s.p + i, item.u.s.p, item.u.s.n)) return 1;
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < box.u.l->n; i++)
            if (jv_equal(item, box.u.l->v[i])) return 1;
        return 0;
    case JV_DICT: return item.t == JV_STR && jdict_get(box.u.d, item.u.s.p, item.u.s.n) != NULL;
    default: jinja_fail(c->a, LM_ERR_ARG, n->pos, "argument of type '%s' is not a container", jv_type_name(box));
    }
}

/* Python's slice.indices + the walk, for lists and (by code point) strings. */
static jv jx_slice(jctx *c, const jnode *n, jv obj) {
    int64_t idx[3] = {0, 0, 1};
    int given[3] = {0, 0, 0};
    const jnode *parts[3] = {n->b, n->c, n->d};
    for (int k = 0; k < 3; k++) {
        if (!parts[k]) continue;
        jv v = jinja_eval(c, parts[k]);
        if (v.t == JV_NONE) continue;
        if (v.t != JV_INT && v.t != JV_BOOL) jinja_fail(c->a, LM_ERR_ARG, parts[k]->pos, "slice indices must be integers");
        idx[k] = v.u.i;
        given[k] = 1;
    }
    if (idx[2] == 0) jinja_fail(c->a, LM_ERR_ARG, n->pos, "slice step cannot be zero");
    int64_t len;
    if (obj.t == JV_LIST) len = (int64_t)obj.u.l->n;
    else if (obj.t == JV_STR) len = (int64_t)ju8_len(obj.u.s.p, obj.u.s.n);
    else if (obj.t == JV_UNDEF) jx_undefined(c, n->a->pos, obj);
    else jinja_fail(c->a, LM_ERR_ARG, n->pos, "'%s' object cannot be sliced", jv_type_name(obj));
    int64_t step = idx[2], lo = step < 0 ? -1 : 0, hi = step < 0 ? len - 1 : len;
    int64_t start = given[0] ? idx[0] : (step < 0 ? hi : lo);
    int64_t stop = given[1] ? idx[1] : (step < 0 ? lo : hi);
    if (given[0]) start = start < 0 ? (start + len < lo ? lo : start + len) : (start > hi ? hi : start);
    if (given[1]) stop = stop < 0 ? (stop + len < lo ? lo : stop + len) : (stop > hi ? hi : stop);
    size_t count = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) count++;
    if (obj.t == JV_LIST) {
        jv r = jv_list(c->a, count);
        size_t k = 0;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) r.u.l->v[k++] = obj.u.l->v[i];
        return r;
    }
    jbuf b = {c->a, NULL, 0, 0};
    jbuf_put(&b, "", 0);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        size_t o = ju8_offset(obj.u.s.p, obj.u.s.n, i), e = ju8_offset(obj.u.s.p, obj.u.s.n, i + 1);
        jbuf_put(&b, obj.u.s.p + o, e - o);
    }
    return jv_str(b.p, b.n);
}

static jv jx_index(jctx *c, const jnode *n, jv obj, jv key) {
    if (obj.t == JV_UNDEF) jx_undefined(c, n->a->pos, obj);
    if (obj.t == JV_DICT && key.t == JV_STR) {
        const jv *v = jdict_get(obj.u.d, key.u.s.p, key.u.s.n);
        return v ? *v : jv_undef(jinja_strndup(c->a, key.u.s.p, key.u.s.n));
    }
    if ((obj.t == JV_LIST || obj.t == JV_STR) && (key.t == JV_INT || key.t == JV_BOOL)) {
        int64_t len = obj.t == JV_LIST ? (int64_t)obj.u.l->n : (int64_t)ju8_len(obj.u.s.p, obj.u.s.n);
        int64_t i = key.u.i < 0 ? key.u.i + len : key.u.i;
        if (i < 0 || i >= len) return jv_undef("index");
        if (obj.t == JV_LIST) return obj.u.l->v[i];
        size_t o = ju8_offset(obj.u.s.p, obj.u.s.n, i), e = ju8_offset(obj.u.s.p, obj.u.s.n, i + 1);
        return jv_str(obj.u.s.p + o, e - o);
    }
    return jv_undef("item");
}

/* Evaluates call arguments into arrays the builtins read. */
static size_t jx_args(jctx *c, const jnode *n, jv **args) {
    *args = jinja_alloc(c->a, (n->args.n + 1) * sizeof(jv));
    for (size_t i = 0; i < n->args.n; i++) (*args)[i] = jinja_eval(c, n->args.v[i]);
    return n->args.n;
}

jv jinja_eval(jctx *c, const jnode *n) {
    jv a, b, *args;
    size_t nargs;
    switch (n->k) {
    case JN_LIT: return n->lit;
    case JN_NAME: return jx_lookup(c, n->name);
    case JN_ATTR:
        a = jinja_eval(c, n->a);
        if (a.t == JV_UNDEF) jx_undefined(c, n->a->pos, a);
        if (a.t == JV_DICT) {
            const jv *v = jdict_get(a.u.d, n->name, strlen(n->name));
            if (v) return *v;
        }
        return jv_undef(n->name);
    case JN_INDEX: a = jinja_eval(c, n->a); return jx_index(c, n, a, jinja_eval(c, n->b));
    case JN_SLICE: return jx_slice(c, n, jinja_eval(c, n->a));
    case JN_CALL:
        if (n->a->k == JN_ATTR) {
            a = jinja_eval(c, n->a->a);
            if (a.t == JV_UNDEF) jx_undefined(c, n->a->a->pos, a);
            nargs = jx_args(c, n, &args);
            return jinja_method(c, n, a, n->a->name, args, n->kwnames, nargs);
        }
        if (n->a->k == JN_NAME) {
            nargs = jx_args(c, n, &args);
            return jinja_call_global(c, n, n->a->name, args, n->kwnames, nargs);
        }
        jinja_fail(c->a, LM_ERR_ARG, n->pos, "this expression cannot be called");
    case JN_FILTER:
        a = jinja_eval(c, n->a);
        nargs = jx_args(c, n, &args);
        return jinja_filter(c, n, a, args, n->kwnames, nargs);
    case JN_TEST:
        a = jinja_eval(c, n->a);
        nargs = jx_args(c, n, &args);
        return jv_bool(jinja_test(c, n, a, args, nargs) != n->negate);
    case JN_NEG:
        a = jinja_eval(c, n->a);
        if (a.t == JV_INT || a.t == JV_BOOL) return jv_int(-a.u.i);
        if (a.t == JV_FLOAT) return jv_float(-a.u.f);
        if (a.t == JV_UNDEF) jx_undefined(c, n->a->pos, a);
        jinja_fail(c->a, LM_ERR_ARG, n->pos, "bad operand type for unary -: '%s'", jv_type_name(a));
    case JN_NOT: return jv_bool(!jv_truthy(jinja_eval(c, n->a)));
    case JN_AND: a = jinja_eval(c, n->a); return jv_truthy(a) ? jinja_eval(c, n->b) : a;
    case JN_OR: a = jinja_eval(c, n->a); return jv_truthy(a) ? a : jinja_eval(c, n->b);
    case JN_COND:
        if (jv_truthy(jinja_eval(c, n->b))) return jinja_eval(c, n->a);
        return n->c ? jinja_eval(c, n->c) : jv_undef(NULL);
    case JN_LISTLIT:
        a = jv_list(c->a, n->args.n);
        for (size_t i = 0; i < n->args.n; i++) a.u.l->v[i] = jinja_eval(c, n->args.v[i]);
        return a;
    case JN_DICTLIT: {
        jv d = {JV_DICT, {0}};
        d.u.d = jdict_new(c->a);
        for (size_t i = 0; i + 1 < n->args.n; i += 2) {
            jv k = jinja_eval(c, n->args.v[i]);
            if (k.t != JV_STR) jinja_fail(c->a, LM_ERR_UNSUPPORTED, n->args.v[i]->pos, "dict keys must be strings");
            jdict_set(c->a, d.u.d, k.u.s.p, k.u.s.n, jinja_eval(c, n->args.v[i + 1]));
        }
        return d;
    }
    case JN_BINOP:
        a = jinja_eval(c, n->a);
        b = jinja_eval(c, n->b);
        if (!strcmp(n->op, "~")) {
            jv x = jv_to_str(c->a, a), y = jv_to_str(c->a, b);
            char *p = jinja_alloc(c->a, x.u.s.n + y.u.s.n + 1);
            memcpy(p, x.u.s.p, x.u.s.n);
            memcpy(p + x.u.s.n, y.u.s.p, y.u.s.n);
            return jv_str(p, x.u.s.n + y.u.s.n);
        }
        if (!strcmp(n->op, "==")) return jv_bool(jv_equal(a, b));
        if (!strcmp(n->op, "!=")) return jv_bool(!jv_equal(a, b));
        if (!strcmp(n->op, "in")) return jv_bool(jx_contains(c, n, a, b));
        if (!strcmp(n->op, "notin")) return jv_bool(!jx_contains(c, n, a, b));
        if (!strcmp(n->op, "<")) return jv_bool(jx_compare(c, n, a, b) < 0);
        if (!strcmp(n->op, ">")) return jv_bool(jx_compare(c, n, a, b) > 0);
        if (!strcmp(n->op, "<=")) return jv_bool(jx_compare(c, n, a, b) <= 0);
        if (!strcmp(n->op, ">=")) return jv_bool(jx_compare(c, n, a, b) >= 0);
        return jx_arith(c, n, a, b);
    default: break;
    }
    jinja_fail(c->a, LM_ERR_ARG, n->pos, "internal: not an expression");
}

static void jx_for(jctx *c, const jnode *n) {
    jv seq = jinja_eval(c, n->a);
    jv items;
    switch (seq.t) {
    case JV_UNDEF: items = jv_list(c->a, 0); break;
    case JV_LIST: items = seq; break;
    case JV_DICT:
        items = jv_list(c->a, seq.u.d->n);
        for (size_t i = 0; i < seq.u.d->n; i++) items.u.l->v[i] = jv_str(seq.u.d->e[i].key, seq.u.d->e[i].klen);
        break;
    case JV_STR: {
        size_t len = ju8_len(seq.u.s.p, seq.u.s.n);
        items = jv_list(c->a, len);
        for (size_t i = 0; i < len; i++) {
            size_t o = ju8_offset(seq.u.s.p, seq.u.s.n, (int64_t)i), e = ju8_offset(seq.u.s.p, seq.u.s.n, (int64_t)i + 1);
            items.u.l->v[i] = jv_str(seq.u.s.p + o, e - o);
        }
        break;
    }
    default: jinja_fail(c->a, LM_ERR_ARG, n->a->pos, "'%s' object is not iterable", jv_type_name(seq));
    }
    if (n->b) { /* for x in xs if cond: loop.* counts only the kept items */
        jv kept = jv_list(c->a, items.u.l->n);
        size_t k = 0;
        jx_push_scope(c);
        for (size_t i = 0; i < items.u.l->n; i++) {
            jx_assign(c, n->name, items.u.l->v[i]);
            if (jv_truthy(jinja_eval(c, n->b))) kept.u.l->v[k++] = items.u.l->v[i];
        }
        c->nscopes--;
        kept.u.l->n = k;
        items = kept;
    }
    size_t len = items.u.l->n;
    if (!len) {
        jinja_exec(c, &n->orelse);
        return;
    }
    c->loop_depth++;
    for (size_t i = 0; i < len; i++) {
        jx_push_scope(c);
        jv loop = {JV_DICT, {0}};
        loop.u.d = jdict_new(c->a);
        jdict_set(c->a, loop.u.d, "index0", 6, jv_int((int64_t)i));
        jdict_set(c->a, loop.u.d, "index", 5, jv_int((int64_t)i + 1));
        jdict_set(c->a, loop.u.d, "revindex0", 9, jv_int((int64_t)(len - i - 1)));
        jdict_set(c->a, loop.u.d, "revindex", 8, jv_int((int64_t)(len - i)));
        jdict_set(c->a, loop.u.d, "first", 5, jv_bool(i == 0));
        jdict_set(c->a, loop.u.d, "last", 4, jv_bool(i + 1 == len));
        jdict_set(c->a, loop.u.d, "length", 6, jv_int((int64_t)len));
        jdict_set(c->a, loop.u.d, "previtem", 8, i ? items.u.l->v[i - 1] : jv_undef("previtem"));
        jdict_set(c->a, loop.u.d, "nextitem", 8, i + 1 < len ? items.u.l->v[i + 1] : jv_undef("nextitem"));
        jx_assign(c, "loop", loop);
        jx_assign(c, n->name, items.u.l->v[i]);
        jinja_exec(c, &n->body);
        c->nscopes--;
        int ctl = c->loop_ctl;
        c->loop_ctl = 0;
        if (ctl == 1) break;
    }
    c->loop_depth--;
}

void jinja_exec(jctx *c, const jnodes *body) {
    for (size_t i = 0; i < body->n && !c->loop_ctl; i++) {
        const jnode *n = body->v[i];
        switch (n->k) {
        case JN_TEXT: jbuf_put(&c->out, n->lit.u.s.p, n->lit.u.s.n); break;
        case JN_OUTPUT: {
            jv v = jv_to_str(c->a, jinja_eval(c, n->a));
            jbuf_put(&c->out, v.u.s.p, v.u.s.n);
            break;
        }
        case JN_IF: jinja_exec(c, jv_truthy(jinja_eval(c, n->a)) ? &n->body : &n->orelse); break;
        case JN_FOR: jx_for(c, n); break;
        case JN_SET:
            if (n->a) {
                jx_assign(c, n->name, jinja_eval(c, n->a));
            } else {
                jbuf saved = c->out;
                c->out = (jbuf){c->a, NULL, 0, 0};
                jbuf_put(&c->out, "", 0);
                jinja_exec(c, &n->body);
                jv v = jv_str(c->out.p, c->out.n);
                c->out = saved;
                jx_assign(c, n->name, v);
            }
            break;
        case JN_SET_ATTR: {
            jv ns = jx_lookup(c, n->name);
            if (ns.t != JV_DICT || !ns.u.d->is_namespace)
                jinja_fail(c->a, LM_ERR_ARG, n->pos, "cannot assign attribute '%s' on '%s', which is not a namespace()", n->attr,
                           n->name);
            jdict_set(c->a, ns.u.d, n->attr, strlen(n->attr), jinja_eval(c, n->a));
            break;
        }
        case JN_BREAK:
        case JN_CONTINUE:
            if (!c->loop_depth) jinja_fail(c->a, LM_ERR_ARG, n->pos, "'%s' outside a for loop", n->k == JN_BREAK ? "break" : "continue");
            c->loop_ctl = n->k == JN_BREAK ? 1 : 2;
            break;
        default: jinja_fail(c->a, LM_ERR_ARG, n->pos, "internal: not a statement");
        }
    }
}

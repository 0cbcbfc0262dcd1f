/* Internal: the Jinja subset interpreter behind chat_template.h.
 *
 * Pipeline: jinja_lex.c cuts the source into text and expression tokens
 * (applying -/+ whitespace control, trim_blocks and lstrip_blocks the way
 * transformers configures Jinja), jinja_parse.c builds a tree, and
 * jinja_eval.c walks it with the values of jinja_value.c and the filters,
 * tests and methods of jinja_builtins.c.
 *
 * Every allocation comes from an arena and every error longjmps to the
 * entry point, which frees the arena: a malformed template or a
 * raise_exception deep inside an expression unwinds without a chain of
 * status checks and without leaks. */
#ifndef LMKIT_JINJA_H
#define LMKIT_JINJA_H

#include "lmkit/base.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>

/* ---- arena + error unwinding ---- */
typedef struct jblock jblock;
typedef struct {
    jblock *head;
    jmp_buf *on_error; /* where jinja_fail jumps */
    const char *src;   /* for line:column in messages */
    lm_status code;    /* what jinja_fail reported */
} jarena;

void *jinja_alloc(jarena *a, size_t n); /* zeroed; longjmps on NOMEM */
char *jinja_strndup(jarena *a, const char *s, size_t n);
void jinja_arena_free(jarena *a);
/* Sets lm_error (code, "chat template line L col C: ...") and longjmps. */
_Noreturn void jinja_fail(jarena *a, lm_status code, size_t pos, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A growable byte buffer in the arena. */
typedef struct jbuf {
    jarena *a;
    char *p;
    size_t n, cap;
} jbuf;
void jbuf_put(jbuf *b, const char *s, size_t n);
void jbuf_puts(jbuf *b, const char *s);
void jbuf_putc(jbuf *b, char c);

/* ---- values ---- */
typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT } jv_type;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct {
    jv_type t;
    union {
        int64_t i; /* BOOL, INT */
        double f;
        struct {
            const char *p; /* STR; UNDEF: the name that was missing (may be NULL) */
            size_t n;
        } s;
        jlist *l;
        jdict *d;
    } u;
} jv;

struct jlist {
    jv *v;
    size_t n;
};
typedef struct {
    const char *key;
    size_t klen;
    jv val;
} jentry;
struct jdict {
    jentry *e;
    size_t n, cap;
    int is_namespace; /* only namespaces accept {% set ns.x = ... %} */
};

jv jv_undef(const char *name);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *p, size_t n);
jv jv_cstr(const char *p);
jv jv_list(jarena *a, size_t n); /* n items, all none */
jdict *jdict_new(jarena *a);
void jdict_set(jarena *a, jdict *d, const char *key, size_t klen, jv val);
const jv *jdict_get(const jdict *d, const char *key, size_t klen);

int jv_truthy(jv v);
int jv_equal(jv a, jv b);
const char *jv_type_name(jv v);
/* str(v) as Python prints it (undefined prints as ""). */
jv jv_to_str(jarena *a, jv v);
/* Python repr(v), used for strings inside printed lists and dicts. */
void jv_repr(jarena *a, jv v, jbuf *b);
/* json.dumps(v, ensure_ascii=False, indent=indent) (indent < 0: none). */
void jv_tojson(jarena *a, jv v, int indent, int depth, jbuf *b, size_t pos);

/* UTF-8 helpers: code point count and byte offset of code point k. */
size_t ju8_len(const char *s, size_t n);
size_t ju8_offset(const char *s, size_t n, int64_t k);

/* ---- tokens ---- */
typedef enum {
    JT_TEXT,
    JT_VAR_BEGIN,
    JT_VAR_END,
    JT_BLOCK_BEGIN,
    JT_BLOCK_END,
    JT_NAME,
    JT_STRING,
    JT_INT,
    JT_FLOAT,
    JT_OP, /* op: "==", "+", "(", ... */
    JT_EOF
} jtok_type;

typedef struct {
    jtok_type t;
    size_t pos; /* offset in the source, for messages */
    const char *s; /* TEXT, NAME, STRING (decoded); OP text */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* Tokenizes the whole template. */
void jinja_lex(jarena *a, const char *src, jtok **toks, size_t *ntoks);

/* ---- tree ---- */
typedef enum {
    /* statements */
    JN_TEXT,
    JN_OUTPUT,
    JN_IF,
    JN_FOR,
    JN_SET,
    JN_SET_ATTR,
    JN_BREAK,
    JN_CONTINUE,
    /* expressions */
    JN_LIT,
    JN_NAME,
    JN_ATTR,
    JN_INDEX,
    JN_SLICE,
    JN_CALL,
    JN_FILTER,
    JN_TEST,
    JN_NEG,
    JN_NOT,
    JN_BINOP, /* op: + - * / // % ~ == != < > <= >= in notin */
    JN_AND,
    JN_OR,
    JN_COND, /* a if b else c */
    JN_LISTLIT,
    JN_DICTLIT
} jnode_kind;

typedef struct jnode jnode;
typedef struct {
    jnode **v;
    size_t n;
} jnodes;

struct jnode {
    jnode_kind k;
    size_t pos;
    const char *name; /* NAME, ATTR, FILTER, TEST, SET(_ATTR) target, FOR variable */
    const char *attr; /* SET_ATTR: the attribute */
    char op[6];
    int negate; /* TEST: "is not" */
    jv lit;
    jnode *a, *b, *c; /* operands; IF: a = condition; FOR: a = iterable, b = filter; SLICE: a[b:c:d] */
    jnode *d;
    jnodes args;          /* CALL / FILTER / TEST arguments; LIST / DICT items (DICT: k, v, k, v) */
    const char **kwnames; /* per argument: NULL for positional */
    jnodes body, orelse;  /* IF / FOR */
};

/* Parses the tokens into a statement list. */
jnodes jinja_parse(jarena *a, const jtok *toks, size_t ntoks);

/* ---- evaluation ---- */
typedef struct jctx jctx;
struct jctx {
    jarena *a;
    jdict *globals;
    jdict **scopes; /* innermost last */
    size_t nscopes, capscopes;
    int loop_ctl;   /* 1 break, 2 continue */
    int loop_depth; /* break/continue are errors outside a loop */
    jbuf out;
};
jv jinja_eval(jctx *c, const jnode *n);
void jinja_exec(jctx *c, const jnodes *body);

/* Builtins (jinja_builtins.c). known_* are used at parse time so an
 * unknown filter or test is a syntax error, as in Jinja. */
int jinja_known_filter(const char *name);
int jinja_known_test(const char *name);
jv jinja_filter(jctx *c, const jnode *n, jv v, jv *args, const char **kw, size_t nargs);
int jinja_test(jctx *c, const jnode *n, jv v, jv *args, size_t nargs);
jv jinja_method(jctx *c, const jnode *n, jv obj, const char *name, jv *args, const char **kw, size_t nargs);
jv jinja_call_global(jctx *c, const jnode *n, const char *name, jv *args, const char **kw, size_t nargs);

#endif

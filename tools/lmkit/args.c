/* Strict flag parsing shared by every subcommand. */
#include "args.h"

#include "lmkit/base.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lm_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "lmkit: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

int lm_fail_status(void) { return lm_fail("%s", lm_last_error()); }

static void lm_args_help(const char *usage, const lm_arg *specs) {
    printf("usage: %s\n\noptions:\n", usage);
    for (const lm_arg *a = specs; a->name; a++) {
        const char *meta = a->type == LM_ARG_FLAG ? "" : a->type == LM_ARG_STR || a->type == LM_ARG_STRS ? " S" : " N";
        char left[64];
        snprintf(left, sizeof left, "%s%s", a->name, meta);
        printf("  %-24s %s\n", left, a->help);
    }
    printf("  %-24s %s\n", "--help", "show this help");
}

/* Integer flags: a malformed value and one out of the type's range get
 * different messages, so "2147483648" is not called "not an integer". */
static int lm_args_integer(const char *cmd, const lm_arg *a, const char *v, long lo, long hi, long *out) {
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end) return lm_fail("%s: %s: '%s' is not an integer", cmd, a->name, v), 2;
    if (errno == ERANGE || x < lo || x > hi) return lm_fail("%s: %s: %s is out of range (%ld..%ld)", cmd, a->name, v, lo, hi), 2;
    *out = x;
    return 0;
}

/* Real flags: parsed as double, then checked against the destination's
 * range (max = FLT_MAX or DBL_MAX, tiny = its smallest normal), so 1e40
 * for a float is "out of range", not "not a number". A literal inf or
 * nan passes, as strtof always let it: each command range-checks its
 * values and names the flag (train: "--lr inf must be finite"). */
static int lm_args_real(const char *cmd, const lm_arg *a, const char *v, double max, double tiny, double *out) {
    char *end = NULL;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end) return lm_fail("%s: %s: '%s' is not a number", cmd, a->name, v), 2;
    if (isfinite(x) || errno == ERANGE) {
        if (fabs(x) > max) return lm_fail("%s: %s: %s is out of range (magnitude at most %g)", cmd, a->name, v, max), 2;
        if ((x != 0 || errno == ERANGE) && fabs(x) < tiny)
            return lm_fail("%s: %s: %s is out of range (nonzero magnitude at least %g)", cmd, a->name, v, tiny), 2;
    }
    *out = x;
    return 0;
}

static int lm_args_value(const char *cmd, const lm_arg *a, const char *v) {
    long l;
    double d;
    switch (a->type) {
    case LM_ARG_INT:
        if (lm_args_integer(cmd, a, v, INT_MIN, INT_MAX, &l)) return 2;
        *(int *)a->ptr = (int)l;
        break;
    case LM_ARG_LONG:
        if (lm_args_integer(cmd, a, v, LONG_MIN, LONG_MAX, &l)) return 2;
        *(long *)a->ptr = l;
        break;
    case LM_ARG_FLOAT:
        if (lm_args_real(cmd, a, v, FLT_MAX, FLT_MIN, &d)) return 2;
        *(float *)a->ptr = (float)d;
        break;
    case LM_ARG_DOUBLE:
        if (lm_args_real(cmd, a, v, DBL_MAX, DBL_MIN, &d)) return 2;
        *(double *)a->ptr = d;
        break;
    case LM_ARG_STR: *(const char **)a->ptr = v; break;
    case LM_ARG_STRS: {
        lm_strs *s = a->ptr;
        if (s->n >= 32) return lm_fail("%s: %s: given more than 32 times", cmd, a->name), 2;
        s->items[s->n++] = v;
        break;
    }
    case LM_ARG_FLAG: break;
    }
    return 0;
}

/* The spec whose name is the first nlen bytes of arg, or NULL. */
static const lm_arg *lm_args_find(const lm_arg *specs, const char *arg, size_t nlen) {
    for (const lm_arg *s = specs; s->name; s++)
        if (strlen(s->name) == nlen && !strncmp(s->name, arg, nlen)) return s;
    return NULL;
}

/* Whether a word is one of this command's options (or --help): then it
 * is the next option, and the flag before it was given no value
 * ("--temperature --top-k 5"). A value that looks like an option is
 * still possible as --name=--value. */
static int lm_args_is_option(const lm_arg *specs, const char *w) {
    if (w[0] != '-' || w[1] != '-') return 0;
    if (!strcmp(w, "--help")) return 1;
    const char *eq = strchr(w, '=');
    return lm_args_find(specs, w, eq ? (size_t)(eq - w) : strlen(w)) != NULL;
}

int lm_args_parse(const char *usage, const lm_arg *specs, int argc, char **argv, char ***pos, int *npos) {
    return lm_args_parse_given(usage, specs, argc, argv, pos, npos, NULL);
}

int lm_args_parse_given(const char *usage, const lm_arg *specs, int argc, char **argv, char ***pos, int *npos, int *given) {
    const char *cmd = argv[0];
    if (pos) {
        *pos = calloc((size_t)argc + 1, sizeof **pos);
        *npos = 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            lm_args_help(usage, specs);
            return 1;
        }
        if (!strcmp(arg, "--")) { /* everything after is positional */
            for (i++; i < argc; i++) {
                if (!pos) return lm_fail("%s: unexpected argument '%s'", cmd, argv[i]), 2;
                (*pos)[(*npos)++] = argv[i];
            }
            break;
        }
        if (arg[0] == '-' && arg[1] == '-') {
            /* --name=value or --name value */
            const char *eq = strchr(arg, '=');
            size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
            const lm_arg *a = lm_args_find(specs, arg, nlen);
            if (!a) return lm_fail("%s: unknown option '%.*s' (see lmkit %s --help)", cmd, (int)nlen, arg, cmd), 2;
            if (given && !given[a - specs]) given[a - specs] = i;
            if (a->type == LM_ARG_FLAG) {
                if (eq) return lm_fail("%s: %s takes no value", cmd, a->name), 2;
                *(int *)a->ptr = 1;
                continue;
            }
            const char *v = eq ? eq + 1 : (i + 1 < argc && !lm_args_is_option(specs, argv[i + 1]) ? argv[++i] : NULL);
            if (!v) return lm_fail("%s: %s needs a value", cmd, a->name), 2;
            if (lm_args_value(cmd, a, v)) return 2;
            /* A string list takes following non-flag words too: --special A B C */
            if (a->type == LM_ARG_STRS && !eq)
                while (i + 1 < argc && argv[i + 1][0] != '-')
                    if (lm_args_value(cmd, a, argv[++i])) return 2;
            continue;
        }
        if (!pos) return lm_fail("%s: unexpected argument '%s'", cmd, arg), 2;
        (*pos)[(*npos)++] = argv[i];
    }
    return 0;
}

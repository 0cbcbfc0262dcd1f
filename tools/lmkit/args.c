/* Strict flag parsing shared by every subcommand. */
#include "args.h"

#include "lmkit/base.h"

#include <errno.h>
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

static int lm_args_value(const char *cmd, const lm_arg *a, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (a->type) {
    case LM_ARG_INT: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end || x < -2147483647L || x > 2147483647L)
            return lm_fail("%s: %s: '%s' is not an integer", cmd, a->name, v), 2;
        *(int *)a->ptr = (int)x;
        break;
    }
    case LM_ARG_LONG: {
        long x = strtol(v, &end, 10);
        if (errno || !*v || *end) return lm_fail("%s: %s: '%s' is not an integer", cmd, a->name, v), 2;
        *(long *)a->ptr = x;
        break;
    }
    case LM_ARG_FLOAT: {
        float x = strtof(v, &end);
        if (errno || !*v || *end) return lm_fail("%s: %s: '%s' is not a number", cmd, a->name, v), 2;
        *(float *)a->ptr = x;
        break;
    }
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

int lm_args_parse(const char *usage, const lm_arg *specs, int argc, char **argv, char ***pos, int *npos) {
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
            const lm_arg *a = NULL;
            for (const lm_arg *s = specs; s->name; s++)
                if (strlen(s->name) == nlen && !strncmp(s->name, arg, nlen)) a = s;
            if (!a) return lm_fail("%s: unknown option '%.*s' (see lmkit %s --help)", cmd, (int)nlen, arg, cmd), 2;
            if (a->type == LM_ARG_FLAG) {
                if (eq) return lm_fail("%s: %s takes no value", cmd, a->name), 2;
                *(int *)a->ptr = 1;
                continue;
            }
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
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

/* Command-line flags: a table of specs per command, strict parsing (an
 * unknown flag or a malformed number is an error naming the flag), and
 * --help generated from the same table. */
#ifndef LMKIT_ARGS_H
#define LMKIT_ARGS_H

/* LM_ARG_DOUBLE keeps a value exactly as written where it is recorded
 * (e.g. in meta.json); float flags round 0.1 to 0.10000000149. */
typedef enum { LM_ARG_INT, LM_ARG_LONG, LM_ARG_FLOAT, LM_ARG_STR, LM_ARG_FLAG, LM_ARG_STRS, LM_ARG_DOUBLE } lm_arg_type;

typedef struct {
    const char *name; /* "--steps" */
    lm_arg_type type;
    void *ptr; /* int*, long*, float*, const char**, int* (flag), lm_strs*, double* */
    const char *help;
} lm_arg;

/* A repeatable string flag (e.g. --stop A --stop B). */
typedef struct {
    int n;
    const char *items[32];
} lm_strs;

/* Parses argv (argv[0] is the command name). Positional arguments are
 * collected into *pos (malloc'd array, caller frees) when pos is non-NULL;
 * otherwise they are an error. Returns 0 to go on, 1 if --help was printed
 * (exit 0), 2 on error (already printed). */
int lm_args_parse(const char *usage, const lm_arg *specs, int argc, char **argv, char ***pos, int *npos);
/* The same, also recording where each flag was given: given[k] (one int
 * per spec, zeroed by the caller) becomes the argv index of spec k's first
 * occurrence, 0 if it was not given. */
int lm_args_parse_given(const char *usage, const lm_arg *specs, int argc, char **argv, char ***pos, int *npos, int *given);

/* Prints "lmkit: error: ..." to stderr; returns 1 for `return lm_fail(...)`. */
int lm_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints the library's last error as a CLI error; returns 1. */
int lm_fail_status(void);

#endif

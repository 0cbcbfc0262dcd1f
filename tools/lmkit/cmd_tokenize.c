/* lmkit tokenize: text lines -> ids / tokens, or id lines -> text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "lmkit/tokenizer.h"

static void usage(FILE *o) {
    fprintf(o, "usage: lmkit tokenize --tokenizer PATH [--ids|--tokens|--decode] [--no-special] [FILE]\n"
               "  PATH: tokenizer.json, a checkpoint dir, *.tiktoken, tokenizer.bin, or builtin gpt2|bytes\n"
               "  --ids     (default) one line of space-separated ids per input line\n"
               "  --tokens  the token strings instead of ids\n"
               "  --decode  read lines of ids, print the decoded text\n"
               "  --no-special  no BOS/CLS/SEP added; special-token text is encoded as plain text\n"
               "  Reads stdin when FILE is not given.\n");
}

int lm_cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *file = NULL;
    int mode = 0, special = 1; /* 0 ids, 1 tokens, 2 decode */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--ids")) mode = 0;
        else if (!strcmp(argv[i], "--tokens")) mode = 1;
        else if (!strcmp(argv[i], "--decode")) mode = 2;
        else if (!strcmp(argv[i], "--no-special")) special = 0;
        else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "lmkit: error: tokenize: unknown option '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (!file) file = argv[i];
        else {
            fprintf(stderr, "lmkit: error: tokenize: more than one input file ('%s')\n", argv[i]);
            return 2;
        }
    }
    if (!tok_path) {
        fprintf(stderr, "lmkit: error: tokenize: --tokenizer PATH is required\n");
        return 2;
    }
    lm_tokenizer *t;
    if (lm_tokenizer_load(tok_path, &t) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    FILE *in = file ? fopen(file, "rb") : stdin;
    if (!in) {
        fprintf(stderr, "lmkit: error: %s: %s\n", file, strerror(errno));
        lm_tokenizer_free(t);
        return 1;
    }
    lm_encode_opts o = {special, special, 0, 0, 0};
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = 0;
    int32_t *ids = NULL;
    size_t idcap = 0;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') n--;
        if (mode == 2) {
            size_t k = 0;
            char *p = line, *end = line + n;
            while (p < end) {
                while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
                if (p >= end) break;
                char *e;
                errno = 0;
                long v = strtol(p, &e, 10);
                if (e == p || errno || v < 0 || v >= lm_tokenizer_vocab_size(t)) {
                    fprintf(stderr, "lmkit: error: %s:%zu: '%.*s' is not a token id of this tokenizer (0..%d)\n",
                            file ? file : "stdin", lineno, (int)strcspn(p, " \t\r\n"), p, lm_tokenizer_vocab_size(t) - 1);
                    rc = 1;
                    break;
                }
                if (k == idcap) {
                    idcap = idcap ? idcap * 2 : 256;
                    ids = realloc(ids, idcap * sizeof *ids);
                    if (!ids) {
                        fprintf(stderr, "lmkit: error: out of memory\n");
                        rc = 1;
                        break;
                    }
                }
                ids[k++] = (int32_t)v;
                p = e;
            }
            if (rc) break;
            char *text;
            size_t tl;
            if (lm_tokenizer_decode_ex(t, ids, k, !special, &text, &tl) != LM_OK) {
                fprintf(stderr, "lmkit: error: %s:%zu: %s\n", file ? file : "stdin", lineno, lm_last_error());
                rc = 1;
                break;
            }
            fwrite(text, 1, tl, stdout);
            fputc('\n', stdout);
            free(text);
            continue;
        }
        lm_encoding e;
        if (lm_tokenizer_encode_full(t, line, (size_t)n, &o, &e) != LM_OK) {
            fprintf(stderr, "lmkit: error: %s:%zu: %s\n", file ? file : "stdin", lineno, lm_last_error());
            rc = 1;
            break;
        }
        for (size_t i = 0; i < e.n; i++) {
            if (i) fputc(' ', stdout);
            if (mode == 0) printf("%d", e.ids[i]);
            else fputs(lm_tokenizer_id_to_token(t, e.ids[i]), stdout);
        }
        fputc('\n', stdout);
        lm_encoding_free(&e);
    }
    free(ids);
    free(line);
    if (file) fclose(in);
    lm_tokenizer_free(t);
    return rc;
}

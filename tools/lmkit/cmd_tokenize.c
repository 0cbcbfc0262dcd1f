/* lmkit tokenize: text lines -> ids / tokens, or id lines -> text. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "lmkit/tokenizer.h"

int lm_cmd_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *file = NULL;
    int ids_flag = 0, tokens_flag = 0, decode_flag = 0, no_special = 0;
    const lm_arg specs[] = {
        {"--tokenizer", LM_ARG_STR, &tok_path, "tokenizer.json, a checkpoint dir, *.tiktoken, tokenizer.bin, or builtin gpt2|bytes"},
        {"--ids", LM_ARG_FLAG, &ids_flag, "(default) one line of space-separated ids per input line"},
        {"--tokens", LM_ARG_FLAG, &tokens_flag, "the token strings instead of ids"},
        {"--decode", LM_ARG_FLAG, &decode_flag, "read lines of ids, print the decoded text"},
        {"--no-special", LM_ARG_FLAG, &no_special, "no BOS/CLS/SEP added; special-token text is encoded as plain text"},
        {NULL, 0, NULL, NULL},
    };
    char **pos = NULL;
    int npos = 0;
    int r = lm_args_parse("lmkit tokenize --tokenizer PATH [--ids|--tokens|--decode] [--no-special] [FILE]  (stdin without FILE)",
                          specs, argc, argv, &pos, &npos);
    if (!r && npos > 1) {
        lm_fail("tokenize: more than one input file ('%s')", pos[1]);
        r = 2;
    }
    file = !r && npos == 1 && strcmp(pos[0], "-") ? pos[0] : NULL; /* "-" is stdin */
    free(pos);
    if (r) return r == 1 ? 0 : 2;
    /* The modes say what the input lines are (text or ids) and what to
     * print; two of them at once has no meaning, so neither wins. */
    if (ids_flag + tokens_flag + decode_flag > 1)
        return lm_fail("tokenize: --ids, --tokens and --decode are mutually exclusive; give one"), 2;
    int mode = tokens_flag ? 1 : decode_flag ? 2 : 0; /* 0 ids, 1 tokens, 2 decode */
    int special = !no_special;
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

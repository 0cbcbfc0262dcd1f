/* Helpers for the encoder commands. */
#include "bert_cli.h"

#include "args.h"

#include <stdlib.h>
#include <string.h>

int lm_cli_open_bert(const char *dir, lm_bert **m, lm_tokenizer **tok) {
    *m = NULL;
    *tok = NULL;
    if (lm_bert_open_dir(dir, NULL, m) != LM_OK || lm_tokenizer_load(dir, tok) != LM_OK) {
        int rc = lm_fail_status();
        lm_bert_free(*m);
        *m = NULL;
        return rc;
    }
    return 0;
}

static int lm_has_ext(const char *p, const char *e) {
    size_t a = strlen(p), b = strlen(e);
    return a >= b && !strcasecmp(p + a - b, e);
}

int lm_cli_gather_texts(char **pos, int npos, const char *file, const char *text_column, lm_text_dataset *ds, char ***texts, int *n) {
    memset(ds, 0, sizeof *ds);
    *texts = NULL;
    *n = 0;
    if (file && npos) return lm_fail("give texts as arguments or --file, not both");
    if (!file) {
        if (!npos) return lm_fail("no input: give TEXT arguments or --file FILE");
        *texts = malloc((size_t)npos * sizeof **texts);
        if (!*texts) return lm_fail("out of memory");
        for (int i = 0; i < npos; i++) (*texts)[i] = pos[i];
        *n = npos;
        return 0;
    }
    if (lm_has_ext(file, ".tsv") || lm_has_ext(file, ".csv") || lm_has_ext(file, ".jsonl") || lm_has_ext(file, ".json")) {
        lm_text_dataset_options o = {text_column, NULL, 0, 0};
        if (lm_text_dataset_load(file, &o, ds) != LM_OK) return lm_fail_status();
    } else {
        /* Plain text: one input per line, blank lines skipped. */
        char *buf = NULL;
        size_t len = 0;
        if (lm_read_file(file, &buf, &len) != LM_OK) return lm_fail_status();
        int cap = 0;
        ds->path = strdup(file);
        int line = 0;
        for (char *p = buf, *e; p < buf + len; p = e + 1) {
            e = memchr(p, '\n', (size_t)(buf + len - p));
            if (!e) e = buf + len;
            line++;
            size_t l = (size_t)(e - p);
            if (l && p[l - 1] == '\r') l--;
            if (!l) continue;
            if (ds->n == cap) {
                cap = cap ? 2 * cap : 256;
                ds->texts = realloc(ds->texts, (size_t)cap * sizeof *ds->texts);
                ds->labels = realloc(ds->labels, (size_t)cap * sizeof *ds->labels);
                ds->lines = realloc(ds->lines, (size_t)cap * sizeof *ds->lines);
                if (!ds->texts || !ds->labels || !ds->lines) {
                    free(buf);
                    return lm_fail("out of memory");
                }
            }
            ds->texts[ds->n] = strndup(p, l);
            ds->labels[ds->n] = NULL;
            ds->lines[ds->n++] = line;
        }
        free(buf);
        if (!ds->n) return lm_fail("%s: no text lines", file);
    }
    *texts = malloc((size_t)ds->n * sizeof **texts);
    if (!*texts) return lm_fail("out of memory");
    for (int i = 0; i < ds->n; i++) (*texts)[i] = ds->texts[i];
    *n = ds->n;
    return 0;
}

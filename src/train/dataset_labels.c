/* From a text dataset to model inputs: label names <-> ids, numeric
 * regression targets, and tokenized rows batched with dynamic padding. */
#include "lmkit/finetune.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int lm_is_int(const char *s) {
    char *end;
    errno = 0;
    strtol(s, &end, 10);
    return *s && !*end && !errno;
}

static int lm_cmp_label(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    if (lm_is_int(x) && lm_is_int(y)) {
        long u = strtol(x, NULL, 10), v = strtol(y, NULL, 10);
        return (u > v) - (u < v);
    }
    return strcmp(x, y);
}

void lm_labels_free(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

lm_status lm_dataset_label_names(const lm_text_dataset *d, char ***out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    const char **all = malloc((size_t)d->n * sizeof *all);
    if (!all) return lm_error(LM_ERR_NOMEM, "out of memory");
    int n = 0;
    for (int i = 0; i < d->n; i++)
        if (d->labels[i]) all[n++] = d->labels[i];
    /* Integers compare numerically, so "0", "1", ..., "10" keep their ids. */
    qsort(all, (size_t)n, sizeof *all, lm_cmp_label);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (k == 0 || strcmp(all[k - 1], all[i]) != 0) all[k++] = all[i];
    char **names = calloc((size_t)(k ? k : 1), sizeof *names);
    lm_status s = names ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < k && s == LM_OK; i++)
        if (!(names[i] = strdup(all[i]))) s = lm_error(LM_ERR_NOMEM, "out of memory");
    free(all);
    if (s != LM_OK) {
        lm_labels_free(names, k);
        return s;
    }
    *out = names;
    *n_out = k;
    return LM_OK;
}

lm_status lm_dataset_label_ids(const lm_text_dataset *d, char *const *names, int n, int32_t *ids) {
    for (int i = 0; i < d->n; i++) {
        if (!d->labels[i]) return lm_error(LM_ERR_FORMAT, "%s: line %d: missing label", d->path, d->lines[i]);
        int id = -1;
        for (int k = 0; k < n && id < 0; k++)
            if (!strcmp(names[k], d->labels[i])) id = k;
        if (id < 0) {
            char known[256] = "";
            for (int k = 0; k < n && strlen(known) < 200; k++) snprintf(known + strlen(known), sizeof known - strlen(known), "%s'%s'", k ? ", " : "", names[k]);
            return lm_error(LM_ERR_FORMAT, "%s: line %d: unknown label '%s' (the model knows %s)", d->path, d->lines[i], d->labels[i], known);
        }
        ids[i] = id;
    }
    return LM_OK;
}

lm_status lm_dataset_label_values(const lm_text_dataset *d, float *values) {
    for (int i = 0; i < d->n; i++) {
        const char *l = d->labels[i];
        if (!l || !*l) return lm_error(LM_ERR_FORMAT, "%s: line %d: missing label (regression needs a number)", d->path, d->lines[i]);
        char *end;
        errno = 0;
        double v = strtod(l, &end);
        while (*end == ' ') end++;
        if (end == l || *end || errno || !isfinite(v))
            return lm_error(LM_ERR_FORMAT, "%s: line %d: label '%s' is not a number (regression needs numeric labels)", d->path, d->lines[i], l);
        values[i] = (float)v;
    }
    return LM_OK;
}

void lm_text_examples_free(lm_text_examples *ex) {
    if (ex->ids)
        for (int i = 0; i < ex->n; i++) free(ex->ids[i]);
    free(ex->ids);
    free(ex->len);
    memset(ex, 0, sizeof *ex);
}

lm_status lm_text_examples_build(const lm_tokenizer *tok, const lm_text_dataset *d, int max_len, lm_text_examples *ex) {
    memset(ex, 0, sizeof *ex);
    if (max_len < 2) return lm_error(LM_ERR_ARG, "max length %d is too small (needs room for [CLS] and [SEP])", max_len);
    ex->n = d->n;
    ex->max_len = max_len;
    ex->ids = calloc((size_t)d->n, sizeof *ex->ids);
    ex->len = calloc((size_t)d->n, sizeof *ex->len);
    lm_encoding *enc = calloc((size_t)d->n, sizeof *enc);
    size_t *lens = malloc((size_t)d->n * sizeof *lens);
    if (!ex->ids || !ex->len || !enc || !lens) {
        free(enc);
        free(lens);
        lm_text_examples_free(ex);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < d->n; i++) lens[i] = strlen(d->texts[i]);
    /* Encode one token past the limit: a row that still fills it was
     * longer, and cutting it here (keeping the final [SEP]) is exactly
     * what truncation to max_len gives. */
    lm_encode_opts opts = lm_tokenizer_default_opts(tok);
    opts.add_special = 1;
    opts.max_length = (size_t)max_len + 1;
    opts.pad_to = 0;
    opts.pad_to_longest = 0;
    lm_status s = lm_tokenizer_encode_batch(tok, (const char *const *)d->texts, lens, (size_t)d->n, &opts, enc);
    int encoded = s == LM_OK;
    for (int i = 0; i < d->n && s == LM_OK; i++) {
        int n = (int)enc[i].n;
        if (n > max_len) {
            ex->truncated++;
            enc[i].ids[max_len - 1] = enc[i].ids[n - 1];
            n = max_len;
        }
        ex->len[i] = n;
        ex->ids[i] = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
        if (!ex->ids[i]) s = lm_error(LM_ERR_NOMEM, "out of memory");
        else memcpy(ex->ids[i], enc[i].ids, (size_t)n * sizeof(int32_t));
    }
    if (encoded)
        for (int i = 0; i < d->n; i++) lm_encoding_free(&enc[i]);
    free(enc);
    free(lens);
    if (s != LM_OK) lm_text_examples_free(ex);
    return s;
}

int lm_text_examples_batch(const lm_text_examples *ex, const int *order, int B, int pad_id, int32_t *ids, int32_t *mask) {
    int T = 1;
    for (int b = 0; b < B; b++)
        if (ex->len[order[b]] > T) T = ex->len[order[b]];
    for (int b = 0; b < B; b++) {
        const int32_t *src = ex->ids[order[b]];
        int n = ex->len[order[b]];
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = t < n ? src[t] : pad_id;
            mask[b * T + t] = t < n;
        }
    }
    return T;
}

/* lmkit prepare: tokenize text files into train/val token shards. */
#include "args.h"
#include "cli.h"

#include "lmkit/tokenizer.h"
#include "lmkit/train.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The character tokenizer needs UTF-8; its own error counts inputs, not
 * files, so the file, line and byte are named here. */
static int lm_prepare_check_utf8(const char *file, const char *text, size_t len) {
    size_t at, line, col;
    if (!lm_cli_utf8_locate(text, len, &at, &line, &col)) return 0;
    return lm_fail("prepare: %s: line %zu: invalid UTF-8 byte 0x%02X at byte offset %zu (--tokenizer chars needs UTF-8 text)", file, line,
                   (unsigned char)text[at], at);
}

/* Splits n tokens by the fraction, or says which side it leaves under the
 * 2 tokens a shard needs, and the fraction that would do. */
static int lm_prepare_split(size_t n, double fraction, size_t *n_train, size_t *n_val) {
    if (n < 4) return lm_fail("prepare: %zu tokens is too few to split into train and validation (at least 4 are needed)", n);
    *n_val = (size_t)ceil((double)n * fraction);
    *n_train = n - *n_val;
    if (*n_val < 2)
        return lm_fail("prepare: --val-fraction %g leaves %zu of the %zu tokens for validation; at least 2 are needed (a fraction of at "
                       "least %.3g)", fraction, *n_val, n, 2.0 / (double)n);
    if (*n_train < 2)
        return lm_fail("prepare: --val-fraction %g leaves %zu of the %zu tokens for training; at least 2 are needed (a fraction of at "
                       "most %.6g)", fraction, *n_train, n, (double)(n - 2) / (double)n);
    return 0;
}

/* Shortest %.*g precision that reads back as x, so 0.1 is written "0.1"
 * and not 0.10000000000000001 (jansson prints 17 digits by default). */
static int lm_shortest_precision(double x) {
    char buf[40];
    for (int p = 1; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return p;
    }
    return 17;
}

int lm_cmd_prepare(int argc, char **argv) {
    const char *tok_spec = "gpt2", *out = NULL;
    double val_fraction = 0.1; /* double: meta.json records it as given */
    int threads = 0;
    const lm_arg specs[] = {
        {"--tokenizer", LM_ARG_STR, &tok_spec, "bytes | chars (one id per character of the corpus) | gpt2 | PATH (gpt2)"},
        {"--val-fraction", LM_ARG_DOUBLE, &val_fraction, "share of tokens held out for validation, from the end (0.1)"},
        {"--out", LM_ARG_STR, &out, "output directory for train.bin, val.bin, meta.json, tokenizer.json"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    char **files = NULL;
    int nfiles = 0;
    int r = lm_args_parse("lmkit prepare TEXT_FILES... --tokenizer {bytes|chars|gpt2|PATH} [--val-fraction F] --out DIR", specs, argc,
                          argv, &files, &nfiles);
    if (r) {
        free(files);
        return r == 1 ? 0 : 2;
    }
    int rc = 1;
    lm_tokenizer *tok = NULL;
    int32_t *all = NULL;
    size_t n_all = 0, cap = 0, total_bytes = 0;
    char **texts = NULL;
    size_t *lens = NULL;
    lm_set_threads(threads);
    if (nfiles == 0) {
        rc = lm_fail("prepare: no input text files given");
        goto done;
    }
    if (!out) {
        rc = lm_fail("prepare: --out DIR is required");
        goto done;
    }
    if (!(val_fraction > 0 && val_fraction < 1)) {
        rc = lm_fail("prepare: --val-fraction %g must be in (0, 1)", val_fraction);
        goto done;
    }
    /* All texts are read first: the character tokenizer is built from them. */
    texts = calloc((size_t)nfiles, sizeof *texts);
    lens = calloc((size_t)nfiles, sizeof *lens);
    if (!texts || !lens) {
        rc = lm_fail("prepare: out of memory");
        goto done;
    }
    for (int i = 0; i < nfiles; i++) {
        if (lm_read_file(files[i], &texts[i], &lens[i]) != LM_OK) {
            rc = lm_fail_status();
            goto done;
        }
        total_bytes += lens[i];
        if (!strcmp(tok_spec, "chars") && lm_prepare_check_utf8(files[i], texts[i], lens[i])) goto done;
    }
    lm_status ts = !strcmp(tok_spec, "chars") ? lm_tokenizer_chars((const char *const *)texts, lens, (size_t)nfiles, &tok)
                                              : lm_tokenizer_load(tok_spec, &tok);
    if (ts != LM_OK) {
        rc = total_bytes == 0 && !strcmp(tok_spec, "chars")
                 ? lm_fail("prepare: the corpus is empty (%d file%s, 0 bytes)", nfiles, nfiles == 1 ? "" : "s")
                 : lm_fail_status();
        goto done;
    }
    int32_t eos = lm_tokenizer_eos_id(tok);
    for (int i = 0; i < nfiles; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        lm_status s = lens[i] ? lm_tokenizer_encode(tok, texts[i], lens[i], 0, &ids, &n) : LM_OK;
        free(texts[i]);
        texts[i] = NULL;
        if (s != LM_OK) {
            rc = lm_fail("%s: %s", files[i], lm_last_error());
            goto done;
        }
        /* Documents are separated by the end-of-text token when there is one. */
        size_t need = n_all + n + 1;
        if (need > cap) {
            cap = 2 * need;
            int32_t *g = realloc(all, cap * sizeof *g);
            if (!g) {
                free(ids);
                rc = lm_fail("prepare: out of memory");
                goto done;
            }
            all = g;
        }
        if (n_all > 0 && eos >= 0 && n > 0) all[n_all++] = eos;
        if (n) memcpy(all + n_all, ids, n * sizeof *ids);
        n_all += n;
        free(ids);
    }
    if (n_all == 0) {
        rc = lm_fail("prepare: the corpus is empty (%d file%s, %zu bytes)", nfiles, nfiles == 1 ? "" : "s", total_bytes);
        goto done;
    }
    size_t n_val = 0, n_train = 0;
    if (lm_prepare_split(n_all, val_fraction, &n_train, &n_val)) goto done;
    int vocab = lm_tokenizer_vocab_size(tok);
    char *train_path = lm_path_join(out, "train.bin"), *val_path = lm_path_join(out, "val.bin");
    char *tok_path = lm_path_join(out, "tokenizer.json"), *meta_path = lm_path_join(out, "meta.json");
    lm_status s = lm_mkdir_p(out);
    if (s == LM_OK) s = lm_shard_write(train_path, all, n_train, vocab);
    if (s == LM_OK) s = lm_shard_write(val_path, all + n_train, n_val, vocab);
    if (s == LM_OK) s = lm_tokenizer_save(tok, tok_path);
    char *tok_cfg_path = lm_path_join(out, "tokenizer_config.json");
    if (s == LM_OK) s = lm_tokenizer_save_config(tok, tok_cfg_path, 0);
    free(tok_cfg_path);
    if (s == LM_OK) {
        json_t *jf = json_array();
        for (int i = 0; i < nfiles; i++) json_array_append_new(jf, json_string(files[i]));
        json_t *meta = json_pack("{s:s, s:i, s:I, s:I, s:I, s:f, s:o}", "tokenizer", tok_spec, "vocab_size", vocab, "train_tokens",
                                 (json_int_t)n_train, "val_tokens", (json_int_t)n_val, "bytes", (json_int_t)total_bytes,
                                 "val_fraction", val_fraction, "files", jf);
        char *text = meta ? json_dumps(meta, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(lm_shortest_precision(val_fraction)))
                          : NULL;
        json_decref(meta);
        s = text ? lm_write_file_atomic(meta_path, text, strlen(text)) : lm_error(LM_ERR_NOMEM, "%s: cannot serialize JSON", meta_path);
        free(text);
    }
    free(train_path);
    free(val_path);
    free(tok_path);
    free(meta_path);
    if (s != LM_OK) {
        rc = lm_fail_status();
        goto done;
    }
    fprintf(stderr, "prepared %s: %zu train + %zu val tokens (vocab %d, %.2f bytes/token) from %zu bytes\n", out, n_train, n_val,
            vocab, (double)total_bytes / (double)n_all, total_bytes);
    rc = 0;
done:
    for (int i = 0; texts && i < nfiles; i++) free(texts[i]);
    free(texts);
    free(lens);
    lm_tokenizer_free(tok);
    free(all);
    free(files);
    return rc;
}

/* lmkit train-tokenizer: byte-level BPE or WordPiece from text files,
 * written as an HF tokenizer.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cli.h"
#include "lmkit/tokenizer.h"

int lm_cmd_train_tokenizer(int argc, char **argv) {
    const char *type = "bpe", *out = NULL;
    int vocab = 0, min_freq = 2, lower = 0, threads = 0, quiet = 0;
    lm_strs special = {0};
    const lm_arg specs[] = {
        {"--type", LM_ARG_STR, &type, "bpe (byte-level, GPT-2 style) or wordpiece (BERT style)"},
        {"--vocab-size", LM_ARG_INT, &vocab, "vocabulary size, special tokens included (required)"},
        {"--special", LM_ARG_STRS, &special, "a special token (repeatable); they get the first ids"},
        {"--min-frequency", LM_ARG_INT, &min_freq, "pairs seen fewer times are not merged (default 2)"},
        {"--lowercase", LM_ARG_FLAG, &lower, "wordpiece: lowercase and strip accents (BERT uncased)"},
        {"--threads", LM_ARG_INT, &threads, "threads for counting (default: all)"},
        {"--quiet", LM_ARG_FLAG, &quiet, "no summary line on stderr"},
        {"--out", LM_ARG_STR, &out, "output tokenizer.json (required)"},
        {NULL, 0, NULL, NULL},
    };
    char **files = NULL;
    int nf = 0;
    int r = lm_args_parse("lmkit train-tokenizer --type {bpe|wordpiece} --vocab-size N [--special TOK...] "
                          "--out tokenizer.json FILES...",
                          specs, argc, argv, &files, &nf);
    if (r) return r == 1 ? 0 : 2;
    int rc = 0;
    char **texts = NULL;
    size_t *lens = NULL;
    if (!out || vocab <= 0 || !nf) {
        free(files);
        fprintf(stderr, "lmkit: error: train-tokenizer: --vocab-size, --out and at least one FILE are required\n");
        return 2;
    }
    lm_toktrain_opts o = {0};
    if (!strcmp(type, "bpe")) o.type = LM_TOKTRAIN_BPE;
    else if (!strcmp(type, "wordpiece")) o.type = LM_TOKTRAIN_WORDPIECE;
    else {
        free(files);
        return lm_fail("train-tokenizer: --type must be bpe or wordpiece, not '%s'", type);
    }
    if (threads > 0) lm_set_threads(threads);
    o.vocab_size = vocab;
    o.min_frequency = min_freq;
    o.special = special.items;
    o.n_special = special.n;
    o.lowercase = lower;
    texts = calloc((size_t)nf, sizeof *texts);
    lens = calloc((size_t)nf, sizeof *lens);
    size_t total = 0;
    for (int i = 0; i < nf && texts; i++) {
        if (lm_read_file(files[i], &texts[i], &lens[i]) != LM_OK) {
            rc = lm_fail_status();
            goto done;
        }
        total += lens[i];
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lm_tokenizer *t = NULL;
    if (lm_tokenizer_train(&o, (const char *const *)texts, lens, (size_t)nf, &t) != LM_OK ||
        lm_tokenizer_save(t, out) != LM_OK) {
        rc = lm_fail_status();
        lm_tokenizer_free(t);
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!quiet)
        fprintf(stderr, "trained %s: %d tokens from %.1f MB in %.2f s -> %s\n", type, lm_tokenizer_vocab_size(t),
                (double)total / 1e6, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9, out);
    lm_tokenizer_free(t);
done:
    for (int i = 0; texts && i < nf; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(files);
    return rc;
}

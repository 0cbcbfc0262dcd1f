/* lmkit embed: sentence embeddings (mean pooling over tokens, then L2
 * normalisation — what sentence-transformers' all-MiniLM-L6-v2 gives). */
#include "args.h"
#include "bert_cli.h"
#include "cli.h"

#include "lmkit/pipeline.h"

#include <stdio.h>
#include <stdlib.h>

int lm_cmd_embed(int argc, char **argv) {
    const char *model_dir = NULL, *file = NULL, *text_column = NULL;
    int max_len = 256, no_norm = 0, threads = 0;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model_dir, "BERT-family model directory (e.g. all-MiniLM-L6-v2)"},
        {"--file", LM_ARG_STR, &file, "inputs: .tsv/.csv/.jsonl (see --text-column) or one text per line"},
        {"--text-column", LM_ARG_STR, &text_column, "text column of a --file dataset [text|sentence]"},
        {"--max-len", LM_ARG_INT, &max_len, "tokens per text (sentence-transformers uses 256) [256]"},
        {"--no-normalize", LM_ARG_FLAG, &no_norm, "keep the raw mean (no L2 normalisation)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    char **pos = NULL;
    int npos = 0;
    int r = lm_args_parse("lmkit embed --model DIR (TEXT... | --file FILE)", specs, argc, argv, &pos, &npos);
    if (r) return r == 1 ? 0 : 2;
    if (!model_dir) {
        free(pos);
        return lm_fail("embed: --model DIR is required");
    }
    lm_set_threads(threads);
    lm_bert *m = NULL;
    lm_tokenizer *tok = NULL;
    lm_text_dataset ds;
    char **texts = NULL;
    int n = 0, truncated = 0;
    float *out = NULL;
    int rc = lm_cli_gather_texts(pos, npos, file, text_column, &ds, &texts, &n);
    if (!rc) rc = lm_cli_open_bert(model_dir, &m, &tok);
    int C = m ? lm_bert_get_config(m)->hidden : 0;
    if (!rc && !(out = malloc((size_t)n * C * sizeof *out))) rc = lm_fail("out of memory");
    if (!rc && lm_pipeline_embed(m, tok, (const char *const *)texts, n, max_len, !no_norm, out, &truncated) != LM_OK) rc = lm_fail_status();
    if (!rc) {
        /* A JSON list of vectors, one per line; %.9g round-trips a float. */
        printf("[\n");
        for (int i = 0; i < n; i++) {
            printf("  [");
            for (int k = 0; k < C; k++) printf("%s%.9g", k ? ", " : "", out[(size_t)i * C + k]);
            printf("]%s\n", i + 1 < n ? "," : "");
        }
        printf("]\n");
        if (truncated) fprintf(stderr, "warning: %d text%s longer than --max-len %d tokens, truncated\n", truncated, truncated == 1 ? "" : "s", max_len);
    }
    free(out);
    free(texts);
    free(pos);
    lm_text_dataset_free(&ds);
    lm_tokenizer_free(tok);
    lm_bert_free(m);
    return rc;
}

/* lmkit fill-mask: the most likely tokens for each [MASK] in a text. */
#include "args.h"
#include "bert_cli.h"
#include "cli.h"

#include "lmkit/pipeline.h"

#include <stdio.h>
#include <stdlib.h>

int lm_cmd_fill_mask(int argc, char **argv) {
    const char *model_dir = NULL;
    int top_k = 5, threads = 0, max_len = 512;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model_dir, "masked-LM model directory (BertForMaskedLM)"},
        {"--top-k", LM_ARG_INT, &top_k, "candidates per mask [5]"},
        {"--max-len", LM_ARG_INT, &max_len, "tokens of context [512]"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    char **pos = NULL;
    int npos = 0;
    int r = lm_args_parse("lmkit fill-mask --model DIR [--top-k K] \"text with [MASK]\"", specs, argc, argv, &pos, &npos);
    if (r) return r == 1 ? 0 : 2;
    int rc = 0;
    if (!model_dir) rc = lm_fail("fill-mask: --model DIR is required");
    else if (npos != 1) rc = lm_fail("fill-mask: give exactly one text containing [MASK] (got %d)", npos);
    if (rc) {
        free(pos);
        return rc;
    }
    lm_set_threads(threads);
    lm_bert *m = NULL;
    lm_tokenizer *tok = NULL;
    enum { MAX_MASKS = 16 };
    lm_fill_candidate *cand = malloc((size_t)MAX_MASKS * (top_k > 0 ? top_k : 1) * sizeof *cand);
    int found = 0;
    rc = cand ? lm_cli_open_bert(model_dir, &m, &tok) : lm_fail("out of memory");
    if (!rc && lm_pipeline_fill_mask(m, tok, pos[0], max_len, top_k, MAX_MASKS, cand, &found) != LM_OK) rc = lm_fail_status();
    for (int k = 0; k < found && !rc; k++) {
        if (found > 1) printf("[MASK] #%d\n", k + 1);
        for (int j = 0; j < top_k; j++) {
            const char *t = lm_tokenizer_id_to_token(tok, cand[k * top_k + j].id);
            printf("%.4f\t%s\n", cand[k * top_k + j].score, t ? t : "?");
        }
    }
    free(cand);
    free(pos);
    lm_tokenizer_free(tok);
    lm_bert_free(m);
    return rc;
}

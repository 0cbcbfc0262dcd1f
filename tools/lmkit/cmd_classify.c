/* lmkit classify: label (and probability) of each text with a fine-tuned
 * sequence-classification model. */
#include "args.h"
#include "bert_cli.h"
#include "cli.h"

#include "lmkit/pipeline.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

int lm_cmd_classify(int argc, char **argv) {
    const char *model_dir = NULL, *file = NULL, *text_column = NULL;
    int max_len = 512, json = 0, threads = 0;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model_dir, "fine-tuned classification model directory"},
        {"--file", LM_ARG_STR, &file, "inputs: .tsv/.csv/.jsonl (see --text-column) or one text per line"},
        {"--text-column", LM_ARG_STR, &text_column, "text column of a --file dataset [text|sentence]"},
        {"--max-len", LM_ARG_INT, &max_len, "tokens per text; longer ones are truncated [512]"},
        {"--json", LM_ARG_FLAG, &json, "one JSON object per text with every label's score"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    char **pos = NULL;
    int npos = 0;
    int r = lm_args_parse("lmkit classify --model DIR [--json] (TEXT... | --file FILE)", specs, argc, argv, &pos, &npos);
    if (r) return r == 1 ? 0 : 2;
    if (!model_dir) {
        free(pos);
        return lm_fail("classify: --model DIR is required");
    }
    lm_set_threads(threads);
    lm_bert *m = NULL;
    lm_tokenizer *tok = NULL;
    lm_text_dataset ds;
    char **texts = NULL;
    int n = 0, truncated = 0;
    float *scores = NULL;
    int rc = lm_cli_gather_texts(pos, npos, file, text_column, &ds, &texts, &n);
    if (!rc) rc = lm_cli_open_bert(model_dir, &m, &tok);
    const lm_bert_config *c = m ? lm_bert_get_config(m) : NULL;
    if (!rc && !(scores = malloc((size_t)n * c->num_labels * sizeof *scores))) rc = lm_fail("out of memory");
    if (!rc && lm_pipeline_classify(m, tok, (const char *const *)texts, n, max_len, scores, &truncated) != LM_OK) rc = lm_fail_status();
    for (int i = 0; i < n && !rc; i++) {
        const float *s = scores + (size_t)i * c->num_labels;
        int best = 0;
        for (int k = 1; k < c->num_labels; k++)
            if (s[k] > s[best]) best = k;
        if (json) {
            json_t *o = json_object(), *all = json_object();
            json_object_set_new(o, "text", json_string(texts[i]));
            if (c->problem == LM_PROBLEM_REGRESSION) json_object_set_new(o, "value", json_real(s[0]));
            else {
                json_object_set_new(o, "label", json_string(c->labels[best]));
                json_object_set_new(o, "score", json_real(s[best]));
                for (int k = 0; k < c->num_labels; k++) json_object_set_new(all, c->labels[k], json_real(s[k]));
                json_object_set_new(o, "scores", all);
                all = NULL;
            }
            json_decref(all);
            char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
            printf("%s\n", line ? line : "{}");
            free(line);
            json_decref(o);
        } else if (c->problem == LM_PROBLEM_REGRESSION) {
            printf("%.6g\t%s\n", s[0], texts[i]);
        } else {
            printf("%s\t%.4f\t%s\n", c->labels[best], s[best], texts[i]);
        }
    }
    if (!rc && truncated) fprintf(stderr, "warning: %d text%s longer than --max-len %d tokens, truncated\n", truncated, truncated == 1 ? "" : "s", max_len);
    free(scores);
    free(texts);
    free(pos);
    lm_text_dataset_free(&ds);
    lm_tokenizer_free(tok);
    lm_bert_free(m);
    return rc;
}

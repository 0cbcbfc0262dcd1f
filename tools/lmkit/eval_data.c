/* lmkit eval --data: accuracy / macro-F1 (classification) or RMSE /
 * Pearson (regression) of a fine-tuned encoder over a labelled file. */
#include "args.h"
#include "bert_cli.h"

#include <stdio.h>
#include <stdlib.h>

int lm_cli_eval_data(const char *model_dir, const char *data, const char *text_column, const char *label_column, int no_header,
                     int max_len, int batch, int json) {
    lm_bert *m = NULL;
    lm_tokenizer *tok = NULL;
    int rc = lm_cli_open_bert(model_dir, &m, &tok);
    if (rc) return rc;
    const lm_bert_config *c = lm_bert_get_config(m);
    lm_text_dataset ds = {0};
    lm_text_examples ex = {0};
    int32_t *ids = NULL;
    float *vals = NULL;
    lm_text_dataset_options o = {text_column, label_column, no_header, 1};
    int regress = c->problem == LM_PROBLEM_REGRESSION;
    lm_cls_metrics mt;
    double t0 = lm_now_seconds();
    if (c->head != LM_BERT_HEAD_CLS) rc = lm_fail("eval: %s has no classification head (fine-tune it first)", model_dir);
    else if (lm_text_dataset_load(data, &o, &ds) != LM_OK) rc = lm_fail_status();
    else if (!(ids = malloc((size_t)ds.n * sizeof *ids)) || !(vals = malloc((size_t)ds.n * c->num_labels * sizeof *vals))) rc = lm_fail("out of memory");
    else if ((regress ? lm_dataset_label_values(&ds, vals) : lm_dataset_label_ids(&ds, c->labels, c->num_labels, ids)) != LM_OK) rc = lm_fail_status();
    else if (regress && c->num_labels != 1) rc = lm_fail("eval: regression model with %d outputs; the data has one value per row", c->num_labels);
    else if (lm_text_examples_build(tok, &ds, max_len > c->max_pos ? c->max_pos : max_len, &ex) != LM_OK) rc = lm_fail_status();
    else if (lm_bert_evaluate(m, &ex, regress ? NULL : ids, regress ? vals : NULL, batch, &mt, NULL) != LM_OK) rc = lm_fail_status();
    if (!rc) {
        if (ds.blank_lines) fprintf(stderr, "warning: %s: skipped %d blank line%s (first at line %d)\n", data, ds.blank_lines, ds.blank_lines == 1 ? "" : "s", ds.first_blank_line);
        if (ex.truncated) fprintf(stderr, "warning: %s: %d row%s longer than --max-len %d tokens, truncated\n", data, ex.truncated, ex.truncated == 1 ? "" : "s", ex.max_len);
        double secs = lm_now_seconds() - t0;
        if (json && regress)
            printf("{\"rows\": %d, \"loss\": %.6f, \"rmse\": %.6f, \"pearson\": %.6f, \"seconds\": %.3f}\n", mt.n, mt.loss, mt.rmse, mt.pearson, secs);
        else if (json)
            printf("{\"rows\": %d, \"loss\": %.6f, \"accuracy\": %.6f, \"macro_f1\": %.6f, \"seconds\": %.3f}\n", mt.n, mt.loss, mt.accuracy, mt.macro_f1, secs);
        else if (regress)
            printf("%s: %d rows, loss %.4f, RMSE %.4f, Pearson %.4f\n", data, mt.n, mt.loss, mt.rmse, mt.pearson);
        else
            printf("%s: %d rows, loss %.4f, accuracy %.4f, macro-F1 %.4f\n", data, mt.n, mt.loss, mt.accuracy, mt.macro_f1);
    }
    free(ids);
    free(vals);
    lm_text_examples_free(&ex);
    lm_text_dataset_free(&ds);
    lm_tokenizer_free(tok);
    lm_bert_free(m);
    return rc;
}

/* Evaluation of a classification / regression model over a tokenized
 * dataset: mean loss, accuracy and macro-F1, or RMSE and Pearson r. */
#include "lmkit/finetune.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const lm_text_examples *lm_sort_ex;
static int lm_by_len(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int lx = lm_sort_ex->len[x], ly = lm_sort_ex->len[y];
    return lx != ly ? (lx < ly) - (lx > ly) : (x > y) - (x < y); /* longest first */
}

lm_status lm_bert_evaluate(lm_bert *m, const lm_text_examples *ex, const int32_t *labels, const float *values, int batch,
                           lm_cls_metrics *out, int32_t *predictions) {
    memset(out, 0, sizeof *out);
    const lm_bert_config *c = lm_bert_get_config(m);
    int NL = c->num_labels, regress = c->problem == LM_PROBLEM_REGRESSION;
    if (batch < 1) batch = 32;
    /* Rows go through in length order so each batch pads little, longest
     * first so the activations are sized once; results land at each row's
     * own index, so the order does not show. */
    int *all = malloc((size_t)ex->n * sizeof *all);
    if (all) {
        for (int i = 0; i < ex->n; i++) all[i] = i;
        lm_sort_ex = ex;
        qsort(all, (size_t)ex->n, sizeof *all, lm_by_len);
    }
    int *order = malloc((size_t)batch * sizeof *order);
    float *bv = malloc((size_t)batch * NL * sizeof *bv);
    int32_t *bl = malloc((size_t)batch * sizeof *bl);
    int32_t *ids = malloc((size_t)batch * ex->max_len * sizeof *ids), *mask = malloc((size_t)batch * ex->max_len * sizeof *mask);
    long *tp = calloc((size_t)NL, sizeof *tp), *fp = calloc((size_t)NL, sizeof *fp), *fn = calloc((size_t)NL, sizeof *fn);
    lm_status s = all && order && bv && bl && ids && mask && tp && fp && fn ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    int was_pooled = lm_bert_set_pooled_only(m, 1); /* the head reads [CLS] only */
    double loss_sum = 0, sq = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    long correct = 0, nval = 0;
    for (int start = 0; start < ex->n && s == LM_OK; start += batch) {
        int B = ex->n - start < batch ? ex->n - start : batch;
        for (int b = 0; b < B; b++) {
            int row = order[b] = all[start + b];
            if (labels) bl[b] = labels[row];
            for (int k = 0; k < NL && values; k++) bv[b * NL + k] = values[(size_t)row * NL + k];
        }
        int T = lm_text_examples_batch(ex, order, B, c->pad_token_id, ids, mask);
        lm_bert_batch in = {B, T, ids, NULL, mask};
        float loss = 0;
        s = lm_bert_encode(m, &in);
        if (s == LM_OK)
            s = lm_bert_cls_forward(m, regress || !labels ? NULL : bl, regress && values ? bv : NULL, (labels || values) ? &loss : NULL);
        if (s != LM_OK) break;
        loss_sum += (double)loss * B;
        const float *lg = lm_bert_cls_logits(m);
        for (int b = 0; b < B; b++) {
            const float *z = lg + (size_t)b * NL;
            if (regress) {
                for (int k = 0; k < NL && values; k++) {
                    double x = z[k], y = bv[b * NL + k];
                    sq += (x - y) * (x - y);
                    sx += x, sy += y, sxx += x * x, syy += y * y, sxy += x * y;
                    nval++;
                }
                continue;
            }
            int best = 0;
            for (int k = 1; k < NL; k++)
                if (z[k] > z[best]) best = k;
            if (predictions) predictions[order[b]] = best;
            if (!labels) continue;
            int y = bl[b];
            if (best == y) correct++, tp[y]++;
            else fp[best]++, fn[y]++;
        }
    }
    if (s == LM_OK) {
        out->n = ex->n;
        out->loss = loss_sum / ex->n;
        if (regress && nval) {
            out->rmse = sqrt(sq / nval);
            double cov = sxy / nval - (sx / nval) * (sy / nval);
            double vx = sxx / nval - (sx / nval) * (sx / nval), vy = syy / nval - (sy / nval) * (sy / nval);
            out->pearson = vx > 0 && vy > 0 ? cov / sqrt(vx * vy) : 0;
        } else if (!regress) {
            out->accuracy = (double)correct / ex->n;
            /* Macro-F1 over the classes that occur in the labels or the predictions. */
            double f1 = 0;
            int classes = 0;
            for (int k = 0; k < NL; k++) {
                if (tp[k] + fp[k] + fn[k] == 0) continue;
                classes++;
                f1 += 2.0 * tp[k] / (2.0 * tp[k] + fp[k] + fn[k]);
            }
            out->macro_f1 = classes ? f1 / classes : 0;
        }
    }
    lm_bert_set_pooled_only(m, was_pooled);
    free(all);
    free(order);
    free(bv);
    free(bl);
    free(ids);
    free(mask);
    free(tp);
    free(fp);
    free(fn);
    return s;
}

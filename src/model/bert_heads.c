/* BERT heads over the encoder output: masked LM (transform + decoder tied
 * to the word embeddings), sequence classification (pooler + linear, with
 * softmax / sigmoid / MSE losses), and mean pooling for embeddings. */
#include "model/bert_internal.h"

#include "lmkit/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_bert_free_heads(lm_bert *m) {
    lm_bert_mlm_acts *h = &m->mlm;
    free(h->pos);
    free(h->targets);
    lm_free(h->x);
    memset(h, 0, sizeof *h);
    lm_free(m->cls.first);
    memset(&m->cls, 0, sizeof m->cls);
    free(m->cls_targets);
    free(m->cls_values);
    m->cls_targets = NULL;
    m->cls_values = NULL;
}

static lm_status lm_mlm_reserve(lm_bert *m, int rows) {
    lm_bert_mlm_acts *h = &m->mlm;
    if (rows <= h->cap_rows) return LM_OK;
    free(h->pos);
    free(h->targets);
    lm_free(h->x);
    size_t R = (size_t)rows, C = (size_t)m->cfg.hidden, V = (size_t)m->cfg.vocab_size;
    size_t RC = (R * C + 15) & ~(size_t)15, RV = (R * V + 15) & ~(size_t)15, R16 = (R + 15) & ~(size_t)15;
    h->pos = malloc(R * sizeof(int32_t));
    h->targets = malloc(R * sizeof(int32_t));
    h->x = lm_alloc((7 * RC + RV + 3 * R16) * sizeof(float));
    if (!h->pos || !h->targets || !h->x) {
        free(h->pos);
        free(h->targets);
        lm_free(h->x);
        memset(h, 0, sizeof *h);
        return lm_error(LM_ERR_NOMEM, "out of memory for MLM logits (%d rows x %zu)", rows, V);
    }
    h->tr = h->x + RC;
    h->trg = h->tr + RC;
    h->trn = h->trg + RC;
    h->dtr = h->trn + RC;
    h->dx = h->dtr + RC;
    float *scratch = h->dx + RC; /* a second row block for backward */
    h->logits = scratch + RC;
    h->losses = h->logits + RV;
    h->tr_mean = h->losses + R16;
    h->tr_rstd = h->tr_mean + R16;
    h->cap_rows = rows;
    return LM_OK;
}

lm_status lm_bert_mlm_forward(lm_bert *m, const int32_t *labels, float *loss) {
    if (m->cfg.head != LM_BERT_HEAD_MLM) return lm_error(LM_ERR_ARG, "bert: the model has no masked-LM head");
    if (!m->B) return lm_error(LM_ERR_ARG, "bert: mlm head called before encode");
    int BT = m->B * m->T, C = m->cfg.hidden, V = m->cfg.vocab_size;
    int rows = 0;
    for (int i = 0; i < BT; i++) {
        if (labels && labels[i] >= V) return lm_error(LM_ERR_RANGE, "bert: MLM label %d at position %d is outside the vocabulary", labels[i], i);
        rows += !labels || labels[i] >= 0;
    }
    LM_TRY(lm_mlm_reserve(m, rows > 0 ? rows : 1));
    lm_bert_mlm_acts *h = &m->mlm;
    h->rows = rows;
    const float *hid = lm_bert_hidden(m);
    for (int i = 0, r = 0; i < BT; i++) {
        if (labels && labels[i] < 0) continue;
        h->pos[r] = i;
        h->targets[r] = labels ? labels[i] : -1;
        memcpy(h->x + (size_t)r * C, hid + (size_t)i * C, (size_t)C * sizeof(float));
        r++;
    }
    float *P = m->params;
    int ph = m->p_head;
    if (rows > 0) {
        lm_linear_forward(h->tr, h->x, lm_bert_at(m, P, ph), lm_bert_at(m, P, ph + 1), rows, C, C);
        lm_gelu_erf_forward(h->trg, h->tr, (size_t)rows * C);
        lm_layernorm_forward(h->trn, h->tr_mean, h->tr_rstd, h->trg, lm_bert_at(m, P, ph + 2), lm_bert_at(m, P, ph + 3), rows, C,
                             m->cfg.layer_norm_eps);
        lm_linear_forward(h->logits, h->trn, lm_bert_at(m, P, BP_WORD), lm_bert_at(m, P, ph + 4), rows, C, V);
    }
    if (!labels) {
        if (loss) *loss = 0;
        return LM_OK;
    }
    float l = 0;
    if (rows > 0) {
        /* The gradient overwrites the logits, already divided by the count. */
        lm_cross_entropy_forward_backward(h->losses, h->logits, h->logits, h->targets, rows, V, 1.0f / (float)rows);
        double sum = 0;
        for (int r = 0; r < rows; r++) sum += h->losses[r];
        l = (float)(sum / rows);
    }
    if (loss) *loss = l;
    m->last_head = LM_BERT_HEAD_MLM;
    return LM_OK;
}

const float *lm_bert_mlm_logits(const lm_bert *m, const int32_t **positions, int *rows) {
    if (positions) *positions = m->mlm.pos;
    if (rows) *rows = m->mlm.rows;
    return m->mlm.logits;
}

static void lm_mlm_backward(lm_bert *m, float gs, float *dh) {
    lm_bert_mlm_acts *h = &m->mlm;
    int R = h->rows, C = m->cfg.hidden, V = m->cfg.vocab_size;
    float *P = m->params, *G = m->grads;
    int ph = m->p_head;
    float *dtrn = h->dtr, *dtrg = h->dx + (size_t)((R * C + 15) & ~15), *dtr = h->dtr, *dx = h->dx;
    /* Decoder tied to the word embeddings; grad_scale rides on alpha. */
    lm_sgemm(0, 0, R, C, V, gs, h->logits, V, lm_bert_at(m, P, BP_WORD), C, 0.0f, dtrn, C);
    lm_sgemm(1, 0, V, C, R, gs, h->logits, V, h->trn, C, 1.0f, lm_bert_at(m, G, BP_WORD), C);
    float *db = lm_bert_at(m, G, ph + 4);
    for (int r = 0; r < R; r++)
        for (int v = 0; v < V; v++) db[v] += gs * h->logits[(size_t)r * V + v];
    memset(dtrg, 0, (size_t)R * C * sizeof(float));
    lm_layernorm_backward(dtrg, lm_bert_at(m, G, ph + 2), lm_bert_at(m, G, ph + 3), dtrn, h->trg, lm_bert_at(m, P, ph + 2),
                          h->tr_mean, h->tr_rstd, R, C);
    lm_gelu_erf_backward(dtr, h->tr, dtrg, (size_t)R * C);
    memset(dx, 0, (size_t)R * C * sizeof(float));
    lm_linear_backward(dx, lm_bert_at(m, G, ph), lm_bert_at(m, G, ph + 1), dtr, h->x, lm_bert_at(m, P, ph), R, C, C);
    for (int r = 0; r < R; r++) memcpy(dh + (size_t)h->pos[r] * C, dx + (size_t)r * C, (size_t)C * sizeof(float));
}

static lm_status lm_cls_reserve(lm_bert *m, int B) {
    lm_bert_cls_acts *h = &m->cls;
    if (B <= h->cap_B) return LM_OK;
    lm_free(h->first);
    size_t C = (size_t)m->cfg.hidden, NL = (size_t)m->cfg.num_labels, BC = (size_t)B * C, BL = (size_t)B * NL;
    lm_float_slot plan[] = {{&h->first, BC},  {&h->pre, BC},    {&h->pooled, BC},  {&h->pooled_drop, BC},
                            {&h->dpooled, BC}, {&h->dfirst, BC}, {&h->logits, BL}, {&h->dlogits, BL}};
    float *block = lm_alloc_slots(plan, sizeof plan / sizeof *plan); /* starts at h->first */
    free(m->cls_targets);
    free(m->cls_values);
    m->cls_targets = malloc((size_t)B * sizeof(int32_t));
    m->cls_values = malloc((size_t)B * NL * sizeof(float));
    if (!block || !m->cls_targets || !m->cls_values) {
        lm_free(block);
        h->first = NULL;
        h->cap_B = 0;
        return lm_error(LM_ERR_NOMEM, "out of memory for the classification head");
    }
    h->cap_B = B;
    return LM_OK;
}

static lm_status lm_cls_loss(lm_bert *m, const int32_t *class_ids, const float *values, float *loss) {
    lm_bert_cls_acts *h = &m->cls;
    int B = m->B, NL = m->cfg.num_labels;
    size_t n = (size_t)B * NL;
    double sum = 0;
    if (m->cfg.problem == LM_PROBLEM_SINGLE_LABEL) {
        if (!class_ids) return lm_error(LM_ERR_ARG, "bert: single-label classification needs class ids");
        for (int b = 0; b < B; b++)
            if (class_ids[b] < 0 || class_ids[b] >= NL)
                return lm_error(LM_ERR_RANGE, "bert: class id %d of row %d is outside [0, %d)", class_ids[b], b, NL);
        memcpy(m->cls_targets, class_ids, (size_t)B * sizeof(int32_t));
        float *losses = h->dfirst; /* free until backward */
        lm_cross_entropy_forward_backward(losses, h->dlogits, h->logits, class_ids, B, NL, 1.0f / (float)B);
        for (int b = 0; b < B; b++) sum += losses[b];
        sum /= B;
    } else {
        if (!values) return lm_error(LM_ERR_ARG, "bert: %s needs target values",
                                     m->cfg.problem == LM_PROBLEM_REGRESSION ? "regression" : "multi-label classification");
        for (size_t i = 0; i < n; i++) {
            double z = h->logits[i], y = values[i];
            if (!isfinite(y)) return lm_error(LM_ERR_ARG, "bert: target %zu is not a finite number", i);
            if (m->cfg.problem == LM_PROBLEM_REGRESSION) {
                sum += (z - y) * (z - y);
                h->dlogits[i] = (float)(2.0 * (z - y) / (double)n);
            } else {
                /* Binary cross-entropy on logits, in the overflow-free form. */
                sum += fmax(z, 0) - z * y + log1p(exp(-fabs(z)));
                h->dlogits[i] = (float)((1.0 / (1.0 + exp(-z)) - y) / (double)n);
            }
        }
        sum /= (double)n;
    }
    if (loss) *loss = (float)sum;
    m->last_head = LM_BERT_HEAD_CLS;
    return LM_OK;
}

lm_status lm_bert_cls_forward(lm_bert *m, const int32_t *class_ids, const float *values, float *loss) {
    if (m->cfg.head != LM_BERT_HEAD_CLS) return lm_error(LM_ERR_ARG, "bert: the model has no classification head");
    if (!m->B) return lm_error(LM_ERR_ARG, "bert: classification head called before encode");
    int B = m->B, T = m->T, C = m->cfg.hidden, NL = m->cfg.num_labels;
    LM_TRY(lm_cls_reserve(m, B));
    lm_bert_cls_acts *h = &m->cls;
    const float *hid = lm_bert_hidden(m);
    for (int b = 0; b < B; b++) memcpy(h->first + (size_t)b * C, hid + (size_t)b * T * C, (size_t)C * sizeof(float));
    float *P = m->params;
    lm_linear_forward(h->pre, h->first, lm_bert_at(m, P, m->p_pool), lm_bert_at(m, P, m->p_pool + 1), B, C, C);
    for (size_t i = 0; i < (size_t)B * C; i++) h->pooled[i] = tanhf(h->pre[i]);
    const float *cls_in = h->pooled;
    if (m->training && m->drop_cls > 0) {
        memcpy(h->pooled_drop, h->pooled, (size_t)B * C * sizeof(float));
        lm_bert_drop(m, h->pooled_drop, (size_t)B * C, m->drop_cls, LM_DROP_CLS);
        cls_in = h->pooled_drop;
    }
    lm_linear_forward(h->logits, cls_in, lm_bert_at(m, P, m->p_head), lm_bert_at(m, P, m->p_head + 1), B, C, NL);
    if (!class_ids && !values) {
        if (loss) *loss = 0;
        return LM_OK;
    }
    return lm_cls_loss(m, class_ids, values, loss);
}

const float *lm_bert_cls_logits(const lm_bert *m) { return m->cls.logits; }
const float *lm_bert_pooled(const lm_bert *m) { return m->cls.pooled; }

static void lm_cls_backward(lm_bert *m, float gs, float *dh) {
    lm_bert_cls_acts *h = &m->cls;
    int B = m->B, T = m->T, C = m->cfg.hidden, NL = m->cfg.num_labels;
    float *P = m->params, *G = m->grads;
    lm_scale(h->dlogits, gs, (size_t)B * NL);
    memset(h->dpooled, 0, (size_t)B * C * sizeof(float));
    int dropped = m->training && m->drop_cls > 0;
    lm_linear_backward(h->dpooled, lm_bert_at(m, G, m->p_head), lm_bert_at(m, G, m->p_head + 1), h->dlogits,
                       dropped ? h->pooled_drop : h->pooled, lm_bert_at(m, P, m->p_head), B, C, NL);
    if (dropped) lm_bert_drop(m, h->dpooled, (size_t)B * C, m->drop_cls, LM_DROP_CLS);
    for (size_t i = 0; i < (size_t)B * C; i++) h->dpooled[i] *= 1.0f - h->pooled[i] * h->pooled[i];
    memset(h->dfirst, 0, (size_t)B * C * sizeof(float));
    /* peft keeps the pooler frozen under LoRA (only the classifier is saved). */
    int frozen = m->lora != NULL;
    lm_linear_backward(h->dfirst, frozen ? NULL : lm_bert_at(m, G, m->p_pool), frozen ? NULL : lm_bert_at(m, G, m->p_pool + 1),
                       h->dpooled, h->first, lm_bert_at(m, P, m->p_pool), B, C, C);
    for (int b = 0; b < B; b++) memcpy(dh + (size_t)b * T * C, h->dfirst + (size_t)b * C, (size_t)C * sizeof(float));
}

lm_status lm_bert_backward(lm_bert *m, float grad_scale) {
    if (!m->grads) return lm_error(LM_ERR_ARG, "bert backward: the model was created without gradients");
    if (!m->last_head) return lm_error(LM_ERR_ARG, "bert backward: no head forward with targets since the last encode");
    float *dh = m->a.d0;
    memset(dh, 0, (size_t)m->B * m->T * m->cfg.hidden * sizeof(float));
    m->fused_sumsq = 0;
    if (m->last_head == LM_BERT_HEAD_MLM) lm_mlm_backward(m, grad_scale, dh);
    else lm_cls_backward(m, grad_scale, dh);
    m->last_head = 0; /* head buffers now hold gradients */
    lm_bert_encoder_backward(m, dh);
    return LM_OK;
}

void lm_bert_mean_pool(const lm_bert *m, float *out, int normalize) {
    int B = m->B, T = m->T, C = m->cfg.hidden;
    const float *hid = lm_bert_hidden(m);
    for (int b = 0; b < B; b++) {
        int count = 0;
        for (int t = 0; t < T; t++) count += m->valid[b * T + t] != 0;
        /* sentence-transformers clamps the token count at 1e-9. */
        double div = count > 0 ? count : 1e-9, norm = 0;
        float *o = out + (size_t)b * C;
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int t = 0; t < T; t++)
                if (m->valid[b * T + t]) acc += hid[((size_t)b * T + t) * C + c];
            o[c] = (float)(acc / div);
            norm += (acc / div) * (acc / div);
        }
        if (!normalize) continue;
        norm = sqrt(norm);
        if (norm < 1e-12) norm = 1e-12;
        for (int c = 0; c < C; c++) o[c] = (float)(o[c] / norm);
    }
}

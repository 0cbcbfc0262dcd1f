/* BERT parity with transformers (goldens from ref/bert_golden.py):
 * BertForMaskedLM and BertForSequenceClassification on a padded batch with
 * token types — hidden states, logits, pooled output and loss (relative
 * error <= 1e-4) and every parameter gradient (<= 1e-3; the key bias,
 * whose true gradient is exactly zero, against an absolute bound). Each
 * runs padded (every position against HF) and unpadded (the default:
 * valid positions against HF, padded ones zero; loss and gradients
 * unchanged); the classifier also pooled-only (the last block past
 * attention on the [CLS] rows alone: same logits, loss and gradients).
 * Also a save/reload round trip and the config's label maps. */
#include "lmkit/bert.h"
#include "lmkit/safetensors.h"
#include "lmkit/kernels.h"
#include "lmkit/train.h"
#include "test.h"

static const lm_st_tensor *need(const lm_safetensors *st, const char *name) {
    const lm_st_tensor *t = lm_safetensors_find(st, name);
    if (!t) fprintf(stderr, "golden tensor %s missing\n", name);
    return t;
}

/* Compares every gradient in the table against grad.<name>; returns the
 * worst relative L2 error and names its tensor. */
static double compare_grads(lm_bert *m, const lm_safetensors *gold, char *worst_name) {
    const lm_param_table *tab = lm_bert_params(m);
    const float *G = lm_bert_grad_data(m);
    double worst = 0;
    for (int i = 0; i < tab->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", tab->params[i].name);
        const lm_st_tensor *t = lm_safetensors_find(gold, name);
        if (!t || (size_t)t->numel != tab->params[i].numel) {
            strcpy(worst_name, name);
            return INFINITY;
        }
        const float *ref = t->data, *got = G + tab->params[i].offset;
        double e;
        if (strstr(name, "attention.self.key.bias")) {
            /* Softmax ignores a constant added to every score: the true
             * gradient is 0 and both sides hold float noise. */
            e = 0;
            for (size_t j = 0; j < tab->params[i].numel; j++) e = fmax(e, fabs((double)got[j] - ref[j]));
            e = e < 1e-6 ? 0 : e;
        } else {
            e = test_rel_l2(got, ref, tab->params[i].numel);
        }
        if (!(e <= worst)) {
            worst = e;
            strcpy(worst_name, name);
        }
    }
    return worst;
}

/* A golden model opened with gradients. */
static lm_bert *open_trainable(const char *dir) {
    lm_bert_open_options o;
    lm_bert_open_options_default(&o);
    o.train = 1;
    lm_bert *m = NULL;
    CHECK_OK(lm_bert_open_dir(test_src_path(dir), &o, &m));
    return m;
}

static lm_bert_batch golden_batch(const lm_safetensors *gold) {
    const lm_st_tensor *ids = need(gold, "input_ids"), *tt = need(gold, "token_type_ids"), *am = need(gold, "attention_mask");
    lm_bert_batch b = {(int)ids->shape[0], (int)ids->shape[1], ids->data, tt->data, am->data};
    return b;
}

/* Worst relative error over [B*T, width] rows: every row when padded;
 * unpadded, the valid rows against ref and the padded ones against 0. */
static double rows_rel_err(const float *got, const float *ref, const lm_bert_batch *b, int width, int unpadded) {
    double worst = 0;
    for (int i = 0; i < b->B * b->T; i++) {
        const float *g = got + (size_t)i * width, *r = ref + (size_t)i * width;
        double e = 0;
        if (!unpadded || b->attention_mask[i]) e = test_max_rel_err(g, r, (size_t)width, 1e-2);
        else
            for (int j = 0; j < width; j++) e = fmax(e, fabs(g[j]));
        worst = fmax(worst, e);
    }
    return worst;
}

static void test_mlm(int unpadded) {
    lm_bert *m = open_trainable("tests/golden/bert_tiny/model");
    if (!m) return;
    CHECK(lm_bert_get_config(m)->head == LM_BERT_HEAD_MLM);
    CHECK(lm_bert_new_tensors(m) == 0);
    lm_bert_set_unpadded(m, unpadded);
    lm_safetensors gold;
    CHECK_OK(lm_safetensors_open(test_src_path("tests/golden/bert_tiny/golden.safetensors"), &gold));
    lm_bert_batch b = golden_batch(&gold);
    int BT = b.B * b.T, C = lm_bert_get_config(m)->hidden;
    CHECK_OK(lm_bert_encode(m, &b));
    double e = rows_rel_err(lm_bert_hidden(m), need(&gold, "hidden")->data, &b, C, unpadded);
    CHECK_MSG(e <= 1e-4, "unpadded %d: hidden rel err %g", unpadded, e);
    CHECK_OK(lm_bert_mlm_forward(m, NULL, NULL));
    int rows = 0;
    const int32_t *pos = NULL;
    const float *logits = lm_bert_mlm_logits(m, &pos, &rows);
    CHECK(rows == BT);
    if (!unpadded) { /* unpadded, padded positions have logits of a zero state */
        e = rows_rel_err(logits, need(&gold, "logits")->data, &b, lm_bert_get_config(m)->vocab_size, 0);
        CHECK_MSG(e <= 1e-4, "MLM logits rel err %g", e);
    }

    float loss = 0;
    CHECK_OK(lm_bert_mlm_forward(m, need(&gold, "labels")->data, &loss));
    lm_bert_mlm_logits(m, NULL, &rows);
    int labelled = 0; /* the README says 10; the file holds 9 */
    for (int i = 0; i < BT; i++) labelled += ((const int32_t *)need(&gold, "labels")->data)[i] >= 0;
    CHECK_MSG(rows == labelled && labelled > 0, "labelled rows %d vs %d", rows, labelled);
    float ref_loss = *(const float *)need(&gold, "loss")->data;
    CHECK_MSG(fabs(loss - ref_loss) <= 1e-4 * fabs(ref_loss), "MLM loss %.7f vs %.7f", loss, ref_loss);
    lm_bert_zero_grad(m);
    CHECK_OK(lm_bert_backward(m, 1.0f));
    char worst[160] = "";
    e = compare_grads(m, &gold, worst);
    CHECK_MSG(e <= 1e-3, "unpadded %d: MLM grads: worst rel err %g at %s", unpadded, e, worst);
    /* A second backward without a new forward is refused. */
    CHECK(lm_bert_backward(m, 1.0f) == LM_ERR_ARG);

    /* Gradient accumulation: two backward passes with scale 0.5 equal one. */
    float *g1 = malloc(lm_bert_params(m)->total * sizeof(float));
    memcpy(g1, lm_bert_grad_data(m), lm_bert_params(m)->total * sizeof(float));
    lm_bert_zero_grad(m);
    for (int k = 0; k < 2; k++) {
        CHECK_OK(lm_bert_encode(m, &b));
        CHECK_OK(lm_bert_mlm_forward(m, need(&gold, "labels")->data, NULL));
        CHECK_OK(lm_bert_backward(m, 0.5f));
    }
    e = test_rel_l2(lm_bert_grad_data(m), g1, lm_bert_params(m)->total);
    CHECK_MSG(e <= 1e-6, "accumulated grads rel err %g", e);
    free(g1);
    lm_safetensors_close(&gold);
    lm_bert_free(m);
}

static void test_cls(int unpadded, int pooled) {
    lm_bert *m = open_trainable("tests/golden/bert_cls_tiny/model");
    if (!m) return;
    const lm_bert_config *c = lm_bert_get_config(m);
    CHECK(c->head == LM_BERT_HEAD_CLS && c->num_labels == 3 && c->problem == LM_PROBLEM_SINGLE_LABEL);
    CHECK(c->labels && !strcmp(c->labels[2], "LABEL_2"));
    lm_bert_set_unpadded(m, unpadded);
    lm_bert_set_pooled_only(m, pooled);
    lm_bert_set_fused_norm(m, 1);
    lm_safetensors gold;
    CHECK_OK(lm_safetensors_open(test_src_path("tests/golden/bert_cls_tiny/golden.safetensors"), &gold));
    lm_bert_batch b = golden_batch(&gold);
    CHECK_OK(lm_bert_encode(m, &b));
    float loss = 0;
    CHECK_OK(lm_bert_cls_forward(m, need(&gold, "labels")->data, NULL, &loss));
    double e = test_max_rel_err(lm_bert_pooled(m), need(&gold, "pooled")->data, (size_t)b.B * c->hidden, 1e-2);
    CHECK_MSG(e <= 1e-4, "pooled rel err %g", e);
    e = test_max_rel_err(lm_bert_cls_logits(m), need(&gold, "logits")->data, (size_t)b.B * 3, 1e-2);
    CHECK_MSG(e <= 1e-4, "cls logits rel err %g", e);
    float ref_loss = *(const float *)need(&gold, "loss")->data;
    CHECK_MSG(fabs(loss - ref_loss) <= 1e-4 * fabs(ref_loss), "cls loss %.7f vs %.7f", loss, ref_loss);
    lm_bert_zero_grad(m);
    CHECK_OK(lm_bert_backward(m, 1.0f));
    char worst[160] = "";
    e = compare_grads(m, &gold, worst);
    CHECK_MSG(e <= 1e-3, "unpadded %d pooled %d: cls grads: worst rel err %g at %s", unpadded, pooled, e, worst);
    /* The fused gradient norm: the GEMMs' share plus the rest = the whole
     * buffer (1e-6: tiles sum in fp32). */
    uint8_t covered[256];
    const lm_param_table *tab = lm_bert_params(m);
    CHECK(tab->n <= 256);
    double fused = lm_bert_fused_sum_squares(m, covered), whole = lm_sum_squares(lm_bert_grad_data(m), tab->total);
    double parts = fused + lm_grad_sum_squares(tab, lm_bert_grad_data(m), NULL, covered);
    CHECK_MSG(fused > 0 && fabs(parts - whole) <= 1e-6 * whole, "fused norm: %.10g + rest = %.10g vs %.10g", fused, parts,
              whole);

    /* Out-of-range class ids are an error, not a crash. */
    CHECK_OK(lm_bert_encode(m, &b));
    int32_t bad[3] = {0, 3, 1};
    CHECK(lm_bert_cls_forward(m, bad, NULL, NULL) == LM_ERR_RANGE);

    /* Save and reopen: same logits, same label maps. */
    char dir[] = "/tmp/lmkit_bert_rt_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(lm_bert_save_dir(m, dir));
    lm_bert *r = NULL;
    CHECK_OK(lm_bert_open_dir(dir, NULL, &r));
    if (r) {
        CHECK(lm_bert_get_config(r)->num_labels == 3 && !strcmp(lm_bert_get_config(r)->labels[1], "LABEL_1"));
        CHECK_OK(lm_bert_encode(r, &b));
        CHECK_OK(lm_bert_cls_forward(r, NULL, NULL, NULL));
        e = test_max_rel_err(lm_bert_cls_logits(r), need(&gold, "logits")->data, (size_t)b.B * 3, 1e-2);
        CHECK_MSG(e <= 1e-4, "reloaded logits rel err %g", e);
        lm_bert_free(r);
    }
    /* A data set with a different label count cannot reuse this head. */
    lm_bert_open_options o2;
    lm_bert_open_options_default(&o2);
    o2.num_labels = 2;
    r = NULL;
    CHECK(lm_bert_open_dir(dir, &o2, &r) == LM_ERR_FORMAT && r == NULL);
    CHECK_MSG(strstr(lm_last_error(), "2 labels") != NULL, "%s", lm_last_error());
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    lm_safetensors_close(&gold);
    lm_bert_free(m);
}

/* A BertModel (no head) opened as a classifier gets a fresh pooler and
 * classifier, counted; losses for multi-label and regression heads have
 * finite-difference-checked gradients. */
/* Central difference of the classification loss in one parameter value
 * (step 1e-2). dropout_seed > 0 re-seeds dropout before each forward so
 * both sides see the masks of the backward being checked. */
static double central_difference(lm_bert *m, const lm_bert_batch *b, size_t at, const int32_t *ids, const float *values,
                                 uint64_t dropout_seed) {
    float *w = lm_bert_param_data(m) + at, w0 = *w, loss[2] = {0, 0}, h = 1e-2f;
    for (int side = 0; side < 2; side++) {
        *w = side ? w0 - h : w0 + h;
        if (dropout_seed) lm_bert_set_dropout(m, 0.3f, 0.3f, dropout_seed);
        lm_bert_encode(m, b);
        lm_bert_cls_forward(m, ids, values, &loss[side]);
    }
    *w = w0;
    return ((double)loss[0] - loss[1]) / (2.0 * h);
}

static void test_new_head_and_losses(void) {
    lm_bert_open_options o;
    lm_bert_open_options_default(&o);
    o.train = 1;
    o.head = LM_BERT_HEAD_CLS;
    o.num_labels = 2;
    o.problem = LM_PROBLEM_MULTI_LABEL;
    lm_bert *m = NULL;
    CHECK_OK(lm_bert_open_dir(test_src_path("tests/golden/bert_tiny/model"), &o, &m));
    if (!m) return;
    CHECK_MSG(lm_bert_new_tensors(m) == 4, "new tensors %d", lm_bert_new_tensors(m));
    int32_t ids[8] = {2, 5, 9, 3, 2, 7, 3, 0}, mask[8] = {1, 1, 1, 1, 1, 1, 1, 0};
    lm_bert_batch b = {2, 4, ids, NULL, mask};
    for (int problem = LM_PROBLEM_MULTI_LABEL; problem <= LM_PROBLEM_REGRESSION; problem++) {
        /* The problem type only changes the loss, so flip it in place. */
        ((lm_bert_config *)lm_bert_get_config(m))->problem = (lm_problem)problem;
        float y[4] = {1, 0, 0, 1};
        if (problem == LM_PROBLEM_REGRESSION) y[0] = 0.3f, y[1] = -1.2f, y[2] = 2.0f, y[3] = 0.5f;
        float loss = 0;
        CHECK_OK(lm_bert_encode(m, &b));
        CHECK_OK(lm_bert_cls_forward(m, NULL, y, &loss));
        lm_bert_zero_grad(m);
        CHECK_OK(lm_bert_backward(m, 1.0f));
        /* Central difference on one classifier weight and one encoder weight. */
        const lm_param_table *tab = lm_bert_params(m);
        const char *names[2] = {"classifier.weight", "bert.encoder.layer.1.intermediate.dense.weight"};
        for (int k = 0; k < 2; k++) {
            const lm_param *p = lm_param_find(tab, names[k]);
            CHECK(p != NULL);
            if (!p) continue;
            float g = lm_bert_grad_data(m)[p->offset + 5];
            double fd = central_difference(m, &b, p->offset + 5, NULL, y, 0);
            CHECK_MSG(fabs(fd - g) <= 2e-3 * fmax(fabs(g), 1e-2), "problem %d %s: grad %g vs finite difference %g", problem, names[k], g, fd);
        }
    }
    lm_bert_free(m);
}

/* Dropout in training mode: the backward pass applies the forward's masks
 * (central differences with the masks held fixed by re-seeding, rel 2e-3),
 * and training off is inference exactly. */
static void test_dropout(int pooled) {
    lm_bert *m = open_trainable("tests/golden/bert_cls_tiny/model");
    if (!m) return;
    lm_bert_set_pooled_only(m, pooled);
    lm_bert_set_attention_dropout(m, 0.3f);
    int32_t ids[8] = {2, 5, 9, 3, 2, 7, 3, 0}, mask[8] = {1, 1, 1, 1, 1, 1, 1, 0}, y[2] = {1, 2};
    lm_bert_batch b = {2, 4, ids, NULL, mask};
    float clean = 0, dropped = 0, other_seed = 0, off = 0;
    CHECK_OK(lm_bert_encode(m, &b));
    CHECK_OK(lm_bert_cls_forward(m, y, NULL, &clean));
    lm_bert_set_dropout(m, 0.3f, 0.3f, 5);
    CHECK_OK(lm_bert_encode(m, &b)); /* training off: no dropout yet */
    CHECK_OK(lm_bert_cls_forward(m, y, NULL, &off));
    CHECK(off == clean);
    lm_bert_set_training(m, 1);
    lm_bert_set_dropout(m, 0.3f, 0.3f, 6);
    CHECK_OK(lm_bert_encode(m, &b));
    CHECK_OK(lm_bert_cls_forward(m, y, NULL, &other_seed));
    lm_bert_set_dropout(m, 0.3f, 0.3f, 5);
    CHECK_OK(lm_bert_encode(m, &b));
    CHECK_OK(lm_bert_cls_forward(m, y, NULL, &dropped));
    CHECK_MSG(dropped != clean && dropped != other_seed, "dropout loss %g, clean %g, other seed %g", dropped, clean, other_seed);
    lm_bert_zero_grad(m);
    CHECK_OK(lm_bert_backward(m, 1.0f));
    const lm_param_table *tab = lm_bert_params(m);
    static const char *names[] = {"classifier.weight", "bert.pooler.dense.weight",
                                  "bert.encoder.layer.1.output.dense.weight", "bert.encoder.layer.0.attention.output.dense.weight",
                                  "bert.encoder.layer.0.attention.self.query.weight", "bert.embeddings.LayerNorm.weight",
                                  "bert.embeddings.word_embeddings.weight", "bert.encoder.layer.1.attention.self.value.weight",
                                  "bert.encoder.layer.0.attention.self.key.weight"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        const lm_param *p = lm_param_find(tab, names[k]);
        CHECK_MSG(p != NULL, "%s", names[k]);
        if (!p) continue;
        /* Word embeddings: an element of token 5's row (in the batch). */
        size_t at = p->offset + (k == 6 ? 5 * (size_t)lm_bert_get_config(m)->hidden + 3 : 7);
        float g = lm_bert_grad_data(m)[at];
        double fd = central_difference(m, &b, at, y, NULL, 5); /* the same masks */
        CHECK_MSG(fabs(fd - g) <= 2e-3 * fmax(fabs(g), 1e-2), "dropout (pooled %d) %s: grad %g vs finite difference %g", pooled,
                  names[k], g, fd);
    }
    lm_bert_free(m);
}

/* A mask that is not a prefix (left padding, a hole) cannot be unpadded:
 * the encoder falls back to the whole batch, the same hidden states as
 * with unpadding off, bit for bit; right padding unpads to the same valid
 * rows within float rounding. */
static void test_unpadded_fallback(void) {
    lm_bert *m = NULL;
    CHECK_OK(lm_bert_open_dir(test_src_path("tests/golden/bert_tiny/model"), NULL, &m));
    if (!m) return;
    int C = lm_bert_get_config(m)->hidden;
    int32_t ids[12] = {0, 0, 2, 5, 9, 3, 2, 7, 0, 3, 4, 6};
    int32_t masks[2][12] = {{0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}};
    for (int k = 0; k < 2; k++) {
        lm_bert_batch b = {2, 6, ids, NULL, masks[k]};
        float *ref = malloc((size_t)12 * C * sizeof(float));
        lm_bert_set_unpadded(m, 0);
        CHECK_OK(lm_bert_encode(m, &b));
        memcpy(ref, lm_bert_hidden(m), (size_t)12 * C * sizeof(float));
        lm_bert_set_unpadded(m, 1);
        CHECK_OK(lm_bert_encode(m, &b));
        if (k == 0) {
            CHECK_MSG(memcmp(ref, lm_bert_hidden(m), (size_t)12 * C * sizeof(float)) == 0, "left padding: not the padded path");
        } else {
            double e = rows_rel_err(lm_bert_hidden(m), ref, &b, C, 1);
            CHECK_MSG(e <= 1e-5, "right padding: unpadded rows rel err %g", e);
        }
        free(ref);
    }
    lm_bert_free(m);
}

int main(void) {
    lm_set_threads(2);
    test_dropout(0);
    test_dropout(1);
    for (int unpadded = 0; unpadded < 2; unpadded++) {
        test_mlm(unpadded);
        test_cls(unpadded, 0);
        test_cls(unpadded, 1);
    }
    test_new_head_and_losses();
    test_unpadded_fallback();
    TEST_MAIN_END();
}

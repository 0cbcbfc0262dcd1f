/* LoRA adapters for BERT's attention query and value projections:
 * y = W x + b + (alpha / r) B (A x). Only A and B (and the task head)
 * train; the encoder stays frozen. Saved in peft's layout so `peft` can
 * load them, and mergeable into W so a plain checkpoint results. */
#include "model/bert_internal.h"

#include "lmkit/kernels.h"
#include "lmkit/safetensors.h"
#include "model/param_table_build.h"

#include "base/json_field.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *lm_lora_target[2] = {"query", "value"};

/* Index into the table of layer l, target `which`, matrix 0 = A / 1 = B. */
static inline int lm_lora_index(int l, int which, int mat) { return (l * 2 + which) * 2 + mat; }
static inline float *lm_lora_at(const lm_lora *lo, float *base, int l, int which, int mat) {
    return base + lo->table.params[lm_lora_index(l, which, mat)].offset;
}

lm_status lm_lora_attach(lm_bert *m, int rank, float alpha, uint64_t seed, lm_lora **out) {
    *out = NULL;
    if (m->lora) return lm_error(LM_ERR_ARG, "lora: the model already has adapters attached");
    int C = m->cfg.hidden;
    if (rank < 1 || rank > C) return lm_error(LM_ERR_ARG, "lora: rank %d out of range [1, %d]", rank, C);
    if (!(alpha > 0)) return lm_error(LM_ERR_ARG, "lora: alpha %g must be positive", alpha);
    lm_lora *l = calloc(1, sizeof *l);
    if (!l) return lm_error(LM_ERR_NOMEM, "out of memory");
    l->model = m;
    l->rank = rank;
    l->alpha = alpha;
    l->scale = alpha / (float)rank;
    l->n_layer = m->cfg.n_layer;
    l->hidden = C;
    lm_status s = LM_OK;
    for (int layer = 0; layer < l->n_layer && s == LM_OK; layer++)
        for (int w = 0; w < 2 && s == LM_OK; w++) {
            s = lm_param_table_add(&l->table, 1, 2, (int64_t[]){rank, C},
                                   "base_model.model.bert.encoder.layer.%d.attention.self.%s.lora_A.weight", layer, lm_lora_target[w]);
            if (s == LM_OK)
                s = lm_param_table_add(&l->table, 1, 2, (int64_t[]){C, rank},
                                       "base_model.model.bert.encoder.layer.%d.attention.self.%s.lora_B.weight", layer, lm_lora_target[w]);
        }
    if (s == LM_OK && (!(l->params = lm_alloc(l->table.total * sizeof(float))) || !(l->grads = lm_alloc(l->table.total * sizeof(float)))))
        s = LM_ERR_NOMEM;
    if (s != LM_OK) {
        lm_lora_free(l);
        return s;
    }
    /* peft's init: A ~ Kaiming-uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)),
     * B = 0, so the adapted model starts equal to the base model. */
    float bound = 1.0f / sqrtf((float)C);
    for (int i = 0; i < l->table.n; i += 2) {
        lm_rng r;
        lm_rng_seed(&r, seed, 5000 + (uint64_t)i);
        float *A = l->params + l->table.params[i].offset;
        for (size_t j = 0; j < l->table.params[i].numel; j++) A[j] = bound * (2.0f * lm_rng_uniform(&r) - 1.0f);
    }
    m->lora = l;
    if (m->cap_B) {
        s = lm_lora_reserve(l, (size_t)m->cap_B * m->cap_T);
        if (s != LM_OK) {
            m->lora = NULL;
            lm_lora_free(l);
            return s;
        }
    }
    *out = l;
    return LM_OK;
}

void lm_lora_free(lm_lora *l) {
    if (!l) return;
    lm_param_table_free(&l->table);
    lm_free(l->params);
    lm_free(l->grads);
    lm_free(l->xa);
    free(l);
}

lm_status lm_lora_reserve(lm_lora *l, size_t BT) {
    if (BT <= l->cap_BT) return LM_OK;
    lm_free(l->xa);
    size_t n = BT * (size_t)l->rank;
    l->xa = lm_alloc((2 * (size_t)l->n_layer + 1) * n * sizeof(float));
    if (!l->xa) {
        l->cap_BT = 0;
        return lm_error(LM_ERR_NOMEM, "out of memory for LoRA activations");
    }
    l->dxa = l->xa + 2 * (size_t)l->n_layer * n;
    l->cap_BT = BT;
    return LM_OK;
}

const lm_param_table *lm_lora_params(const lm_lora *l) { return &l->table; }
float *lm_lora_param_data(lm_lora *l) { return l->params; }
float *lm_lora_grad_data(lm_lora *l) { return l->grads; }
int lm_lora_rank(const lm_lora *l) { return l->rank; }
float lm_lora_alpha(const lm_lora *l) { return l->alpha; }

void lm_lora_forward(lm_lora *l, int layer, int which, const float *x, float *out, int BT) {
    int C = l->hidden, r = l->rank;
    float *xa = l->xa + (size_t)(layer * 2 + which) * l->cap_BT * r;
    lm_sgemm(0, 1, BT, r, C, 1.0f, x, C, lm_lora_at(l, l->params, layer, which, 0), C, 0.0f, xa, r);
    lm_sgemm(0, 1, BT, C, r, l->scale, xa, r, lm_lora_at(l, l->params, layer, which, 1), r, 1.0f, out, C);
}

void lm_lora_backward(lm_lora *l, int layer, int which, const float *x, const float *dout, float *dx, int BT) {
    int C = l->hidden, r = l->rank;
    const float *xa = l->xa + (size_t)(layer * 2 + which) * l->cap_BT * r;
    float *A = lm_lora_at(l, l->params, layer, which, 0), *Bm = lm_lora_at(l, l->params, layer, which, 1);
    float *dA = lm_lora_at(l, l->grads, layer, which, 0), *dB = lm_lora_at(l, l->grads, layer, which, 1);
    lm_sgemm(1, 0, C, r, BT, l->scale, dout, C, xa, r, 1.0f, dB, r);
    lm_sgemm(0, 0, BT, r, C, l->scale, dout, C, Bm, r, 0.0f, l->dxa, r);
    lm_sgemm(1, 0, r, C, BT, 1.0f, l->dxa, r, x, C, 1.0f, dA, C);
    lm_sgemm(0, 0, BT, C, r, 1.0f, l->dxa, r, A, C, 1.0f, dx, C);
}

void lm_lora_add_to_weights(lm_bert *m, const lm_lora *l) {
    int C = l->hidden, r = l->rank;
    static const int target_w[2] = {BP_Q_W, BP_V_W};
    for (int layer = 0; layer < l->n_layer; layer++)
        for (int w = 0; w < 2; w++)
            lm_sgemm(0, 0, C, C, r, l->scale, lm_lora_at(l, l->params, layer, w, 1), r, lm_lora_at(l, l->params, layer, w, 0), C, 1.0f,
                     lm_bert_layer_at(m, m->params, layer, target_w[w]), C);
}

void lm_lora_merge(lm_bert *m, lm_lora *l) {
    lm_lora_add_to_weights(m, l);
    if (m->lora == l) m->lora = NULL;
    lm_lora_free(l);
}

lm_status lm_lora_save_dir(const lm_lora *l, const char *dir, const char *base_model) {
    LM_TRY(lm_mkdir_p(dir));
    const lm_bert *m = l->model;
    lm_st_writer w;
    lm_st_writer_init(&w);
    lm_status s = lm_st_writer_meta(&w, "format", "pt");
    for (int i = 0; i < l->table.n && s == LM_OK; i++) {
        const lm_param *p = &l->table.params[i];
        s = lm_st_writer_add(&w, p->name, LM_DTYPE_F32, p->ndim, p->shape, l->params + p->offset);
    }
    /* The task head trains too; peft stores it as a module to save. */
    static const char *head_names[2] = {"base_model.model.classifier.weight", "base_model.model.classifier.bias"};
    for (int i = 0; i < 2 && s == LM_OK && m->p_head >= 0 && m->cfg.head == LM_BERT_HEAD_CLS; i++) {
        const lm_param *p = &m->table.params[m->p_head + i];
        s = lm_st_writer_add(&w, head_names[i], LM_DTYPE_F32, p->ndim, p->shape, m->params + p->offset);
    }
    char *st_path = lm_path_join(dir, "adapter_model.safetensors"), *cfg_path = lm_path_join(dir, "adapter_config.json");
    if (s == LM_OK) s = lm_st_writer_save(&w, st_path);
    lm_st_writer_free(&w);
    if (s == LM_OK) {
        json_t *root = json_pack("{s:s, s:s, s:i, s:f, s:f, s:[s,s], s:[s,s], s:s, s:b, s:b, s:s}", "peft_type", "LORA", "task_type", "SEQ_CLS",
                                 "r", l->rank, "lora_alpha", (double)l->alpha, "lora_dropout", 0.0, "target_modules", "query", "value",
                                 "modules_to_save", "classifier", "score", "bias", "none", "fan_in_fan_out", 0, "inference_mode", 1,
                                 "base_model_name_or_path", base_model ? base_model : "");
        s = lm_json_save(root, cfg_path);
    }
    free(st_path);
    free(cfg_path);
    return s;
}

lm_status lm_lora_load(lm_lora *l, const char *dir) {
    char *st_path = lm_path_join(dir, "adapter_model.safetensors");
    lm_safetensors st;
    lm_status s = lm_safetensors_open(st_path, &st);
    if (s != LM_OK) {
        free(st_path);
        return s;
    }
    for (int i = 0; i < l->table.n && s == LM_OK; i++) {
        const lm_param *p = &l->table.params[i];
        const lm_st_tensor *t = lm_safetensors_find(&st, p->name);
        if (!t) s = lm_error(LM_ERR_FORMAT, "%s: missing tensor '%s'", st_path, p->name);
        else if (t->numel != (int64_t)p->numel || t->ndim != 2 || t->shape[0] != p->shape[0])
            s = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' has the wrong shape for rank %d", st_path, p->name, l->rank);
        else s = lm_st_tensor_to_f32(t, l->params + p->offset, (int64_t)p->numel);
    }
    lm_safetensors_close(&st);
    free(st_path);
    return s;
}

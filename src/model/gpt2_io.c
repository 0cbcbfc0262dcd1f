/* GPT-2 checkpoints: Hugging Face safetensors in and out, as loops over
 * the parameter table. */
#include "model/gpt2_internal.h"

#include "lmkit/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HF GPT-2 files name tensors either "transformer.h.0..." (saved from
 * GPT2LMHeadModel) or "h.0..." (saved from GPT2Model, like the original
 * gpt2 release); accept both. */
static const lm_st_tensor *lm_find_either(const lm_safetensors *st, const char *name) {
    const lm_st_tensor *t = lm_safetensors_find(st, name);
    if (!t && !strncmp(name, "transformer.", 12)) t = lm_safetensors_find(st, name + 12);
    return t;
}

lm_status lm_gpt2_load_weights(lm_gpt2 *m, const char *path) {
    lm_safetensors st;
    LM_TRY(lm_safetensors_open(path, &st));
    lm_status s = LM_OK;
    for (int i = 0; i < m->table.n && s == LM_OK; i++) {
        const lm_param *p = &m->table.params[i];
        const lm_st_tensor *t = lm_find_either(&st, p->name);
        if (!t) {
            s = lm_error(LM_ERR_FORMAT, "%s: missing tensor '%s'", path, p->name);
            break;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) {
            char got[128] = "", want[128] = "";
            for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? "," : "", (long long)t->shape[d]);
            for (int d = 0; d < p->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "," : "", (long long)p->shape[d]);
            s = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' has shape [%s], config expects [%s]", path, p->name, got, want);
            break;
        }
        s = lm_st_tensor_to_f32(t, m->params + p->offset, (int64_t)p->numel);
        if (s != LM_OK) s = lm_error(s, "%s: %s", path, lm_last_error());
    }
    /* An untied LM head would silently be ignored by a tied model: refuse it. */
    const lm_st_tensor *head = lm_safetensors_find(&st, "lm_head.weight");
    if (s == LM_OK && head) {
        const lm_param *wte = &m->table.params[0];
        const lm_st_tensor *emb = lm_find_either(&st, wte->name);
        if (head->nbytes != emb->nbytes || (head->data != emb->data && memcmp(head->data, emb->data, head->nbytes) != 0))
            s = lm_error(LM_ERR_UNSUPPORTED, "%s: lm_head.weight differs from wte.weight (untied head is not supported)", path);
    }
    lm_safetensors_close(&st);
    return s;
}

lm_status lm_gpt2_save_weights(const lm_gpt2 *m, const char *path, long step) {
    lm_st_writer w;
    lm_st_writer_init(&w);
    lm_status s = lm_st_writer_meta(&w, "format", "pt");
    char buf[32];
    snprintf(buf, sizeof buf, "%ld", step);
    if (s == LM_OK) s = lm_st_writer_meta(&w, "lmkit_step", buf);
    for (int i = 0; i < m->table.n && s == LM_OK; i++) {
        const lm_param *p = &m->table.params[i];
        s = lm_st_writer_add(&w, p->name, LM_DTYPE_F32, p->ndim, p->shape, m->params + p->offset);
    }
    if (s == LM_OK) s = lm_st_writer_save(&w, path);
    lm_st_writer_free(&w);
    return s;
}

/* The parameters config c declares, against the elements the weights file
 * holds: checked before the model is allocated, so a config.json that
 * claims a far larger model than its file fails at once, not after
 * gigabytes of allocation and random initialization. */
static lm_status lm_gpt2_check_size(const lm_model_config *c, const char *path) {
    lm_safetensors st;
    LM_TRY(lm_safetensors_open(path, &st));
    double in_file = 0;
    for (int i = 0; i < st.n_tensors; i++) in_file += (double)st.tensors[i].numel;
    lm_safetensors_close(&st);
    double C = c->n_embd, I = c->n_inner;
    double per_layer = 4 * C + (3 * C * C + 3 * C) + (C * C + C) + (C * I + I) + (I * C + C);
    double declared = (double)c->vocab_size * C + (double)c->n_ctx * C + c->n_layer * per_layer + 2 * C;
    /* small mismatches go on to the tensor-by-tensor message, which names
     * the tensor and both shapes; a config claiming a much larger model
     * stops here */
    if (declared > 2 * in_file + (double)(1 << 24))
        return lm_error(LM_ERR_FORMAT, "%s: config.json declares %.0f parameters (vocab_size %d, n_positions %d, n_embd %d, n_layer %d), the weights hold %.0f",
                        path, declared, c->vocab_size, c->n_ctx, c->n_embd, c->n_layer, in_file);
    return LM_OK;
}

lm_status lm_gpt2_open_dir(const char *dir, int train, lm_gpt2 **out) {
    *out = NULL;
    char *cfg_path = lm_path_join(dir, "config.json");
    char *st_path = lm_path_join(dir, "model.safetensors");
    char *idx_path = lm_path_join(dir, "model.safetensors.index.json");
    const char *weights = lm_file_exists(st_path) || !lm_file_exists(idx_path) ? st_path : idx_path;
    lm_model_config c;
    lm_status s = lm_config_load(cfg_path, &c);
    lm_gpt2 *m = NULL;
    if (s == LM_OK) s = lm_gpt2_check_size(&c, weights);
    if (s == LM_OK) s = lm_gpt2_create(&c, train, 0, &m);
    if (s == LM_OK) s = lm_gpt2_load_weights(m, weights);
    free(cfg_path);
    free(st_path);
    free(idx_path);
    if (s != LM_OK) {
        lm_gpt2_free(m);
        return s;
    }
    *out = m;
    return LM_OK;
}

/* BERT checkpoints: Hugging Face directories in and out, as loops over the
 * parameter table. Accepts the naming variants found in the wild: with or
 * without the "bert." prefix (BertModel vs BertFor*), and the old
 * LayerNorm gamma/beta names. */
#include "model/bert_internal.h"

#include "lmkit/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const lm_st_tensor *lm_find_variant(const lm_safetensors *st, const char *name) {
    const lm_st_tensor *t = lm_safetensors_find(st, name);
    char alt[160];
    if (!t && !strncmp(name, "bert.", 5)) t = lm_safetensors_find(st, name + 5);
    if (!t && strncmp(name, "bert.", 5) != 0) {
        snprintf(alt, sizeof alt, "bert.%s", name);
        t = lm_safetensors_find(st, alt);
    }
    size_t len = strlen(name);
    if (!t && len > 16 && !strcmp(name + len - 16, "LayerNorm.weight")) {
        snprintf(alt, sizeof alt, "%.*sLayerNorm.gamma", (int)(len - 16), name);
        t = lm_find_variant(st, alt);
    }
    if (!t && len > 14 && !strcmp(name + len - 14, "LayerNorm.bias")) {
        snprintf(alt, sizeof alt, "%.*sLayerNorm.beta", (int)(len - 14), name);
        t = lm_find_variant(st, alt);
    }
    return t;
}

static void lm_shape_str(char *buf, size_t n, const int64_t *shape, int ndim) {
    buf[0] = '\0';
    for (int d = 0; d < ndim; d++) snprintf(buf + strlen(buf), n - strlen(buf), "%s%lld", d ? "," : "", (long long)shape[d]);
}

lm_status lm_bert_load_weights(lm_bert *m, const char *path, int allow_missing_head) {
    lm_safetensors st;
    LM_TRY(lm_safetensors_open(path, &st));
    lm_status s = LM_OK;
    int first_head = m->p_pool >= 0 ? m->p_pool : m->p_head;
    m->new_tensors = 0;
    for (int i = 0; i < m->table.n && s == LM_OK; i++) {
        const lm_param *p = &m->table.params[i];
        const lm_st_tensor *t = lm_find_variant(&st, p->name);
        if (!t) {
            if (allow_missing_head && first_head >= 0 && i >= first_head) {
                lm_bert_init_tensor(m, i, m->init_seed); /* fresh, as HF initialises it */
                m->new_tensors++;
                continue;
            }
            s = lm_error(LM_ERR_FORMAT, "%s: missing tensor '%s'", path, p->name);
            break;
        }
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) {
            char got[128], want[128];
            lm_shape_str(got, sizeof got, t->shape, t->ndim);
            lm_shape_str(want, sizeof want, p->shape, p->ndim);
            if (i >= m->p_head && m->p_head >= 0 && m->cfg.head == LM_BERT_HEAD_CLS)
                s = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' has shape [%s] but the model has %d labels (expected [%s])", path,
                             p->name, got, m->cfg.num_labels, want);
            else
                s = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' has shape [%s], config expects [%s]", path, p->name, got, want);
            break;
        }
        s = lm_st_tensor_to_f32(t, m->params + p->offset, (int64_t)p->numel);
        if (s != LM_OK) s = lm_error(s, "%s: tensor '%s': %s", path, p->name, lm_last_error());
    }
    lm_safetensors_close(&st);
    return s;
}

lm_status lm_bert_save_weights(const lm_bert *m, const char *path) {
    lm_st_writer w;
    lm_st_writer_init(&w);
    lm_status s = lm_st_writer_meta(&w, "format", "pt");
    for (int i = 0; i < m->table.n && s == LM_OK; i++) {
        const lm_param *p = &m->table.params[i];
        s = lm_st_writer_add(&w, p->name, LM_DTYPE_F32, p->ndim, p->shape, m->params + p->offset);
    }
    if (s == LM_OK) s = lm_st_writer_save(&w, path);
    lm_st_writer_free(&w);
    return s;
}

lm_status lm_bert_save_dir(const lm_bert *m, const char *dir) {
    LM_TRY(lm_mkdir_p(dir));
    char *cfg = lm_path_join(dir, "config.json"), *wts = lm_path_join(dir, "model.safetensors");
    lm_status s = cfg && wts ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    /* Weights first: a directory whose config is new but weights old would
     * load with the wrong head shape; the reverse cannot happen. */
    if (s == LM_OK) s = lm_bert_save_weights(m, wts);
    if (s == LM_OK) s = lm_bert_config_save(&m->cfg, cfg);
    free(cfg);
    free(wts);
    return s;
}

lm_status lm_bert_open_dir(const char *dir, const lm_bert_open_options *o, lm_bert **out) {
    *out = NULL;
    lm_bert_open_options def;
    if (!o) {
        lm_bert_open_options_default(&def);
        o = &def;
    }
    char *cfg_path = lm_path_join(dir, "config.json");
    char *st_path = lm_path_join(dir, "model.safetensors");
    char *idx_path = lm_path_join(dir, "model.safetensors.index.json");
    lm_bert_config c;
    memset(&c, 0, sizeof c);
    lm_bert *m = NULL;
    lm_status s = lm_bert_config_load(cfg_path, &c);
    if (s == LM_OK && o->head >= 0) c.head = (lm_bert_head)o->head;
    if (s == LM_OK && o->problem >= 0) c.problem = (lm_problem)o->problem;
    if (s == LM_OK && o->num_labels > 0 && (o->num_labels != c.num_labels || o->labels)) {
        s = lm_bert_config_set_labels(&c, o->num_labels, o->labels);
    }
    if (s == LM_OK) s = lm_bert_create_uninit(&c, o->train, o->seed, &m);
    if (s == LM_OK) s = lm_bert_load_weights(m, lm_file_exists(st_path) || !lm_file_exists(idx_path) ? st_path : idx_path, 1);
    lm_bert_config_free(&c);
    free(cfg_path);
    free(st_path);
    free(idx_path);
    if (s != LM_OK) {
        lm_bert_free(m);
        return s;
    }
    *out = m;
    return LM_OK;
}

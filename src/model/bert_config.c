/* BertConfig <-> Hugging Face config.json, including the label maps
 * (id2label / label2id) a fine-tuned classifier carries. */
#include "lmkit/bert.h"

#include "base/json_field.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_bert_config_validate(const lm_bert_config *c) {
    if (c->vocab_size < 1 || c->vocab_size > (1 << 24)) return lm_error(LM_ERR_ARG, "config: vocab_size %d out of range", c->vocab_size);
    if (c->hidden < 1 || c->hidden > (1 << 16)) return lm_error(LM_ERR_ARG, "config: hidden_size %d out of range", c->hidden);
    if (c->n_layer < 1 || c->n_layer > 1024) return lm_error(LM_ERR_ARG, "config: num_hidden_layers %d out of range", c->n_layer);
    if (c->n_head < 1 || c->hidden % c->n_head)
        return lm_error(LM_ERR_ARG, "config: hidden_size %d is not divisible by num_attention_heads %d", c->hidden, c->n_head);
    if (c->intermediate < 1 || c->intermediate > (1 << 18)) return lm_error(LM_ERR_ARG, "config: intermediate_size %d out of range", c->intermediate);
    if (c->max_pos < 1 || c->max_pos > (1 << 20)) return lm_error(LM_ERR_ARG, "config: max_position_embeddings %d out of range", c->max_pos);
    if (c->type_vocab < 1 || c->type_vocab > 1024) return lm_error(LM_ERR_ARG, "config: type_vocab_size %d out of range", c->type_vocab);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1)) return lm_error(LM_ERR_ARG, "config: layer_norm_eps %g out of range (0, 1)", c->layer_norm_eps);
    if (!(c->hidden_dropout >= 0 && c->hidden_dropout < 1)) return lm_error(LM_ERR_ARG, "config: hidden_dropout_prob %g out of range [0, 1)", c->hidden_dropout);
    if (!(c->attn_dropout >= 0 && c->attn_dropout < 1)) return lm_error(LM_ERR_ARG, "config: attention_probs_dropout_prob %g out of range [0, 1)", c->attn_dropout);
    if (!(c->classifier_dropout < 1)) return lm_error(LM_ERR_ARG, "config: classifier_dropout %g out of range [0, 1)", c->classifier_dropout);
    if (c->num_labels < 1 || c->num_labels > 100000) return lm_error(LM_ERR_ARG, "config: num_labels %d out of range", c->num_labels);
    if (c->pad_token_id >= c->vocab_size)
        return lm_error(LM_ERR_ARG, "config: pad_token_id %d is not below vocab_size %d", c->pad_token_id, c->vocab_size);
    return LM_OK;
}

void lm_bert_config_free(lm_bert_config *c) {
    if (c->labels)
        for (int i = 0; i < c->num_labels; i++) free(c->labels[i]);
    free(c->labels);
    c->labels = NULL;
}

lm_status lm_bert_config_set_labels(lm_bert_config *c, int n, const char *const *names) {
    if (n < 1) return lm_error(LM_ERR_ARG, "config: %d labels (need at least 1)", n);
    char **l = calloc((size_t)n, sizeof *l);
    if (!l) return lm_error(LM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        char def[32];
        snprintf(def, sizeof def, "LABEL_%d", i);
        l[i] = strdup(names && names[i] ? names[i] : def);
        if (!l[i]) {
            for (int j = 0; j < i; j++) free(l[j]);
            free(l);
            return lm_error(LM_ERR_NOMEM, "out of memory");
        }
    }
    lm_bert_config_free(c);
    c->labels = l;
    c->num_labels = n;
    return LM_OK;
}

lm_status lm_bert_config_copy(lm_bert_config *dst, const lm_bert_config *src) {
    *dst = *src;
    dst->labels = NULL;
    if (src->labels) return lm_bert_config_set_labels(dst, src->num_labels, (const char *const *)src->labels);
    return LM_OK;
}

/* id2label is {"0": "neg", "1": "pos"}: every id 0..n-1 exactly once. */
static lm_status lm_load_labels(json_t *root, const char *path, lm_bert_config *c) {
    json_t *map = json_object_get(root, "id2label");
    if (!map || json_is_null(map)) return lm_bert_config_set_labels(c, c->num_labels, NULL);
    if (!json_is_object(map)) return lm_error(LM_ERR_FORMAT, "%s: field 'id2label' must be an object", path);
    int n = (int)json_object_size(map);
    if (n < 1) return lm_error(LM_ERR_FORMAT, "%s: field 'id2label' is empty", path);
    const char **names = calloc((size_t)n, sizeof *names);
    if (!names) return lm_error(LM_ERR_NOMEM, "out of memory");
    const char *key;
    json_t *val;
    lm_status s = LM_OK;
    json_object_foreach(map, key, val) {
        char *end;
        long id = strtol(key, &end, 10);
        if (*key == '\0' || *end || id < 0 || id >= n || names[id]) {
            s = lm_error(LM_ERR_FORMAT, "%s: id2label key '%s' is not a distinct id in [0, %d)", path, key, n);
            break;
        }
        if (!json_is_string(val)) {
            s = lm_error(LM_ERR_FORMAT, "%s: id2label['%s'] must be a string", path, key);
            break;
        }
        names[id] = json_string_value(val);
    }
    if (s == LM_OK) s = lm_bert_config_set_labels(c, n, names);
    free(names);
    return s;
}

lm_status lm_bert_config_load(const char *path, lm_bert_config *c) {
    memset(c, 0, sizeof *c);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (!lm_file_exists(path)) return lm_error(LM_ERR_IO, "%s: no such file", path);
        return lm_error(LM_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", path, jerr.text, jerr.line);
    }
    lm_status s = LM_OK;
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) s = lm_error(LM_ERR_FORMAT, "%s: missing string field 'model_type'", path);
    else if (strcmp(json_string_value(mt), "bert") != 0)
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: model_type '%s' is not a BERT model (expected 'bert')", path, json_string_value(mt));
    if (s == LM_OK) s = lm_json_field_int(root, path, "vocab_size", &c->vocab_size, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "hidden_size", &c->hidden, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "num_hidden_layers", &c->n_layer, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "num_attention_heads", &c->n_head, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "intermediate_size", &c->intermediate, 1);
    c->max_pos = 512;
    c->type_vocab = 2;
    if (s == LM_OK) s = lm_json_field_int(root, path, "max_position_embeddings", &c->max_pos, 0);
    if (s == LM_OK) s = lm_json_field_int(root, path, "type_vocab_size", &c->type_vocab, 0);
    if (s == LM_OK) s = lm_json_field_int(root, path, "pad_token_id", &c->pad_token_id, 0);
    c->layer_norm_eps = 1e-12f;
    json_t *eps = json_object_get(root, "layer_norm_eps");
    if (s == LM_OK && eps) {
        if (!json_is_number(eps)) s = lm_error(LM_ERR_FORMAT, "%s: field 'layer_norm_eps' must be a number", path);
        else c->layer_norm_eps = (float)json_number_value(eps);
    }
    /* BertConfig's defaults: 0.1, 0.1 and null. */
    c->hidden_dropout = c->attn_dropout = 0.1f;
    c->classifier_dropout = -1;
    static const char *drop_names[] = {"hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"};
    float *drop_fields[] = {&c->hidden_dropout, &c->attn_dropout, &c->classifier_dropout};
    for (int i = 0; i < 3 && s == LM_OK; i++) {
        json_t *v = json_object_get(root, drop_names[i]);
        if (!v || json_is_null(v)) continue;
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) >= 1)
            s = lm_error(LM_ERR_FORMAT, "%s: field '%s' must be a number in [0, 1)", path, drop_names[i]);
        else *drop_fields[i] = (float)json_number_value(v);
    }
    json_t *act = json_object_get(root, "hidden_act");
    if (s == LM_OK && act && (!json_is_string(act) || strcmp(json_string_value(act), "gelu") != 0))
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported (expected 'gelu')", path,
                     json_is_string(act) ? json_string_value(act) : "?");
    json_t *pe = json_object_get(root, "position_embedding_type");
    if (s == LM_OK && pe && !json_is_null(pe) && (!json_is_string(pe) || strcmp(json_string_value(pe), "absolute") != 0))
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: position_embedding_type '%s' is not supported (expected 'absolute')", path,
                     json_is_string(pe) ? json_string_value(pe) : "?");
    c->head = LM_BERT_HEAD_NONE;
    json_t *arch = json_object_get(root, "architectures");
    if (s == LM_OK && json_is_array(arch) && json_array_size(arch) > 0 && json_is_string(json_array_get(arch, 0))) {
        const char *a = json_string_value(json_array_get(arch, 0));
        if (!strcmp(a, "BertForMaskedLM") || !strcmp(a, "BertForPreTraining")) c->head = LM_BERT_HEAD_MLM;
        else if (!strcmp(a, "BertForSequenceClassification")) c->head = LM_BERT_HEAD_CLS;
    }
    c->num_labels = 2;
    json_t *id2 = json_object_get(root, "id2label");
    if (s == LM_OK && json_is_object(id2)) c->num_labels = (int)json_object_size(id2);
    if (s == LM_OK) s = lm_json_field_int(root, path, "num_labels", &c->num_labels, 0);
    if (s == LM_OK) s = lm_load_labels(root, path, c);
    c->problem = LM_PROBLEM_SINGLE_LABEL;
    json_t *pt = json_object_get(root, "problem_type");
    if (s == LM_OK && pt && !json_is_null(pt)) {
        const char *p = json_is_string(pt) ? json_string_value(pt) : "?";
        if (!strcmp(p, "single_label_classification")) c->problem = LM_PROBLEM_SINGLE_LABEL;
        else if (!strcmp(p, "multi_label_classification")) c->problem = LM_PROBLEM_MULTI_LABEL;
        else if (!strcmp(p, "regression")) c->problem = LM_PROBLEM_REGRESSION;
        else s = lm_error(LM_ERR_FORMAT, "%s: unknown problem_type '%s'", path, p);
    } else if (s == LM_OK && c->num_labels == 1) {
        c->problem = LM_PROBLEM_REGRESSION; /* HF infers regression from one label */
    }
    json_decref(root);
    if (s == LM_OK) {
        s = lm_bert_config_validate(c);
        if (s != LM_OK) s = lm_error(s, "%s: %s", path, lm_last_error());
    }
    if (s != LM_OK) lm_bert_config_free(c);
    return s;
}

/* A float config value as the decimal it was written as (0.1, not
 * 0.10000000149011612). */
static double tidy(float x) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", (double)x);
    return strtod(b, NULL);
}

lm_status lm_bert_config_save(const lm_bert_config *c, const char *path) {
    static const char *arch_names[] = {"BertModel", "BertForMaskedLM", "BertForSequenceClassification"};
    static const char *problems[] = {"single_label_classification", "multi_label_classification", "regression"};
    json_t *root = json_object();
    json_object_set_new(root, "architectures", json_pack("[s]", arch_names[c->head]));
    json_object_set_new(root, "model_type", json_string("bert"));
    json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(root, "hidden_size", json_integer(c->hidden));
    json_object_set_new(root, "num_hidden_layers", json_integer(c->n_layer));
    json_object_set_new(root, "num_attention_heads", json_integer(c->n_head));
    json_object_set_new(root, "intermediate_size", json_integer(c->intermediate));
    json_object_set_new(root, "max_position_embeddings", json_integer(c->max_pos));
    json_object_set_new(root, "type_vocab_size", json_integer(c->type_vocab));
    json_object_set_new(root, "pad_token_id", json_integer(c->pad_token_id));
    json_object_set_new(root, "hidden_act", json_string("gelu"));
    json_object_set_new(root, "layer_norm_eps", json_real(tidy(c->layer_norm_eps)));
    json_object_set_new(root, "hidden_dropout_prob", json_real(tidy(c->hidden_dropout)));
    json_object_set_new(root, "attention_probs_dropout_prob", json_real(tidy(c->attn_dropout)));
    json_object_set_new(root, "classifier_dropout", c->classifier_dropout >= 0 ? json_real(tidy(c->classifier_dropout)) : json_null());
    json_object_set_new(root, "initializer_range", json_real(0.02));
    json_object_set_new(root, "position_embedding_type", json_string("absolute"));
    json_object_set_new(root, "tie_word_embeddings", json_true());
    json_object_set_new(root, "dtype", json_string("float32"));
    if (c->head == LM_BERT_HEAD_CLS) {
        json_t *id2 = json_object(), *l2i = json_object();
        for (int i = 0; i < c->num_labels; i++) {
            char key[32], def[32];
            snprintf(key, sizeof key, "%d", i);
            snprintf(def, sizeof def, "LABEL_%d", i);
            const char *name = c->labels ? c->labels[i] : def;
            json_object_set_new(id2, key, json_string(name));
            json_object_set_new(l2i, name, json_integer(i));
        }
        json_object_set_new(root, "id2label", id2);
        json_object_set_new(root, "label2id", l2i);
        json_object_set_new(root, "num_labels", json_integer(c->num_labels));
        json_object_set_new(root, "problem_type", json_string(problems[c->problem]));
    }
    return lm_json_save(root, path);
}

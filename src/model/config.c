/* Model configuration <-> Hugging Face config.json. */
#include "lmkit/model.h"

#include "base/json_field.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_config_validate(const lm_model_config *c) {
    if (c->vocab_size < 1 || c->vocab_size > (1 << 24)) return lm_error(LM_ERR_ARG, "config: vocab_size %d out of range [1, 16777216]", c->vocab_size);
    if (c->n_ctx < 1 || c->n_ctx > (1 << 20)) return lm_error(LM_ERR_ARG, "config: n_positions %d out of range [1, 1048576]", c->n_ctx);
    if (c->n_layer < 1 || c->n_layer > 1024) return lm_error(LM_ERR_ARG, "config: n_layer %d out of range [1, 1024]", c->n_layer);
    if (c->n_head < 1) return lm_error(LM_ERR_ARG, "config: n_head %d must be >= 1", c->n_head);
    if (c->n_embd < 1 || c->n_embd > (1 << 16)) return lm_error(LM_ERR_ARG, "config: n_embd %d out of range [1, 65536]", c->n_embd);
    if (c->n_embd % c->n_head) return lm_error(LM_ERR_ARG, "config: n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
    if (c->n_inner < 1 || c->n_inner > (1 << 18)) return lm_error(LM_ERR_ARG, "config: n_inner %d out of range", c->n_inner);
    if (!(c->layer_norm_eps > 0 && c->layer_norm_eps < 1)) return lm_error(LM_ERR_ARG, "config: layer_norm_epsilon %g out of range (0, 1)", c->layer_norm_eps);
    return LM_OK;
}

lm_status lm_config_load(const char *path, lm_model_config *c) {
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        if (!lm_file_exists(path)) return lm_error(LM_ERR_IO, "%s: no such file", path);
        return lm_error(LM_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", path, jerr.text, jerr.line);
    }
    memset(c, 0, sizeof *c);
    lm_status s = LM_OK;
    json_t *mt = json_object_get(root, "model_type");
    if (!json_is_string(mt)) s = lm_error(LM_ERR_FORMAT, "%s: missing string field 'model_type'", path);
    else if (strcmp(json_string_value(mt), "gpt2") != 0)
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: model_type '%s' is not supported here (expected 'gpt2')", path, json_string_value(mt));
    c->arch = LM_ARCH_GPT2;
    if (s == LM_OK) s = lm_json_field_int(root, path, "vocab_size", &c->vocab_size, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "n_positions", &c->n_ctx, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "n_embd", &c->n_embd, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "n_layer", &c->n_layer, 1);
    if (s == LM_OK) s = lm_json_field_int(root, path, "n_head", &c->n_head, 1);
    if (s == LM_OK) {
        c->n_inner = c->n_embd <= (1 << 16) ? 4 * c->n_embd : 0; /* n_embd is range-checked below */
        s = lm_json_field_int(root, path, "n_inner", &c->n_inner, 0);
    }
    c->layer_norm_eps = 1e-5f;
    c->bos_token_id = c->eos_token_id = -1;
    if (s == LM_OK) s = lm_json_field_int(root, path, "bos_token_id", &c->bos_token_id, 0);
    if (s == LM_OK) s = lm_json_field_int(root, path, "eos_token_id", &c->eos_token_id, 0);
    json_t *eps = json_object_get(root, "layer_norm_epsilon");
    if (s == LM_OK && eps) {
        if (!json_is_number(eps)) s = lm_error(LM_ERR_FORMAT, "%s: field 'layer_norm_epsilon' must be a number", path);
        else c->layer_norm_eps = (float)json_number_value(eps);
    }
    json_t *act = json_object_get(root, "activation_function");
    if (s == LM_OK && act && (!json_is_string(act) || (strcmp(json_string_value(act), "gelu_new") != 0 &&
                                                       strcmp(json_string_value(act), "gelu_pytorch_tanh") != 0)))
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: activation_function '%s' is not supported (expected gelu_new)", path,
                     json_is_string(act) ? json_string_value(act) : "?");
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    if (s == LM_OK && tie && json_is_false(tie))
        s = lm_error(LM_ERR_UNSUPPORTED, "%s: tie_word_embeddings=false is not supported for gpt2", path);
    json_decref(root);
    if (s == LM_OK) {
        s = lm_config_validate(c);
        if (s != LM_OK) s = lm_error(s, "%s: %s", path, lm_last_error());
    }
    /* an id past the vocabulary would fail only once generation reaches it */
    if (s == LM_OK && (c->bos_token_id >= c->vocab_size || c->eos_token_id >= c->vocab_size))
        s = lm_error(LM_ERR_FORMAT, "%s: bos/eos_token_id %d/%d is not below vocab_size %d", path, c->bos_token_id,
                     c->eos_token_id, c->vocab_size);
    return s;
}

lm_status lm_config_save(const lm_model_config *c, const char *path) {
    json_t *root = json_object();
    json_object_set_new(root, "architectures", json_pack("[s]", "GPT2LMHeadModel"));
    json_object_set_new(root, "model_type", json_string("gpt2"));
    json_object_set_new(root, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(root, "n_positions", json_integer(c->n_ctx));
    json_object_set_new(root, "n_ctx", json_integer(c->n_ctx));
    json_object_set_new(root, "n_embd", json_integer(c->n_embd));
    json_object_set_new(root, "n_layer", json_integer(c->n_layer));
    json_object_set_new(root, "n_head", json_integer(c->n_head));
    json_object_set_new(root, "n_inner", json_integer(c->n_inner));
    json_object_set_new(root, "activation_function", json_string("gelu_new"));
    /* The float epsilon printed as the decimal it was meant to be (1e-05,
     * not 9.9999997e-06). */
    char eps_text[32];
    snprintf(eps_text, sizeof eps_text, "%g", c->layer_norm_eps);
    json_object_set_new(root, "layer_norm_epsilon", json_real(strtod(eps_text, NULL)));
    json_object_set_new(root, "bos_token_id", c->bos_token_id >= 0 ? json_integer(c->bos_token_id) : json_null());
    json_object_set_new(root, "eos_token_id", c->eos_token_id >= 0 ? json_integer(c->eos_token_id) : json_null());
    json_object_set_new(root, "resid_pdrop", json_real(0));
    json_object_set_new(root, "embd_pdrop", json_real(0));
    json_object_set_new(root, "attn_pdrop", json_real(0));
    json_object_set_new(root, "initializer_range", json_real(0.02));
    json_object_set_new(root, "scale_attn_weights", json_true());
    json_object_set_new(root, "tie_word_embeddings", json_true());
    json_object_set_new(root, "use_cache", json_true());
    json_object_set_new(root, "torch_dtype", json_string("float32"));
    return lm_json_save(root, path);
}

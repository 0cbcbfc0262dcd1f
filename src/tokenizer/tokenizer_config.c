/* tokenizer_config.json: tells transformers' AutoTokenizer to use the fast
 * tokenizer from tokenizer.json as is (no tokens added behind our back) and
 * which strings are BOS/EOS. */
#include "lmkit/tokenizer.h"

#include "base/json_field.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *config_json(const lm_tokenizer *t, int model_max_length) {
    json_t *root = json_object();
    json_object_set_new(root, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    int32_t bos = lm_tokenizer_bos_id(t), eos = lm_tokenizer_eos_id(t);
    const char *bos_s = bos >= 0 ? lm_tokenizer_id_to_token(t, bos) : NULL;
    const char *eos_s = eos >= 0 ? lm_tokenizer_id_to_token(t, eos) : NULL;
    json_object_set_new(root, "bos_token", bos_s ? json_string(bos_s) : json_null());
    json_object_set_new(root, "eos_token", eos_s ? json_string(eos_s) : json_null());
    json_object_set_new(root, "clean_up_tokenization_spaces", json_false());
    if (model_max_length > 0) json_object_set_new(root, "model_max_length", json_integer(model_max_length));
    return root;
}

lm_status lm_tokenizer_save_config(const lm_tokenizer *t, const char *path, int model_max_length) {
    return lm_json_save(config_json(t, model_max_length), path);
}

lm_status lm_tokenizer_save_model_config(const lm_tokenizer *t, const char *path, int model_max_length, const char *chat_template) {
    json_t *root = config_json(t, model_max_length);
    /* transformers rebuilds the post-processor from add_bos_token, so it
     * must say what tokenizer.json's post-processor already does */
    int32_t *ids = NULL;
    size_t n = 0;
    lm_status s = lm_tokenizer_encode(t, "a", 1, 1, &ids, &n);
    int adds_bos = s == LM_OK && n > 0 && lm_tokenizer_bos_id(t) >= 0 && ids[0] == lm_tokenizer_bos_id(t);
    free(ids);
    if (s != LM_OK) {
        json_decref(root);
        return s;
    }
    json_object_set_new(root, "add_bos_token", json_boolean(adds_bos));
    json_object_set_new(root, "add_eos_token", json_false());
    if (chat_template) json_object_set_new(root, "chat_template", json_string(chat_template));
    return lm_json_save(root, path);
}

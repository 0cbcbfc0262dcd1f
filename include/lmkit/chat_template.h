/* Chat templates: the Jinja programs in a model's tokenizer_config.json
 * that turn a conversation into the exact prompt text the model was
 * fine-tuned on. lmkit interprets the subset of Jinja those templates use
 * (if/for/set/namespace, expressions, filters, string methods,
 * raise_exception) with transformers' settings (trim_blocks,
 * lstrip_blocks), so the output is byte-identical to
 * `tokenizer.apply_chat_template(..., tokenize=False)`. */
#ifndef LMKIT_CHAT_TEMPLATE_H
#define LMKIT_CHAT_TEMPLATE_H

#include "lmkit/base.h"

typedef struct {
    const char *role;    /* "system", "user", "assistant", ... */
    const char *content; /* UTF-8 */
} lm_chat_message;

/* A parsed template, reusable across renders (e.g. every chat turn). */
typedef struct lm_chat_template lm_chat_template;

/* Parses Jinja source. A syntax error, an unknown tag, filter or test is
 * an error naming the line and column. Free with lm_chat_template_free. */
lm_status lm_chat_template_parse(const char *source, lm_chat_template **out);
void lm_chat_template_free(lm_chat_template *t);

/* Renders with the variables transformers passes: messages (a list of
 * {role, content} dicts), bos_token, eos_token (NULL = ""), and
 * add_generation_prompt. raise_exception('msg') in the template, or a
 * runtime type error, is an error (LM_ERR_ARG) naming the position.
 * *out is malloc'd and NUL-terminated; the caller frees it. */
lm_status lm_chat_template_apply(const lm_chat_template *t, const lm_chat_message *msgs, int n, const char *bos,
                                 const char *eos, int add_generation_prompt, char **out);

/* Parse + apply in one call. */
lm_status lm_chat_template_render(const char *source, const lm_chat_message *msgs, int n, const char *bos, const char *eos,
                                  int add_generation_prompt, char **out);

/* Built-in templates for models that ship none: "chatml", "llama2",
 * "llama3", "mistral", "zephyr". Returns NULL for an unknown name. The
 * text is static; it is the same program the family's own
 * tokenizer_config.json carries. */
const char *lm_chat_template_builtin(const char *name);
/* Comma-separated list of the built-in names, for help and errors. */
const char *lm_chat_template_builtin_names(void);

/* Reads tokenizer_config.json: chat_template (a string, or the list of
 * {name, template} objects, of which "default" is taken, else the first),
 * bos_token and eos_token (a string or an {"content": ...} object).
 * Each output is malloc'd, or NULL when the file lacks it; the caller
 * frees them. A missing or malformed file is an error. */
lm_status lm_chat_template_load_config(const char *path, char **source, char **bos, char **eos);

/* The strings that end an assistant turn for this template: eos (if not
 * empty) and the well-known end-of-turn markers the source mentions
 * (<|im_end|>, <|eot_id|>, [INST], <|user|>, ...). Writes at most max
 * pointers (static strings or eos itself) and returns how many. */
int lm_chat_template_stop_strings(const char *source, const char *eos, const char **stops, int max);

#endif

/* Chat templates: the public face of the Jinja interpreter in jinja/,
 * the built-in templates, tokenizer_config.json loading and the
 * end-of-turn strings generation stops at. */
#include "lmkit/chat_template.h"

#include "infer/jinja/jinja.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct lm_chat_template {
    jarena *arena; /* owns the tree and src */
    jnodes body;
    const char *src;
};

/* Jinja normalizes \r\n and \r to \n and drops one trailing newline
 * (keep_trailing_newline=False); positions in messages refer to this text. */
static char *lm_normalize_source(jarena *a, const char *source) {
    size_t n = strlen(source), k = 0;
    char *s = jinja_alloc(a, n + 1);
    for (size_t i = 0; i < n; i++) {
        if (source[i] == '\r') {
            s[k++] = '\n';
            if (source[i + 1] == '\n') i++;
        } else {
            s[k++] = source[i];
        }
    }
    if (k && s[k - 1] == '\n') k--;
    s[k] = 0;
    return s;
}

lm_status lm_chat_template_parse(const char *source, lm_chat_template **out) {
    *out = NULL;
    if (!source) return lm_error(LM_ERR_ARG, "chat template: no source");
    lm_chat_template *t = calloc(1, sizeof *t);
    jarena *a = calloc(1, sizeof *a);
    if (!t || !a) {
        free(t);
        free(a);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    jmp_buf jb;
    a->on_error = &jb;
    if (setjmp(jb)) {
        /* t and a were not modified after setjmp, so they are valid here */
        lm_status code = a->code;
        jinja_arena_free(a);
        free(a);
        free(t);
        return code;
    }
    const char *src = lm_normalize_source(a, source);
    a->src = src;
    jtok *toks;
    size_t ntoks;
    jinja_lex(a, src, &toks, &ntoks);
    t->body = jinja_parse(a, toks, ntoks);
    t->src = src;
    a->on_error = NULL;
    t->arena = a;
    *out = t;
    return LM_OK;
}

void lm_chat_template_free(lm_chat_template *t) {
    if (!t) return;
    jinja_arena_free(t->arena);
    free(t->arena);
    free(t);
}

typedef struct {
    jarena a;
    jctx c;
    lm_status code;
} lm_render_state;

lm_status lm_chat_template_apply(const lm_chat_template *t, const lm_chat_message *msgs, int n, const char *bos,
                                 const char *eos, int add_generation_prompt, char **out) {
    *out = NULL;
    if (n < 0 || (n > 0 && !msgs)) return lm_error(LM_ERR_ARG, "chat template: bad message list");
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return lm_error(LM_ERR_ARG, "chat template: message %d lacks a role or content", i);
    /* heap state: only its address lives across setjmp */
    lm_render_state *st = calloc(1, sizeof *st);
    if (!st) return lm_error(LM_ERR_NOMEM, "out of memory");
    jmp_buf jb;
    st->a.on_error = &jb;
    st->a.src = t->src;
    if (setjmp(jb)) {
        lm_status code = st->a.code;
        jinja_arena_free(&st->a);
        free(st);
        return code;
    }
    jctx *c = &st->c;
    c->a = &st->a;
    c->globals = jdict_new(c->a);
    jv list = jv_list(c->a, (size_t)n);
    for (int i = 0; i < n; i++) {
        jv m = {JV_DICT, {0}};
        m.u.d = jdict_new(c->a);
        jdict_set(c->a, m.u.d, "role", 4, jv_cstr(msgs[i].role));
        jdict_set(c->a, m.u.d, "content", 7, jv_cstr(msgs[i].content));
        list.u.l->v[i] = m;
    }
    jdict_set(c->a, c->globals, "messages", 8, list);
    jdict_set(c->a, c->globals, "bos_token", 9, jv_cstr(bos ? bos : ""));
    jdict_set(c->a, c->globals, "eos_token", 9, jv_cstr(eos ? eos : ""));
    jdict_set(c->a, c->globals, "add_generation_prompt", 21, jv_bool(add_generation_prompt));
    c->scopes = jinja_alloc(c->a, 8 * sizeof *c->scopes);
    c->capscopes = 8;
    c->scopes[c->nscopes++] = jdict_new(c->a);
    c->out = (jbuf){c->a, NULL, 0, 0};
    jbuf_put(&c->out, "", 0);
    jinja_exec(c, &t->body);
    char *r = malloc(c->out.n + 1);
    if (r) memcpy(r, c->out.p, c->out.n + 1);
    jinja_arena_free(&st->a);
    free(st);
    if (!r) return lm_error(LM_ERR_NOMEM, "out of memory");
    *out = r;
    return LM_OK;
}

lm_status lm_chat_template_render(const char *source, const lm_chat_message *msgs, int n, const char *bos, const char *eos,
                                  int add_generation_prompt, char **out) {
    lm_chat_template *t;
    *out = NULL;
    LM_TRY(lm_chat_template_parse(source, &t));
    lm_status s = lm_chat_template_apply(t, msgs, n, bos, eos, add_generation_prompt, out);
    lm_chat_template_free(t);
    return s;
}

/* ---- built-in templates ----
 * Verbatim copies of each family's chat_template (see
 * tests/golden/chat_templates/README.md for where each comes from); the
 * golden test checks they still render like the originals. */
static const struct {
    const char *name, *source;
} lm_builtins[] = {
    {"chatml", "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
               "'\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"},
    {"llama2",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] "
     "%}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% "
     "if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
     "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
     "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] "
     "%}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
     "message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"},
    {"llama3",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set "
     "content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"},
    {"mistral",
     "{%- if messages[0]['role'] == 'system' %}\n    {%- set system_message = messages[0]['content'] %}\n    {%- set "
     "loop_messages = messages[1:] %}\n{%- else %}\n    {%- set loop_messages = messages %}\n{%- endif %}\n\n{{- bos_token "
     "}}\n{%- for message in loop_messages %}\n    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}\n        "
     "{{- raise_exception('After the optional system message, conversation roles must alternate "
     "user/assistant/user/assistant/...') }}\n    {%- endif %}\n    {%- if message['role'] == 'user' %}\n        {%- if "
     "loop.first and system_message is defined %}\n            {{- ' [INST] ' + system_message + '\\n\\n' + message['content'] + "
     "' [/INST]' }}\n        {%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        {%- endif "
     "%}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + message['content'] + eos_token}}\n    {%- else "
     "%}\n        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial "
     "optional system message!') }}\n    {%- endif %}\n{%- endfor %}\n"},
    {"zephyr", "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
               "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% "
               "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
               "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"},
};

const char *lm_chat_template_builtin(const char *name) {
    for (size_t i = 0; i < sizeof lm_builtins / sizeof lm_builtins[0]; i++)
        if (!strcmp(name, lm_builtins[i].name)) return lm_builtins[i].source;
    return NULL;
}

const char *lm_chat_template_builtin_names(void) { return "chatml, llama2, llama3, mistral, zephyr"; }

/* ---- tokenizer_config.json ---- */
static char *lm_token_string(json_t *v) {
    if (json_is_object(v)) v = json_object_get(v, "content");
    return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

lm_status lm_chat_template_load_config(const char *path, char **source, char **bos, char **eos) {
    *source = NULL;
    if (bos) *bos = NULL;
    if (eos) *eos = NULL;
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) return lm_error(LM_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
    lm_status s = LM_OK;
    if (!json_is_object(root)) {
        s = lm_error(LM_ERR_FORMAT, "%s: expected a JSON object", path);
        goto done;
    }
    json_t *ct = json_object_get(root, "chat_template");
    if (json_is_string(ct)) {
        *source = strdup(json_string_value(ct));
    } else if (json_is_array(ct)) {
        /* [{"name": "default", "template": ...}, {"name": "tool_use", ...}] */
        json_t *pick = NULL, *item;
        size_t i;
        json_array_foreach(ct, i, item) {
            json_t *name = json_object_get(item, "name");
            if (!pick || (json_is_string(name) && !strcmp(json_string_value(name), "default"))) pick = item;
        }
        json_t *tpl = pick ? json_object_get(pick, "template") : NULL;
        if (!json_is_string(tpl)) {
            s = lm_error(LM_ERR_FORMAT, "%s: chat_template list has no {\"name\", \"template\"} entry", path);
            goto done;
        }
        *source = strdup(json_string_value(tpl));
    } else if (ct && !json_is_null(ct)) {
        s = lm_error(LM_ERR_FORMAT, "%s: chat_template must be a string or a list of named templates", path);
        goto done;
    }
    if (bos) *bos = lm_token_string(json_object_get(root, "bos_token"));
    if (eos) *eos = lm_token_string(json_object_get(root, "eos_token"));
done:
    json_decref(root);
    return s;
}

int lm_chat_template_stop_strings(const char *source, const char *eos, const char **stops, int max) {
    static const char *const markers[] = {"<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|im_start|>",
                                          "<|user|>",   "[INST]",     "<|start_header_id|>", NULL};
    int n = 0;
    if (eos && eos[0] && n < max) stops[n++] = eos;
    for (int k = 0; markers[k] && n < max; k++)
        if (source && strstr(source, markers[k]) && !(eos && !strcmp(eos, markers[k]))) stops[n++] = markers[k];
    return n;
}

/* A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) as the
 * tokenizer.ggml.* keys of a GGUF, the way llama.cpp's convert_hf_to_gguf.py
 * writes them, so a model converted from an HF directory carries its
 * tokenizer (llama.cpp will not load a GGUF without one):
 *   BPE with byte fallback (LLaMA 1/2, Mistral): model "llama", the pieces,
 *     scores that order merges as tokenizer.json lists them, token types;
 *   byte-level BPE (GPT-2, LLaMA 3, Qwen2): model "gpt2", tokens, merges
 *     and the pre-tokenizer's name.
 * Token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused
 * (padding up to the model's vocab_size), 6 byte. */
#include "tokenizer/tok_internal.h"
#include "lmkit/gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

typedef struct {
    int32_t n;
    char **tok; /* by id, NUL-terminated */
    int32_t *type;
    float *score;
    char **merges;
    size_t n_merges;
    const char *model, *pre;
    int32_t bos, eos, unk;
    int add_bos, add_eos, add_space_prefix;
    char *chat_template;
    lm_strmap ids; /* token text -> id */
} hf_vocab;

static void hf_vocab_free(hf_vocab *v) {
    for (int32_t i = 0; i < v->n; i++) free(v->tok[i]);
    for (size_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tok);
    free(v->type);
    free(v->score);
    free(v->merges);
    free(v->chat_template);
    lm_strmap_free(&v->ids);
}

/* A special token given as a string or as {"content": ...}. */
static const char *token_content(json_t *j) {
    if (json_is_object(j)) j = json_object_get(j, "content");
    return json_string_value(j);
}

/* "a b" for a merge given as a string or as ["a", "b"]. */
static char *merge_text(json_t *m) {
    if (json_is_string(m)) return strdup(json_string_value(m));
    const char *a = json_string_value(json_array_get(m, 0)), *b = json_string_value(json_array_get(m, 1));
    if (!a || !b) return NULL;
    char *s = malloc(strlen(a) + strlen(b) + 2);
    if (s) sprintf(s, "%s %s", a, b);
    return s;
}

/* Whether the pipeline stage j (or a stage of its Sequence) has type ty. */
static json_t *find_stage(json_t *j, const char *ty) {
    if (!json_is_object(j)) return NULL;
    const char *t = json_string_value(json_object_get(j, "type"));
    if (t && !strcmp(t, ty)) return j;
    json_t *list = json_object_get(j, "pretokenizers");
    if (!list) list = json_object_get(j, "normalizers");
    if (!list) list = json_object_get(j, "processors");
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *f = find_stage(e, ty);
        if (f) return f;
    }
    return NULL;
}

/* The id of token text s, or -1. */
static int32_t id_of(const hf_vocab *v, const char *s) { return s ? lm_strmap_get(&v->ids, s, strlen(s)) : -1; }

/* Token strings by id: the model's vocabulary, then the added tokens. */
static lm_status collect_tokens(hf_vocab *v, json_t *model, json_t *added, int vocab_size, const char *path) {
    json_t *vocab = json_object_get(model, "vocab");
    if (!json_is_object(vocab) || json_object_size(vocab) < 3)
        return lm_error(LM_ERR_FORMAT, "%s: model.vocab must be an object of at least 3 tokens", path);
    int64_t n = 0;
    const char *key;
    json_t *val;
    size_t i;
    json_t *a;
    json_object_foreach(vocab, key, val) if (json_integer_value(val) + 1 > n) n = json_integer_value(val) + 1;
    json_array_foreach(added, i, a) if (json_integer_value(json_object_get(a, "id")) + 1 > n) n = json_integer_value(json_object_get(a, "id")) + 1;
    if (n > vocab_size)
        return lm_error(LM_ERR_UNSUPPORTED, "%s has %lld tokens, more than the model's vocab_size %d", path, (long long)n, vocab_size);
    v->n = vocab_size;
    v->tok = calloc((size_t)v->n, sizeof *v->tok);
    v->type = calloc((size_t)v->n, sizeof *v->type);
    v->score = calloc((size_t)v->n, sizeof *v->score);
    if (!v->tok || !v->type || !v->score) return lm_error(LM_ERR_NOMEM, "out of memory");
    json_object_foreach(vocab, key, val) {
        int64_t id = json_integer_value(val);
        if (id < 0 || v->tok[id]) continue;
        if (!(v->tok[id] = strdup(key))) return lm_error(LM_ERR_NOMEM, "out of memory");
        unsigned x;
        v->type[id] = strlen(key) == 6 && sscanf(key, "<0x%02X>", &x) == 1 ? T_BYTE : T_NORMAL;
    }
    json_array_foreach(added, i, a) {
        int64_t id = json_integer_value(json_object_get(a, "id"));
        const char *content = json_string_value(json_object_get(a, "content"));
        if (id < 0 || !content) continue;
        if (v->tok[id] && strcmp(v->tok[id], content))
            return lm_error(LM_ERR_FORMAT, "%s: id %lld is given to both '%s' and added token '%s'", path, (long long)id, v->tok[id], content);
        if (!v->tok[id] && !(v->tok[id] = strdup(content))) return lm_error(LM_ERR_NOMEM, "out of memory");
        v->type[id] = json_is_true(json_object_get(a, "special")) ? T_CONTROL : T_USER;
    }
    /* the rows of the embedding no token uses, as llama.cpp pads them */
    for (int32_t id = 0; id < v->n; id++)
        if (!v->tok[id]) {
            char pad[32];
            snprintf(pad, sizeof pad, "[PAD%d]", id);
            if (!(v->tok[id] = strdup(pad))) return lm_error(LM_ERR_NOMEM, "out of memory");
            v->type[id] = T_UNUSED;
        }
    for (int32_t id = 0; id < v->n; id++)
        if (lm_strmap_get(&v->ids, v->tok[id], strlen(v->tok[id])) < 0)
            LM_TRY(lm_strmap_put(&v->ids, v->tok[id], (uint32_t)strlen(v->tok[id]), id));
    return LM_OK;
}

/* Merges as "a b" strings, and (SentencePiece) the scores that make each
 * merged piece rank where tokenizer.json lists its merge. */
static lm_status collect_merges(hf_vocab *v, json_t *merges, int spm) {
    size_t n = json_array_size(merges), i;
    json_t *m;
    v->merges = calloc(n ? n : 1, sizeof *v->merges);
    if (!v->merges) return lm_error(LM_ERR_NOMEM, "out of memory");
    json_array_foreach(merges, i, m) {
        if (!(v->merges[i] = merge_text(m))) return lm_error(LM_ERR_FORMAT, "tokenizer.json: merge %zu is not 'a b' or [a, b]", i);
        v->n_merges = i + 1;
    }
    if (!spm) return LM_OK;
    /* A piece no merge makes: a single character or byte (score 0, never
     * the result of a merge), or something BPE must never build (lowest). */
    for (int32_t id = 0; id < v->n; id++) {
        const unsigned char *s = (const unsigned char *)v->tok[id];
        size_t len = strlen(v->tok[id]), first = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
        v->score[id] = v->type[id] == T_BYTE || len == first ? 0.0f : -1e9f;
    }
    for (size_t k = 0; k < v->n_merges; k++) {
        char *sp = strchr(v->merges[k], ' ');
        if (!sp) continue;
        size_t la = (size_t)(sp - v->merges[k]);
        char joined[1024];
        if (la + strlen(sp + 1) + 1 > sizeof joined) continue;
        memcpy(joined, v->merges[k], la);
        strcpy(joined + la, sp + 1);
        int32_t id = id_of(v, joined);
        if (id >= 0 && v->score[id] == -1e9f) v->score[id] = -(float)(k + 1);
    }
    return LM_OK;
}

/* The BOS/EOS, add_bos and chat template of tokenizer_config.json and the
 * post-processor; cfg ids (config.json) where those name none. */
static void special_tokens(hf_vocab *v, json_t *tok, json_t *cfg, int32_t cfg_bos, int32_t cfg_eos) {
    v->bos = id_of(v, token_content(json_object_get(cfg, "bos_token")));
    v->eos = id_of(v, token_content(json_object_get(cfg, "eos_token")));
    if (v->bos < 0) v->bos = cfg_bos;
    if (v->eos < 0) v->eos = cfg_eos;
    json_t *tp = find_stage(json_object_get(tok, "post_processor"), "TemplateProcessing");
    json_t *first = json_object_get(json_array_get(json_object_get(tp, "single"), 0), "SpecialToken");
    int post_bos = first != NULL;
    if (first && v->bos < 0) v->bos = id_of(v, json_string_value(json_object_get(first, "id")));
    json_t *ab = json_object_get(cfg, "add_bos_token"), *ae = json_object_get(cfg, "add_eos_token");
    v->add_bos = json_is_boolean(ab) ? json_is_true(ab) : post_bos;
    v->add_eos = json_is_true(ae);
    v->unk = -1;
    const char *unk = json_string_value(json_object_get(json_object_get(tok, "model"), "unk_token"));
    if (unk && (v->unk = id_of(v, unk)) >= 0) v->type[v->unk] = T_UNKNOWN;
    json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_array(ct)) { /* [{"name": "default", "template": ...}, ...] */
        json_t *named = NULL, *e;
        size_t i;
        json_array_foreach(ct, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && !strcmp(name, "default")) named = json_object_get(e, "template");
        }
        ct = named;
    }
    if (json_is_string(ct)) v->chat_template = strdup(json_string_value(ct));
}

/* What the pipeline is in GGUF's terms, or an LM_ERR_UNSUPPORTED naming why
 * GGUF has no name for it. */
static lm_status classify(hf_vocab *v, json_t *tok, const char *path) {
    json_t *model = json_object_get(tok, "model");
    const char *ty = json_string_value(json_object_get(model, "type"));
    if (!ty && json_is_array(json_object_get(model, "merges"))) ty = "BPE";
    if (!ty || strcmp(ty, "BPE"))
        return lm_error(LM_ERR_UNSUPPORTED, "%s: a %s tokenizer has no GGUF form here (BPE only)", path, ty ? ty : "model-less");
    if (json_is_true(json_object_get(model, "byte_fallback"))) {
        v->model = "llama";
        v->pre = "default";
        json_t *prepend = find_stage(json_object_get(tok, "normalizer"), "Prepend");
        json_t *meta = find_stage(json_object_get(tok, "pre_tokenizer"), "Metaspace");
        const char *scheme = json_string_value(json_object_get(meta, "prepend_scheme"));
        /* GGUF knows only SentencePiece's dummy prefix, always added; a
         * Metaspace "first" adds none before a text that already starts
         * with a space, so those texts tokenize differently there (in
         * llama.cpp as well) */
        v->add_space_prefix = prepend || (meta && (scheme ? strcmp(scheme, "never") != 0 : json_is_true(json_object_get(meta, "add_prefix_space"))));
        return LM_OK;
    }
    json_t *pre = json_object_get(tok, "pre_tokenizer");
    if (!find_stage(pre, "ByteLevel"))
        return lm_error(LM_ERR_UNSUPPORTED, "%s: a BPE without byte fallback or byte-level pre-tokenizer has no GGUF form", path);
    v->model = "gpt2";
    v->pre = lm_tok_gguf_pre_name(pre);
    if (!v->pre) return lm_error(LM_ERR_UNSUPPORTED, "%s: its pre-tokenizer is not one GGUF names (gpt-2, llama-bpe, qwen2)", path);
    return LM_OK;
}

static lm_status write_keys(const hf_vocab *v, lm_gguf_writer *w) {
    LM_TRY(lm_gguf_writer_set_str(w, "tokenizer.ggml.model", v->model));
    LM_TRY(lm_gguf_writer_set_str(w, "tokenizer.ggml.pre", v->pre));
    LM_TRY(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, (uint64_t)v->n));
    if (!strcmp(v->model, "llama")) LM_TRY(lm_gguf_writer_set_arr(w, "tokenizer.ggml.scores", LM_GGUF_F32, v->score, (uint64_t)v->n));
    LM_TRY(lm_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", LM_GGUF_I32, v->type, (uint64_t)v->n));
    if (!strcmp(v->model, "gpt2"))
        LM_TRY(lm_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, (uint64_t)v->n_merges));
    if (v->bos >= 0) LM_TRY(lm_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)v->bos));
    if (v->eos >= 0) LM_TRY(lm_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)v->eos));
    if (v->unk >= 0) LM_TRY(lm_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", (uint32_t)v->unk));
    LM_TRY(lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos));
    LM_TRY(lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos));
    if (!strcmp(v->model, "llama")) LM_TRY(lm_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix));
    if (v->chat_template) LM_TRY(lm_gguf_writer_set_str(w, "tokenizer.chat_template", v->chat_template));
    return LM_OK;
}

lm_status lm_gguf_add_hf_tokenizer(lm_gguf_writer *w, const char *dir, int vocab_size, int32_t bos_id, int32_t eos_id,
                                   int *wrote_bos, int *wrote_eos) {
    *wrote_bos = *wrote_eos = 0;
    char *path = lm_path_join(dir, "tokenizer.json"), *cpath = lm_path_join(dir, "tokenizer_config.json");
    if (!path || !cpath) {
        free(path);
        free(cpath);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    json_error_t je;
    json_t *tok = lm_file_exists(path) ? json_load_file(path, JSON_ALLOW_NUL, &je) : NULL;
    json_t *cfg = lm_file_exists(cpath) ? json_load_file(cpath, 0, &je) : NULL;
    hf_vocab v = {0};
    lm_status s;
    if (!lm_file_exists(path)) s = lm_error(LM_ERR_UNSUPPORTED, "%s: no tokenizer.json to carry", dir);
    else if (!tok) s = lm_error(LM_ERR_FORMAT, "%s:%d: invalid JSON: %s", path, je.line, je.text);
    else s = classify(&v, tok, path);
    /* everything is gathered before the first key is written: a tokenizer
     * that cannot be carried leaves the writer as it was */
    if (s == LM_OK) s = collect_tokens(&v, json_object_get(tok, "model"), json_object_get(tok, "added_tokens"), vocab_size, path);
    if (s == LM_OK) s = collect_merges(&v, json_object_get(json_object_get(tok, "model"), "merges"), !strcmp(v.model, "llama"));
    if (s == LM_OK) {
        special_tokens(&v, tok, cfg, bos_id, eos_id);
        s = write_keys(&v, w);
        *wrote_bos = v.bos >= 0;
        *wrote_eos = v.eos >= 0;
    }
    hf_vocab_free(&v);
    json_decref(tok);
    json_decref(cfg);
    free(path);
    free(cpath);
    return s;
}

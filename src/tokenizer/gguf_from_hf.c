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
#include "lmkit/chat_template.h"
#include "lmkit/gguf.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_NORMAL = 1, T_UNKNOWN = 2, T_CONTROL = 3, T_USER = 4, T_UNUSED = 5, T_BYTE = 6 };

/* What goes into the GGUF, gathered before the first key is written so a
 * tokenizer that cannot be carried leaves the writer as it was. */
typedef struct {
    int32_t n;
    char **tok; /* by id: the tokenizer's text, or [PADn] for unused rows */
    int32_t *type;
    float *score;  /* "llama": a merged piece ranks where its merge is listed */
    char **merges; /* "gpt2": "a b" in rank order */
    uint32_t n_merges;
    const char *model, *pre;
    int32_t bos, eos, unk;
    int add_bos, add_eos, add_space_prefix;
    char *chat_template;
} hf_vocab;

static void hf_vocab_free(hf_vocab *v) {
    for (int32_t i = 0; v->tok && i < v->n; i++) free(v->tok[i]);
    for (uint32_t i = 0; v->merges && i < v->n_merges; i++) free(v->merges[i]);
    free(v->tok);
    free(v->type);
    free(v->score);
    free(v->merges);
    free(v->chat_template);
}

/* The pipeline stage of type ty in j or in one of its Sequence's stages. */
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

/* What the tokenizer is in GGUF's terms, or an LM_ERR_UNSUPPORTED naming
 * why GGUF has no name for it. */
static lm_status classify(hf_vocab *v, const lm_tokenizer *t, const char *path) {
    if (t->model != LM_MODEL_BPE || t->tiktoken_ranks)
        return lm_error(LM_ERR_UNSUPPORTED, "%s: only a BPE tokenizer with merges has a GGUF form here", path);
    if (t->byte_fallback) {
        v->model = "llama";
        v->pre = "default";
        json_t *meta = find_stage(t->j_pre, "Metaspace");
        const char *scheme = json_string_value(json_object_get(meta, "prepend_scheme"));
        /* GGUF knows only SentencePiece's dummy prefix, always added; a
         * Metaspace "first" adds none before a text that already starts
         * with a space, so those texts tokenize differently there (in
         * llama.cpp as well) */
        v->add_space_prefix = find_stage(t->j_norm, "Prepend") ||
                              (meta && (scheme ? strcmp(scheme, "never") != 0 : json_is_true(json_object_get(meta, "add_prefix_space"))));
        return LM_OK;
    }
    if (!t->byte_level)
        return lm_error(LM_ERR_UNSUPPORTED, "%s: a BPE without byte fallback or byte-level pre-tokenizer has no GGUF form", path);
    v->model = "gpt2";
    v->pre = lm_tok_gguf_pre_name(t->j_pre);
    if (!v->pre) return lm_error(LM_ERR_UNSUPPORTED, "%s: its pre-tokenizer is not one GGUF names (gpt-2, llama-bpe, qwen2)", path);
    return LM_OK;
}

/* Token strings and types by id, padded to vocab_size as llama.cpp pads
 * the rows of the embedding no token uses. */
static lm_status collect_tokens(hf_vocab *v, const lm_tokenizer *t, int vocab_size, const char *path) {
    if (t->n_vocab > vocab_size)
        return lm_error(LM_ERR_UNSUPPORTED, "%s has %d tokens, more than the model's vocab_size %d", path, t->n_vocab, vocab_size);
    v->n = vocab_size;
    v->tok = calloc((size_t)v->n, sizeof *v->tok);
    v->type = calloc((size_t)v->n, sizeof *v->type);
    v->score = calloc((size_t)v->n, sizeof *v->score);
    if (!v->tok || !v->type || !v->score) return lm_error(LM_ERR_NOMEM, "out of memory");
    for (int32_t id = 0; id < v->n; id++) {
        char pad[32];
        const char *text = id < t->n_vocab ? t->tok[id] : NULL;
        if (!text) snprintf(pad, sizeof pad, "[PAD%d]", id);
        if (!(v->tok[id] = strdup(text ? text : pad))) return lm_error(LM_ERR_NOMEM, "out of memory");
        unsigned x;
        v->type[id] = !text ? T_UNUSED : strlen(text) == 6 && sscanf(text, "<0x%02X>", &x) == 1 ? T_BYTE : T_NORMAL;
    }
    for (int i = 0; i < t->n_added; i++) v->type[t->added[i].id] = t->added[i].special ? T_CONTROL : T_USER;
    if (t->unk_id >= 0 && t->unk_id < v->n) v->type[t->unk_id] = T_UNKNOWN;
    v->unk = t->unk_id;
    return LM_OK;
}

/* "gpt2": the merges as "a b". "llama": scores in merge order instead; a
 * piece no merge makes is a single character or byte (score 0, never a
 * merge's result) or something BPE must never build (lowest). */
static lm_status collect_merges(hf_vocab *v, const lm_tokenizer *t) {
    if (!strcmp(v->model, "gpt2")) {
        v->merges = calloc(t->n_merges ? t->n_merges : 1, sizeof *v->merges);
        if (!v->merges) return lm_error(LM_ERR_NOMEM, "out of memory");
        for (uint32_t k = 0; k < t->n_merges; k++) {
            int32_t a = t->merge_list[k][0], b = t->merge_list[k][1];
            if (!(v->merges[k] = malloc(t->tok_len[a] + t->tok_len[b] + 2))) return lm_error(LM_ERR_NOMEM, "out of memory");
            sprintf(v->merges[k], "%s %s", t->tok[a], t->tok[b]);
            v->n_merges = k + 1;
        }
        return LM_OK;
    }
    for (int32_t id = 0; id < v->n; id++) {
        const unsigned char *s = (const unsigned char *)v->tok[id];
        size_t len = strlen(v->tok[id]), first = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : 2;
        v->score[id] = v->type[id] == T_BYTE || len == first ? 0.0f : -1e9f;
    }
    for (uint32_t k = 0; k < t->n_merges; k++) {
        uint32_t rank;
        int32_t id;
        if (lm_pairmap_get(&t->merges, t->merge_list[k][0], t->merge_list[k][1], &rank, &id) && id >= 0 && id < v->n &&
            v->score[id] == -1e9f)
            v->score[id] = -(float)(k + 1);
    }
    return LM_OK;
}

/* BOS/EOS and the chat template from tokenizer_config.json (the reader the
 * chat command uses), add_bos/add_eos from it or the post-processor;
 * config.json's ids where those name none. */
static lm_status special_tokens(hf_vocab *v, const lm_tokenizer *t, const char *cpath, int32_t cfg_bos, int32_t cfg_eos) {
    char *bos = NULL, *eos = NULL;
    json_t *cfg = NULL;
    if (lm_file_exists(cpath)) {
        LM_TRY(lm_chat_template_load_config(cpath, &v->chat_template, &bos, &eos));
        cfg = json_load_file(cpath, 0, NULL);
    }
    v->bos = bos ? lm_tokenizer_token_to_id(t, bos) : -1;
    v->eos = eos ? lm_tokenizer_token_to_id(t, eos) : -1;
    free(bos);
    free(eos);
    if (v->bos < 0) v->bos = cfg_bos;
    if (v->eos < 0) v->eos = cfg_eos;
    json_t *tp = find_stage(t->j_post, "TemplateProcessing");
    json_t *first = json_object_get(json_array_get(json_object_get(tp, "single"), 0), "SpecialToken");
    if (first && v->bos < 0) v->bos = lm_tokenizer_token_to_id(t, json_string_value(json_object_get(first, "id")));
    json_t *ab = json_object_get(cfg, "add_bos_token");
    v->add_bos = json_is_boolean(ab) ? json_is_true(ab) : first != NULL;
    v->add_eos = json_is_true(json_object_get(cfg, "add_eos_token"));
    json_decref(cfg);
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
    hf_vocab v = {0};
    lm_tokenizer *t = NULL;
    lm_status s = path && cpath ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    /* the tokenizer as lmkit loads it: one parser, checked the same way */
    if (s == LM_OK) s = lm_file_exists(path) ? lm_tok_load_json(path, &t) : lm_error(LM_ERR_UNSUPPORTED, "%s: no tokenizer.json to carry", dir);
    if (s == LM_OK) s = classify(&v, t, path);
    if (s == LM_OK) s = collect_tokens(&v, t, vocab_size, path);
    if (s == LM_OK) s = collect_merges(&v, t);
    if (s == LM_OK) s = special_tokens(&v, t, cpath, bos_id, eos_id);
    if (s == LM_OK) {
        s = write_keys(&v, w);
        *wrote_bos = v.bos >= 0;
        *wrote_eos = v.eos >= 0;
    }
    hf_vocab_free(&v);
    lm_tokenizer_free(t);
    free(path);
    free(cpath);
    return s;
}

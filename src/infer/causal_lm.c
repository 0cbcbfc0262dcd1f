/* One entry point for every generating model (see causal_lm.h). */
#include "lmkit/causal_lm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static int lm_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The tokenizer that travels with a model file: X.tokenizer.bin beside
 * X.bin (what `lmkit convert IN X.bin` writes), else tokenizer.json or
 * tokenizer.bin in the same directory. */
char *lm_causal_lm_sibling_tokenizer(const char *path) {
    size_t pl = strlen(path);
    if (pl > 4 && !strcasecmp(path + pl - 4, ".bin")) {
        char *own = malloc(pl - 4 + sizeof ".tokenizer.bin");
        if (own) {
            snprintf(own, pl - 4 + sizeof ".tokenizer.bin", "%.*s.tokenizer.bin", (int)(pl - 4), path);
            if (lm_file_exists(own)) return own;
            free(own);
        }
    }
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 1;
    char *dir = slash ? strndup(path, dl) : strdup(".");
    const char *names[] = {"tokenizer.json", "tokenizer.bin"};
    char *found = NULL;
    for (size_t i = 0; i < 2 && !found; i++) {
        char *p = lm_path_join(dir, names[i]);
        if (lm_file_exists(p)) found = p;
        else free(p);
    }
    free(dir);
    return found;
}

/* A directory's config.json model_type ("" when unreadable: the loader
 * that runs next reports why). */
static void lm_dir_model_type(const char *dir, char *out, size_t cap) {
    out[0] = 0;
    char *p = lm_path_join(dir, "config.json");
    json_t *root = p ? json_load_file(p, 0, NULL) : NULL;
    free(p);
    json_t *mt = json_object_get(root, "model_type");
    if (json_is_string(mt)) snprintf(out, cap, "%s", json_string_value(mt));
    json_decref(root);
}

lm_status lm_causal_lm_open(const char *path, const char *tokenizer, lm_causal_lm *lm) {
    memset(lm, 0, sizeof *lm);
    lm_status s;
    char model_type[64] = "";
    if (!lm_file_exists(path))
        return lm_error(LM_ERR_IO, "%s: no such model (expected a directory with config.json, a .gguf or a llama2.c .bin)", path);
    int dir = lm_is_dir(path);
    if (dir) lm_dir_model_type(path, model_type, sizeof model_type);
    if (dir && (!strcmp(model_type, "gpt2") || !model_type[0])) {
        lm->kind = "gpt2";
        s = lm_gpt2_open_dir(path, 0, &lm->gpt2);
        if (s == LM_OK) s = lm_tokenizer_load(tokenizer ? tokenizer : path, &lm->tok);
        if (s == LM_OK) s = lm_decoder_gpt2(lm->gpt2, &lm->decoder);
    } else {
        lm->kind = "llama";
        lm->llama = calloc(1, sizeof *lm->llama);
        if (!lm->llama) return lm_error(LM_ERR_NOMEM, "out of memory");
        s = lm_llama_load(path, lm->llama);
        if (s != LM_OK) {
            free(lm->llama);
            lm->llama = NULL;
            return s;
        }
        /* A GGUF that carries its tokenizer is used whole, as llama.cpp
         * does (from the file the model already parsed); otherwise the
         * tokenizer beside the file. */
        if (!tokenizer && lm->llama->gguf && lm_gguf_carries_tokenizer(lm->llama->gguf)) {
            s = lm_tokenizer_from_gguf(lm->llama->gguf, path, &lm->tok);
        } else {
            char *tok_path = tokenizer ? strdup(tokenizer) : dir ? lm_path_join(path, "tokenizer.json") : lm_causal_lm_sibling_tokenizer(path);
            if (!tok_path)
                s = lm_error(LM_ERR_ARG, "%s: no tokenizer found beside the model; pass --tokenizer PATH", path);
            else
                s = lm_tokenizer_load(tok_path, &lm->tok);
            free(tok_path);
        }
        /* Qwen2 tokenizers add no BOS; LLaMA and Mistral ones do. */
        lm->add_bos = lm_llama_arch_of(&lm->llama->cfg)->add_bos;
        if (s == LM_OK) s = lm_engine_new(lm->llama, NULL, &lm->engine);
        if (s == LM_OK) s = lm_decoder_engine(lm->engine, lm->llama->cfg.vocab_size, lm->llama->cfg.max_seq_len, &lm->decoder);
    }
    if (s == LM_OK && lm->tok && lm_tokenizer_vocab_size(lm->tok) > lm->decoder.vocab_size)
        s = lm_error(LM_ERR_FORMAT, "%s: tokenizer has %d tokens but the model only %d", path, lm_tokenizer_vocab_size(lm->tok),
                     lm->decoder.vocab_size);
    if (s == LM_OK) lm->decoder.eos_id = lm_tokenizer_eos_id(lm->tok);
    if (s != LM_OK) lm_causal_lm_close(lm);
    return s;
}

void lm_causal_lm_close(lm_causal_lm *lm) {
    if (lm->gpt2) lm_decoder_gpt2_free(&lm->decoder);
    lm_engine_free(lm->engine);
    if (lm->llama) {
        lm_llama_free(lm->llama);
        free(lm->llama);
    }
    lm_gpt2_free(lm->gpt2);
    lm_tokenizer_free(lm->tok);
    memset(lm, 0, sizeof *lm);
}

int32_t lm_causal_lm_bos_id(const lm_causal_lm *lm) {
    if (lm->llama && lm->llama->cfg.bos_id >= 0) return lm->llama->cfg.bos_id;
    return lm->tok ? lm_tokenizer_bos_id(lm->tok) : -1;
}

lm_status lm_causal_lm_encode(const lm_causal_lm *lm, const char *text, int32_t **ids, size_t *n) {
    return lm_causal_lm_encode_ex(lm, text, -1, ids, n);
}

lm_status lm_causal_lm_encode_ex(const lm_causal_lm *lm, const char *text, int add_bos, int32_t **ids, size_t *n) {
    return lm_causal_lm_encode_n(lm, text, strlen(text), add_bos, ids, n);
}

lm_status lm_causal_lm_encode_n(const lm_causal_lm *lm, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n) {
    int32_t *raw = NULL;
    size_t k = 0;
    LM_TRY(lm_tokenizer_encode(lm->tok, text, len, 0, &raw, &k));
    int bos = add_bos < 0 ? (lm->add_bos && lm->llama ? lm->llama->cfg.bos_id : -1) : add_bos ? lm_causal_lm_bos_id(lm) : -1;
    if (bos < 0) {
        *ids = raw;
        *n = k;
        return LM_OK;
    }
    /* LLaMA models were trained with BOS opening every text. */
    int32_t *with = malloc((k + 1) * sizeof *with);
    if (!with) {
        free(raw);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    with[0] = bos;
    memcpy(with + 1, raw, k * sizeof *raw);
    free(raw);
    *ids = with;
    *n = k + 1;
    return LM_OK;
}

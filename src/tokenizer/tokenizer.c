/* lm_tokenizer: construction, lookups, and loading by spec. */
#include "tokenizer/tok_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static uint64_t tok_serial_next = 1;

lm_tokenizer *lm_tok_new(void) {
    lm_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
        return NULL;
    }
    t->serial = __atomic_fetch_add(&tok_serial_next, 1, __ATOMIC_RELAXED);
    t->unk_id = t->bos_id = t->eos_id = t->pad_id = -1;
    t->pad_id_cfg = -1;
    t->max_input_chars = 100;
    for (int b = 0; b < 256; b++) t->byte_to_id[b] = t->byte_fallback_id[b] = -1;
    (void)lm_bytelevel_char(0); /* build the byte table before any threads use it */
    return t;
}

lm_status lm_tok_alloc_vocab(lm_tokenizer *t, int32_t n) {
    if (n <= t->n_vocab) return LM_OK;
    char **tok = realloc(t->tok, (size_t)n * sizeof *tok);
    if (!tok) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n);
    t->tok = tok;
    uint32_t *tl = realloc(t->tok_len, (size_t)n * sizeof *tl);
    if (!tl) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n);
    t->tok_len = tl;
    uint8_t *sp = realloc(t->is_special, (size_t)n);
    if (!sp) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory for %d tokens", n);
    t->is_special = sp;
    for (int32_t i = t->n_vocab; i < n; i++) {
        t->tok[i] = NULL;
        t->tok_len[i] = 0;
        t->is_special[i] = 0;
    }
    t->n_vocab = n;
    return LM_OK;
}

lm_status lm_tok_set_token(lm_tokenizer *t, int32_t id, const char *s, size_t len) {
    if (id < 0) return lm_error(LM_ERR_FORMAT, "tokenizer: negative token id %d", id);
    if (id >= t->n_vocab) {
        int32_t n = t->n_vocab ? t->n_vocab : 256;
        while (n <= id) n *= 2;
        LM_TRY(lm_tok_alloc_vocab(t, n));
        t->n_vocab = n; /* trimmed in lm_tok_finish */
    }
    if (t->tok[id]) {
        /* an added token restating its vocabulary entry is fine; anything
         * else would leave two strings on one id */
        if (t->tok_len[id] == len && !memcmp(t->tok[id], s, len)) return LM_OK;
        return lm_error(LM_ERR_FORMAT, "tokenizer: id %d is given to both '%s' and '%.*s'", id, t->tok[id],
                        (int)(len > 64 ? 64 : len), s);
    }
    char *c = malloc(len + 1);
    if (!c) return lm_error(LM_ERR_NOMEM, "tokenizer: out of memory");
    memcpy(c, s, len);
    c[len] = 0;
    t->tok[id] = c;
    t->tok_len[id] = (uint32_t)len;
    return LM_OK;
}

static int32_t find_first(const lm_tokenizer *t, const char *const *names) {
    for (; *names; names++) {
        int32_t id = lm_tokenizer_token_to_id(t, *names);
        if (id >= 0) return id;
    }
    return -1;
}

lm_status lm_tok_finish(lm_tokenizer *t) {
    /* the real vocabulary size: highest defined id + 1 */
    int32_t n = t->n_vocab;
    while (n > 0 && !t->tok[n - 1]) n--;
    t->n_vocab = n;
    if (t->byte_level)
        for (int b = 0; b < 256; b++) {
            char buf[4];
            int k = lm_utf8_encode(lm_bytelevel_char((uint8_t)b), buf);
            t->byte_to_id[b] = lm_strmap_get(&t->vocab, buf, (size_t)k);
        }
    for (int b = 0; b < 256; b++) {
        char buf[8];
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        t->byte_fallback_id[b] = lm_strmap_get(&t->vocab, buf, 6);
    }
    for (int i = 0; i < t->n_added; i++) {
        LM_TRY(lm_strmap_put(&t->added_map, t->added[i].content, (uint32_t)t->added[i].len, t->added[i].id));
        if (t->added[i].special && t->added[i].id < t->n_vocab) t->is_special[t->added[i].id] = 1;
        if (t->added[i].normalized && t->norm) t->has_norm_added = 1;
    }
    static const char *const bos[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", "[CLS]", "<bos>", NULL};
    static const char *const eos[] = {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|im_end|>", "[SEP]", "<eos>", NULL};
    static const char *const pad[] = {"<pad>", "[PAD]", "<|pad|>", "<|padding|>", NULL};
    if (t->bos_id < 0) t->bos_id = find_first(t, bos);
    if (t->eos_id < 0) t->eos_id = find_first(t, eos);
    if (t->pad_id < 0) t->pad_id = t->pad_id_cfg >= 0 ? t->pad_id_cfg : find_first(t, pad);
    /* GPT-2 style: the one <|endoftext|> token serves as both. */
    if (t->bos_id < 0 && t->eos_id >= 0 && t->tok[t->eos_id] && !strcmp(t->tok[t->eos_id], "<|endoftext|>"))
        t->bos_id = t->eos_id;
    if (t->model == LM_MODEL_UNIGRAM) LM_TRY(lm_unigram_build(t));
    return LM_OK;
}

void lm_tokenizer_free(lm_tokenizer *t) {
    if (!t) return;
    for (int32_t i = 0; i < t->n_vocab; i++) free(t->tok[i]);
    free(t->tok);
    free(t->tok_len);
    free(t->is_special);
    lm_strmap_free(&t->vocab);
    lm_strmap_free(&t->added_map);
    lm_pairmap_free(&t->merges);
    free(t->merge_list);
    free(t->cont_prefix);
    free(t->eow_suffix);
    free(t->scores);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    lm_norm_free(t->norm);
    lm_pre_free(t->pre);
    lm_post_free(&t->post);
    lm_dec_free(t->dec);
    json_decref(t->j_norm);
    json_decref(t->j_pre);
    json_decref(t->j_post);
    json_decref(t->j_dec);
    json_decref(t->j_trunc);
    json_decref(t->j_pad);
    free(t);
}

int lm_tokenizer_vocab_size(const lm_tokenizer *t) { return t->n_vocab; }

const char *lm_tokenizer_id_to_token(const lm_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) return NULL;
    return t->tok[id];
}

int32_t lm_tokenizer_token_to_id(const lm_tokenizer *t, const char *token) {
    size_t n = strlen(token);
    int32_t id = lm_strmap_get(&t->added_map, token, n);
    if (id >= 0) return id;
    return lm_strmap_get(&t->vocab, token, n);
}

int lm_tokenizer_is_special(const lm_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->is_special[id];
}
int32_t lm_tokenizer_bos_id(const lm_tokenizer *t) { return t->bos_id; }
int32_t lm_tokenizer_eos_id(const lm_tokenizer *t) { return t->eos_id; }
int32_t lm_tokenizer_pad_id(const lm_tokenizer *t) { return t->pad_id; }
int32_t lm_tokenizer_unk_id(const lm_tokenizer *t) { return t->unk_id; }

const char *lm_tok_data_dir(void) {
    const char *d = getenv("LMKIT_DATA_DIR");
    if (d && *d) return d;
#ifdef LMKIT_DATA_DIR
    return LMKIT_DATA_DIR;
#else
    return "data";
#endif
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static lm_status load_file(const char *path, lm_tokenizer **out) {
    if (ends_with(path, ".json")) return lm_tok_load_json(path, out);
    if (ends_with(path, ".tiktoken")) return lm_tok_load_tiktoken(path, out);
    if (ends_with(path, ".bin")) return lm_tok_load_llama2c(path, out);
    if (ends_with(path, ".gguf")) return lm_tok_load_gguf(path, out);
    FILE *f = fopen(path, "rb");
    if (!f) return lm_error(LM_ERR_IO, "%s: cannot open tokenizer", path);
    char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    rewind(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        fclose(f);
        return lm_tok_load_gguf(path, out);
    }
    int c = fgetc(f);
    while (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = fgetc(f);
    fclose(f);
    if (c == '{') return lm_tok_load_json(path, out);
    return lm_tok_load_tiktoken(path, out);
}

static lm_status load_dir(const char *dir, lm_tokenizer **out) {
    static const char *const single[] = {"tokenizer.json", "tokenizer.bin", NULL};
    char *p = lm_path_join(dir, "tokenizer.json");
    if (!p) return lm_error(LM_ERR_NOMEM, "out of memory");
    if (lm_file_exists(p)) {
        lm_status st = lm_tok_load_json(p, out);
        free(p);
        return st;
    }
    free(p);
    char *e = lm_path_join(dir, "encoder.json"), *v = lm_path_join(dir, "vocab.bpe");
    if (e && v && lm_file_exists(e) && lm_file_exists(v)) {
        lm_status st = lm_tok_load_gpt2_files(e, v, out);
        free(e);
        free(v);
        return st;
    }
    free(e);
    free(v);
    for (int i = 1; single[i]; i++) {
        p = lm_path_join(dir, single[i]);
        if (p && lm_file_exists(p)) {
            lm_status st = load_file(p, out);
            free(p);
            return st;
        }
        free(p);
    }
    return lm_error(LM_ERR_IO, "%s: no tokenizer.json, encoder.json+vocab.bpe or tokenizer.bin in this directory", dir);
}

lm_status lm_tokenizer_load(const char *spec, lm_tokenizer **out) {
    *out = NULL;
    if (!spec || !*spec) return lm_error(LM_ERR_ARG, "tokenizer: empty tokenizer spec");
    if (!strcmp(spec, "bytes")) return lm_tok_make_bytes(out);
    if (!strcmp(spec, "gpt2")) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tokenizers/gpt2", lm_tok_data_dir());
        char *e = lm_path_join(dir, "encoder.json"), *v = lm_path_join(dir, "vocab.bpe");
        lm_status st = e && v ? lm_tok_load_gpt2_files(e, v, out) : lm_error(LM_ERR_NOMEM, "out of memory");
        free(e);
        free(v);
        return st;
    }
    struct stat sb;
    if (stat(spec, &sb) != 0)
        return lm_error(LM_ERR_IO, "%s: no such tokenizer file or directory (or builtin: bytes, gpt2)", spec);
    if (S_ISDIR(sb.st_mode)) return load_dir(spec, out);
    return load_file(spec, out);
}

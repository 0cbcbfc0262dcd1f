/* The tokenizer a GGUF file carries (tokenizer.ggml.*), as llama.cpp's
 * converters write it:
 *   model "llama": SentencePiece BPE. tokens (pieces with U+2581 for
 *     spaces), scores, token_type; rebuilt by the same code as llama2.c's
 *     tokenizer.bin, which is the same kind of vocabulary.
 *   model "gpt2": byte-level BPE. tokens (byte-level strings), merges
 *     ("a b"), token_type, and the pre-tokenizer named by tokenizer.ggml.pre;
 *     rebuilt as the tokenizer.json the file was converted from and read by
 *     the tokenizer.json loader.
 * Token types (llama.cpp's llama_token_type): 1 normal, 2 unknown,
 * 3 control, 4 user-defined, 5 unused, 6 byte. */
#include "tokenizer/tok_internal.h"
#include "lmkit/gguf.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { GGUF_TOK_UNKNOWN = 2, GGUF_TOK_CONTROL = 3, GGUF_TOK_USER = 4 };

/* The pre-tokenizer regexes of the byte-level BPE families, as their
 * tokenizer.json files give them. */
#define LLAMA3_SPLIT                                                                                        \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define QWEN2_SPLIT                                                                                     \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|" \
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* An optional boolean key (default def). */
static int gguf_bool(const lm_gguf *g, const char *key, int def) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    return kv && kv->type == LM_GGUF_BOOL ? kv->i != 0 : def;
}

/* An optional token id key: -1 when absent; an error naming it when it is
 * not an id of the n tokens. */
static lm_status gguf_token_id(const lm_gguf *g, const char *key, size_t n, int32_t *id) {
    int64_t v = -1;
    *id = -1;
    if (lm_gguf_find(g, key)) LM_TRY(lm_gguf_get_int_or(g, key, 0, (int64_t)n - 1, -1, &v));
    *id = (int32_t)v;
    return LM_OK;
}

/* Element i of a numeric array (the file's arrays are not aligned). */
static double arr_num(const lm_gguf_kv *kv, uint64_t i) {
    const char *p = (const char *)kv->arr_data;
    switch (kv->arr_type) {
    case LM_GGUF_F32: {
        float f;
        memcpy(&f, p + 4 * i, 4);
        return f;
    }
    case LM_GGUF_I32: {
        int32_t x;
        memcpy(&x, p + 4 * i, 4);
        return x;
    }
    case LM_GGUF_U32: {
        uint32_t x;
        memcpy(&x, p + 4 * i, 4);
        return x;
    }
    default: return 0;
    }
}

/* A numeric array of n elements, or NULL (absent); an error when it is
 * there with another length or type. */
static lm_status num_array(const lm_gguf *g, const char *key, uint64_t n, const char *path, const lm_gguf_kv **out) {
    *out = lm_gguf_find(g, key);
    if (!*out) return LM_OK;
    const lm_gguf_kv *kv = *out;
    if (kv->type != LM_GGUF_ARRAY || (kv->arr_type != LM_GGUF_F32 && kv->arr_type != LM_GGUF_I32 && kv->arr_type != LM_GGUF_U32))
        return lm_error(LM_ERR_FORMAT, "%s: %s is not an array of numbers", path, key);
    if (kv->arr_n != n)
        return lm_error(LM_ERR_FORMAT, "%s: %s has %llu entries for %llu tokens", path, key, (unsigned long long)kv->arr_n,
                        (unsigned long long)n);
    return LM_OK;
}

static lm_status load_spm(const lm_gguf *g, const lm_gguf_kv *toks, const char *path, lm_tokenizer **out) {
    const lm_gguf_kv *scores, *types;
    LM_TRY(num_array(g, "tokenizer.ggml.scores", toks->arr_n, path, &scores));
    LM_TRY(num_array(g, "tokenizer.ggml.token_type", toks->arr_n, path, &types));
    size_t n = (size_t)toks->arr_n;
    lm_spm_vocab v = {.add_space_prefix = gguf_bool(g, "tokenizer.ggml.add_space_prefix", 1)};
    int32_t bos;
    LM_TRY(gguf_token_id(g, "tokenizer.ggml.unknown_token_id", n, &v.unk_id));
    LM_TRY(gguf_token_id(g, "tokenizer.ggml.bos_token_id", n, &bos));
    LM_TRY(gguf_token_id(g, "tokenizer.ggml.eos_token_id", n, &v.eos_id));
    v.bos_id = gguf_bool(g, "tokenizer.ggml.add_bos_token", 1) ? bos : -1;
    size_t cap = 0;
    lm_status st = LM_OK;
    for (size_t i = 0; i < n && st == LM_OK; i++) {
        const char *p;
        uint64_t len;
        lm_gguf_arr_str(g, toks, i, &p, &len);
        int type = types ? (int)arr_num(types, i) : 1;
        int kind = type == GGUF_TOK_CONTROL ? LM_SPM_CONTROL : type == GGUF_TOK_USER ? LM_SPM_USER : LM_SPM_NORMAL;
        if (type == GGUF_TOK_UNKNOWN && v.unk_id < 0) v.unk_id = (int32_t)i;
        /* without scores, earlier ids merge first (SentencePiece orders
         * its pieces by score) */
        st = lm_spm_vocab_add(&v, &cap, p, (size_t)len, scores ? arr_num(scores, i) : -(double)i, kind);
    }
    if (st == LM_OK) st = lm_tok_build_spm(&v, path, out);
    lm_spm_vocab_free(&v);
    return st;
}

/* tokenizer.json's pre_tokenizer for a tokenizer.ggml.pre name, and what
 * else that family's tokenizer.json sets: LLaMA 3 keeps a word that is a
 * token whole (ignore_merges), Qwen2 normalizes to NFC first. */
static json_t *bpe_pre_tokenizer(const char *pre, int *ignore_merges, int *nfc) {
    *ignore_merges = *nfc = 0;
    if (!pre || !*pre || !strcmp(pre, "default") || !strcmp(pre, "gpt-2") || !strcmp(pre, "gpt2"))
        return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 1);
    const char *split = NULL;
    if (!strcmp(pre, "llama-bpe") || !strcmp(pre, "llama3") || !strcmp(pre, "smaug-bpe")) {
        split = LLAMA3_SPLIT;
        *ignore_merges = 1;
    } else if (!strcmp(pre, "qwen2") || !strcmp(pre, "deepseek-r1-qwen")) {
        split = QWEN2_SPLIT;
        *nfc = 1;
    }
    if (!split) return NULL;
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                     "type", "Split", "pattern", "Regex", split, "behavior", "Isolated", "invert", 0, "type", "ByteLevel",
                     "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
}

const char *lm_tok_gguf_pre_name(json_t *pre) {
    const char *ty = json_string_value(json_object_get(pre, "type"));
    if (ty && !strcmp(ty, "ByteLevel")) return json_is_false(json_object_get(pre, "use_regex")) ? NULL : "gpt-2";
    json_t *list = json_object_get(pre, "pretokenizers");
    if (!ty || strcmp(ty, "Sequence") || json_array_size(list) != 2) return NULL;
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    const char *re = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
    const char *bt = json_string_value(json_object_get(bl, "type"));
    if (!re || !bt || strcmp(bt, "ByteLevel") || json_is_true(json_object_get(bl, "use_regex"))) return NULL;
    if (!strcmp(re, LLAMA3_SPLIT)) return "llama-bpe";
    if (!strcmp(re, QWEN2_SPLIT)) return "qwen2";
    return NULL;
}

static lm_status load_bpe(const lm_gguf *g, const lm_gguf_kv *toks, const char *path, lm_tokenizer **out) {
    const lm_gguf_kv *types, *merges = lm_gguf_find(g, "tokenizer.ggml.merges");
    LM_TRY(num_array(g, "tokenizer.ggml.token_type", toks->arr_n, path, &types));
    if (!merges || merges->type != LM_GGUF_ARRAY || merges->arr_type != LM_GGUF_STRING)
        return lm_error(LM_ERR_FORMAT, "%s: a gpt2 tokenizer needs tokenizer.ggml.merges (an array of strings)", path);
    size_t n = (size_t)toks->arr_n;
    int32_t bos_id, eos_id;
    LM_TRY(gguf_token_id(g, "tokenizer.ggml.bos_token_id", n, &bos_id));
    LM_TRY(gguf_token_id(g, "tokenizer.ggml.eos_token_id", n, &eos_id));
    char *pre = NULL;
    if (lm_gguf_find(g, "tokenizer.ggml.pre")) LM_TRY(lm_gguf_get_str(g, "tokenizer.ggml.pre", &pre));
    int ignore_merges, nfc;
    json_t *jpre = bpe_pre_tokenizer(pre, &ignore_merges, &nfc);
    if (!jpre) {
        lm_status s = lm_error(LM_ERR_UNSUPPORTED, "%s: tokenizer.ggml.pre '%s' is not supported (gpt-2, default, llama-bpe, qwen2)",
                               path, pre);
        free(pre);
        return s;
    }
    free(pre);
    json_t *vocab = json_object(), *jmerges = json_array(), *added = json_array();
    for (size_t i = 0; i < n; i++) {
        const char *p;
        uint64_t len;
        lm_gguf_arr_str(g, toks, i, &p, &len);
        json_t *s = json_stringn_nocheck(p, (size_t)len);
        json_object_setn_new_nocheck(vocab, p, (size_t)len, json_integer((json_int_t)i));
        int type = types ? (int)arr_num(types, i) : 1;
        /* control tokens are special; user-defined ones are added tokens
         * matched whole in the text, as their tokenizer.json declared them */
        if (type == GGUF_TOK_CONTROL || type == GGUF_TOK_USER)
            json_array_append_new(added, json_pack("{s:i, s:O, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)i, "content", s,
                                                   "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized",
                                                   type == GGUF_TOK_USER, "special", type == GGUF_TOK_CONTROL));
        json_decref(s);
    }
    for (uint64_t i = 0; i < merges->arr_n; i++) {
        const char *p;
        uint64_t len;
        lm_gguf_arr_str(g, merges, i, &p, &len);
        json_array_append_new(jmerges, json_stringn_nocheck(p, (size_t)len));
    }
    int32_t bos = gguf_bool(g, "tokenizer.ggml.add_bos_token", 0) ? bos_id : -1;
    json_t *post = json_null();
    if (bos >= 0) {
        const char *b;
        uint64_t bl;
        lm_gguf_arr_str(g, toks, (uint64_t)bos, &b, &bl);
        post = lm_tok_bos_template(b, (size_t)bl, bos);
    }
    json_t *norm = nfc ? json_pack("{s:s}", "type", "NFC") : json_null();
    json_t *root = json_pack("{s:s, s:o, s:o, s:o, s:o, s:{s:s, s:b, s:b, s:b}, s:{s:s, s:o, s:o, s:n, s:b, s:b, s:b}}",
                             "version", "1.0", "added_tokens", added, "normalizer", norm, "pre_tokenizer", jpre,
                             "post_processor", post ? post : json_null(), "decoder", "type", "ByteLevel", "add_prefix_space", 1,
                             "trim_offsets", 1, "use_regex", 1, "model", "type", "BPE", "vocab", vocab, "merges", jmerges,
                             "unk_token", "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", ignore_merges);
    if (!root) return lm_error(LM_ERR_NOMEM, "%s: out of memory", path);
    lm_status st = lm_tok_from_json(root, path, out);
    json_decref(root);
    if (st == LM_OK) {
        if (eos_id >= 0) (*out)->eos_id = eos_id;
        if (bos_id >= 0) (*out)->bos_id = bos_id;
    }
    return st;
}

int lm_gguf_carries_tokenizer(const lm_gguf *g) {
    /* the keys' presence, not their validity: a broken tokenizer is then
     * reported as such, not as a missing one */
    return lm_gguf_find(g, "tokenizer.ggml.tokens") || lm_gguf_find(g, "tokenizer.ggml.model");
}

lm_status lm_tok_load_gguf(const char *path, lm_tokenizer **out) {
    *out = NULL;
    lm_gguf g;
    LM_TRY(lm_gguf_open(path, &g));
    lm_status st = lm_tokenizer_from_gguf(&g, path, out);
    lm_gguf_close(&g);
    return st;
}

lm_status lm_tokenizer_from_gguf(const lm_gguf *gp, const char *path, lm_tokenizer **out) {
    *out = NULL;
    const lm_gguf *g = gp;
    char *model = NULL;
    lm_status st = LM_OK;
    const lm_gguf_kv *toks = lm_gguf_find(g, "tokenizer.ggml.tokens");
    if (!lm_gguf_find(g, "tokenizer.ggml.model") || !toks)
        st = lm_error(LM_ERR_FORMAT, "%s: this GGUF carries no tokenizer (tokenizer.ggml.model and .tokens); pass --tokenizer PATH", path);
    else if (toks->type != LM_GGUF_ARRAY || toks->arr_type != LM_GGUF_STRING || toks->arr_n < 3 || toks->arr_n > (1u << 24))
        st = lm_error(LM_ERR_FORMAT, "%s: tokenizer.ggml.tokens must be an array of 3 to 2^24 strings", path);
    else st = lm_gguf_get_str(g, "tokenizer.ggml.model", &model);
    if (st == LM_OK) {
        if (!strcmp(model, "llama")) st = load_spm(g, toks, path, out);
        else if (!strcmp(model, "gpt2")) st = load_bpe(g, toks, path, out);
        else st = lm_error(LM_ERR_UNSUPPORTED, "%s: tokenizer.ggml.model '%s' is not supported (llama, gpt2)", path, model);
    }
    free(model);
    /* every message names the file, whichever helper wrote it */
    if (st != LM_OK && strncmp(lm_last_error(), path, strlen(path))) st = lm_error(st, "%s: %s", path, lm_last_error());
    return st;
}

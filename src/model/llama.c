/* LLaMA-family model: configuration checks, format dispatch, and the GGUF
 * mapping (tensor names and metadata keys as llama.cpp writes them). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lmkit/llama.h"
#include "model/llama_internal.h"

lm_status lm_llama_config_check(const lm_llama_config *c) {
#define RANGE(f, lo, hi) \
    if (c->f < (lo) || c->f > (hi)) return lm_error(LM_ERR_FORMAT, "model config: " #f " = %d out of range [%d, %d]", (int)c->f, (int)(lo), (int)(hi))
    RANGE(dim, 1, 1 << 16);
    RANGE(hidden_dim, 1, 1 << 18);
    RANGE(n_layers, 1, 1024);
    RANGE(n_heads, 1, 1024);
    RANGE(n_kv_heads, 1, c->n_heads);
    RANGE(head_dim, 2, 1024);
    RANGE(vocab_size, 1, 1 << 22);
    RANGE(max_seq_len, 1, 1 << 22);
#undef RANGE
    if (c->n_heads % c->n_kv_heads)
        return lm_error(LM_ERR_FORMAT, "model config: n_heads %d not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2) return lm_error(LM_ERR_FORMAT, "model config: head_dim %d is odd (RoPE needs pairs)", c->head_dim);
    if (!(c->rms_eps > 0 && c->rms_eps < 1)) return lm_error(LM_ERR_FORMAT, "model config: rms_eps %g out of range", c->rms_eps);
    if (!(c->rope_theta > 0 && c->rope_theta < 1e30f))
        return lm_error(LM_ERR_FORMAT, "model config: rope_theta %g must be positive and finite", c->rope_theta);
    /* a BOS/EOS past the vocabulary would fail only once generation reaches it */
    if (c->bos_id >= c->vocab_size || c->eos_id >= c->vocab_size)
        return lm_error(LM_ERR_FORMAT, "model config: bos/eos token id %d/%d is not below vocab_size %d", c->bos_id, c->eos_id,
                        c->vocab_size);
    return LM_OK;
}

size_t lm_llama_decode_bytes(const lm_llama_model *m) {
    const lm_weight *e = &m->tok_emb;
    if (!e->data || e->data == m->output.data) return m->weight_bytes;
    const size_t row = lm_qtype_row_bytes(e->type, e->cols), table = row * (size_t)e->rows;
    return m->weight_bytes >= table ? m->weight_bytes - table + row : m->weight_bytes;
}

void lm_llama_free(lm_llama_model *m) {
    free(m->layers);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    if (m->vocab)
        for (int i = 0; i < m->n_vocab_strings; i++) free(m->vocab[i]);
    free(m->vocab);
    free(m->vocab_scores);
    if (m->gguf) {
        lm_gguf_close(m->gguf);
        free(m->gguf);
    }
    if (m->st) {
        lm_safetensors_close(m->st);
        free(m->st);
    }
    if (m->map.data) lm_mmap_close(&m->map);
    free(m->source_dir);
    memset(m, 0, sizeof *m);
}

lm_status lm_llama_load(const char *path, lm_llama_model *m) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return lm_llama_load_hf(path, m);
    FILE *f = fopen(path, "rb");
    if (!f) return lm_error(LM_ERR_IO, "%s: cannot open", path);
    char magic[4] = {0};
    size_t n = fread(magic, 1, 4, f);
    fclose(f);
    /* A .gguf name goes to the GGUF reader whatever its first bytes: a
     * truncated or damaged one is then reported as the GGUF it was meant
     * to be, not as a broken llama2.c file. */
    size_t len = strlen(path);
    int gguf_name = len >= 5 && !strcasecmp(path + len - 5, ".gguf");
    if ((n == 4 && !memcmp(magic, "GGUF", 4)) || gguf_name) return lm_llama_load_gguf(path, m);
    return lm_llama_load_llama2c(path, m);
}

/* ---------------- GGUF ---------------- */

/* A float vector from a 1-D tensor: in place when F32, else converted. */
static lm_status vec_f32(lm_llama_model *m, const lm_gguf_tensor *t, int n, const float **out) {
    if (t->n_dims != 1 || t->dims[0] != n)
        return lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' has shape [%lld...] (expected [%d])", t->name, (long long)t->dims[0], n);
    if (t->type == LM_QT_F32) {
        *out = t->data;
        return LM_OK;
    }
    float *buf = malloc(sizeof(float) * (size_t)n);
    if (!buf) return lm_error(LM_ERR_NOMEM, "out of memory");
    LM_TRY(lm_llama_own(m, buf));
    LM_TRY(lm_dequantize(t->type, t->data, buf, 1, n));
    *out = buf;
    return LM_OK;
}

static lm_status get_t(const lm_gguf *g, const char *name, const lm_gguf_tensor **t) {
    if (!(*t = lm_gguf_find_tensor(g, name))) return lm_error(LM_ERR_FORMAT, "gguf: missing tensor '%s'", name);
    return LM_OK;
}

static lm_status mat(const lm_gguf *g, const char *name, int rows, int cols, lm_weight *w) {
    const lm_gguf_tensor *t;
    LM_TRY(get_t(g, name, &t));
    if (t->n_dims != 2 || t->dims[0] != cols || t->dims[1] != rows)
        return lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' has shape [%lld, %lld] (expected [%d, %d], innermost first)", name,
                        (long long)t->dims[0], (long long)(t->n_dims > 1 ? t->dims[1] : 1), cols, rows);
    w->data = t->data;
    w->type = t->type;
    w->rows = rows;
    w->cols = cols;
    return LM_OK;
}

static lm_status vec(lm_llama_model *m, const lm_gguf *g, const char *name, int n, const float **out) {
    const lm_gguf_tensor *t;
    LM_TRY(get_t(g, name, &t));
    return vec_f32(m, t, n, out);
}

lm_status lm_llama_from_gguf(lm_gguf *g, lm_llama_model *m) {
    char *arch = NULL, key[160];
    LM_TRY(lm_gguf_get_str(g, "general.architecture", &arch));
    const lm_llama_arch *a = lm_llama_arch_find(arch);
    if (!a) {
        char names[128];
        lm_llama_arch_names(names, sizeof names);
        lm_status s = lm_error(LM_ERR_UNSUPPORTED, "gguf: architecture '%s' (supported: %s)", arch, names);
        free(arch);
        return s;
    }
    lm_llama_config *c = &m->cfg;
    int64_t v;
    double d;
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", arch, suffix), key)
#define GETI(field, suffix, lo, hi)                                  \
    do {                                                             \
        if ((s = lm_gguf_get_int(g, KEY(suffix), lo, hi, &v))) goto fail; \
        c->field = (int)v;                                           \
    } while (0)
    lm_status s = LM_OK;
    GETI(max_seq_len, "context_length", 1, 1 << 22);
    GETI(dim, "embedding_length", 1, 1 << 16);
    GETI(n_layers, "block_count", 1, 1024);
    GETI(hidden_dim, "feed_forward_length", 1, 1 << 18);
    GETI(n_heads, "attention.head_count", 1, 1024);
    if ((s = lm_gguf_get_int_or(g, KEY("attention.head_count_kv"), 1, 1024, c->n_heads, &v))) goto fail;
    c->n_kv_heads = (int)v;
    if ((s = lm_gguf_get_int_or(g, KEY("attention.key_length"), 2, 1024, c->dim / c->n_heads, &v))) goto fail;
    c->head_dim = (int)v;
    if ((s = lm_gguf_get_float_or(g, KEY("rope.freq_base"), 10000.0, &d))) goto fail;
    c->rope_theta = (float)d;
    if ((s = lm_gguf_get_float_or(g, KEY("attention.layer_norm_rms_epsilon"), 1e-5, &d))) goto fail;
    c->rms_eps = (float)d;
    if ((s = lm_gguf_get_int_or(g, KEY("attention.sliding_window"), 0, 1 << 22, 0, &v))) goto fail;
    c->sliding_window = (int)v;
    if ((s = lm_gguf_get_int_or(g, "tokenizer.ggml.bos_token_id", 0, 1 << 22, 1, &v))) goto fail;
    c->bos_id = (int)v;
    if ((s = lm_gguf_get_int_or(g, "tokenizer.ggml.eos_token_id", 0, 1 << 22, 2, &v))) goto fail;
    c->eos_id = (int)v;
    c->arch = a;
    c->rope_neox = a->gguf_half_rotation;
    c->qkv_bias = a->qkv_bias;
    const lm_gguf_tensor *emb;
    if ((s = get_t(g, "token_embd.weight", &emb))) goto fail;
    if (emb->n_dims != 2) {
        s = lm_error(LM_ERR_FORMAT, "gguf: token_embd.weight has %d dims (expected 2)", emb->n_dims);
        goto fail;
    }
    c->vocab_size = (int)(emb->dims[1] < (1 << 22) ? emb->dims[1] : 0);
    if ((s = lm_llama_config_check(c))) goto fail;
    int D = c->dim, H = c->hidden_dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    if ((s = mat(g, "token_embd.weight", c->vocab_size, D, &m->tok_emb))) goto fail;
    if (lm_gguf_find_tensor(g, "output.weight")) {
        if ((s = mat(g, "output.weight", c->vocab_size, D, &m->output))) goto fail;
    } else {
        m->output = m->tok_emb;
    }
    if ((s = vec(m, g, "output_norm.weight", D, &m->out_norm))) goto fail;
    const lm_gguf_tensor *rf = lm_gguf_find_tensor(g, "rope_freqs.weight");
    if (rf && (s = vec_f32(m, rf, c->head_dim / 2, &m->rope_freq_factors))) goto fail;
    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) {
        s = lm_error(LM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int l = 0; l < c->n_layers; l++) {
        lm_llama_layer *ly = &m->layers[l];
        char n[96];
#define T(x) (snprintf(n, sizeof n, "blk.%d.%s.weight", l, x), n)
#define B(x) (snprintf(n, sizeof n, "blk.%d.%s.bias", l, x), n)
        if ((s = vec(m, g, T("attn_norm"), D, &ly->attn_norm)) || (s = vec(m, g, T("ffn_norm"), D, &ly->ffn_norm)) ||
            (s = mat(g, T("attn_q"), Q, D, &ly->wq)) || (s = mat(g, T("attn_k"), KV, D, &ly->wk)) ||
            (s = mat(g, T("attn_v"), KV, D, &ly->wv)) || (s = mat(g, T("attn_output"), D, Q, &ly->wo)) ||
            (s = mat(g, T("ffn_gate"), H, D, &ly->w_gate)) || (s = mat(g, T("ffn_down"), D, H, &ly->w_down)) ||
            (s = mat(g, T("ffn_up"), H, D, &ly->w_up)))
            goto fail;
        if (c->qkv_bias && ((s = vec(m, g, B("attn_q"), Q, &ly->bq)) || (s = vec(m, g, B("attn_k"), KV, &ly->bk)) ||
                            (s = vec(m, g, B("attn_v"), KV, &ly->bv))))
            goto fail;
#undef T
#undef B
    }
    const lm_gguf_kv *toks = lm_gguf_find(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == LM_GGUF_ARRAY && toks->arr_type == LM_GGUF_STRING) {
        const lm_gguf_kv *sc = lm_gguf_find(g, "tokenizer.ggml.scores");
        int nv = (int)(toks->arr_n < (1u << 22) ? toks->arr_n : 0);
        m->vocab = calloc((size_t)nv + 1, sizeof(char *));
        m->vocab_scores = calloc((size_t)nv + 1, sizeof(float));
        if (!m->vocab || !m->vocab_scores) {
            s = lm_error(LM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        m->n_vocab_strings = nv;
        for (int i = 0; i < nv; i++) {
            const char *p;
            uint64_t len;
            lm_gguf_arr_str(g, toks, (uint64_t)i, &p, &len);
            if (!(m->vocab[i] = malloc(len + 1))) {
                s = lm_error(LM_ERR_NOMEM, "out of memory");
                goto fail;
            }
            memcpy(m->vocab[i], p, len);
            m->vocab[i][len] = 0;
        }
        if (sc && sc->type == LM_GGUF_ARRAY && sc->arr_type == LM_GGUF_F32 && sc->arr_n == (uint64_t)nv)
            memcpy(m->vocab_scores, sc->arr_data, sizeof(float) * (size_t)nv);
    }
    for (size_t i = 0; i < g->n_tensors; i++) m->weight_bytes += g->tensors[i].nbytes;
    free(arch);
    return LM_OK;
#undef KEY
#undef GETI
fail:
    free(arch);
    return s;
}

lm_status lm_llama_load_gguf(const char *path, lm_llama_model *m) {
    double t0 = lm_now_seconds();
    memset(m, 0, sizeof *m);
    lm_gguf *g = calloc(1, sizeof *g);
    if (!g) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = lm_gguf_open(path, g);
    if (s != LM_OK) {
        free(g);
        return s;
    }
    m->gguf = g;
    if ((s = lm_llama_from_gguf(g, m)) != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_last_error());
        lm_llama_free(m);
        return lm_error(s, "%s: %s", path, msg);
    }
    m->load_seconds = lm_now_seconds() - t0;
    return LM_OK;
}

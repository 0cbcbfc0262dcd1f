/* Writing a LLaMA model as GGUF with llama.cpp's names and keys, so the
 * file loads in llama.cpp as well as here. llama-arch GGUF rotates
 * adjacent pairs (as llama2.c checkpoints do), so weights made for the
 * half-rotation layout (Hugging Face) get their q/k rows permuted on the
 * way out, as llama.cpp's converter does; qwen2-arch GGUF keeps the
 * half-rotation layout and its rows as they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"

typedef struct {
    void **bufs;
    int n;
} buflist;

static lm_status keep(buflist *b, void *p) {
    void **nb = realloc(b->bufs, sizeof(void *) * (size_t)(b->n + 1));
    if (!nb) {
        free(p);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    b->bufs = nb;
    b->bufs[b->n++] = p;
    return LM_OK;
}

/* The type a [rows, cols] weight is stored as: the requested one when the
 * row length fits its blocks, else Q8_0, else F16 (F32 stays F32). */
static lm_qtype pick_type(const lm_weight *w, int want) {
    if (want < 0) return w->type;
    lm_qtype t = (lm_qtype)want;
    if (w->cols % lm_qtype_block_elems(t) == 0) return t;
    if (t != LM_QT_F32 && w->cols % 32 == 0) return LM_QT_Q8_0;
    return t == LM_QT_F32 ? LM_QT_F32 : LM_QT_F16;
}

/* Rows of a q or k projection reordered from half-rotation to pair
 * layout: within each head, row s*half + j moves to 2*j + s. Rows move
 * whole, so this works for every type. */
static lm_status permute_rows(buflist *b, const lm_weight *w, int n_heads, lm_weight *out) {
    size_t rb = lm_qtype_row_bytes(w->type, w->cols);
    int hd = w->rows / n_heads, half = hd / 2;
    char *p = malloc(rb * (size_t)w->rows);
    if (!p) return lm_error(LM_ERR_NOMEM, "out of memory");
    for (int h = 0; h < n_heads; h++)
        for (int s = 0; s < 2; s++)
            for (int j = 0; j < half; j++)
                memcpy(p + rb * (size_t)(h * hd + 2 * j + s), (const char *)w->data + rb * (size_t)(h * hd + s * half + j), rb);
    LM_TRY(keep(b, p));
    *out = *w;
    out->data = p;
    return LM_OK;
}

static lm_status add_mat(lm_gguf_writer *gw, buflist *b, const char *name, const lm_weight *w0, int want, int permute_heads) {
    lm_weight pw;
    const lm_weight *w = w0;
    if (permute_heads) {
        LM_TRY(permute_rows(b, w0, permute_heads, &pw));
        w = &pw;
    }
    lm_qtype t = pick_type(w, want);
    int64_t dims[2] = {w->cols, w->rows};
    if (t == w->type) return lm_gguf_writer_add_tensor(gw, name, t, 2, dims, w->data);
    size_t n = (size_t)w->rows * (size_t)w->cols;
    float *f = malloc(sizeof(float) * n);
    void *q = malloc(lm_qtype_row_bytes(t, w->cols) * (size_t)w->rows);
    if (!f || !q) {
        free(f);
        free(q);
        return lm_error(LM_ERR_NOMEM, "out of memory converting '%s'", name);
    }
    lm_status s = lm_dequantize(w->type, w->data, f, w->rows, w->cols);
    if (s == LM_OK) s = lm_quantize(t, f, q, w->rows, w->cols);
    free(f);
    if (s != LM_OK) {
        free(q);
        return s;
    }
    LM_TRY(keep(b, q));
    return lm_gguf_writer_add_tensor(gw, name, t, 2, dims, q);
}

static lm_status add_vec(lm_gguf_writer *gw, const char *name, const float *v, int n) {
    int64_t d = n;
    return lm_gguf_writer_add_tensor(gw, name, LM_QT_F32, 1, &d, v);
}

static lm_status write_all(const lm_llama_model *m, lm_gguf_writer *gw, buflist *b, int type, char *const *vocab,
                           const float *scores, int n_vocab) {
    const lm_llama_config *c = &m->cfg;
    if (c->qkv_bias && !c->rope_neox)
        return lm_error(LM_ERR_UNSUPPORTED, "gguf export: q/k/v biases with pair-rotation RoPE (no llama.cpp architecture has both)");
    const char *arch = c->qkv_bias ? "qwen2" : "llama";
    int permute = c->rope_neox && !c->qkv_bias;
    char key[128];
#define K(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    LM_TRY(lm_gguf_writer_set_str(gw, "general.architecture", arch));
    LM_TRY(lm_gguf_writer_set_str(gw, "general.name", "lmkit export"));
    LM_TRY(lm_gguf_writer_set_u32(gw, "general.quantization_version", 2));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("context_length"), (uint32_t)c->max_seq_len));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("embedding_length"), (uint32_t)c->dim));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("block_count"), (uint32_t)c->n_layers));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("feed_forward_length"), (uint32_t)c->hidden_dim));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("attention.head_count"), (uint32_t)c->n_heads));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("attention.head_count_kv"), (uint32_t)c->n_kv_heads));
    LM_TRY(lm_gguf_writer_set_u32(gw, K("rope.dimension_count"), (uint32_t)c->head_dim));
    if (c->head_dim * c->n_heads != c->dim) {
        LM_TRY(lm_gguf_writer_set_u32(gw, K("attention.key_length"), (uint32_t)c->head_dim));
        LM_TRY(lm_gguf_writer_set_u32(gw, K("attention.value_length"), (uint32_t)c->head_dim));
    }
    LM_TRY(lm_gguf_writer_set_f32(gw, K("rope.freq_base"), c->rope_theta));
    LM_TRY(lm_gguf_writer_set_f32(gw, K("attention.layer_norm_rms_epsilon"), c->rms_eps));
    if (c->sliding_window) LM_TRY(lm_gguf_writer_set_u32(gw, K("attention.sliding_window"), (uint32_t)c->sliding_window));
    if (type >= 0) LM_TRY(lm_gguf_writer_set_u32(gw, "general.file_type", (uint32_t)type));
#undef K
    if (vocab && n_vocab > 0) {
        int32_t *tt = malloc(sizeof(int32_t) * (size_t)n_vocab);
        if (!tt) return lm_error(LM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < n_vocab; i++) {
            unsigned x;
            tt[i] = 1;
            if (strlen(vocab[i]) == 6 && sscanf(vocab[i], "<0x%02X>", &x) == 1) tt[i] = 6;
            if (i == 0) tt[i] = 2;
            if (i == c->bos_id || i == c->eos_id) tt[i] = 3;
        }
        lm_status s = keep(b, tt);
        if (s == LM_OK) s = lm_gguf_writer_set_str(gw, "tokenizer.ggml.model", "llama");
        if (s == LM_OK) s = lm_gguf_writer_set_arr_str(gw, "tokenizer.ggml.tokens", (const char *const *)vocab, (uint64_t)n_vocab);
        if (s == LM_OK && scores) s = lm_gguf_writer_set_arr(gw, "tokenizer.ggml.scores", LM_GGUF_F32, scores, (uint64_t)n_vocab);
        if (s == LM_OK) s = lm_gguf_writer_set_arr(gw, "tokenizer.ggml.token_type", LM_GGUF_I32, tt, (uint64_t)n_vocab);
        LM_TRY(s);
    }
    if (c->bos_id >= 0) LM_TRY(lm_gguf_writer_set_u32(gw, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id));
    if (c->eos_id >= 0) LM_TRY(lm_gguf_writer_set_u32(gw, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id));
    LM_TRY(add_mat(gw, b, "token_embd.weight", &m->tok_emb, type, 0));
    LM_TRY(add_vec(gw, "output_norm.weight", m->out_norm, c->dim));
    if (m->output.data != m->tok_emb.data) LM_TRY(add_mat(gw, b, "output.weight", &m->output, type, 0));
    if (m->rope_freq_factors) LM_TRY(add_vec(gw, "rope_freqs.weight", m->rope_freq_factors, c->head_dim / 2));
    else if (c->rope_factor > 0) {
        float *ff = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
        if (!ff) return lm_error(LM_ERR_NOMEM, "out of memory");
        LM_TRY(keep(b, ff));
        lm_llama_rope_freq_factors(c, ff);
        LM_TRY(add_vec(gw, "rope_freqs.weight", ff, c->head_dim / 2));
    }
    for (int l = 0; l < c->n_layers; l++) {
        const lm_llama_layer *ly = &m->layers[l];
        char n[96];
#define T(x) (snprintf(n, sizeof n, "blk.%d.%s.weight", l, x), n)
        LM_TRY(add_vec(gw, T("attn_norm"), ly->attn_norm, c->dim));
        LM_TRY(add_mat(gw, b, T("attn_q"), &ly->wq, type, permute ? c->n_heads : 0));
        LM_TRY(add_mat(gw, b, T("attn_k"), &ly->wk, type, permute ? c->n_kv_heads : 0));
        LM_TRY(add_mat(gw, b, T("attn_v"), &ly->wv, type, 0));
        LM_TRY(add_mat(gw, b, T("attn_output"), &ly->wo, type, 0));
        LM_TRY(add_vec(gw, T("ffn_norm"), ly->ffn_norm, c->dim));
        LM_TRY(add_mat(gw, b, T("ffn_gate"), &ly->w_gate, type, 0));
        LM_TRY(add_mat(gw, b, T("ffn_down"), &ly->w_down, type, 0));
        LM_TRY(add_mat(gw, b, T("ffn_up"), &ly->w_up, type, 0));
        if (ly->bq) {
            int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
            snprintf(n, sizeof n, "blk.%d.attn_q.bias", l);
            LM_TRY(add_vec(gw, n, ly->bq, q));
            snprintf(n, sizeof n, "blk.%d.attn_k.bias", l);
            LM_TRY(add_vec(gw, n, ly->bk, kv));
            snprintf(n, sizeof n, "blk.%d.attn_v.bias", l);
            LM_TRY(add_vec(gw, n, ly->bv, kv));
        }
#undef T
    }
    return LM_OK;
}

lm_status lm_llama_save_gguf(const lm_llama_model *m, const char *path, int type, char *const *vocab, const float *scores,
                             int n_vocab) {
    if (type >= 0 && (!lm_qtype_valid(type) || type == LM_QT_Q8_K))
        return lm_error(LM_ERR_ARG, "gguf export: unsupported target type %d", type);
    lm_gguf_writer *gw = lm_gguf_writer_new();
    if (!gw) return LM_ERR_NOMEM;
    buflist b = {0};
    lm_status s = write_all(m, gw, &b, type, vocab, scores, n_vocab);
    if (s == LM_OK) s = lm_gguf_writer_write(gw, path);
    for (int i = 0; i < b.n; i++) free(b.bufs[i]);
    free(b.bufs);
    lm_gguf_writer_free(gw);
    return s;
}

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
#include "lmkit/tokenizer.h"
#include "kernels/quant_blocks.h"
#include "model/llama_internal.h"

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

/* How one matrix is produced at write time: rows read from `w` (any
 * type; rows of a q/k projection optionally permuted from half-rotation
 * to pair layout: within each head, row s*half + j moves to 2*j + s) or,
 * when w->data is NULL, drawn from N(0, 0.02) with a per-row stream of
 * `seed`; then converted to `type`. */
typedef struct {
    lm_weight w;
    lm_qtype type;
    int permute_heads;
    uint64_t seed, stream;
} mat_src;

/* Rows converted per step: bounds the F32 staging buffer. */
#define LM_SAVE_CHUNK_ROWS 64

int lm_llama_pair_row(int rows, int n_heads, int r) {
    int hd = rows / n_heads, half = hd / 2, h = r / hd, i = r % hd;
    return h * hd + (i % 2) * half + i / 2;
}

static int src_row(const mat_src *m, int r) { return m->permute_heads ? lm_llama_pair_row(m->w.rows, m->permute_heads, r) : r; }

static lm_status fill_mat(void *user, void *dst, size_t nbytes) {
    const mat_src *m = user;
    int K = m->w.cols;
    size_t in_rb = m->w.data ? lm_qtype_row_bytes(m->w.type, K) : 0, out_rb = lm_qtype_row_bytes(m->type, K);
    if (out_rb * (size_t)m->w.rows != nbytes) return lm_error(LM_ERR_ARG, "gguf export: tensor size mismatch");
    float *f = malloc(sizeof(float) * (size_t)K * LM_SAVE_CHUNK_ROWS);
    if (!f) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = LM_OK;
    for (int r0 = 0; r0 < m->w.rows && s == LM_OK; r0 += LM_SAVE_CHUNK_ROWS) {
        int nr = m->w.rows - r0 < LM_SAVE_CHUNK_ROWS ? m->w.rows - r0 : LM_SAVE_CHUNK_ROWS;
#pragma omp parallel for num_threads(lm_get_threads()) schedule(static) if (!m->w.data)
        for (int i = 0; i < nr; i++) {
            float *row = f + (size_t)i * K;
            if (m->w.data) {
                lm_dequantize_row(m->w.type, (const char *)m->w.data + in_rb * (size_t)src_row(m, r0 + i), row, K);
            } else {
                lm_rng rng;
                lm_rng_seed(&rng, m->seed, m->stream + (uint64_t)(r0 + i));
                for (int k = 0; k < K; k++) row[k] = 0.02f * lm_rng_normal(&rng);
            }
        }
        s = lm_quantize(m->type, f, (char *)dst + out_rb * (size_t)r0, nr, K);
    }
    free(f);
    return s;
}

static lm_status add_mat(lm_gguf_writer *gw, buflist *b, const char *name, const lm_weight *w, int want, int permute_heads,
                         uint64_t seed) {
    lm_qtype t = pick_type(w, want);
    int64_t dims[2] = {w->cols, w->rows};
    if (t == w->type && w->data && !permute_heads) return lm_gguf_writer_add_tensor(gw, name, t, 2, dims, w->data);
    mat_src *m = calloc(1, sizeof *m);
    if (!m) return lm_error(LM_ERR_NOMEM, "out of memory");
    LM_TRY(keep(b, m));
    /* Each random tensor gets its own range of row streams. */
    *m = (mat_src){.w = *w, .type = t, .permute_heads = permute_heads, .seed = seed, .stream = (uint64_t)b->n << 32};
    return lm_gguf_writer_add_tensor_fn(gw, name, t, 2, dims, NULL, fill_mat, m);
}

/* general.file_type is llama.cpp's llama_ftype enum, not a tensor type:
 * "mostly" the given type (Q4_K files are its Q4_K_S: Q4_K throughout). */
static uint32_t llama_ftype(lm_qtype t) {
    switch (t) {
    case LM_QT_F32: return 0;
    case LM_QT_F16: return 1;
    case LM_QT_Q4_0: return 2;
    case LM_QT_Q8_0: return 7;
    case LM_QT_Q4_K: return 14;
    case LM_QT_Q6_K: return 18;
    case LM_QT_BF16: return 32;
    default: return 0;
    }
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
    const lm_llama_arch *a = lm_llama_arch_of(c);
    const char *arch = a->gguf_arch;
    int permute = c->rope_neox && !a->gguf_half_rotation;
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
    if (type >= 0) LM_TRY(lm_gguf_writer_set_u32(gw, "general.file_type", llama_ftype((lm_qtype)type)));
#undef K
    int has_bos = 0, has_eos = 0;
    if (m->gguf && vocab && vocab == m->vocab) {
        /* The source GGUF's own tokenizer goes on whole, key for key: a
         * byte-level BPE one ("gpt2") keeps its merges and pre-tokenizer,
         * and the chat template and special-token flags stay. */
        for (size_t i = 0; i < m->gguf->n_kv; i++) {
            const lm_gguf_kv *kv = &m->gguf->kv[i];
            if (strncmp(kv->key, "tokenizer.", 10)) continue;
            LM_TRY(lm_gguf_writer_copy_kv(gw, m->gguf, kv));
            has_bos |= !strcmp(kv->key, "tokenizer.ggml.bos_token_id");
            has_eos |= !strcmp(kv->key, "tokenizer.ggml.eos_token_id");
        }
    } else if (m->source_dir && !vocab) {
        /* An HF directory's tokenizer.json; a GGUF without a tokenizer is
         * still written when GGUF has no form for it (the caller says so). */
        lm_status ts = lm_gguf_add_hf_tokenizer(gw, m->source_dir, c->vocab_size, c->bos_id, c->eos_id, &has_bos, &has_eos);
        if (ts != LM_OK && ts != LM_ERR_UNSUPPORTED) return ts;
    } else if (vocab && n_vocab > 0) {
        int32_t *tt = malloc(sizeof(int32_t) * (size_t)n_vocab);
        if (!tt) return lm_error(LM_ERR_NOMEM, "out of memory");
        LM_TRY(keep(b, tt));
        char **pieces = calloc((size_t)n_vocab, sizeof *pieces);
        LM_TRY(pieces ? keep(b, pieces) : lm_error(LM_ERR_NOMEM, "out of memory"));
        for (int i = 0; i < n_vocab; i++) {
            pieces[i] = lm_spm_spelling(vocab[i], strlen(vocab[i]), NULL);
            LM_TRY(pieces[i] ? keep(b, pieces[i]) : lm_error(LM_ERR_NOMEM, "out of memory"));
        }
        vocab = pieces;
        for (int i = 0; i < n_vocab; i++) {
            unsigned x;
            tt[i] = 1;
            if (strlen(vocab[i]) == 6 && sscanf(vocab[i], "<0x%02X>", &x) == 1) tt[i] = 6;
            if (i == 0) tt[i] = 2;
            if (i == c->bos_id || i == c->eos_id) tt[i] = 3;
        }
        lm_status s = lm_gguf_writer_set_str(gw, "tokenizer.ggml.model", "llama");
        if (s == LM_OK) s = lm_gguf_writer_set_arr_str(gw, "tokenizer.ggml.tokens", (const char *const *)vocab, (uint64_t)n_vocab);
        if (s == LM_OK && scores) s = lm_gguf_writer_set_arr(gw, "tokenizer.ggml.scores", LM_GGUF_F32, scores, (uint64_t)n_vocab);
        if (s == LM_OK) s = lm_gguf_writer_set_arr(gw, "tokenizer.ggml.token_type", LM_GGUF_I32, tt, (uint64_t)n_vocab);
        LM_TRY(s);
    }
    if (c->bos_id >= 0 && !has_bos) LM_TRY(lm_gguf_writer_set_u32(gw, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id));
    if (c->eos_id >= 0 && !has_eos) LM_TRY(lm_gguf_writer_set_u32(gw, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id));
    LM_TRY(add_mat(gw, b, "token_embd.weight", &m->tok_emb, type, 0, m->random_seed));
    LM_TRY(add_vec(gw, "output_norm.weight", m->out_norm, c->dim));
    if (m->output.data != m->tok_emb.data || !m->tok_emb.data) LM_TRY(add_mat(gw, b, "output.weight", &m->output, type, 0, m->random_seed));
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
        LM_TRY(add_mat(gw, b, T("attn_q"), &ly->wq, type, permute ? c->n_heads : 0, m->random_seed));
        LM_TRY(add_mat(gw, b, T("attn_k"), &ly->wk, type, permute ? c->n_kv_heads : 0, m->random_seed));
        LM_TRY(add_mat(gw, b, T("attn_v"), &ly->wv, type, 0, m->random_seed));
        LM_TRY(add_mat(gw, b, T("attn_output"), &ly->wo, type, 0, m->random_seed));
        LM_TRY(add_vec(gw, T("ffn_norm"), ly->ffn_norm, c->dim));
        LM_TRY(add_mat(gw, b, T("ffn_gate"), &ly->w_gate, type, 0, m->random_seed));
        LM_TRY(add_mat(gw, b, T("ffn_down"), &ly->w_down, type, 0, m->random_seed));
        LM_TRY(add_mat(gw, b, T("ffn_up"), &ly->w_up, type, 0, m->random_seed));
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

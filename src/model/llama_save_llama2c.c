/* Writing a LLaMA model as a llama2.c checkpoint and tokenizer.bin, in the
 * legacy (version 0) layout that llama2.c's run.c reads and its export.py
 * writes: everything float32, RoPE on adjacent pairs with theta 10000,
 * head size dim / n_heads, no biases. A model outside that is refused by
 * the feature's name before the file is opened, rather than written into a
 * checkpoint that runs as a different model. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"
#include "model/llama_internal.h"

/* What llama2.c's fixed-shape transformer cannot express. rms_eps is not
 * here: run.c fixes it at 1e-5 and export.py drops it too, so a model with
 * another epsilon is written (the caller may say so). */
static lm_status check_representable(const lm_llama_model *m) {
    const lm_llama_config *c = &m->cfg;
    if (c->qkv_bias) return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: q/k/v biases (llama2.c's attention has none)");
    /* A window that covers the whole context is plain causal attention. */
    if (c->sliding_window > 0 && c->sliding_window < c->max_seq_len)
        return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: sliding-window attention (window %d < context %d)", c->sliding_window,
                        c->max_seq_len);
    if (c->rope_factor > 0 || m->rope_freq_factors)
        return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: llama3 RoPE scaling (llama2.c has plain RoPE)");
    if (c->rope_theta != 10000.f)
        return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: rope_theta %g (llama2.c's run.c fixes 10000)", (double)c->rope_theta);
    if (c->head_dim * c->n_heads != c->dim)
        return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: head_dim %d != dim %d / n_heads %d (llama2.c derives it)", c->head_dim,
                        c->dim, c->n_heads);
    if (!m->tok_emb.data)
        return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: the model has no weights yet (a random init: save it as GGUF)");
    return LM_OK;
}

/* Rows converted per write: bounds the F32 staging buffer. */
#define LM_L2C_CHUNK_ROWS 64

/* One matrix as float32 rows; permute_heads > 0 reorders the rows of a
 * half-rotation q/k projection into llama2.c's pair layout. */
static lm_status put_mat(lm_atomic_file *af, const lm_weight *w, int permute_heads, float *buf) {
    size_t rb = lm_qtype_row_bytes(w->type, w->cols);
    const char *base = w->data;
    for (int r0 = 0; r0 < w->rows; r0 += LM_L2C_CHUNK_ROWS) {
        int nr = w->rows - r0 < LM_L2C_CHUNK_ROWS ? w->rows - r0 : LM_L2C_CHUNK_ROWS;
        if (!permute_heads) LM_TRY(lm_dequantize(w->type, base + rb * (size_t)r0, buf, nr, w->cols));
        else
            for (int i = 0; i < nr; i++)
                LM_TRY(lm_dequantize(w->type, base + rb * (size_t)lm_llama_pair_row(w->rows, permute_heads, r0 + i),
                                     buf + (size_t)i * (size_t)w->cols, 1, w->cols));
        LM_TRY(lm_atomic_write(af, buf, sizeof(float) * (size_t)nr * (size_t)w->cols));
    }
    return LM_OK;
}

static lm_status put_vec(lm_atomic_file *af, const float *v, int n) { return lm_atomic_write(af, v, sizeof(float) * (size_t)n); }

/* export.py's freq_cis tables (run.c skips them; lmkit's loader too):
 * cos, then sin, of pos * inv_freq for seq_len positions and head_dim / 2
 * frequencies, each product rounded to float as torch computes it. The
 * cosine is rounded from double, so a value may differ from torch's
 * float32 cos by one unit in the last place. */
static lm_status put_freq_cis(lm_atomic_file *af, const lm_llama_model *m, float *buf) {
    int half = m->cfg.head_dim / 2;
    float inv[512];
    if (half > 512) return lm_error(LM_ERR_UNSUPPORTED, "llama2.c export: head_dim %d over 1024", m->cfg.head_dim);
    lm_llama_rope_inv_freq(m, inv);
    for (int sine = 0; sine < 2; sine++)
        for (int t = 0; t < m->cfg.max_seq_len; t++) {
            for (int j = 0; j < half; j++) {
                double a = (double)((float)t * inv[j]);
                buf[j] = (float)(sine ? sin(a) : cos(a));
            }
            LM_TRY(lm_atomic_write(af, buf, sizeof(float) * (size_t)half));
        }
    return LM_OK;
}

static lm_status write_all(const lm_llama_model *m, lm_atomic_file *af, float *buf) {
    const lm_llama_config *c = &m->cfg;
    int shared = m->output.data == m->tok_emb.data, L = c->n_layers;
    int qp = c->rope_neox ? c->n_heads : 0, kp = c->rope_neox ? c->n_kv_heads : 0;
    /* A negative vocab_size is how the legacy header says the classifier
     * is a matrix of its own, stored last. */
    int32_t h[7] = {c->dim, c->hidden_dim, L, c->n_heads, c->n_kv_heads, shared ? c->vocab_size : -c->vocab_size, c->max_seq_len};
    LM_TRY(lm_atomic_write(af, h, sizeof h));
    LM_TRY(put_mat(af, &m->tok_emb, 0, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_vec(af, m->layers[l].attn_norm, c->dim));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].wq, qp, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].wk, kp, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].wv, 0, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].wo, 0, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_vec(af, m->layers[l].ffn_norm, c->dim));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].w_gate, 0, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].w_down, 0, buf));
    for (int l = 0; l < L; l++) LM_TRY(put_mat(af, &m->layers[l].w_up, 0, buf));
    LM_TRY(put_vec(af, m->out_norm, c->dim));
    LM_TRY(put_freq_cis(af, m, buf));
    if (!shared) LM_TRY(put_mat(af, &m->output, 0, buf));
    return LM_OK;
}

lm_status lm_llama_save_llama2c(const lm_llama_model *m, const char *path) {
    LM_TRY(check_representable(m));
    const lm_llama_config *c = &m->cfg;
    /* The widest row any matrix has (w_down's is hidden_dim), and room for
     * a row of the freq_cis tables. */
    size_t width = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
    float *buf = malloc(sizeof(float) * width * LM_L2C_CHUNK_ROWS + sizeof(float) * (size_t)c->head_dim);
    if (!buf) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_atomic_file af;
    lm_status s = lm_atomic_open(&af, path);
    if (s == LM_OK) {
        s = write_all(m, &af, buf);
        if (s == LM_OK) s = lm_atomic_commit(&af);
        else lm_atomic_abort(&af);
    }
    free(buf);
    return s;
}

/* ---------------- tokenizer.bin ---------------- */

/* A piece as llama2.c's tokenizer.bin spells it: the inverse of
 * lm_spm_spelling (U+2581 back to a space, BOS/EOS wrapped in newlines as
 * export.py writes them). Pieces already in llama2.c's spelling come back
 * unchanged. Writes into out (room for len + 2 bytes), returns the length. */
static size_t llama2c_spelling(const char *p, size_t len, int control, char *out) {
    size_t k = 0;
    int wrap = control && !(len && p[0] == '\n');
    if (wrap) out[k++] = '\n';
    for (size_t i = 0; i < len; i++) {
        if (i + 2 < len && !memcmp(p + i, "\xE2\x96\x81", 3)) {
            out[k++] = ' ';
            i += 2;
        } else out[k++] = p[i];
    }
    if (wrap) out[k++] = '\n';
    return k;
}

lm_status lm_llama2c_vocab_save(const char *path, char *const *pieces, const float *scores, int n, int bos_id, int eos_id) {
    size_t cap = 4;
    for (int i = 0; i < n; i++) cap += 8 + strlen(pieces[i]) + 2;
    char *buf = malloc(cap);
    if (!buf) return lm_error(LM_ERR_NOMEM, "out of memory");
    size_t pos = 4;
    int32_t max_len = 0;
    for (int i = 0; i < n; i++) {
        float sc = scores ? scores[i] : 0.f;
        int32_t l = (int32_t)llama2c_spelling(pieces[i], strlen(pieces[i]), i == bos_id || i == eos_id, buf + pos + 8);
        memcpy(buf + pos, &sc, 4);
        memcpy(buf + pos + 4, &l, 4);
        pos += 8 + (size_t)l;
        if (l > max_len) max_len = l;
    }
    memcpy(buf, &max_len, 4);
    lm_status s = lm_write_file_atomic(path, buf, pos);
    free(buf);
    return s;
}

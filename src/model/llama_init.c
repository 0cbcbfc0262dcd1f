/* Randomly initialized LLaMA models of named shapes, for benchmarks and
 * tests that need real sizes but no trained weights. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"
#include "model/llama_internal.h"

lm_status lm_llama_preset(const char *name, lm_llama_config *c) {
    memset(c, 0, sizeof *c);
    c->rope_theta = 10000.f, c->rms_eps = 1e-5f, c->bos_id = 1, c->eos_id = 2;
    if (!strcmp(name, "stories260K-shape")) {
        c->dim = 64, c->hidden_dim = 172, c->n_layers = 5, c->n_heads = 8, c->n_kv_heads = 4, c->vocab_size = 512, c->max_seq_len = 512;
    } else if (!strcmp(name, "1B")) {
        c->dim = 2048, c->hidden_dim = 5632, c->n_layers = 22, c->n_heads = 32, c->n_kv_heads = 4, c->vocab_size = 32000,
        c->max_seq_len = 2048;
    } else if (!strcmp(name, "7B")) {
        c->dim = 4096, c->hidden_dim = 11008, c->n_layers = 32, c->n_heads = 32, c->n_kv_heads = 32, c->vocab_size = 32000,
        c->max_seq_len = 4096;
    } else {
        return lm_error(LM_ERR_ARG, "unknown preset '%s' (expected stories260K-shape, 1B, 7B)", name);
    }
    c->head_dim = c->dim / c->n_heads;
    return LM_OK;
}

static lm_status rand_buf(lm_llama_model *m, lm_rng *r, size_t n, float value, const float **out) {
    float *p = malloc(sizeof(float) * n);
    if (!p) return lm_error(LM_ERR_NOMEM, "init: cannot allocate %zu floats", n);
    LM_TRY(lm_llama_own(m, p));
    for (size_t i = 0; i < n; i++) p[i] = value ? value : 0.02f * lm_rng_normal(r);
    *out = p;
    return LM_OK;
}

/* A matrix left for lm_llama_save_gguf to draw (data NULL). */
static void lazy_w(int rows, int cols, lm_weight *w) { w->data = NULL, w->type = LM_QT_F32, w->rows = rows, w->cols = cols; }

lm_status lm_llama_init_random(const lm_llama_config *c, uint64_t seed, lm_llama_model *m) {
    memset(m, 0, sizeof *m);
    LM_TRY(lm_llama_config_check(c));
    m->cfg = *c;
    m->random_seed = seed ? seed : 1;
    lm_rng r;
    lm_rng_seed(&r, seed, 1);
    int D = c->dim, H = c->hidden_dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    lm_status s;
    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) return lm_error(LM_ERR_NOMEM, "init: out of memory");
    lazy_w(c->vocab_size, D, &m->tok_emb);
    lazy_w(c->vocab_size, D, &m->output);
    if ((s = rand_buf(m, &r, (size_t)D, 1.f, &m->out_norm))) goto fail;
    for (int l = 0; l < c->n_layers; l++) {
        lm_llama_layer *ly = &m->layers[l];
        if ((s = rand_buf(m, &r, (size_t)D, 1.f, &ly->attn_norm)) || (s = rand_buf(m, &r, (size_t)D, 1.f, &ly->ffn_norm))) goto fail;
        lazy_w(Q, D, &ly->wq), lazy_w(KV, D, &ly->wk), lazy_w(KV, D, &ly->wv), lazy_w(D, Q, &ly->wo);
        lazy_w(H, D, &ly->w_gate), lazy_w(D, H, &ly->w_down), lazy_w(H, D, &ly->w_up);
    }
    return LM_OK;
fail:
    lm_llama_free(m);
    return s;
}

lm_status lm_llama_vocab_synthetic(int n, char ***pieces, float **scores) {
    *pieces = calloc((size_t)n, sizeof(char *));
    *scores = calloc((size_t)n, sizeof(float));
    lm_status s = *pieces && *scores ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && s == LM_OK; i++) {
        char buf[32];
        if (i < 3) snprintf(buf, sizeof buf, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
        else if (i < 3 + 256) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else snprintf(buf, sizeof buf, "\xe2\x96\x81t%d", i); /* "▁t<i>": unique SentencePiece-style words */
        (*scores)[i] = i < 3 + 256 ? 0.f : -(float)i;
        if (!((*pieces)[i] = strdup(buf))) s = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (s != LM_OK) {
        lm_llama_vocab_synthetic_free(*pieces, *scores, n);
        *pieces = NULL, *scores = NULL;
    }
    return s;
}

void lm_llama_vocab_synthetic_free(char **pieces, float *scores, int n) {
    for (int i = 0; pieces && i < n; i++) free(pieces[i]);
    free(pieces);
    free(scores);
}

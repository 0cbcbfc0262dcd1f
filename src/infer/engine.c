/* The LLaMA forward pass over a batch of (sequence, token) pairs.
 *
 * Every matmul takes all tokens of the step at once, so the weights are
 * read once per step whatever mix of prefill and decode it holds. K and V
 * of all tokens are written to the cache before attention runs, so a
 * token attends to earlier tokens of its own sequence from the same step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/engine.h"
#include "lmkit/kernels.h"
#include "infer/kv_attention.h"

/* Upper bound on tokens per internal step (bounds a stack array). */
#define LM_ENGINE_MAX_BATCH 4096

struct lm_engine {
    const lm_llama_model *m;
    lm_engine_opts o;
    int kv_dim, q_dim;
    /* [seq][layer][kv head] blocks, each one head's K or V in the layout
     * of kv_attention.h: K in transposed tiles over kv_ctx positions (the
     * context rounded up to whole tiles), V in rows over ctx_len. */
    void *kcache, *vcache;
    int kv_ctx;
    int *len;
    float *inv_freq;       /* [head_dim / 2] */
    /* activations, max_batch rows each */
    float *x, *xb, *xb2, *q, *k, *v, *att, *hb, *hb2;
    float *rope_cs; /* [max_batch][head_dim / 2][cos, sin] of each token's position */
    float *rstd;    /* [max_batch], RMSNorm's by-product */
    int *pos, *seq;
    void *mm_scratch;
    uint16_t *k16; /* [kv_dim]: a token's K in F16 before it is scattered into the tiles */
};

/* First element of a head's K or V block. */
static size_t k_block(const lm_engine *e, int seq, int layer, int h) {
    const lm_llama_config *c = &e->m->cfg;
    return (((size_t)seq * c->n_layers + layer) * c->n_kv_heads + h) * e->kv_ctx * c->head_dim;
}
static size_t v_block(const lm_engine *e, int seq, int layer, int h) {
    const lm_llama_config *c = &e->m->cfg;
    return (((size_t)seq * c->n_layers + layer) * c->n_kv_heads + h) * e->o.ctx_len * c->head_dim;
}

size_t lm_engine_kv_bytes(const lm_engine *e) {
    return (k_block(e, e->o.max_seqs, 0, 0) + v_block(e, e->o.max_seqs, 0, 0)) * (e->o.kv_f16 ? 2 : 4);
}

void lm_engine_free(lm_engine *e) {
    if (!e) return;
    void *bufs[] = {e->kcache, e->vcache, e->len, e->inv_freq, e->x, e->xb, e->xb2, e->q, e->k, e->v,
                    e->att, e->hb, e->hb2, e->rope_cs, e->rstd, e->pos, e->seq, e->mm_scratch, e->k16};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) lm_free(bufs[i]);
    free(e);
}

static size_t max_scratch(const lm_llama_model *m, int n) {
    size_t s = 0;
    const lm_weight *ws[2] = {&m->tok_emb, &m->output};
    for (int i = 0; i < 2; i++) {
        size_t t = lm_qmatmul_scratch(ws[i]->type, n, ws[i]->cols);
        if (t > s) s = t;
    }
    for (int l = 0; l < m->cfg.n_layers; l++) {
        const lm_llama_layer *ly = &m->layers[l];
        const lm_weight *lw[7] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_down, &ly->w_up};
        for (int i = 0; i < 7; i++) {
            size_t t = lm_qmatmul_scratch(lw[i]->type, n, lw[i]->cols);
            if (t > s) s = t;
        }
    }
    return s;
}

lm_status lm_engine_new(const lm_llama_model *m, const lm_engine_opts *opts, lm_engine **out) {
    const lm_llama_config *c = &m->cfg;
    lm_engine *e = calloc(1, sizeof *e);
    if (!e) return lm_error(LM_ERR_NOMEM, "engine: out of memory");
    e->m = m;
    if (opts) e->o = *opts;
    if (e->o.max_seqs <= 0) e->o.max_seqs = 1;
    if (e->o.ctx_len <= 0 || e->o.ctx_len > c->max_seq_len) e->o.ctx_len = c->max_seq_len;
    if (e->o.max_batch <= 0) e->o.max_batch = 512;
    if (e->o.max_batch > LM_ENGINE_MAX_BATCH) e->o.max_batch = LM_ENGINE_MAX_BATCH;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    e->q_dim = c->n_heads * c->head_dim;
    e->kv_ctx = (e->o.ctx_len + LM_KV_TILE - 1) / LM_KV_TILE * LM_KV_TILE;
    int B = e->o.max_batch;
    size_t es = e->o.kv_f16 ? 2 : 4, kv = lm_engine_kv_bytes(e);
    e->kcache = lm_alloc_huge(k_block(e, e->o.max_seqs, 0, 0) * es); /* 2 MiB pages: fewer TLB misses */
    e->vcache = lm_alloc_huge(v_block(e, e->o.max_seqs, 0, 0) * es);
    e->len = lm_alloc(sizeof(int) * (size_t)e->o.max_seqs);
    e->inv_freq = lm_alloc(sizeof(float) * (size_t)c->head_dim / 2);
    e->x = lm_alloc(sizeof(float) * (size_t)B * c->dim);
    e->xb = lm_alloc(sizeof(float) * (size_t)B * (c->dim > e->q_dim ? c->dim : e->q_dim));
    e->xb2 = lm_alloc(sizeof(float) * (size_t)B * c->dim);
    e->q = lm_alloc(sizeof(float) * (size_t)B * e->q_dim);
    e->k = lm_alloc(sizeof(float) * (size_t)B * e->kv_dim);
    e->v = lm_alloc(sizeof(float) * (size_t)B * e->kv_dim);
    e->att = lm_alloc(sizeof(float) * (size_t)B * e->q_dim);
    e->hb = lm_alloc(sizeof(float) * (size_t)B * c->hidden_dim);
    e->hb2 = lm_alloc(sizeof(float) * (size_t)B * c->hidden_dim);
    e->rope_cs = lm_alloc(sizeof(float) * (size_t)B * c->head_dim);
    e->rstd = lm_alloc(sizeof(float) * (size_t)B);
    e->pos = lm_alloc(sizeof(int) * (size_t)B);
    e->seq = lm_alloc(sizeof(int) * (size_t)B);
    e->mm_scratch = lm_alloc(max_scratch(m, B) + 64);
    e->k16 = lm_alloc(sizeof(uint16_t) * (size_t)e->kv_dim);
    if (!e->kcache || !e->vcache || !e->len || !e->inv_freq || !e->x || !e->xb || !e->xb2 || !e->q || !e->k || !e->v ||
        !e->att || !e->hb || !e->hb2 || !e->rope_cs || !e->rstd || !e->pos || !e->seq || !e->mm_scratch ||
        !e->k16) {
        lm_engine_free(e);
        return lm_error(LM_ERR_NOMEM, "engine: cannot allocate KV cache (%zu bytes) and activations", kv);
    }
    lm_llama_rope_inv_freq(m, e->inv_freq);
    *out = e;
    return LM_OK;
}

void lm_engine_reset(lm_engine *e, int seq) {
    if (seq >= 0 && seq < e->o.max_seqs) e->len[seq] = 0;
}
int lm_engine_ctx_len(const lm_engine *e) { return e->o.ctx_len; }
int lm_engine_vocab_size(const lm_engine *e) { return e->m->cfg.vocab_size; }
int lm_engine_seq_len(const lm_engine *e, int seq) { return seq >= 0 && seq < e->o.max_seqs ? e->len[seq] : 0; }

/* RMSNorm of n rows of width dim, one kernel call per row (a row is below
 * the kernels' threading threshold: no OpenMP region competes with the
 * pool's threads). */
static void rmsnorm_rows(lm_engine *e, float *out, const float *x, const float *w, int n) {
    int D = e->m->cfg.dim;
    for (int i = 0; i < n; i++)
        lm_rmsnorm_forward(out + (size_t)i * D, e->rstd + i, x + (size_t)i * D, w, 1, D, e->m->cfg.rms_eps);
}

/* The rotation of every frequency at a position: cs[2j], cs[2j+1] = cos, sin
 * of pos * inv[j]. Once per token, shared by all heads and layers. */
static void rope_angles(float *cs, int hd, int pos, const float *inv) {
    for (int j = 0; j < hd / 2; j++) {
        float a = pos * inv[j];
        cs[2 * j] = cosf(a);
        cs[2 * j + 1] = sinf(a);
    }
}

static void rope(float *v, int n_heads, int hd, const float *cs, int neox) {
    int half = hd / 2;
    for (int h = 0; h < n_heads; h++, v += hd)
        for (int j = 0; j < half; j++) {
            float cr = cs[2 * j], ci = cs[2 * j + 1];
            int i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
            float v0 = v[i0], v1 = v[i1];
            v[i0] = v0 * cr - v1 * ci;
            v[i1] = v0 * ci + v1 * cr;
        }
}

static void mm(lm_engine *e, float *y, const lm_weight *w, const float *x, int n) {
    lm_qmatmul(y, w->data, w->type, w->rows, w->cols, x, n, e->mm_scratch);
}

/* Products of one input with two or three weights (q, k, v; gate, up):
 * one conversion of x and one parallel run when their types match (a
 * mixed-type file, e.g. Q4_K_M's Q6_K v, goes one by one). */
static void mm_same_input(lm_engine *e, int count, float *const *ys, const lm_weight *const *ws, const float *x, int n) {
    int same = 1, rows[LM_QMATMUL_MAX_GROUP];
    const void *data[LM_QMATMUL_MAX_GROUP];
    for (int i = 0; i < count; i++) {
        same &= ws[i]->type == ws[0]->type && ws[i]->cols == ws[0]->cols;
        rows[i] = ws[i]->rows;
        data[i] = ws[i]->data;
    }
    if (!same) {
        for (int i = 0; i < count; i++) mm(e, ys[i], ws[i], x, n);
        return;
    }
    lm_qmatmul_group(count, ys, data, ws[0]->type, rows, ws[0]->cols, x, n, e->mm_scratch);
}

/* Writes token i's K and V into each head's blocks (F16: converted in
 * vectors, then K's elements scattered into the tiles). */
static void store_kv(lm_engine *e, int layer, int i, const float *k, const float *v) {
    const lm_llama_config *c = &e->m->cfg;
    int hd = c->head_dim, seq = e->seq[i], pos = e->pos[i], f16 = e->o.kv_f16;
    if (f16) lm_f32_to_f16_row(k, e->k16, (size_t)e->kv_dim);
    for (int h = 0; h < c->n_kv_heads; h++) {
        size_t kb = k_block(e, seq, layer, h), vb = v_block(e, seq, layer, h) + (size_t)pos * hd;
        for (int d = 0; d < hd; d++) {
            size_t ki = kb + lm_kv_k_index(pos, d, hd);
            if (f16) ((uint16_t *)e->kcache)[ki] = e->k16[h * hd + d];
            else ((float *)e->kcache)[ki] = k[h * hd + d];
        }
        if (f16) lm_f32_to_f16_row(v + (size_t)h * hd, (uint16_t *)e->vcache + vb, (size_t)hd);
        else memcpy((float *)e->vcache + vb, v + (size_t)h * hd, sizeof(float) * (size_t)hd);
    }
}

static int has_avx512(void) {
    const lm_cpu_features *f = lm_cpu();
    return f->avx512f && f->avx512bw && f->avx512vl && f->fma && f->f16c;
}

typedef struct {
    lm_engine *e;
    int layer, tasks;
} attn_job;

/* One (token, K/V head) pair: the query heads that share the K/V head
 * attend together (kv_attention.h). */
static void attention_task(void *ctx, int task) {
    const attn_job *j = ctx;
    lm_engine *e = j->e;
    const lm_llama_config *c = &e->m->cfg;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    int i = task / c->n_kv_heads, kvh = task % c->n_kv_heads, seq = e->seq[i];
    float scale = 1.0f / sqrtf((float)hd);
    const float *q = e->q + (size_t)i * e->q_dim + (size_t)kvh * group * hd;
    float *out = e->att + (size_t)i * e->q_dim + (size_t)kvh * group * hd;
    int p = e->pos[i], start = 0;
    if (c->sliding_window > 0 && p - c->sliding_window + 1 > 0) start = p - c->sliding_window + 1;
    size_t es = e->o.kv_f16 ? 2 : 4;
    lm_kv_head kv = {.k = (const char *)e->kcache + k_block(e, seq, j->layer, kvh) * es,
                     .v = (const char *)e->vcache + v_block(e, seq, j->layer, kvh) * es,
                     .f16 = e->o.kv_f16};
    /* The next task's head, which this thread most often runs next
     * (lm_parallel_range hands out contiguous runs), is prefetched while
     * this one is read (kv_attention.h). */
    if (task + 1 < j->tasks) {
        int i2 = (task + 1) / c->n_kv_heads, kvh2 = (task + 1) % c->n_kv_heads, seq2 = e->seq[i2];
        kv.next_k = (const char *)e->kcache + k_block(e, seq2, j->layer, kvh2) * es;
        kv.next_v = (const char *)e->vcache + v_block(e, seq2, j->layer, kvh2) * es;
        kv.next_end = e->pos[i2] + 1;
    }
    if (has_avx512() && lm_kv_attention_group_avx512(out, q, group, hd, &kv, start, p + 1, scale)) return;
    lm_kv_attention_group(out, q, group, hd, &kv, start, p + 1, scale);
}

static void attention_range(void *ctx, int begin, int end) {
    for (int t = begin; t < end; t++) attention_task(ctx, t);
}

static void attention(lm_engine *e, int layer, int n) {
    const lm_llama_config *c = &e->m->cfg;
    long work = 0; /* multiply-adds, to decide whether threads pay off */
    for (int i = 0; i < n; i++) work += (long)(e->pos[i] + 1) * c->head_dim * c->n_heads * 2;
    attn_job j = {e, layer, n * c->n_kv_heads};
    if (work < (1 << 18))
        for (int t = 0; t < n * c->n_kv_heads; t++) attention_task(&j, t);
    else
        lm_parallel_range(n * c->n_kv_heads, 1, attention_range, &j);
}

static void forward_chunk(lm_engine *e, int n, const int32_t *tokens, const int *seqs, const uint8_t *want,
                          float *logits, int *n_out) {
    const lm_llama_model *m = e->m;
    const lm_llama_config *c = &m->cfg;
    int D = c->dim, H = c->hidden_dim;
    for (int i = 0; i < n; i++) {
        e->seq[i] = seqs ? seqs[i] : 0;
        e->pos[i] = e->len[e->seq[i]]++;
        rope_angles(e->rope_cs + (size_t)i * c->head_dim, c->head_dim, e->pos[i], e->inv_freq);
        const char *row = (const char *)m->tok_emb.data + (size_t)tokens[i] * lm_qtype_row_bytes(m->tok_emb.type, D);
        lm_dequantize(m->tok_emb.type, row, e->x + (size_t)i * D, 1, D);
    }
    for (int l = 0; l < c->n_layers; l++) {
        const lm_llama_layer *ly = &m->layers[l];
        rmsnorm_rows(e, e->xb, e->x, ly->attn_norm, n);
        mm_same_input(e, 3, (float *const[]){e->q, e->k, e->v}, (const lm_weight *const[]){&ly->wq, &ly->wk, &ly->wv}, e->xb, n);
        for (int i = 0; i < n; i++) {
            float *q = e->q + (size_t)i * e->q_dim, *k = e->k + (size_t)i * e->kv_dim, *v = e->v + (size_t)i * e->kv_dim;
            if (ly->bq) {
                for (int j = 0; j < e->q_dim; j++) q[j] += ly->bq[j];
                for (int j = 0; j < e->kv_dim; j++) k[j] += ly->bk[j], v[j] += ly->bv[j];
            }
            const float *cs = e->rope_cs + (size_t)i * c->head_dim;
            rope(q, c->n_heads, c->head_dim, cs, c->rope_neox);
            rope(k, c->n_kv_heads, c->head_dim, cs, c->rope_neox);
            store_kv(e, l, i, k, v);
        }
        attention(e, l, n);
        mm(e, e->xb2, &ly->wo, e->att, n);
        for (size_t j = 0; j < (size_t)n * D; j++) e->x[j] += e->xb2[j];
        rmsnorm_rows(e, e->xb, e->x, ly->ffn_norm, n);
        mm_same_input(e, 2, (float *const[]){e->hb, e->hb2}, (const lm_weight *const[]){&ly->w_gate, &ly->w_up}, e->xb, n);
        for (int i = 0; i < n; i++) /* row by row: no OpenMP region next to the pool's threads */
            lm_swiglu_forward(e->hb + (size_t)i * H, e->hb + (size_t)i * H, e->hb2 + (size_t)i * H, (size_t)H);
        mm(e, e->xb2, &ly->w_down, e->hb, n);
        for (size_t j = 0; j < (size_t)n * D; j++) e->x[j] += e->xb2[j];
    }
    int r = 0;
    for (int i = 0; i < n; i++)
        if (want[i]) lm_rmsnorm_forward(e->xb + (size_t)r++ * D, e->rstd, e->x + (size_t)i * D, m->out_norm, 1, D, c->rms_eps);
    if (r) mm(e, logits, &m->output, e->xb, r);
    *n_out = r;
}

lm_status lm_engine_forward(lm_engine *e, int n, const int32_t *tokens, const int *seqs, const uint8_t *want_logits,
                            float *logits) {
    const lm_llama_config *c = &e->m->cfg;
    /* Validate the whole batch before touching any state. */
    for (int i = 0; i < n; i++) {
        int s = seqs ? seqs[i] : 0;
        if (s < 0 || s >= e->o.max_seqs)
            return lm_error(LM_ERR_ARG, "engine: sequence %d out of range [0, %d)", s, e->o.max_seqs);
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return lm_error(LM_ERR_ARG, "engine: token id %d out of range [0, %d)", tokens[i], c->vocab_size);
    }
    for (int i = 0; i < n; i++) {
        int s = seqs ? seqs[i] : 0, extra = 0;
        for (int j = 0; j <= i; j++) extra += (seqs ? seqs[j] : 0) == s;
        if (e->len[s] + extra > e->o.ctx_len)
            return lm_error(LM_ERR_RANGE, "engine: sequence %d would exceed the context length %d", s, e->o.ctx_len);
    }
    uint8_t last_only[1] = {1};
    for (int i0 = 0; i0 < n; i0 += e->o.max_batch) {
        int nb = n - i0 < e->o.max_batch ? n - i0 : e->o.max_batch, got;
        uint8_t want[LM_ENGINE_MAX_BATCH];
        for (int i = 0; i < nb; i++) want[i] = want_logits ? want_logits[i0 + i] : (i0 + i == n - 1 ? last_only[0] : 0);
        forward_chunk(e, nb, tokens + i0, seqs ? seqs + i0 : NULL, want, logits, &got);
        logits += (size_t)got * c->vocab_size;
    }
    return LM_OK;
}

/* GPT-2 incremental decoding with a KV cache: each new token attends to
 * the cached keys/values of all earlier positions, so generating N tokens
 * costs O(N) forward work instead of O(N^2). */
#include "model/gpt2_internal.h"

#include "lmkit/kernels.h"
#include "model/conv1d.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lm_gpt2_cache {
    int n_ctx, C, L;
    float *k, *v; /* [L, n_ctx, C] each */
    /* scratch for up to `cap` tokens at once */
    int cap;
    float *x, *ln, *mean, *rstd, *qkv, *att, *proj, *fch, *fch_gelu, *scores;
    int32_t *pos;
};

static void lm_cache_free_scratch(lm_gpt2_cache *c) {
    float **bufs[] = {&c->x, &c->ln, &c->mean, &c->rstd, &c->qkv, &c->att, &c->proj, &c->fch, &c->fch_gelu, &c->scores};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        lm_free(*bufs[i]);
        *bufs[i] = NULL;
    }
    free(c->pos);
    c->pos = NULL;
    c->cap = 0;
}

lm_status lm_gpt2_cache_create(const lm_gpt2 *m, lm_gpt2_cache **out) {
    lm_gpt2_cache *c = calloc(1, sizeof *c);
    if (!c) return lm_error(LM_ERR_NOMEM, "out of memory");
    c->n_ctx = m->cfg.n_ctx;
    c->C = m->cfg.n_embd;
    c->L = m->cfg.n_layer;
    size_t n = (size_t)c->L * c->n_ctx * c->C;
    c->k = lm_alloc(n * sizeof(float));
    c->v = lm_alloc(n * sizeof(float));
    if (!c->k || !c->v) {
        lm_gpt2_cache_free(c);
        return lm_error(LM_ERR_NOMEM, "out of memory for the KV cache (%zu floats)", 2 * n);
    }
    *out = c;
    return LM_OK;
}

void lm_gpt2_cache_free(lm_gpt2_cache *c) {
    if (!c) return;
    lm_cache_free_scratch(c);
    lm_free(c->k);
    lm_free(c->v);
    free(c);
}

static lm_status lm_cache_reserve(lm_gpt2_cache *c, const lm_model_config *cfg, int n) {
    if (n <= c->cap) return LM_OK;
    lm_cache_free_scratch(c);
    size_t C = (size_t)cfg->n_embd, F = (size_t)cfg->n_inner;
    c->x = lm_alloc((size_t)n * C * sizeof(float));
    c->ln = lm_alloc((size_t)n * C * sizeof(float));
    c->mean = lm_alloc((size_t)n * sizeof(float));
    c->rstd = lm_alloc((size_t)n * sizeof(float));
    c->qkv = lm_alloc((size_t)n * 3 * C * sizeof(float));
    c->att = lm_alloc((size_t)n * C * sizeof(float));
    c->proj = lm_alloc((size_t)n * C * sizeof(float));
    c->fch = lm_alloc((size_t)n * F * sizeof(float));
    c->fch_gelu = lm_alloc((size_t)n * F * sizeof(float));
    c->scores = lm_alloc((size_t)cfg->n_head * cfg->n_ctx * sizeof(float));
    c->pos = malloc((size_t)n * sizeof(int32_t));
    if (!c->x || !c->ln || !c->mean || !c->rstd || !c->qkv || !c->att || !c->proj || !c->fch || !c->fch_gelu || !c->scores ||
        !c->pos) {
        lm_cache_free_scratch(c);
        return lm_error(LM_ERR_NOMEM, "out of memory for decoding %d tokens", n);
    }
    c->cap = n;
    return LM_OK;
}

/* Attention of token i (absolute position p) over cached positions 0..p.
 * One head per OpenMP iteration; scores are materialized per head, which
 * is O(T) memory for a single query row. */
static void lm_cached_attention(float *out, const float *q, const float *kc, const float *vc, int p, int NH, int HS, int C,
                                float *scores) {
    float scale = 1.0f / sqrtf((float)HS);
#pragma omp parallel for schedule(static)
    for (int h = 0; h < NH; h++) {
        float *s = scores + (size_t)h * (p + 1);
        const float *qh = q + h * HS;
        float maxv = -INFINITY;
        for (int t = 0; t <= p; t++) {
            const float *kt = kc + (size_t)t * C + h * HS;
            float dot = 0;
            for (int d = 0; d < HS; d++) dot += qh[d] * kt[d];
            s[t] = dot * scale;
            if (s[t] > maxv) maxv = s[t];
        }
        float sum = 0;
        for (int t = 0; t <= p; t++) {
            s[t] = expf(s[t] - maxv);
            sum += s[t];
        }
        float *oh = out + h * HS;
        memset(oh, 0, (size_t)HS * sizeof(float));
        for (int t = 0; t <= p; t++) {
            const float *vt = vc + (size_t)t * C + h * HS;
            float w = s[t] / sum;
            for (int d = 0; d < HS; d++) oh[d] += w * vt[d];
        }
    }
}

lm_status lm_gpt2_decode(lm_gpt2 *m, lm_gpt2_cache *cache, const int32_t *ids, int n, int pos, float *logits_out) {
    const lm_model_config *cfg = &m->cfg;
    if (n < 1) return lm_error(LM_ERR_ARG, "gpt2 decode: no tokens");
    if (pos < 0 || pos + n > cfg->n_ctx)
        return lm_error(LM_ERR_RANGE, "gpt2 decode: positions %d..%d exceed the context length %d", pos, pos + n - 1, cfg->n_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= cfg->vocab_size)
            return lm_error(LM_ERR_RANGE, "gpt2 decode: token id %d is outside the vocabulary [0, %d)", ids[i], cfg->vocab_size);
    LM_TRY(lm_cache_reserve(cache, cfg, n));
    int C = cfg->n_embd, F = cfg->n_inner, NH = cfg->n_head, HS = C / NH, L = cfg->n_layer;
    const lm_param *tp = m->table.params;
    const float *P = m->params;
#define W(i) (P + tp[(i)].offset)
    for (int i = 0; i < n; i++) cache->pos[i] = pos + i;
    lm_embedding_forward(cache->x, ids, cache->pos, W(P_WTE), W(P_WPE), n, C);
    for (int l = 0; l < L; l++) {
        int base = P_LAYER0 + l * P_PER_LAYER;
        float *kc = cache->k + (size_t)l * cfg->n_ctx * C, *vc = cache->v + (size_t)l * cfg->n_ctx * C;
        lm_layernorm_forward(cache->ln, cache->mean, cache->rstd, cache->x, W(base + P_LN1_W), W(base + P_LN1_B), n, C, cfg->layer_norm_eps);
        lm_conv1d_forward(cache->qkv, cache->ln, W(base + P_QKV_W), W(base + P_QKV_B), NULL, n, C, 3 * C);
        for (int i = 0; i < n; i++) {
            memcpy(kc + (size_t)(pos + i) * C, cache->qkv + (size_t)i * 3 * C + C, (size_t)C * sizeof(float));
            memcpy(vc + (size_t)(pos + i) * C, cache->qkv + (size_t)i * 3 * C + 2 * C, (size_t)C * sizeof(float));
        }
        for (int i = 0; i < n; i++)
            lm_cached_attention(cache->att + (size_t)i * C, cache->qkv + (size_t)i * 3 * C, kc, vc, pos + i, NH, HS, C,
                                cache->scores);
        lm_conv1d_forward(cache->proj, cache->att, W(base + P_ATTPROJ_W), W(base + P_ATTPROJ_B), NULL, n, C, C);
        lm_accumulate(cache->x, cache->proj, (size_t)n * C);
        lm_layernorm_forward(cache->ln, cache->mean, cache->rstd, cache->x, W(base + P_LN2_W), W(base + P_LN2_B), n, C, cfg->layer_norm_eps);
        lm_conv1d_forward(cache->fch, cache->ln, W(base + P_FC_W), W(base + P_FC_B), NULL, n, C, F);
        lm_gelu_tanh_forward(cache->fch_gelu, cache->fch, (size_t)n * F);
        lm_conv1d_forward(cache->proj, cache->fch_gelu, W(base + P_FCPROJ_W), W(base + P_FCPROJ_B), NULL, n, F, C);
        lm_accumulate(cache->x, cache->proj, (size_t)n * C);
    }
    /* Only the last token's logits are needed for sampling. */
    const float *xl = cache->x + (size_t)(n - 1) * C;
    lm_layernorm_forward(cache->ln, cache->mean, cache->rstd, xl, W(P_LNF_W(L)), W(P_LNF_B(L)), 1, C, cfg->layer_norm_eps);
    lm_linear_forward(logits_out, cache->ln, W(P_WTE), NULL, 1, C, cfg->vocab_size);
#undef W
    return LM_OK;
}

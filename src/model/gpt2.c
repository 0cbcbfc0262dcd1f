/* GPT-2: token + position embeddings, pre-LayerNorm blocks (causal
 * multi-head attention, GELU MLP), final LayerNorm, LM head tied to the
 * token embedding. Forward and backward are written out layer by layer so
 * the math stays visible; all heavy lifting is in src/kernels. */
#include "model/gpt2_internal.h"

#include "lmkit/kernels.h"
#include "model/conv1d.h"
#include "model/param_table_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lm_status lm_gpt2_build_table(const lm_model_config *c, lm_param_table *t) {
    int64_t C = c->n_embd, V = c->vocab_size, F = c->n_inner;
    LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){V, C}, "transformer.wte.weight"));
    LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){c->n_ctx, C}, "transformer.wpe.weight"));
    for (int l = 0; l < c->n_layer; l++) {
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.ln_1.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.ln_1.bias", l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, 3 * C}, "transformer.h.%d.attn.c_attn.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, (int64_t[]){3 * C}, "transformer.h.%d.attn.c_attn.bias", l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, C}, "transformer.h.%d.attn.c_proj.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.attn.c_proj.bias", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.ln_2.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.ln_2.bias", l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, F}, "transformer.h.%d.mlp.c_fc.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &F, "transformer.h.%d.mlp.c_fc.bias", l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){F, C}, "transformer.h.%d.mlp.c_proj.weight", l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.h.%d.mlp.c_proj.bias", l));
    }
    LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.ln_f.weight"));
    LM_TRY(lm_param_table_add(t, 0, 1, &C, "transformer.ln_f.bias"));
    return LM_OK;
}

/* Pointer to tensor `index` of the table inside a flat buffer. */
static inline float *lm_at(const lm_gpt2 *m, float *base, int index) { return base + m->table.params[index].offset; }
static inline float *lm_layer_at(const lm_gpt2 *m, float *base, int layer, int which) {
    return lm_at(m, base, P_LAYER0 + layer * P_PER_LAYER + which);
}

static void lm_gpt2_init_weights(lm_gpt2 *m, uint64_t seed) {
    const lm_model_config *c = &m->cfg;
    float proj_std = 0.02f / sqrtf(2.0f * (float)c->n_layer);
    for (int i = 0; i < m->table.n; i++) {
        const lm_param *p = &m->table.params[i];
        float *w = m->params + p->offset;
        const char *name = p->name;
        size_t len = strlen(name);
        int is_bias = len > 5 && !strcmp(name + len - 5, ".bias");
        int is_ln = strstr(name, ".ln_") != NULL;
        if (is_ln && !is_bias) {
            for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
        } else if (is_bias) {
            memset(w, 0, p->numel * sizeof *w);
        } else {
            /* One RNG stream per tensor: initialisation does not depend on
             * the order tensors are visited in. */
            lm_rng r;
            lm_rng_seed(&r, seed, 1000 + (uint64_t)i);
            float std = strstr(name, "c_proj.weight") ? proj_std : 0.02f;
            for (size_t j = 0; j < p->numel; j++) w[j] = std * lm_rng_normal(&r);
        }
    }
}

lm_status lm_gpt2_create(const lm_model_config *c, int train, uint64_t seed, lm_gpt2 **out) {
    *out = NULL;
    LM_TRY(lm_config_validate(c));
    lm_gpt2 *m = calloc(1, sizeof *m);
    if (!m) return lm_error(LM_ERR_NOMEM, "out of memory");
    m->cfg = *c;
    m->parts = 1;
    m->grad_enabled = train != 0;
    lm_status s = lm_gpt2_build_table(c, &m->table);
    if (s == LM_OK && !(m->params = lm_alloc_huge(m->table.total * sizeof(float)))) s = LM_ERR_NOMEM;
    if (s == LM_OK && train && !(m->grads = lm_alloc_huge(m->table.total * sizeof(float)))) s = LM_ERR_NOMEM;
    if (s != LM_OK) {
        lm_gpt2_free(m);
        return s;
    }
    lm_gpt2_init_weights(m, seed);
    *out = m;
    return LM_OK;
}

/* A part's activations (its gradient buffer, sized by the model, stays). */
static void lm_gpt2_free_part_acts(lm_gpt2_part *p) {
    lm_free(p->act_mem);
    free(p->ids);
    free(p->targets);
    free(p->pos);
    p->act_mem = NULL;
    p->ids = p->targets = p->pos = NULL;
    p->act_B = p->act_T = 0;
}

void lm_gpt2_free(lm_gpt2 *m) {
    if (!m) return;
    for (int r = 0; r < LM_GPT2_MAX_PARTS; r++) {
        lm_gpt2_free_part_acts(&m->part[r]);
        lm_free(m->part[r].own_grads);
    }
    lm_free(m->params);
    lm_free(m->grads);
    lm_param_table_free(&m->table);
    free(m);
}

lm_status lm_gpt2_set_data_parallel(lm_gpt2 *m, int parts) {
    if (parts < 1 || parts > LM_GPT2_MAX_PARTS)
        return lm_error(LM_ERR_ARG, "data parallel parts %d must be in [1, %d]", parts, LM_GPT2_MAX_PARTS);
    m->parts = parts;
    return LM_OK;
}

void lm_gpt2_set_grad_enabled(lm_gpt2 *m, int on) { m->grad_enabled = on != 0 && m->grads; }

int lm_gpt2_auto_parts(const lm_model_config *c, int batch, int threads) {
    /* Narrow layers' GEMMs are too small to split among threads without
     * their waits and duplicated packing costing more than a second copy of
     * the gradients and a pass adding them up. Measured on 2 threads
     * (tokens/s, slices against whole batch): width 128 (Shakespeare) +17%,
     * 256 +5%, 384 +3.5%, 512 even, 768 (GPT-2 124M, batch 4) even or worse. */
    if (threads < 2 || batch < 2 || c->n_embd > 384) return 1;
    int parts = threads < batch ? threads : batch;
    return parts < LM_GPT2_MAX_PARTS ? parts : LM_GPT2_MAX_PARTS;
}

const lm_model_config *lm_gpt2_config(const lm_gpt2 *m) { return &m->cfg; }
const lm_param_table *lm_gpt2_params(const lm_gpt2 *m) { return &m->table; }
float *lm_gpt2_param_data(lm_gpt2 *m) { return m->params; }
float *lm_gpt2_grad_data(lm_gpt2 *m) {
    if (m->grad_zero_pending) {
        memset(m->grads, 0, m->table.total * sizeof(float));
        m->grad_zero_pending = 0;
    }
    return m->grads;
}
const float *lm_gpt2_logits(const lm_gpt2 *m) { return m->part[0].acts.logits; }

void lm_gpt2_zero_grad(lm_gpt2 *m) {
    if (m->grads) m->grad_zero_pending = 1;
    m->fused_valid = 0;
}

double lm_gpt2_fused_sum_squares(const lm_gpt2 *m, uint8_t *covered) {
    memset(covered, 0, (size_t)m->table.n);
    if (!m->fused_valid) return 0.0;
    if (m->fused_all) {
        memset(covered, 1, (size_t)m->table.n);
        return m->fused_sumsq;
    }
    for (int l = 0; l < m->cfg.n_layer; l++) {
        static const int weights[] = {P_QKV_W, P_ATTPROJ_W, P_FC_W, P_FCPROJ_W};
        for (int k = 0; k < 4; k++) covered[P_LAYER0 + l * P_PER_LAYER + weights[k]] = 1;
    }
    return m->fused_sumsq;
}

/* The tensors whose gradient a backward writes first with a beta = 0 GEMM:
 * the four weight matrices of each block, and wte (the LM head's weight
 * gradient; the embedding's contribution is added after it). */
static int lm_gpt2_gemm_written(int index) {
    if (index == P_WTE) return 1;
    if (index < P_LAYER0) return 0;
    int which = (index - P_LAYER0) % P_PER_LAYER;
    return which == P_QKV_W || which == P_ATTPROJ_W || which == P_FC_W || which == P_FCPROJ_W;
}

double lm_gpt2_last_loss_sum(const lm_gpt2 *m, int *counted) {
    if (counted) *counted = m->last_counted;
    return m->last_loss_sum;
}

/* Causal attention over the fused qkv rows of a (B, T) batch. */
static lm_attention_shape lm_gpt2_attention_shape(const lm_model_config *c, int B, int T) {
    int C = c->n_embd, NH = c->n_head;
    return (lm_attention_shape){.B = B, .T = T, .NH = NH, .NKV = NH, .HS = C / NH, .q_stride = 3 * C,
                                .kv_stride = 3 * C, .scale = 1.0f / sqrtf((float)(C / NH)), .causal = 1};
}

/* Carves every activation buffer of a part for (B, T) out of one
 * allocation, so a training step runs without a single malloc; parts after
 * the first also get a gradient buffer of their own. */
static lm_status lm_gpt2_alloc_part(lm_gpt2 *m, lm_gpt2_part *p, int B, int T, int own_grads) {
    if (own_grads && !p->own_grads && !(p->own_grads = lm_alloc_huge(m->table.total * sizeof(float))))
        return lm_error(LM_ERR_NOMEM, "out of memory for a data-parallel gradient buffer");
    if (p->act_mem && B * T <= p->act_B * p->act_T && B <= p->act_B && T <= p->act_T) return LM_OK;
    lm_gpt2_free_part_acts(p);
    const lm_model_config *c = &m->cfg;
    /* per-layer activations for every layer where a backward may follow;
     * a model without gradients runs its layers through one set */
    size_t BT = (size_t)B * T, C = (size_t)c->n_embd, L = m->grads ? (size_t)c->n_layer : 1, F = (size_t)c->n_inner;
    size_t V = (size_t)c->vocab_size, NH = (size_t)c->n_head;
    lm_attention_shape as = lm_gpt2_attention_shape(c, B, T);
    lm_gpt2_acts *a = &p->acts;
    lm_float_slot plan[] = {
        {&a->encoded, BT * C},  {&a->ln1, L * BT * C},     {&a->ln1_mean, L * BT},
        {&a->ln1_rstd, L * BT}, {&a->qkv, L * BT * 3 * C}, {&a->atty, L * BT * C},
        {&a->lse, L * NH * BT}, {&a->res2, L * BT * C},    {&a->ln2, L * BT * C},
        {&a->ln2_mean, L * BT}, {&a->ln2_rstd, L * BT},    {&a->fch, L * BT * F},
        {&a->fch_gelu, L * BT * F}, {&a->res3, L * BT * C}, {&a->lnf, BT * C},
        {&a->lnf_mean, BT},     {&a->lnf_rstd, BT},        {&a->logits, BT * V},
        {&a->losses, BT},
        /* backward scratch */
        {&a->dres, BT * C},     {&a->dln, BT * C},         {&a->dqkv, BT * 3 * C},
        {&a->datty, BT * C},    {&a->dfch, BT * F},
        {&a->attn_scratch, lm_attention_backward_scratch(&as)},
    };
    p->act_mem = lm_alloc_slots(plan, sizeof plan / sizeof *plan);
    p->ids = malloc(BT * sizeof(int32_t));
    p->targets = malloc(BT * sizeof(int32_t));
    p->pos = malloc(BT * sizeof(int32_t));
    if (!p->act_mem || !p->ids || !p->targets || !p->pos) {
        lm_gpt2_free_part_acts(p);
        return lm_error(LM_ERR_NOMEM, "out of memory for activations (batch %d x %d)", B, T);
    }
    p->act_B = B;
    p->act_T = T;
    return LM_OK;
}

/* The forward of one part over the ids (and targets) already in it; the
 * loss gradient, scaled by inv_count, overwrites its logits. Without
 * gradients each layer overwrites the one before's activations (a backward
 * would need them all), so they stay in cache. */
static void lm_gpt2_part_forward(const lm_gpt2 *m, lm_gpt2_part *p, int with_targets, float inv_count) {
    const lm_model_config *c = &m->cfg;
    int B = p->B, T = p->T, BT = B * T, C = c->n_embd, NH = c->n_head, F = c->n_inner, V = c->vocab_size;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) p->pos[b * T + t] = t;
    lm_gpt2_acts *a = &p->acts;
    float *P = m->params;
    float eps = c->layer_norm_eps;
    lm_attention_shape as = lm_gpt2_attention_shape(c, B, T);
    int keep = m->grad_enabled;

    lm_embedding_forward(a->encoded, p->ids, p->pos, lm_at(m, P, P_WTE), lm_at(m, P, P_WPE), BT, C);
    for (int l = 0; l < c->n_layer; l++) {
        /* res3 of the layer before: its slot, or the one slot all share
         * (read by ln1 and the attention projection's skip before this
         * layer's fc projection overwrites it) */
        size_t lo = keep ? (size_t)l * BT : 0;
        const float *residual = l == 0 ? a->encoded : keep ? a->res3 + (lo - BT) * C : a->res3;
        float *ln1 = a->ln1 + lo * C, *qkv = a->qkv + lo * 3 * C, *atty = a->atty + lo * C;
        float *res2 = a->res2 + lo * C, *ln2 = a->ln2 + lo * C, *fch = a->fch + lo * F;
        float *fch_gelu = a->fch_gelu + lo * F, *res3 = a->res3 + lo * C;
        lm_layernorm_forward(ln1, a->ln1_mean + lo, a->ln1_rstd + lo, residual, lm_layer_at(m, P, l, P_LN1_W),
                             lm_layer_at(m, P, l, P_LN1_B), BT, C, eps);
        lm_conv1d_forward(qkv, ln1, lm_layer_at(m, P, l, P_QKV_W), lm_layer_at(m, P, l, P_QKV_B), NULL, BT, C, 3 * C);
        lm_attention_forward(atty, a->lse + (keep ? (size_t)l * NH * BT : 0), qkv, qkv + C, qkv + 2 * C, &as);
        /* res2 = residual + attn_proj(atty), the skip added as the GEMM stores */
        lm_conv1d_forward(res2, atty, lm_layer_at(m, P, l, P_ATTPROJ_W), lm_layer_at(m, P, l, P_ATTPROJ_B), residual, BT, C,
                          C);
        lm_layernorm_forward(ln2, a->ln2_mean + lo, a->ln2_rstd + lo, res2, lm_layer_at(m, P, l, P_LN2_W),
                             lm_layer_at(m, P, l, P_LN2_B), BT, C, eps);
        lm_conv1d_forward(fch, ln2, lm_layer_at(m, P, l, P_FC_W), lm_layer_at(m, P, l, P_FC_B), NULL, BT, C, F);
        /* training keeps gelu'(fch) in place of fch: all the backward needs */
        if (keep) lm_gelu_tanh_forward_deriv(fch_gelu, fch, fch, (size_t)BT * F);
        else lm_gelu_tanh_forward(fch_gelu, fch, (size_t)BT * F);
        lm_conv1d_forward(res3, fch_gelu, lm_layer_at(m, P, l, P_FCPROJ_W), lm_layer_at(m, P, l, P_FCPROJ_B), res2, BT, F, C);
    }
    int L = c->n_layer;
    const float *last = a->res3 + (keep ? (size_t)(L - 1) * BT * C : 0);
    lm_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, lm_at(m, P, P_LNF_W(L)), lm_at(m, P, P_LNF_B(L)), BT, C, eps);
    /* LM head: logits = lnf @ wte^T (weights tied to the token embedding). */
    lm_linear_forward(a->logits, a->lnf, lm_at(m, P, P_WTE), NULL, BT, C, V);
    p->loss_sum = 0;
    if (!with_targets) return;
    /* Loss and its gradient in one pass; the gradient overwrites the logits
     * (they are not needed again) and is already divided by the count of
     * the whole batch. */
    lm_cross_entropy_forward_backward(a->losses, keep ? a->logits : NULL, a->logits, p->targets, BT, V, inv_count);
    for (int i = 0; i < BT; i++) p->loss_sum += a->losses[i];
}

/* Threads for n parts: one each; more parts than threads take turns. */
static int lm_gpt2_part_threads(int n) { return lm_get_threads() < n ? lm_get_threads() : n; }

lm_status lm_gpt2_forward(lm_gpt2 *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss) {
    const lm_model_config *c = &m->cfg;
    if (B < 1 || T < 1) return lm_error(LM_ERR_ARG, "gpt2 forward: batch %d x %d is empty", B, T);
    if (T > c->n_ctx) return lm_error(LM_ERR_RANGE, "gpt2 forward: sequence length %d exceeds the context %d", T, c->n_ctx);
    int V = c->vocab_size, BT = B * T;
    for (int i = 0; i < BT; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return lm_error(LM_ERR_RANGE, "gpt2 forward: token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i, V);
    int counted = 0;
    if (targets)
        for (int i = 0; i < BT; i++) {
            if (targets[i] >= V)
                return lm_error(LM_ERR_RANGE, "gpt2 forward: target id %d at position %d is outside the vocabulary", targets[i], i);
            counted += targets[i] >= 0;
        }
    /* Parts only where a loss is all the caller reads: the logits of a
     * forward without targets stay in one buffer (lm_gpt2_logits). */
    int n = targets && m->parts > 1 ? (m->parts < B ? m->parts : B) : 1;
    for (int r = 0; r < n; r++) {
        lm_gpt2_part *p = &m->part[r];
        int b0 = B * r / n, b1 = B * (r + 1) / n;
        LM_TRY(lm_gpt2_alloc_part(m, p, b1 - b0, T, r > 0 && m->grad_enabled));
        p->B = b1 - b0;
        p->T = T;
        memcpy(p->ids, ids + (size_t)b0 * T, (size_t)p->B * T * sizeof *ids);
        if (targets) memcpy(p->targets, targets + (size_t)b0 * T, (size_t)p->B * T * sizeof *targets);
    }
    m->used_parts = n;
    m->has_targets = targets != NULL && m->grad_enabled;
    float inv_count = counted ? 1.0f / (float)counted : 0.0f;
    if (n == 1) {
        lm_gpt2_part_forward(m, &m->part[0], targets != NULL, inv_count);
    } else {
        /* A part per thread (more parts than threads: in turns); the
         * kernels inside run single-threaded. */
        int nt = lm_gpt2_part_threads(n);
#pragma omp parallel for schedule(static, 1) num_threads(nt)
        for (int r = 0; r < n; r++) lm_gpt2_part_forward(m, &m->part[r], 1, inv_count);
    }
    double sum = 0;
    for (int r = 0; r < n; r++) sum += m->part[r].loss_sum;
    m->last_loss_sum = sum;
    m->last_counted = counted;
    if (loss) *loss = counted ? (float)(sum / counted) : 0.0f;
    return LM_OK;
}

/* The backward of one part into the gradient buffer G: beta 0 overwrites
 * the weight matrices' gradients (the caller has zeroed the rest), beta 1
 * adds to them. sq (NULL: none) sums their squares as they are stored. */
static void lm_gpt2_part_backward(const lm_gpt2 *m, lm_gpt2_part *p, float *G, float grad_scale, float gbeta, double *sq) {
    const lm_model_config *c = &m->cfg;
    int B = p->B, T = p->T, BT = B * T, C = c->n_embd, NH = c->n_head, F = c->n_inner, V = c->vocab_size, L = c->n_layer;
    lm_gpt2_acts *a = &p->acts;
    float *P = m->params;
    lm_attention_shape as = lm_gpt2_attention_shape(c, B, T);
    size_t BTC = (size_t)BT * C;

    /* LM head. grad_scale rides on the GEMM's alpha, so no extra pass over
     * the [BT, V] logits gradient is needed. */
    const float *dlogits = a->logits;
    lm_sgemm(0, 0, BT, C, V, grad_scale, dlogits, V, lm_at(m, P, P_WTE), C, 0.0f, a->dln, C);
    lm_sgemm(1, 0, V, C, BT, grad_scale, dlogits, V, a->lnf, C, gbeta, lm_at(m, G, P_WTE), C);
    memset(a->dres, 0, BTC * sizeof(float));
    const float *last = a->res3 + (size_t)(L - 1) * BTC;
    lm_layernorm_backward(a->dres, lm_at(m, G, P_LNF_W(L)), lm_at(m, G, P_LNF_B(L)), a->dln, last, lm_at(m, P, P_LNF_W(L)),
                          a->lnf_mean, a->lnf_rstd, BT, C);

    for (int l = L - 1; l >= 0; l--) {
        size_t lo = (size_t)l * BT;
        const float *residual = l == 0 ? a->encoded : a->res3 + (lo - BT) * C;
        const float *ln1 = a->ln1 + lo * C, *qkv = a->qkv + lo * 3 * C, *atty = a->atty + lo * C;
        const float *res2 = a->res2 + lo * C, *ln2 = a->ln2 + lo * C, *gelu_deriv = a->fch + lo * F;
        const float *fch_gelu = a->fch_gelu + lo * F;
        /* res3 = res2 + mlp(ln2(res2)): dres flows straight through and into
         * the MLP; the GELU's backward is a product with its derivative, taken
         * as the GEMM stores the gradient of fch_gelu. */
        lm_conv1d_backward(a->dfch, gelu_deriv, lm_layer_at(m, G, l, P_FCPROJ_W), lm_layer_at(m, G, l, P_FCPROJ_B),
                           a->dres, fch_gelu, lm_layer_at(m, P, l, P_FCPROJ_W), BT, F, C, gbeta, sq);
        lm_conv1d_backward(a->dln, NULL, lm_layer_at(m, G, l, P_FC_W), lm_layer_at(m, G, l, P_FC_B), a->dfch, ln2,
                           lm_layer_at(m, P, l, P_FC_W), BT, C, F, gbeta, sq);
        lm_layernorm_backward(a->dres, lm_layer_at(m, G, l, P_LN2_W), lm_layer_at(m, G, l, P_LN2_B), a->dln, res2,
                              lm_layer_at(m, P, l, P_LN2_W), a->ln2_mean + lo, a->ln2_rstd + lo, BT, C);
        /* res2 = residual + attn(ln1(residual)) */
        lm_conv1d_backward(a->datty, NULL, lm_layer_at(m, G, l, P_ATTPROJ_W), lm_layer_at(m, G, l, P_ATTPROJ_B), a->dres, atty,
                           lm_layer_at(m, P, l, P_ATTPROJ_W), BT, C, C, gbeta, sq);
        memset(a->dqkv, 0, BTC * 3 * sizeof(float));
        lm_attention_backward(a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datty, qkv, qkv + C, qkv + 2 * C, atty,
                              a->lse + (size_t)l * NH * BT, &as, a->attn_scratch);
        lm_conv1d_backward(a->dln, NULL, lm_layer_at(m, G, l, P_QKV_W), lm_layer_at(m, G, l, P_QKV_B), a->dqkv, ln1,
                           lm_layer_at(m, P, l, P_QKV_W), BT, C, 3 * C, gbeta, sq);
        lm_layernorm_backward(a->dres, lm_layer_at(m, G, l, P_LN1_W), lm_layer_at(m, G, l, P_LN1_B), a->dln, residual,
                              lm_layer_at(m, P, l, P_LN1_W), a->ln1_mean + lo, a->ln1_rstd + lo, BT, C);
    }
    lm_embedding_backward(lm_at(m, G, P_WTE), lm_at(m, G, P_WPE), a->dres, p->ids, p->pos, BT, C);
}

/* Zeroes the tensors of G that a beta = 0 backward does not overwrite
 * (biases, norms, wpe: kernels accumulate into them). */
static void lm_gpt2_zero_accumulated(const lm_gpt2 *m, float *G) {
    for (int i = 0; i < m->table.n; i++)
        if (!lm_gpt2_gemm_written(i)) memset(lm_at(m, G, i), 0, m->table.params[i].numel * sizeof(float));
}

/* Chunks of the gradient buffer the parts are added up in: a fixed count,
 * so the sum of squares comes out the same for any thread count. */
#define LM_GPT2_REDUCE_CHUNKS 64

lm_status lm_gpt2_backward(lm_gpt2 *m, float grad_scale) {
    if (!m->grads) return lm_error(LM_ERR_ARG, "gpt2 backward: model was created without gradients");
    if (!m->has_targets)
        return lm_error(LM_ERR_ARG, "gpt2 backward: the last forward had no targets or ran with gradients disabled");
    float *G = m->grads;
    /* After zero_grad the weight matrices' gradient GEMMs overwrite
     * (beta 0) instead of adding to zeros; only the small tensors, which
     * kernels accumulate into, are zeroed here. */
    float gbeta = 1.0f;
    if (m->grad_zero_pending) {
        lm_gpt2_zero_accumulated(m, G);
        m->grad_zero_pending = 0;
        gbeta = 0.0f;
    }
    /* Overwriting, the backward sums the gradients' squares as it stores
     * them; a backward that accumulates spoils that sum. */
    m->fused_valid = gbeta == 0.0f;
    m->fused_all = m->used_parts > 1;
    m->fused_sumsq = 0;
    int n = m->used_parts;
    if (n == 1) {
        lm_gpt2_part_backward(m, &m->part[0], G, grad_scale, gbeta, m->fused_valid ? &m->fused_sumsq : NULL);
    } else {
        /* Each part computes its gradients side by side (the first into G,
         * the others into their own buffers, overwritten), then every
         * thread adds a share of chunks of the others into G, summing the
         * squares of the result on the way. */
        size_t total = m->table.total;
        double chunk_sq[LM_GPT2_REDUCE_CHUNKS];
        int want_sq = m->fused_valid;
        int nt = lm_gpt2_part_threads(n);
#pragma omp parallel num_threads(nt)
        {
#pragma omp for schedule(static, 1)
            for (int r = 0; r < n; r++) {
                lm_gpt2_part *p = &m->part[r];
                if (r > 0) lm_gpt2_zero_accumulated(m, p->own_grads);
                lm_gpt2_part_backward(m, p, r == 0 ? G : p->own_grads, grad_scale, r == 0 ? gbeta : 0.0f, NULL);
            }
#pragma omp for schedule(static)
            for (int k = 0; k < LM_GPT2_REDUCE_CHUNKS; k++) {
                size_t i0 = total * (size_t)k / LM_GPT2_REDUCE_CHUNKS, i1 = total * (size_t)(k + 1) / LM_GPT2_REDUCE_CHUNKS;
                for (int r = 1; r < n; r++) lm_accumulate(G + i0, m->part[r].own_grads + i0, i1 - i0);
                chunk_sq[k] = want_sq ? lm_sum_squares_serial(G + i0, i1 - i0) : 0.0;
            }
        }
        for (int k = 0; k < LM_GPT2_REDUCE_CHUNKS; k++) m->fused_sumsq += chunk_sq[k];
    }
    m->has_targets = 0; /* the logits buffer now holds gradients; a second backward would be wrong */
    return LM_OK;
}

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

static void lm_gpt2_free_acts(lm_gpt2 *m) {
    lm_free(m->act_mem);
    m->act_mem = NULL;
    free(m->ids);
    free(m->targets);
    free(m->pos);
    m->ids = m->targets = m->pos = NULL;
    m->act_B = m->act_T = 0;
}

void lm_gpt2_free(lm_gpt2 *m) {
    if (!m) return;
    lm_gpt2_free_acts(m);
    lm_free(m->params);
    lm_free(m->grads);
    lm_param_table_free(&m->table);
    free(m);
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
const float *lm_gpt2_logits(const lm_gpt2 *m) { return m->acts.logits; }

void lm_gpt2_zero_grad(lm_gpt2 *m) {
    if (m->grads) m->grad_zero_pending = 1;
    m->fused_valid = 0;
}

double lm_gpt2_fused_sum_squares(const lm_gpt2 *m, uint8_t *covered) {
    memset(covered, 0, (size_t)m->table.n);
    if (!m->fused_valid) return 0.0;
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

/* Carves every activation buffer for (B, T) out of one allocation. The
 * training step then runs without a single malloc. */
static lm_status lm_gpt2_alloc_acts(lm_gpt2 *m, int B, int T) {
    if (m->act_mem && B * T <= m->act_B * m->act_T && B <= m->act_B && T <= m->act_T) {
        return LM_OK;
    }
    lm_gpt2_free_acts(m);
    const lm_model_config *c = &m->cfg;
    size_t BT = (size_t)B * T, C = (size_t)c->n_embd, L = (size_t)c->n_layer, F = (size_t)c->n_inner;
    size_t V = (size_t)c->vocab_size, NH = (size_t)c->n_head;
    lm_attention_shape as = {.B = B, .T = T, .NH = c->n_head, .NKV = c->n_head, .HS = c->n_embd / c->n_head,
                             .q_stride = 3 * c->n_embd, .kv_stride = 3 * c->n_embd, .scale = 1.0f, .causal = 1};
    lm_float_slot plan[] = {
        {&m->acts.encoded, BT * C},  {&m->acts.ln1, L * BT * C},     {&m->acts.ln1_mean, L * BT},
        {&m->acts.ln1_rstd, L * BT}, {&m->acts.qkv, L * BT * 3 * C}, {&m->acts.atty, L * BT * C},
        {&m->acts.lse, L * NH * BT}, {&m->acts.res2, L * BT * C},    {&m->acts.ln2, L * BT * C},
        {&m->acts.ln2_mean, L * BT}, {&m->acts.ln2_rstd, L * BT},    {&m->acts.fch, L * BT * F},
        {&m->acts.fch_gelu, L * BT * F}, {&m->acts.res3, L * BT * C}, {&m->acts.lnf, BT * C},
        {&m->acts.lnf_mean, BT},     {&m->acts.lnf_rstd, BT},        {&m->acts.logits, BT * V},
        {&m->acts.losses, BT},       {&m->acts.proj, BT * C},
        /* backward scratch */
        {&m->acts.dres, BT * C},     {&m->acts.dln, BT * C},         {&m->acts.dqkv, BT * 3 * C},
        {&m->acts.datty, BT * C},    {&m->acts.dfch, BT * F},        {&m->acts.dfch_gelu, BT * F},
        {&m->acts.attn_scratch, lm_attention_backward_scratch(&as)},
    };
    m->act_mem = lm_alloc_slots(plan, sizeof plan / sizeof *plan);
    m->ids = malloc(BT * sizeof(int32_t));
    m->targets = malloc(BT * sizeof(int32_t));
    m->pos = malloc(BT * sizeof(int32_t));
    if (!m->act_mem || !m->ids || !m->targets || !m->pos) {
        lm_gpt2_free_acts(m);
        return lm_error(LM_ERR_NOMEM, "out of memory for activations (batch %d x %d)", B, T);
    }
    m->act_B = B;
    m->act_T = T;
    return LM_OK;
}

lm_status lm_gpt2_forward(lm_gpt2 *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss) {
    const lm_model_config *c = &m->cfg;
    if (B < 1 || T < 1) return lm_error(LM_ERR_ARG, "gpt2 forward: batch %d x %d is empty", B, T);
    if (T > c->n_ctx) return lm_error(LM_ERR_RANGE, "gpt2 forward: sequence length %d exceeds the context %d", T, c->n_ctx);
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return lm_error(LM_ERR_RANGE, "gpt2 forward: token id %d at position %d is outside the vocabulary [0, %d)", ids[i], i,
                            c->vocab_size);
    LM_TRY(lm_gpt2_alloc_acts(m, B, T));
    m->B = B;
    m->T = T;
    m->has_targets = targets != NULL;
    int BT = B * T, C = c->n_embd, NH = c->n_head, F = c->n_inner, V = c->vocab_size;
    memcpy(m->ids, ids, (size_t)BT * sizeof *ids);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) m->pos[b * T + t] = t;
    lm_gpt2_acts *a = &m->acts;
    float *P = m->params;
    float eps = c->layer_norm_eps;
    lm_attention_shape as = {.B = B, .T = T, .NH = NH, .NKV = NH, .HS = C / NH, .q_stride = 3 * C, .kv_stride = 3 * C,
                             .scale = 1.0f / sqrtf((float)(C / NH)), .causal = 1};

    lm_embedding_forward(a->encoded, m->ids, m->pos, lm_at(m, P, P_WTE), lm_at(m, P, P_WPE), BT, C);
    for (int l = 0; l < c->n_layer; l++) {
        size_t lo = (size_t)l * BT;
        const float *residual = l == 0 ? a->encoded : a->res3 + (lo - BT) * C;
        float *ln1 = a->ln1 + lo * C, *qkv = a->qkv + lo * 3 * C, *atty = a->atty + lo * C;
        float *res2 = a->res2 + lo * C, *ln2 = a->ln2 + lo * C, *fch = a->fch + lo * F;
        float *fch_gelu = a->fch_gelu + lo * F, *res3 = a->res3 + lo * C;
        lm_layernorm_forward(ln1, a->ln1_mean + lo, a->ln1_rstd + lo, residual, lm_layer_at(m, P, l, P_LN1_W),
                             lm_layer_at(m, P, l, P_LN1_B), BT, C, eps);
        lm_conv1d_forward(qkv, ln1, lm_layer_at(m, P, l, P_QKV_W), lm_layer_at(m, P, l, P_QKV_B), BT, C, 3 * C);
        lm_attention_forward(atty, a->lse + (size_t)l * NH * BT, qkv, qkv + C, qkv + 2 * C, &as);
        lm_conv1d_forward(a->proj, atty, lm_layer_at(m, P, l, P_ATTPROJ_W), lm_layer_at(m, P, l, P_ATTPROJ_B), BT, C, C);
        lm_add(res2, residual, a->proj, (size_t)BT * C);
        lm_layernorm_forward(ln2, a->ln2_mean + lo, a->ln2_rstd + lo, res2, lm_layer_at(m, P, l, P_LN2_W),
                             lm_layer_at(m, P, l, P_LN2_B), BT, C, eps);
        lm_conv1d_forward(fch, ln2, lm_layer_at(m, P, l, P_FC_W), lm_layer_at(m, P, l, P_FC_B), BT, C, F);
        lm_gelu_tanh_forward(fch_gelu, fch, (size_t)BT * F);
        lm_conv1d_forward(a->proj, fch_gelu, lm_layer_at(m, P, l, P_FCPROJ_W), lm_layer_at(m, P, l, P_FCPROJ_B), BT, F, C);
        lm_add(res3, res2, a->proj, (size_t)BT * C);
    }
    int L = c->n_layer;
    const float *last = a->res3 + (size_t)(L - 1) * BT * C;
    lm_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, last, lm_at(m, P, P_LNF_W(L)), lm_at(m, P, P_LNF_B(L)), BT, C, eps);
    /* LM head: logits = lnf @ wte^T (weights tied to the token embedding). */
    lm_linear_forward(a->logits, a->lnf, lm_at(m, P, P_WTE), NULL, BT, C, V);
    if (!targets) {
        if (loss) *loss = 0;
        return LM_OK;
    }
    memcpy(m->targets, targets, (size_t)BT * sizeof *targets);
    for (int i = 0; i < BT; i++)
        if (targets[i] >= V) return lm_error(LM_ERR_RANGE, "gpt2 forward: target id %d at position %d is outside the vocabulary", targets[i], i);
    int counted = 0;
    for (int i = 0; i < BT; i++) counted += targets[i] >= 0;
    /* Loss and its gradient in one pass; the gradient overwrites the logits
     * (they are not needed again) and is already divided by the count. */
    lm_cross_entropy_forward_backward(a->losses, a->logits, a->logits, m->targets, BT, V,
                                      counted ? 1.0f / (float)counted : 0.0f);
    double sum = 0;
    for (int i = 0; i < BT; i++) sum += a->losses[i];
    m->last_loss_sum = sum;
    m->last_counted = counted;
    if (loss) *loss = counted ? (float)(sum / counted) : 0.0f;
    return LM_OK;
}

lm_status lm_gpt2_backward(lm_gpt2 *m, float grad_scale) {
    if (!m->grads) return lm_error(LM_ERR_ARG, "gpt2 backward: model was created without gradients");
    if (!m->has_targets) return lm_error(LM_ERR_ARG, "gpt2 backward: the last forward had no targets");
    const lm_model_config *c = &m->cfg;
    int B = m->B, T = m->T, BT = B * T, C = c->n_embd, NH = c->n_head, F = c->n_inner, V = c->vocab_size, L = c->n_layer;
    lm_gpt2_acts *a = &m->acts;
    float *P = m->params, *G = m->grads;
    lm_attention_shape as = {.B = B, .T = T, .NH = NH, .NKV = NH, .HS = C / NH, .q_stride = 3 * C, .kv_stride = 3 * C,
                             .scale = 1.0f / sqrtf((float)(C / NH)), .causal = 1};
    size_t BTC = (size_t)BT * C;
    /* After zero_grad the weight matrices' gradient GEMMs overwrite
     * (beta 0) instead of adding to zeros; only the small tensors (biases,
     * norms, wpe), which kernels accumulate into, are zeroed here. */
    float gbeta = 1.0f;
    if (m->grad_zero_pending) {
        for (int i = 0; i < m->table.n; i++)
            if (!lm_gpt2_gemm_written(i)) memset(lm_at(m, G, i), 0, m->table.params[i].numel * sizeof(float));
        m->grad_zero_pending = 0;
        gbeta = 0.0f;
    }
    /* Overwriting, the weight GEMMs sum their gradients' squares as they
     * store them; a backward that accumulates spoils that sum. */
    m->fused_valid = gbeta == 0.0f;
    m->fused_sumsq = 0;
    double *sq = m->fused_valid ? &m->fused_sumsq : NULL;

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
        const float *res2 = a->res2 + lo * C, *ln2 = a->ln2 + lo * C, *fch = a->fch + lo * F;
        const float *fch_gelu = a->fch_gelu + lo * F;
        /* res3 = res2 + mlp(ln2(res2)): dres flows straight through and into the MLP. */
        lm_conv1d_backward(a->dfch_gelu, lm_layer_at(m, G, l, P_FCPROJ_W), lm_layer_at(m, G, l, P_FCPROJ_B), a->dres,
                           fch_gelu, lm_layer_at(m, P, l, P_FCPROJ_W), BT, F, C, gbeta, sq);
        memset(a->dfch, 0, (size_t)BT * F * sizeof(float));
        lm_gelu_tanh_backward(a->dfch, fch, a->dfch_gelu, (size_t)BT * F);
        lm_conv1d_backward(a->dln, lm_layer_at(m, G, l, P_FC_W), lm_layer_at(m, G, l, P_FC_B), a->dfch, ln2,
                           lm_layer_at(m, P, l, P_FC_W), BT, C, F, gbeta, sq);
        lm_layernorm_backward(a->dres, lm_layer_at(m, G, l, P_LN2_W), lm_layer_at(m, G, l, P_LN2_B), a->dln, res2,
                              lm_layer_at(m, P, l, P_LN2_W), a->ln2_mean + lo, a->ln2_rstd + lo, BT, C);
        /* res2 = residual + attn(ln1(residual)) */
        lm_conv1d_backward(a->datty, lm_layer_at(m, G, l, P_ATTPROJ_W), lm_layer_at(m, G, l, P_ATTPROJ_B), a->dres, atty,
                           lm_layer_at(m, P, l, P_ATTPROJ_W), BT, C, C, gbeta, sq);
        memset(a->dqkv, 0, BTC * 3 * sizeof(float));
        lm_attention_backward(a->dqkv, a->dqkv + C, a->dqkv + 2 * C, a->datty, qkv, qkv + C, qkv + 2 * C, atty,
                              a->lse + (size_t)l * NH * BT, &as, a->attn_scratch);
        lm_conv1d_backward(a->dln, lm_layer_at(m, G, l, P_QKV_W), lm_layer_at(m, G, l, P_QKV_B), a->dqkv, ln1,
                           lm_layer_at(m, P, l, P_QKV_W), BT, C, 3 * C, gbeta, sq);
        lm_layernorm_backward(a->dres, lm_layer_at(m, G, l, P_LN1_W), lm_layer_at(m, G, l, P_LN1_B), a->dln, residual,
                              lm_layer_at(m, P, l, P_LN1_W), a->ln1_mean + lo, a->ln1_rstd + lo, BT, C);
    }
    lm_embedding_backward(lm_at(m, G, P_WTE), lm_at(m, G, P_WPE), a->dres, m->ids, m->pos, BT, C);
    m->has_targets = 0; /* the logits buffer now holds gradients; a second backward would be wrong */
    return LM_OK;
}

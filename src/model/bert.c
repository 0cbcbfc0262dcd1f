/* BERT encoder: word + position + token-type embeddings, LayerNorm, then
 * post-LayerNorm blocks (bidirectional attention with a key mask, exact
 * GELU MLP). Forward and backward are written out layer by layer; all the
 * arithmetic is in src/kernels. Heads live in bert_heads.c. */
#include "model/bert_internal.h"

#include "lmkit/kernels.h"
#include "model/param_table_build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_bert_open_options_default(lm_bert_open_options *o) {
    memset(o, 0, sizeof *o);
    o->head = -1;
    o->problem = -1;
}

static lm_status lm_bert_build_table(lm_bert *m) {
    const lm_bert_config *c = &m->cfg;
    lm_param_table *t = &m->table;
    int64_t C = c->hidden, F = c->intermediate;
    const char *pre = c->head == LM_BERT_HEAD_NONE ? "" : "bert.";
    LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){c->vocab_size, C}, "%sembeddings.word_embeddings.weight", pre));
    LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){c->max_pos, C}, "%sembeddings.position_embeddings.weight", pre));
    LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){c->type_vocab, C}, "%sembeddings.token_type_embeddings.weight", pre));
    LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sembeddings.LayerNorm.weight", pre));
    LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sembeddings.LayerNorm.bias", pre));
    for (int l = 0; l < c->n_layer; l++) {
        static const char *qkv[] = {"query", "key", "value"};
        for (int i = 0; i < 3; i++) {
            LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, C}, "%sencoder.layer.%d.attention.self.%s.weight", pre, l, qkv[i]));
            LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.attention.self.%s.bias", pre, l, qkv[i]));
        }
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, C}, "%sencoder.layer.%d.attention.output.dense.weight", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.attention.output.dense.bias", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.attention.output.LayerNorm.weight", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.attention.output.LayerNorm.bias", pre, l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){F, C}, "%sencoder.layer.%d.intermediate.dense.weight", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &F, "%sencoder.layer.%d.intermediate.dense.bias", pre, l));
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, F}, "%sencoder.layer.%d.output.dense.weight", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.output.dense.bias", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.output.LayerNorm.weight", pre, l));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "%sencoder.layer.%d.output.LayerNorm.bias", pre, l));
    }
    m->p_pool = m->p_head = -1;
    if (c->head == LM_BERT_HEAD_CLS) {
        m->p_pool = t->n;
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, C}, "bert.pooler.dense.weight"));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "bert.pooler.dense.bias"));
        m->p_head = t->n;
        int64_t NL = c->num_labels;
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){NL, C}, "classifier.weight"));
        LM_TRY(lm_param_table_add(t, 0, 1, &NL, "classifier.bias"));
    } else if (c->head == LM_BERT_HEAD_MLM) {
        m->p_head = t->n;
        LM_TRY(lm_param_table_add(t, 1, 2, (int64_t[]){C, C}, "cls.predictions.transform.dense.weight"));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "cls.predictions.transform.dense.bias"));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "cls.predictions.transform.LayerNorm.weight"));
        LM_TRY(lm_param_table_add(t, 0, 1, &C, "cls.predictions.transform.LayerNorm.bias"));
        int64_t V = c->vocab_size;
        LM_TRY(lm_param_table_add(t, 0, 1, &V, "cls.predictions.bias"));
    }
    return LM_OK;
}

/* HF's BertPreTrainedModel._init_weights: normal(0, 0.02) for matrices and
 * embeddings, zero biases, LayerNorm gain 1 / bias 0. One RNG stream per
 * tensor so the result does not depend on visiting order. */
void lm_bert_init_tensor(lm_bert *m, int index, uint64_t seed) {
    const lm_param *p = &m->table.params[index];
    float *w = m->params + p->offset;
    size_t len = strlen(p->name);
    int is_bias = len > 5 && !strcmp(p->name + len - 5, ".bias");
    int is_ln = strstr(p->name, "LayerNorm.") != NULL;
    if (is_ln && !is_bias) {
        for (size_t j = 0; j < p->numel; j++) w[j] = 1.0f;
    } else if (is_bias) {
        memset(w, 0, p->numel * sizeof *w);
    } else {
        lm_rng r;
        lm_rng_seed(&r, seed, 2000 + (uint64_t)index);
        for (size_t j = 0; j < p->numel; j++) w[j] = 0.02f * lm_rng_normal(&r);
    }
}

lm_status lm_bert_create_uninit(const lm_bert_config *c, int train, uint64_t seed, lm_bert **out) {
    *out = NULL;
    LM_TRY(lm_bert_config_validate(c));
    lm_bert *m = calloc(1, sizeof *m);
    if (!m) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = lm_bert_config_copy(&m->cfg, c);
    if (s == LM_OK) s = lm_bert_build_table(m);
    if (s == LM_OK && !(m->params = lm_alloc_huge(m->table.total * sizeof(float)))) s = LM_ERR_NOMEM;
    if (s == LM_OK && train && !(m->grads = lm_alloc_huge(m->table.total * sizeof(float)))) s = LM_ERR_NOMEM;
    if (s != LM_OK) {
        lm_bert_free(m);
        return s;
    }
    m->init_seed = seed;
    m->unpadded = 1;
    *out = m;
    return LM_OK;
}

lm_status lm_bert_create(const lm_bert_config *c, int train, uint64_t seed, lm_bert **out) {
    LM_TRY(lm_bert_create_uninit(c, train, seed, out));
    for (int i = 0; i < (*out)->table.n; i++) lm_bert_init_tensor(*out, i, seed);
    return LM_OK;
}

static void lm_bert_free_acts(lm_bert *m) {
    lm_free(m->act_mem);
    m->act_mem = NULL;
    free(m->ids);
    free(m->types);
    free(m->pos);
    free(m->valid);
    free(m->seq_off);
    free(m->seq_len);
    m->ids = m->types = m->pos = NULL;
    m->valid = NULL;
    m->seq_off = m->seq_len = NULL;
    m->cap_B = m->cap_T = 0;
}

void lm_bert_free_heads(lm_bert *m);

void lm_bert_free(lm_bert *m) {
    if (!m) return;
    lm_bert_free_acts(m);
    lm_bert_free_heads(m);
    if (m->lora) lm_lora_free(m->lora);
    lm_free(m->params);
    lm_free(m->grads);
    lm_param_table_free(&m->table);
    lm_bert_config_free(&m->cfg);
    free(m);
}

int lm_bert_new_tensors(const lm_bert *m) { return m->new_tensors; }

void lm_bert_set_dropout(lm_bert *m, float hidden, float classifier, uint64_t seed) {
    m->drop_hidden = hidden > 0 && hidden < 1 ? hidden : 0;
    m->drop_cls = classifier > 0 && classifier < 1 ? classifier : 0;
    m->drop_seed = seed;
    m->drop_call = 0;
}

void lm_bert_set_training(lm_bert *m, int on) { m->training = on != 0; }
void lm_bert_set_attention_dropout(lm_bert *m, float p) { m->drop_attn = p > 0 && p < 1 ? p : 0; }
void lm_bert_set_fused_norm(lm_bert *m, int on) { m->fused_norm = on != 0; }

double lm_bert_fused_sum_squares(const lm_bert *m, uint8_t *covered) {
    int summed = m->fused_norm && !m->lora; /* under LoRA the encoder has no gradients */
    memset(covered, 0, (size_t)m->table.n);
    for (int l = 0; l < m->cfg.n_layer && summed; l++) {
        static const int weights[] = {BP_Q_W, BP_K_W, BP_V_W, BP_AO_W, BP_I_W, BP_O_W};
        for (int k = 0; k < 6; k++) covered[BP_LAYER0 + l * BP_PER_LAYER + weights[k]] = 1;
    }
    return summed ? m->fused_sumsq : 0.0;
}

void lm_bert_set_unpadded(lm_bert *m, int on) { m->unpadded = on != 0; }
int lm_bert_set_pooled_only(lm_bert *m, int on) {
    int was = m->pooled_only;
    m->pooled_only = on != 0;
    return was;
}
const lm_bert_config *lm_bert_get_config(const lm_bert *m) { return &m->cfg; }
const lm_param_table *lm_bert_params(const lm_bert *m) { return &m->table; }
float *lm_bert_param_data(lm_bert *m) { return m->params; }
float *lm_bert_grad_data(lm_bert *m) { return m->grads; }
const float *lm_bert_hidden(const lm_bert *m) {
    if (m->packed || m->pooled_rows) return m->a.hidden;
    return m->a.hout + (size_t)(m->cfg.n_layer - 1) * m->rows * m->cfg.hidden;
}
void lm_bert_zero_grad(lm_bert *m) {
    if (m->grads) memset(m->grads, 0, m->table.total * sizeof(float));
    if (m->lora) memset(m->lora->grads, 0, m->lora->table.total * sizeof(float));
}

static lm_attention_shape lm_bert_attn_shape(const lm_bert *m, int B, int T) {
    int C = m->cfg.hidden, NH = m->cfg.n_head;
    lm_attention_shape as = {.B = B, .T = T, .NH = NH, .NKV = NH, .HS = C / NH, .q_stride = C, .kv_stride = C,
                             .scale = 1.0f / sqrtf((float)(C / NH)), .key_valid = m->valid};
    return as;
}

static lm_status lm_bert_alloc_acts(lm_bert *m, int B, int T) {
    if (m->act_mem && B <= m->cap_B && T <= m->cap_T) return LM_OK;
    lm_bert_free_acts(m);
    const lm_bert_config *c = &m->cfg;
    size_t BT = (size_t)B * T, C = (size_t)c->hidden, L = (size_t)c->n_layer, F = (size_t)c->intermediate;
    size_t NH = (size_t)c->n_head;
    lm_attention_shape as = lm_bert_attn_shape(m, B, T);
    int train = m->grads != NULL;
    lm_bert_acts *a = &m->a;
    lm_float_slot plan[] = {
        {&a->emb, BT * C}, {&a->emb_mean, BT}, {&a->emb_rstd, BT}, {&a->h0, BT * C},
        {&a->q, L * BT * C}, {&a->k, L * BT * C}, {&a->v, L * BT * C}, {&a->atty, L * BT * C},
        {&a->lse, L * NH * BT}, {&a->res1, L * BT * C}, {&a->ln1_mean, L * BT}, {&a->ln1_rstd, L * BT},
        {&a->a1, L * BT * C}, {&a->fc, L * BT * F}, {&a->fcg, L * BT * F}, {&a->res2, L * BT * C},
        {&a->ln2_mean, L * BT}, {&a->ln2_rstd, L * BT}, {&a->hout, L * BT * C}, {&a->tmp, BT * C},
        /* backward scratch, only when training */
        {&a->d0, train ? BT * C : 0}, {&a->d1, train ? BT * C : 0}, {&a->d2, train ? BT * C : 0},
        {&a->d3, train ? BT * C : 0}, {&a->dq, train ? BT * C : 0}, {&a->dk, train ? BT * C : 0},
        {&a->dv, train ? BT * C : 0}, {&a->dfc, train ? BT * F : 0}, {&a->dfcg, train ? BT * F : 0},
        {&a->attn_scratch, train ? lm_attention_backward_scratch(&as) : 0}, {&a->ddrop, train ? BT * C : 0},
        {&a->hidden, BT * C}, {&a->first_x, B * C}, {&a->first_atty, B * C},
        {&a->first_dx, train ? B * C : 0}, {&a->first_datty, train ? B * C : 0},
    };
    m->act_mem = lm_alloc_slots(plan, sizeof plan / sizeof *plan);
    m->ids = malloc(BT * sizeof(int32_t));
    m->types = malloc(BT * sizeof(int32_t));
    m->pos = malloc(BT * sizeof(int32_t));
    m->valid = malloc(BT);
    m->seq_off = malloc((size_t)B * sizeof(int));
    m->seq_len = malloc((size_t)B * sizeof(int));
    if (!m->act_mem || !m->ids || !m->types || !m->pos || !m->valid || !m->seq_off || !m->seq_len) {
        lm_bert_free_acts(m);
        return lm_error(LM_ERR_NOMEM, "out of memory for BERT activations (batch %d x %d)", B, T);
    }
    m->cap_B = B;
    m->cap_T = T;
    if (m->lora) LM_TRY(lm_lora_reserve(m->lora, BT));
    return LM_OK;
}

/* Copies ids / token types / positions of the rows to compute. Unpadded
 * (the default) when every row's mask is a nonempty prefix, as padding on
 * the right makes it: that is exact, since a padded position is never a
 * key and everything else is per token, and the padding is usually most
 * of a dynamically padded batch of short sentences. */
static void lm_bert_gather_rows(lm_bert *m, const lm_bert_batch *in) {
    int B = in->B, T = in->T;
    const int32_t *mask = in->attention_mask;
    int prefix = m->unpadded && mask != NULL;
    for (int b = 0; b < B && prefix; b++) {
        int len = 0;
        while (len < T && mask[(size_t)b * T + len]) len++;
        for (int t = len; t < T && prefix; t++) prefix = !mask[(size_t)b * T + t];
        prefix = prefix && len > 0;
        m->seq_len[b] = len;
    }
    int rows = 0;
    for (int b = 0; b < B; b++) {
        m->seq_off[b] = rows;
        if (!prefix) m->seq_len[b] = T;
        rows += m->seq_len[b];
    }
    m->packed = prefix && rows < B * T;
    m->rows = m->packed ? rows : B * T;
    for (int i = 0; i < B * T; i++) m->valid[i] = mask ? mask[i] != 0 : 1;
    for (int b = 0, r = 0; b < B; b++)
        for (int t = 0; t < (m->packed ? m->seq_len[b] : T); t++, r++) {
            size_t i = (size_t)b * T + t;
            m->ids[r] = in->input_ids[i];
            m->types[r] = in->token_type_ids ? in->token_type_ids[i] : 0;
            m->pos[r] = t;
        }
}

/* Attention runs over the whole padded batch with a key mask, or
 * unpadded one sequence at a time with none: sequence b's shape, and the
 * row at which it starts. */
static size_t lm_bert_seq_shape(const lm_bert *m, int l, int b, lm_attention_shape *as) {
    *as = lm_bert_attn_shape(m, m->B, m->T);
    if (m->training && m->drop_attn > 0) { /* a mask stream per (encode, layer, sequence) */
        as->dropout = m->drop_attn;
        as->dropout_seed = m->drop_seed;
        as->dropout_stream = (1ull << 63) | (((uint64_t)m->drop_call * 1024 + (uint64_t)l) * 65536 + (uint64_t)b);
    }
    if (!m->packed) return 0;
    as->B = 1;
    as->T = m->seq_len[b];
    as->key_valid = NULL;
    return (size_t)m->seq_off[b];
}

/* Unpadded, the sequences (each too short to split) are shared out among
 * the threads; each call inside is then single-threaded. */
static void lm_bert_attention_forward(const lm_bert *m, int l, float *out, float *lse, const float *q, const float *k,
                                      const float *v) {
    size_t C = (size_t)m->cfg.hidden, NH = (size_t)m->cfg.n_head;
#pragma omp parallel for schedule(dynamic, 1) if (m->packed)
    for (int b = 0; b < (m->packed ? m->B : 1); b++) {
        lm_attention_shape as;
        size_t r = lm_bert_seq_shape(m, l, b, &as);
        lm_attention_forward(out + r * C, lse + r * NH, q + r * C, k + r * C, v + r * C, &as);
    }
}

static void lm_bert_attention_backward(const lm_bert *m, int l, float *dq, float *dk, float *dv, const float *dout,
                                       const float *q, const float *k, const float *v, const float *out, const float *lse) {
    size_t C = (size_t)m->cfg.hidden, NH = (size_t)m->cfg.n_head;
#pragma omp parallel for schedule(dynamic, 1) if (m->packed)
    for (int b = 0; b < (m->packed ? m->B : 1); b++) {
        lm_attention_shape as;
        size_t r = lm_bert_seq_shape(m, l, b, &as), x = r * C;
        /* scratch holds [NH, rows]: each sequence its own part */
        lm_attention_backward(dq + x, dk + x, dv + x, dout + x, q + x, k + x, v + x, out + x, lse + r * NH, &as,
                              m->a.attn_scratch + r * NH);
    }
}

/* The per-token rest of block l after attention, on n rows: x (the block's
 * input) + dropout(Wao atty) -> LN1 -> a1 + dropout(Wo gelu(Wi a1)) -> LN2
 * -> hout. Its activations go to rows [0, n) of the layer's slices. */
static void lm_bert_tail_forward(lm_bert *m, int l, size_t lo, int n, const float *x, const float *atty, float *hout) {
    const lm_bert_config *c = &m->cfg;
    lm_bert_acts *a = &m->a;
    float *P = m->params;
    int C = c->hidden, F = c->intermediate;
    size_t nC = (size_t)n * C;
    float *res1 = a->res1 + lo * C, *a1 = a->a1 + lo * C, *fc = a->fc + lo * F, *fcg = a->fcg + lo * F;
    float *res2 = a->res2 + lo * C;
    lm_linear_forward(a->tmp, atty, lm_bert_layer_at(m, P, l, BP_AO_W), lm_bert_layer_at(m, P, l, BP_AO_B), n, C, C);
    lm_bert_drop(m, a->tmp, nC, m->drop_hidden, LM_DROP_LAYER0 + 2 * (uint64_t)l);
    lm_add(res1, x, a->tmp, nC);
    lm_layernorm_forward(a1, a->ln1_mean + lo, a->ln1_rstd + lo, res1, lm_bert_layer_at(m, P, l, BP_LN1_W),
                         lm_bert_layer_at(m, P, l, BP_LN1_B), n, C, c->layer_norm_eps);
    lm_linear_forward(fc, a1, lm_bert_layer_at(m, P, l, BP_I_W), lm_bert_layer_at(m, P, l, BP_I_B), n, C, F);
    lm_gelu_erf_forward(fcg, fc, (size_t)n * F);
    lm_linear_forward(a->tmp, fcg, lm_bert_layer_at(m, P, l, BP_O_W), lm_bert_layer_at(m, P, l, BP_O_B), n, F, C);
    lm_bert_drop(m, a->tmp, nC, m->drop_hidden, LM_DROP_LAYER0 + 2 * (uint64_t)l + 1);
    lm_add(res2, a1, a->tmp, nC);
    lm_layernorm_forward(hout, a->ln2_mean + lo, a->ln2_rstd + lo, res2, lm_bert_layer_at(m, P, l, BP_LN2_W),
                         lm_bert_layer_at(m, P, l, BP_LN2_B), n, C, c->layer_norm_eps);
}

lm_status lm_bert_encode(lm_bert *m, const lm_bert_batch *in) {
    const lm_bert_config *c = &m->cfg;
    int B = in->B, T = in->T;
    if (B < 1 || T < 1) return lm_error(LM_ERR_ARG, "bert: batch %d x %d is empty", B, T);
    if (T > c->max_pos) return lm_error(LM_ERR_RANGE, "bert: sequence length %d exceeds max_position_embeddings %d", T, c->max_pos);
    for (int i = 0; i < B * T; i++) {
        if (in->input_ids[i] < 0 || in->input_ids[i] >= c->vocab_size)
            return lm_error(LM_ERR_RANGE, "bert: token id %d at position %d is outside the vocabulary [0, %d)", in->input_ids[i], i, c->vocab_size);
        if (in->token_type_ids && (in->token_type_ids[i] < 0 || in->token_type_ids[i] >= c->type_vocab))
            return lm_error(LM_ERR_RANGE, "bert: token type %d at position %d is outside [0, %d)", in->token_type_ids[i], i, c->type_vocab);
    }
    LM_TRY(lm_bert_alloc_acts(m, B, T));
    m->B = B;
    m->T = T;
    m->last_head = 0;
    if (m->training) m->drop_call++; /* fresh dropout masks */
    int C = c->hidden, NH = c->n_head, L = c->n_layer;
    lm_bert_gather_rows(m, in);
    int BT = m->rows; /* the rows computed: B*T, or the valid tokens only */
    lm_bert_acts *a = &m->a;
    float *P = m->params;

    /* Token-type embeddings go through the same kernel as a second "word"
     * table with no positions, accumulated into tmp. */
    lm_embedding_forward(a->emb, m->ids, m->pos, lm_bert_at(m, P, BP_WORD), lm_bert_at(m, P, BP_POS), BT, C);
    lm_embedding_forward(a->tmp, m->types, NULL, lm_bert_at(m, P, BP_TYPE), NULL, BT, C);
    lm_accumulate(a->emb, a->tmp, (size_t)BT * C);
    lm_layernorm_forward(a->h0, a->emb_mean, a->emb_rstd, a->emb, lm_bert_at(m, P, BP_ELN_W), lm_bert_at(m, P, BP_ELN_B), BT, C,
                         c->layer_norm_eps);
    lm_bert_drop(m, a->h0, (size_t)BT * C, m->drop_hidden, LM_DROP_EMB);
    m->pooled_rows = m->pooled_only;
    for (int l = 0; l < L; l++) {
        size_t lo = (size_t)l * BT;
        const float *x = l == 0 ? a->h0 : a->hout + (lo - BT) * C;
        float *q = a->q + lo * C, *k = a->k + lo * C, *v = a->v + lo * C, *atty = a->atty + lo * C;
        lm_linear_forward(q, x, lm_bert_layer_at(m, P, l, BP_Q_W), lm_bert_layer_at(m, P, l, BP_Q_B), BT, C, C);
        lm_linear_forward(k, x, lm_bert_layer_at(m, P, l, BP_K_W), lm_bert_layer_at(m, P, l, BP_K_B), BT, C, C);
        lm_linear_forward(v, x, lm_bert_layer_at(m, P, l, BP_V_W), lm_bert_layer_at(m, P, l, BP_V_B), BT, C, C);
        if (m->lora) {
            lm_lora_forward(m->lora, l, 0, x, q, BT);
            lm_lora_forward(m->lora, l, 1, x, v, BT);
        }
        lm_bert_attention_forward(m, l, atty, a->lse + (size_t)l * NH * BT, q, k, v);
        if (l < L - 1 || !m->pooled_rows) {
            lm_bert_tail_forward(m, l, lo, BT, x, atty, a->hout + lo * C);
            continue;
        }
        /* Pooled only: past attention, the last block's rows are needed
         * at each sequence's first token alone (its keys and values above
         * used every row). */
        for (int b = 0; b < B; b++) {
            size_t r = (size_t)m->seq_off[b]; /* the sequence's first token */
            memcpy(a->first_x + (size_t)b * C, x + r * C, (size_t)C * sizeof(float));
            memcpy(a->first_atty + (size_t)b * C, atty + r * C, (size_t)C * sizeof(float));
        }
        lm_bert_tail_forward(m, l, lo, B, a->first_x, a->first_atty, a->hout + lo * C);
    }
    if (m->packed || m->pooled_rows) { /* back to [B, T, C]; rows not computed read as zeros */
        const float *last = a->hout + (size_t)(L - 1) * BT * C;
        memset(a->hidden, 0, (size_t)B * T * C * sizeof(float));
        for (int b = 0; b < B; b++) {
            size_t from = m->pooled_rows ? (size_t)b : (size_t)m->seq_off[b], n = m->pooled_rows ? 1 : (size_t)m->seq_len[b];
            memcpy(a->hidden + (size_t)b * T * C, last + from * C, n * C * sizeof(float));
        }
    }
    return LM_OK;
}

/* A linear layer's backward; under a fused norm, the weight gradient's
 * squares are summed as its GEMM stores it. */
static void lm_bert_linear_backward(lm_bert *m, float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                    const float *weight, int n, int IC, int OC) {
    lm_linear_backward_sumsq(dinp, dweight, dbias, dout, inp, weight, n, IC, OC, m->fused_norm && dweight ? &m->fused_sumsq : NULL);
}

/* Backward of lm_bert_tail_forward on n rows: from dh (consumed) to
 * d(block input) through the residual, written to dx_res, and d(atty),
 * written to datty. frozen: weight gradients skipped. */
static void lm_bert_tail_backward(lm_bert *m, int l, size_t lo, int n, float *dh, const float *atty, float *dx_res, float *datty,
                                  int frozen) {
    const lm_bert_config *c = &m->cfg;
    lm_bert_acts *a = &m->a;
    float *P = m->params, *G = m->grads;
    int C = c->hidden, F = c->intermediate;
    size_t nC = (size_t)n * C, nF = (size_t)n * F;
    const float *res1 = a->res1 + lo * C, *a1 = a->a1 + lo * C, *fc = a->fc + lo * F, *fcg = a->fcg + lo * F;
    const float *res2 = a->res2 + lo * C;
    float *dres = a->d1, *da1 = a->d2;
    int dropping = lm_bert_dropping(m);
#define GW(w) (frozen ? NULL : lm_bert_layer_at(m, G, l, w))
    /* hout = LN2(a1 + dropout(Wo gelu(Wi a1))) */
    memset(dres, 0, nC * sizeof(float));
    lm_layernorm_backward(dres, GW(BP_LN2_W), GW(BP_LN2_B), dh, res2, lm_bert_layer_at(m, P, l, BP_LN2_W), a->ln2_mean + lo,
                          a->ln2_rstd + lo, n, C);
    memcpy(da1, dres, nC * sizeof(float));
    /* The projection's output went through a dropout mask; the residual
     * did not. */
    const float *dproj = dres;
    if (dropping) {
        memcpy(a->ddrop, dres, nC * sizeof(float));
        lm_bert_drop(m, a->ddrop, nC, m->drop_hidden, LM_DROP_LAYER0 + 2 * (uint64_t)l + 1);
        dproj = a->ddrop;
    }
    memset(a->dfcg, 0, nF * sizeof(float));
    lm_bert_linear_backward(m, a->dfcg, GW(BP_O_W), GW(BP_O_B), dproj, fcg, lm_bert_layer_at(m, P, l, BP_O_W), n, F, C);
    lm_gelu_erf_backward(a->dfc, fc, a->dfcg, nF);
    lm_bert_linear_backward(m, da1, GW(BP_I_W), GW(BP_I_B), a->dfc, a1, lm_bert_layer_at(m, P, l, BP_I_W), n, C, F);
    /* a1 = LN1(x + dropout(Wao atty)) */
    memset(dres, 0, nC * sizeof(float));
    lm_layernorm_backward(dres, GW(BP_LN1_W), GW(BP_LN1_B), da1, res1, lm_bert_layer_at(m, P, l, BP_LN1_W), a->ln1_mean + lo,
                          a->ln1_rstd + lo, n, C);
    memcpy(dx_res, dres, nC * sizeof(float));
    dproj = dres;
    if (dropping) {
        memcpy(a->ddrop, dres, nC * sizeof(float));
        lm_bert_drop(m, a->ddrop, nC, m->drop_hidden, LM_DROP_LAYER0 + 2 * (uint64_t)l);
        dproj = a->ddrop;
    }
    memset(datty, 0, nC * sizeof(float));
    lm_bert_linear_backward(m, datty, GW(BP_AO_W), GW(BP_AO_B), dproj, atty, lm_bert_layer_at(m, P, l, BP_AO_W), n, C, C);
#undef GW
}

/* With LoRA attached the encoder is frozen: its weight gradients are
 * skipped (NULL), only input gradients flow down to the adapters. */
void lm_bert_encoder_backward(lm_bert *m, float *dh) {
    const lm_bert_config *c = &m->cfg;
    int BT = m->rows, C = c->hidden, NH = c->n_head, L = c->n_layer;
    lm_bert_acts *a = &m->a;
    float *P = m->params, *G = m->grads;
    int frozen = m->lora != NULL;
    /* [B, T, C] -> the computed rows (pooled only: the first tokens'
     * rows, 0..B-1); a row never moves to a later one */
    for (int b = 0; b < m->B && (m->packed || m->pooled_rows); b++) {
        size_t to = m->pooled_rows ? (size_t)b : (size_t)m->seq_off[b], n = m->pooled_rows ? 1 : (size_t)m->seq_len[b];
        memmove(dh + to * C, dh + (size_t)b * m->T * C, n * C * sizeof(float));
    }
    size_t BTC = (size_t)BT * C;
#define GW(l, w) (frozen ? NULL : lm_bert_layer_at(m, G, l, w))
    float *dx = a->d3, *datty = a->d2;
    for (int l = L - 1; l >= 0; l--) {
        size_t lo = (size_t)l * BT;
        const float *x = l == 0 ? a->h0 : a->hout + (lo - BT) * C;
        const float *q = a->q + lo * C, *k = a->k + lo * C, *v = a->v + lo * C, *atty = a->atty + lo * C;
        if (l < L - 1 || !m->pooled_rows) {
            lm_bert_tail_backward(m, l, lo, BT, dh, atty, dx, datty, frozen);
        } else { /* the first tokens' rows, scattered back among all rows */
            lm_bert_tail_backward(m, l, lo, m->B, dh, a->first_atty, a->first_dx, a->first_datty, frozen);
            memset(dx, 0, BTC * sizeof(float));
            memset(datty, 0, BTC * sizeof(float));
            for (int b = 0; b < m->B; b++) {
                size_t r = (size_t)m->seq_off[b]; /* the sequence's first token */
                memcpy(dx + r * C, a->first_dx + (size_t)b * C, (size_t)C * sizeof(float));
                memcpy(datty + r * C, a->first_datty + (size_t)b * C, (size_t)C * sizeof(float));
            }
        }
        memset(a->dq, 0, BTC * sizeof(float));
        memset(a->dk, 0, BTC * sizeof(float));
        memset(a->dv, 0, BTC * sizeof(float));
        lm_bert_attention_backward(m, l, a->dq, a->dk, a->dv, datty, q, k, v, atty, a->lse + (size_t)l * NH * BT);
        lm_bert_linear_backward(m, dx, GW(l, BP_Q_W), GW(l, BP_Q_B), a->dq, x, lm_bert_layer_at(m, P, l, BP_Q_W), BT, C, C);
        lm_bert_linear_backward(m, dx, GW(l, BP_K_W), GW(l, BP_K_B), a->dk, x, lm_bert_layer_at(m, P, l, BP_K_W), BT, C, C);
        lm_bert_linear_backward(m, dx, GW(l, BP_V_W), GW(l, BP_V_B), a->dv, x, lm_bert_layer_at(m, P, l, BP_V_W), BT, C, C);
        if (frozen) {
            lm_lora_backward(m->lora, l, 0, x, a->dq, dx, BT);
            lm_lora_backward(m->lora, l, 1, x, a->dv, dx, BT);
        }
        /* dx is the gradient of this layer's input: the next dh. */
        float *t = dh;
        dh = dx;
        dx = t;
    }
#undef GW
    if (frozen) return; /* embeddings are frozen too */
    lm_bert_drop(m, dh, BTC, m->drop_hidden, LM_DROP_EMB);
    float *demb = a->d1;
    memset(demb, 0, BTC * sizeof(float));
    lm_layernorm_backward(demb, lm_bert_at(m, G, BP_ELN_W), lm_bert_at(m, G, BP_ELN_B), dh, a->emb, lm_bert_at(m, P, BP_ELN_W),
                          a->emb_mean, a->emb_rstd, BT, C);
    lm_embedding_backward(lm_bert_at(m, G, BP_WORD), lm_bert_at(m, G, BP_POS), demb, m->ids, m->pos, BT, C);
    lm_embedding_backward(lm_bert_at(m, G, BP_TYPE), NULL, demb, m->types, NULL, BT, C);
}

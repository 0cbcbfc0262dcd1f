/* Internal: the BERT model struct, shared by the encoder, heads, LoRA and
 * checkpoint I/O files. */
#ifndef LMKIT_BERT_INTERNAL_H
#define LMKIT_BERT_INTERNAL_H

#include "lmkit/bert.h"
#include "lmkit/kernels.h"

/* Per-layer tensors, in table order. */
enum {
    BP_Q_W, BP_Q_B, BP_K_W, BP_K_B, BP_V_W, BP_V_B, BP_AO_W, BP_AO_B, BP_LN1_W, BP_LN1_B,
    BP_I_W, BP_I_B, BP_O_W, BP_O_B, BP_LN2_W, BP_LN2_B, BP_PER_LAYER
};
/* Table indices before the layers. */
enum { BP_WORD, BP_POS, BP_TYPE, BP_ELN_W, BP_ELN_B, BP_LAYER0 };

/* Encoder activations of one (B, T) forward; per-layer buffers hold
 * n_layer slices. All carved from one allocation. */
typedef struct {
    float *emb, *emb_mean, *emb_rstd, *h0;
    float *q, *k, *v, *atty, *lse, *res1, *ln1_mean, *ln1_rstd, *a1, *fc, *fcg, *res2, *ln2_mean, *ln2_rstd, *hout;
    float *d0, *d1, *d2, *d3, *dq, *dk, *dv, *dfc, *dfcg, *attn_scratch, *tmp;
    float *ddrop; /* a gradient through a dropout mask (training) */
    float *hidden; /* [B*T, C] last hidden states scattered back from unpadded rows */
    /* [B, C] pooled-only last block: its input and attention output at the
     * first tokens, and their gradients */
    float *first_x, *first_atty, *first_dx, *first_datty;
} lm_bert_acts;

/* Head activations, sized separately (the MLM logits dominate). */
typedef struct {
    int rows, cap_rows;
    int32_t *pos, *targets;
    float *x, *tr, *trg, *tr_mean, *tr_rstd, *trn, *logits, *losses, *dtr, *dx;
} lm_bert_mlm_acts;

typedef struct {
    float *first, *pre, *pooled, *pooled_drop, *logits, *dlogits, *dpooled, *dfirst;
    int cap_B;
} lm_bert_cls_acts;

struct lm_lora {
    lm_bert *model;
    int rank;
    float alpha, scale;
    int n_layer, hidden;
    lm_param_table table; /* per layer: query A, B; value A, B */
    float *params, *grads;
    float *xa; /* [n_layer][2][BT, r] saved inputs of B for backward */
    float *dxa;
    size_t cap_BT;
};

struct lm_bert {
    lm_bert_config cfg;
    lm_param_table table;
    float *params, *grads;
    int p_pool, p_head; /* table index of the pooler / first head tensor (-1: none) */
    int new_tensors;
    float *act_mem;
    lm_bert_acts a;
    int cap_B, cap_T, B, T;
    /* Unpadded encode (lm_bert_set_unpadded): when every row's mask is a
     * prefix, only the `rows` valid tokens are computed. Else rows = B*T,
     * packed = 0. Either way sequence b sits at computed rows seq_off[b] ..
     * seq_off[b] + seq_len[b] - 1 (padded: b*T and T). */
    int unpadded, packed, rows;
    /* lm_bert_set_pooled_only; pooled_rows: the last encode's last block
     * computed the first tokens' rows only (its rows 0..B-1) */
    int pooled_only, pooled_rows;
    int *seq_off, *seq_len;
    int32_t *ids, *types, *pos;
    uint8_t *valid;
    lm_bert_mlm_acts mlm;
    lm_bert_cls_acts cls;
    int last_head; /* which head the pending backward is for (0: none) */
    int32_t *cls_targets;
    float *cls_values;
    lm_lora *lora;
    /* Dropout (lm_bert_set_dropout): applied while training is set; masks
     * come from (drop_seed, drop_call), drop_call counting encodes. */
    float drop_hidden, drop_cls, drop_attn;
    uint64_t drop_seed, drop_call;
    int training;
    uint64_t init_seed; /* of tensors a checkpoint lacks */
    /* lm_bert_set_fused_norm: the last backward's sum of squares of the
     * weight-matrix gradients, summed as their GEMMs stored them */
    int fused_norm;
    double fused_sumsq;
};

/* lm_bert_create without initialising the parameters (all zero): for a
 * checkpoint about to be loaded, which initialises what it lacks. */
lm_status lm_bert_create_uninit(const lm_bert_config *c, int train, uint64_t seed, lm_bert **out);
void lm_bert_init_tensor(lm_bert *m, int index, uint64_t seed);

/* Dropout sites of one encode: the mask stream of each. */
enum { LM_DROP_EMB = 0, LM_DROP_CLS = 1, LM_DROP_LAYER0 = 2 /* + 2 l (attention out), + 2 l + 1 (FFN out) */ };
static inline int lm_bert_dropping(const lm_bert *m) { return m->training && m->drop_hidden > 0; }
static inline void lm_bert_drop(const lm_bert *m, float *x, size_t n, float p, uint64_t site) {
    if (m->training && p > 0) lm_dropout(x, n, p, m->drop_seed, m->drop_call * 4096 + site);
}

static inline float *lm_bert_at(const lm_bert *m, float *base, int index) { return base + m->table.params[index].offset; }
static inline float *lm_bert_layer_at(const lm_bert *m, float *base, int layer, int which) {
    return lm_bert_at(m, base, BP_LAYER0 + layer * BP_PER_LAYER + which);
}

/* Encoder backward from dh = d(loss)/d(last hidden) [B*T, C] (consumed). */
void lm_bert_encoder_backward(lm_bert *m, float *dh);

/* LoRA hooks used by the encoder (which = 0 query, 1 value). */
void lm_lora_forward(lm_lora *l, int layer, int which, const float *x, float *out, int BT);
void lm_lora_backward(lm_lora *l, int layer, int which, const float *x, const float *dout, float *dx, int BT);
lm_status lm_lora_reserve(lm_lora *l, size_t BT);
void lm_lora_free(lm_lora *l);

#endif

/* Internal: the GPT-2 model struct, shared by its forward/backward,
 * checkpoint I/O and KV-cache decoding files. */
#ifndef LMKIT_GPT2_INTERNAL_H
#define LMKIT_GPT2_INTERNAL_H

#include "lmkit/model.h"

/* Activations of one (B, T) forward, all carved from one allocation.
 * Per-layer buffers hold n_layer slices. */
typedef struct {
    float *encoded, *ln1, *ln1_mean, *ln1_rstd, *qkv, *atty, *lse, *res2, *ln2, *ln2_mean, *ln2_rstd;
    float *fch, *fch_gelu, *res3, *lnf, *lnf_mean, *lnf_rstd, *logits, *losses;
    float *dres, *dln, *dqkv, *datty, *dfch, *attn_scratch;
} lm_gpt2_acts;

/* A slice of a batch's rows with its activations: what one thread runs
 * when a step is data parallel, and the whole batch otherwise. */
typedef struct {
    float *act_mem;
    lm_gpt2_acts acts;
    int act_B, act_T; /* capacity of the activation buffers */
    int B, T;         /* shape of the last forward */
    int32_t *ids, *targets, *pos;
    float *own_grads; /* parts after the first: their gradients, added into the model's after backward */
    double loss_sum;
} lm_gpt2_part;

struct lm_gpt2 {
    lm_model_config cfg;
    lm_param_table table;
    float *params, *grads;
    lm_gpt2_part part[LM_GPT2_MAX_PARTS];
    int parts;      /* lm_gpt2_set_data_parallel (1: kernels split each op among the threads) */
    int used_parts; /* by the last forward */
    int has_targets;
    int grad_enabled;      /* lm_gpt2_set_grad_enabled */
    int grad_zero_pending; /* zero_grad was called: the next backward overwrites */
    /* the sum of squared gradients the backward that overwrote them summed
     * as it stored them: the block weight matrices' (fused_all 0), or, when
     * parts were added up, every tensor's (fused_all 1). Valid while no
     * backward has added to them since. */
    double fused_sumsq;
    int fused_valid, fused_all;
    double last_loss_sum;
    int last_counted;
};

/* Table indices: per-layer tensors in the order lm_gpt2_build_table lays
 * them out in the flat buffer, then the tensors outside the blocks. */
enum {
    P_LN1_W, P_LN1_B, P_QKV_W, P_QKV_B, P_ATTPROJ_W, P_ATTPROJ_B,
    P_LN2_W, P_LN2_B, P_FC_W, P_FC_B, P_FCPROJ_W, P_FCPROJ_B, P_PER_LAYER
};
/* Table indices of the tensors outside the blocks. */
#define P_WTE 0
#define P_WPE 1
#define P_LAYER0 2
#define P_LNF_W(L) (P_LAYER0 + (L) * P_PER_LAYER)
#define P_LNF_B(L) (P_LNF_W(L) + 1)

#endif

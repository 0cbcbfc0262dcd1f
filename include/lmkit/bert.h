/* lmkit BERT: the post-LayerNorm bidirectional encoder (BertModel) with
 * its heads — masked LM (tied to the word embeddings), sequence
 * classification / multi-label / regression (pooler + linear) — and
 * mean-pooled sentence embeddings (sentence-transformers style).
 *
 * Like GPT-2 (model.h), parameters and gradients live in one flat fp32
 * buffer with a Hugging Face name -> (offset, shape) table, so checkpoint
 * I/O and the optimizer are loops over the table. Names follow the head's
 * HF class: "bert.embeddings..." + "cls.predictions..." (BertForMaskedLM),
 * "bert.embeddings..." + "classifier..." (BertForSequenceClassification),
 * "embeddings..." (BertModel). Loading accepts either spelling. */
#ifndef LMKIT_BERT_H
#define LMKIT_BERT_H

#include "lmkit/base.h"
#include "lmkit/model.h"

typedef enum { LM_BERT_HEAD_NONE = 0, LM_BERT_HEAD_MLM, LM_BERT_HEAD_CLS } lm_bert_head;

/* HF's problem_type for sequence classification heads. */
typedef enum {
    LM_PROBLEM_SINGLE_LABEL = 0, /* softmax cross-entropy over num_labels */
    LM_PROBLEM_MULTI_LABEL,      /* independent sigmoids, binary cross-entropy */
    LM_PROBLEM_REGRESSION        /* num_labels real outputs, mean squared error */
} lm_problem;

typedef struct {
    int vocab_size, hidden, n_layer, n_head, intermediate;
    int max_pos, type_vocab, pad_token_id;
    float layer_norm_eps;
    /* Training-time dropout (hidden_dropout_prob, attention_probs_dropout_prob,
     * classifier_dropout; the last < 0 when null: hidden_dropout applies). */
    float hidden_dropout, attn_dropout, classifier_dropout;
    lm_bert_head head; /* from "architectures" */
    int num_labels;    /* classification outputs (regression: usually 1) */
    lm_problem problem;
    char **labels; /* id2label names [num_labels] (owned), or NULL */
} lm_bert_config;

/* Reads a BertConfig config.json; names the file and field on error. */
lm_status lm_bert_config_load(const char *path, lm_bert_config *c);
/* Writes a config.json transformers loads (architectures from the head,
 * id2label / label2id / problem_type for classification), atomically. */
lm_status lm_bert_config_save(const lm_bert_config *c, const char *path);
lm_status lm_bert_config_validate(const lm_bert_config *c);
/* Replaces the label names (copied). names == NULL: "LABEL_<i>". */
lm_status lm_bert_config_set_labels(lm_bert_config *c, int n, const char *const *names);
void lm_bert_config_free(lm_bert_config *c);
/* Deep copy; free dst with lm_bert_config_free. */
lm_status lm_bert_config_copy(lm_bert_config *dst, const lm_bert_config *src);

typedef struct lm_bert lm_bert;

/* Options for opening a checkpoint directory. */
typedef struct {
    int head;          /* an lm_bert_head, or -1: the head the config names */
    int train;         /* allocate gradients */
    uint64_t seed;     /* initialisation of tensors the checkpoint lacks */
    int num_labels;    /* > 0: override the config's label count (new head) */
    const char *const *labels; /* names for num_labels (NULL: keep/LABEL_i) */
    int problem;       /* an lm_problem, or -1: the config's */
} lm_bert_open_options;

void lm_bert_open_options_default(lm_bert_open_options *o);

/* Allocates a model with HF's initialisation (N(0, initializer 0.02),
 * biases 0, LayerNorm gains 1). The config is copied. */
lm_status lm_bert_create(const lm_bert_config *c, int train, uint64_t seed, lm_bert **out);
/* Opens config.json + model.safetensors from dir. Head tensors the file
 * lacks (a classifier on a BertModel, or a pooler) are freshly initialised
 * and counted in lm_bert_new_tensors; encoder tensors must all exist. */
lm_status lm_bert_open_dir(const char *dir, const lm_bert_open_options *o, lm_bert **out);
void lm_bert_free(lm_bert *m);
int lm_bert_new_tensors(const lm_bert *m);
/* Training mode: dropout with probability `hidden` after the embedding
 * LayerNorm and on each block's attention-output and FFN-output
 * projections (as HF's BertModel), and `classifier` on the pooled output;
 * every encode draws new masks from (seed, encode count).
 * lm_bert_set_attention_dropout adds HF's attention-probability dropout
 * (attention_probs_dropout_prob), inside the fused attention, with masks
 * from the same seed. Off (the default): inference. */
void lm_bert_set_dropout(lm_bert *m, float hidden, float classifier, uint64_t seed);
void lm_bert_set_attention_dropout(lm_bert *m, float p);
void lm_bert_set_training(lm_bert *m, int on);
/* Unpadded encodes (on by default): when every row's attention mask is a
 * nonempty prefix (padding on the right), only the valid tokens go through
 * the encoder. Exact for every valid position; the hidden states of padded
 * positions then read as zeros (HF computes values there that nothing
 * should use). Off: the whole padded batch is computed, as HF does. */
void lm_bert_set_unpadded(lm_bert *m, int on);
/* Pooled-only encodes (off by default): the caller reads the last hidden
 * states at each sequence's first token only ([CLS], what the
 * classification head pools). Past its attention the last block then runs
 * on those B rows alone — a sixth of a 6-layer encoder's work, exactly;
 * every other position of lm_bert_hidden reads as zeros. Returns the
 * previous setting, for callers that restore it. */
int lm_bert_set_pooled_only(lm_bert *m, int on);
/* Gradient-norm help for one backward per step into zeroed gradients: the
 * encoder's weight-matrix gradients (most of the parameters) get their
 * squares summed as their GEMMs store them. After lm_bert_backward,
 * lm_bert_fused_sum_squares returns that sum and sets covered[i] (one flag
 * per table tensor) for the tensors it includes, 0 for the rest — which
 * the caller sums (lm_grad_sum_squares with skip = covered). */
void lm_bert_set_fused_norm(lm_bert *m, int on);
double lm_bert_fused_sum_squares(const lm_bert *m, uint8_t *covered);

const lm_bert_config *lm_bert_get_config(const lm_bert *m);
const lm_param_table *lm_bert_params(const lm_bert *m);
float *lm_bert_param_data(lm_bert *m);
float *lm_bert_grad_data(lm_bert *m); /* NULL unless created with train */
void lm_bert_zero_grad(lm_bert *m);

lm_status lm_bert_load_weights(lm_bert *m, const char *safetensors_path, int allow_missing_head);
/* Writes every tensor of the table with HF names (F32), atomically. */
lm_status lm_bert_save_weights(const lm_bert *m, const char *path);
/* Writes config.json + model.safetensors into dir (created if needed). */
lm_status lm_bert_save_dir(const lm_bert *m, const char *dir);

/* One padded batch. token_type_ids / attention_mask may be NULL (all 0 /
 * all 1). Position ids are 0..T-1 on every row, as HF does. */
typedef struct {
    int B, T;
    const int32_t *input_ids;
    const int32_t *token_type_ids;
    const int32_t *attention_mask;
} lm_bert_batch;

/* Runs the encoder; the last hidden states [B*T, hidden] (see
 * lm_bert_set_unpadded for the padded positions) stay readable
 * through lm_bert_hidden until the next call. Activation memory is sized
 * on first use and grows when a larger (B, T) comes. */
lm_status lm_bert_encode(lm_bert *m, const lm_bert_batch *b);
const float *lm_bert_hidden(const lm_bert *m);

/* Masked-LM head over the last encode. With labels [B*T] (< 0 ignored)
 * logits are computed for the labelled positions only and *loss is their
 * mean cross-entropy (backward may follow); without labels, logits of
 * every position. lm_bert_mlm_logits gives [rows, vocab] and which flat
 * positions the rows are. Logits are unavailable after a labelled call
 * (the buffer holds their gradient). */
lm_status lm_bert_mlm_forward(lm_bert *m, const int32_t *labels, float *loss);
const float *lm_bert_mlm_logits(const lm_bert *m, const int32_t **positions, int *rows);

/* Classification head over the last encode: pooled = tanh(W h[:,0] + b),
 * logits [B, num_labels] = classifier(pooled). Targets by problem type:
 * single-label: class_ids [B]; multi-label: values [B*num_labels] in {0,1};
 * regression: values [B*num_labels]. Both NULL: no loss. */
lm_status lm_bert_cls_forward(lm_bert *m, const int32_t *class_ids, const float *values, float *loss);
const float *lm_bert_cls_logits(const lm_bert *m);
const float *lm_bert_pooled(const lm_bert *m);

/* Gradient of (loss * grad_scale) of the last head forward, accumulated
 * into the gradient buffer (and the LoRA adapters when attached). */
lm_status lm_bert_backward(lm_bert *m, float grad_scale);

/* Mean of the last hidden states over attended tokens, [B, hidden];
 * normalize != 0 divides each row by max(||x||, 1e-12). */
void lm_bert_mean_pool(const lm_bert *m, float *out, int normalize);

/* ---- LoRA (low-rank adapters on the attention query and value
 * projections, as peft's default for BERT) ----
 * W x becomes W x + (alpha / r) B A x with A [r, in] (Kaiming-uniform) and
 * B [out, r] (zeros). While attached, backward fills the adapters'
 * gradients and skips the frozen encoder's weight gradients (the head's
 * are still computed). */
typedef struct lm_lora lm_lora;
lm_status lm_lora_attach(lm_bert *m, int rank, float alpha, uint64_t seed, lm_lora **out);
const lm_param_table *lm_lora_params(const lm_lora *l);
float *lm_lora_param_data(lm_lora *l);
float *lm_lora_grad_data(lm_lora *l);
int lm_lora_rank(const lm_lora *l);
float lm_lora_alpha(const lm_lora *l);
/* adapter_model.safetensors + adapter_config.json in peft's layout. */
lm_status lm_lora_save_dir(const lm_lora *l, const char *dir, const char *base_model);
lm_status lm_lora_load(lm_lora *l, const char *dir);
/* Adds (alpha / r) B A into the base weights; the adapters stay attached
 * (so outputs now count the update twice until the weights are restored):
 * for writing a merged checkpoint from a copy. */
void lm_lora_add_to_weights(lm_bert *m, const lm_lora *l);
/* Adds (alpha / r) B A into the base weights and detaches the adapters
 * (frees l). The model then needs no adapter to give the same outputs. */
void lm_lora_merge(lm_bert *m, lm_lora *l);

#endif

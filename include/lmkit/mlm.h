/* lmkit masked-language-model pretraining of BERT from token shards
 * (`lmkit prepare` with a WordPiece tokenizer.json). */
#ifndef LMKIT_MLM_H
#define LMKIT_MLM_H

#include "lmkit/bert.h"
#include "lmkit/tokenizer.h"

/* BERT's masking: each maskable token (not special) is selected with
 * probability `prob` (whole_word: a word — a token plus its "##"
 * continuations — is selected as a unit); a selected token's label is its
 * id, and it becomes [MASK] 80% of the time, a uniformly random token 10%,
 * and stays 10%. Unselected labels are -100. */
typedef struct {
    float prob;
    int whole_word;
    int32_t mask_id;
    int vocab_size;
    uint8_t *special;      /* [vocab]: never masked */
    uint8_t *continuation; /* [vocab]: "##" pieces */
} lm_mlm_masker;

lm_status lm_mlm_masker_init(lm_mlm_masker *mk, const lm_tokenizer *tok, int vocab_size, float prob, int whole_word);
void lm_mlm_masker_free(lm_mlm_masker *mk);
/* Masks ids[n] in place, writes labels[n]; returns how many were selected. */
int lm_mlm_mask(const lm_mlm_masker *mk, lm_rng *r, int32_t *ids, int32_t *labels, int n);

typedef struct {
    const char *data_dir, *out_dir;
    int hidden, n_layer, n_head, intermediate; /* intermediate 0: 4 * hidden */
    int batch, seq_len;
    long steps, warmup, eval_every, log_every; /* eval_every 0: only at the end */
    int eval_batches;
    float lr, min_lr, weight_decay, clip, mask_prob;
    float beta1, beta2, eps; /* AdamW (0.9, 0.999, 1e-6: HF's BERT pretraining) */
    int whole_word;
    uint64_t seed;
    int overwrite; /* out_dir may hold a run, replaced once the new one saves (else: absent or empty) */
} lm_mlm_options;

void lm_mlm_options_default(lm_mlm_options *o);

typedef struct {
    long step, total_steps;
    float loss, lr;
    int has_val;
    float val_loss;
    double elapsed_s, eta_s, tokens_per_sec;
} lm_mlm_event;

/* Trains a BertForMaskedLM from scratch: windows of seq_len - 2 shard
 * tokens wrapped in [CLS] ... [SEP], masked afresh each step (RNG stream
 * = step), AdamW with warmup + cosine; validation loss on fixed masked
 * batches of val.bin; the run directory is an HF checkpoint (config.json,
 * model.safetensors, tokenizer.json) rewritten at each evaluation. Every
 * option and input is checked before anything is written, and the
 * directory appears whole at the first evaluation (see lm_train_run). */
lm_status lm_mlm_train_run(const lm_mlm_options *o, void (*cb)(const lm_mlm_event *ev, void *user), void *user);

#endif

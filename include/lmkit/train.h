/* lmkit training: token shards, learning-rate schedule, AdamW with global
 * norm clipping, and the pretraining loop (eval, checkpoints, resume). */
#ifndef LMKIT_TRAIN_H
#define LMKIT_TRAIN_H

#include "lmkit/base.h"
#include "lmkit/model.h"

/* ---- token shards ----
 * A shard file is a 32-byte little-endian header followed by the tokens:
 *   u32 magic 0x544B4D4C ("LMKT"), u32 version (1), u32 token width in bytes
 *   (2 or 4), u32 vocab size, u64 token count, u64 reserved (0).
 * Tokens are unsigned, width bytes each. `lmkit prepare` writes train.bin
 * and val.bin plus meta.json and tokenizer.json into one directory. */
#define LM_SHARD_MAGIC 0x544B4D4Cu
#define LM_SHARD_VERSION 1u
#define LM_SHARD_HEADER_BYTES 32

typedef struct {
    lm_mmap map;
    const uint8_t *tokens;
    int width;
    int vocab_size;
    uint64_t n_tokens;
} lm_shard;

/* Writes tokens atomically; width 2 when vocab_size <= 65536, else 4. */
lm_status lm_shard_write(const char *path, const int32_t *tokens, uint64_t n, int vocab_size);
/* Maps and validates a shard (header fields, size, every token < vocab). */
lm_status lm_shard_open(const char *path, lm_shard *s);
void lm_shard_close(lm_shard *s);
static inline int32_t lm_shard_token(const lm_shard *s, uint64_t i) {
    if (s->width == 2) return (int32_t)(s->tokens[2 * i] | (s->tokens[2 * i + 1] << 8));
    const uint8_t *p = s->tokens + 4 * i;
    return (int32_t)((uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24));
}

/* ---- schedule ----
 * Linear warmup from max_lr/warmup to max_lr over `warmup` steps, then a
 * cosine decay to min_lr at step `total`, min_lr afterwards. Step is
 * 0-based. */
typedef struct {
    float max_lr, min_lr;
    long warmup, total;
} lm_lr_schedule;
float lm_lr_at(const lm_lr_schedule *s, long step);

/* ---- AdamW ---- */
typedef struct {
    float beta1, beta2, eps, weight_decay;
    float *m, *v; /* flat, like the parameters */
    size_t n;
    long t; /* number of updates applied so far */
} lm_adamw;

lm_status lm_adamw_init(lm_adamw *opt, size_t n_params, float beta1, float beta2, float eps, float weight_decay);
void lm_adamw_free(lm_adamw *opt);
/* One update over every tensor of the table; weight decay only where the
 * table marks it (matrices and embeddings, not biases or norms). */
void lm_adamw_step(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr);
/* The same with every gradient taken as grad * grad_scale (grads untouched). */
void lm_adamw_step_scaled(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr,
                          float grad_scale);
/* Rows of one tensor that can hold a nonzero gradient — an embedding's
 * rows of the token ids seen so far — as runs of row indices
 * [start[i], end[i]). */
typedef struct {
    int param;      /* index in the table */
    size_t row_len; /* floats per row */
    int n;          /* runs */
    int32_t *start, *end;
} lm_row_runs;
/* Rebuilds the runs from live[rows] (nonzero: the row is live). */
void lm_row_runs_from(lm_row_runs *r, const uint8_t *live, int rows);
/* lm_adamw_step_scaled, except that tensor sparse->param, when it has no
 * weight decay, is updated on its live rows only: a row whose gradient has
 * always been zero still has m = v = 0, where the dense update leaves it
 * exactly as it is. sparse NULL: every tensor in full. zero_grads: the
 * gradients it updates from are left zero (what lm_grad_zero would do
 * before the next backward, without a pass of its own). */
void lm_adamw_step_rows(lm_adamw *opt, const lm_param_table *table, float *params, float *grads, float lr,
                        float grad_scale, const lm_row_runs *sparse, int zero_grads);
/* Sum of squared gradients over the table's tensors (the live rows only of
 * sparse->param; none of the tensors i with skip[i] set, skip NULL: none
 * skipped), and zeroing them: the passes a step needs when only these
 * gradients can be nonzero. Deterministic for any thread count. */
double lm_grad_sum_squares(const lm_param_table *table, const float *grads, const lm_row_runs *sparse, const uint8_t *skip);
void lm_grad_zero(const lm_param_table *table, float *grads, const lm_row_runs *sparse);

/* Global L2 norm of the gradients; if above max_norm (> 0) they are scaled
 * by max_norm / (norm + 1e-6), as torch.nn.utils.clip_grad_norm_ does.
 * Returns the norm before clipping. */
double lm_clip_grad_norm(float *grads, size_t n, float max_norm);
/* The norm, and in *scale the factor lm_clip_grad_norm would scale the
 * gradients by (1 when not clipping), leaving them as they are: hand it to
 * lm_adamw_step_scaled and clipping costs no pass of its own. */
double lm_grad_norm_clip_scale(const float *grads, size_t n, float max_norm, float *scale);
/* That factor for a norm computed otherwise: max_norm / (norm + 1e-6) when
 * max_norm > 0 and norm > max_norm (torch.nn.utils.clip_grad_norm_), else 1. */
float lm_clip_scale(double norm, float max_norm);

/* ---- the pretraining loop ---- */
typedef struct {
    const char *data_dir;  /* from lmkit prepare */
    const char *out_dir;   /* the run directory (an HF checkpoint dir) */
    lm_model_config model; /* ignored when resuming */
    int batch, seq_len, grad_accum;
    long steps;
    lm_lr_schedule lr;
    float weight_decay, beta1, beta2, eps, clip;
    long eval_every, save_every, log_every;
    int eval_batches;
    uint64_t seed;
    /* batch slices run side by side, one per thread (lm_gpt2_set_data_parallel);
     * 0: lm_gpt2_auto_parts. The run stores the count it used, so a resume
     * sums in the same order whatever --threads it gets. */
    int data_parallel;
    int resume;
    long stop_at_step; /* > 0: stop after this step (checkpointed); the schedule still spans `steps` */
    /* A new run's out_dir must be absent or empty; overwrite: it may hold a
     * run, which is replaced (only once the new run has a checkpoint). */
    int overwrite;
} lm_train_options;

void lm_train_options_default(lm_train_options *o);
/* Checks every option's range (lm_train_run does, before it writes
 * anything). origin NULL: errors name the command-line flag (--beta1 1 must
 * be in [0, 1)); else errors read "<origin>: options.beta1 1 ...", for
 * options loaded from that file. */
lm_status lm_train_options_check(const lm_train_options *o, const char *origin);

typedef struct {
    long step, total_steps;
    float loss, lr;
    double grad_norm;
    double tokens_per_sec;
    double elapsed_s, eta_s;
    int has_val;
    float val_loss;
    int saved;
} lm_train_event;

/* Called after every optimizer step (for progress bars / logs). */
typedef void (*lm_train_callback)(const lm_train_event *ev, void *user);

/* Runs (or, with opts->resume, continues) a training run. Every option and
 * input is checked before anything is written; a new run's directory
 * appears (whole) only with its first checkpoint, so a run that fails
 * before that leaves out_dir as it was. On resume the options stored in
 * the run are used, except `steps`, which may extend it, and stop_at_step;
 * data order and RNG streams depend only on (seed, step), so the losses
 * equal those of an uninterrupted run bit for bit. */
lm_status lm_train_run(const lm_train_options *opts, lm_train_callback cb, void *user);

/* Mean validation loss over `batches` fixed batches of a shard. */
lm_status lm_eval_shard_loss(lm_gpt2 *m, const lm_shard *s, int batch, int seq_len, int batches, uint64_t seed, float *loss);

#endif

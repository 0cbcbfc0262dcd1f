/* lmkit models: configuration, the flat parameter table, and the GPT-2
 * decoder with explicit forward and backward passes.
 *
 * Parameters, gradients and optimizer moments each live in ONE flat fp32
 * buffer; a table maps each tensor's Hugging Face name to (offset, shape).
 * Saving, loading, clipping and the optimizer are loops over that table,
 * never per-model code. Tensors keep Hugging Face's layouts (GPT-2's Conv1D
 * weights are [in, out]) so checkpoints need no transposes. */
#ifndef LMKIT_MODEL_H
#define LMKIT_MODEL_H

#include "lmkit/base.h"

typedef enum { LM_ARCH_GPT2 = 0 } lm_arch;

typedef struct {
    lm_arch arch;
    int vocab_size;
    int n_ctx;   /* maximum sequence length (position embeddings) */
    int n_embd;
    int n_layer;
    int n_head;
    int n_inner; /* MLP hidden width, 4 * n_embd by default */
    float layer_norm_eps;
    int bos_token_id, eos_token_id; /* -1: none (written to config.json as null) */
} lm_model_config;

/* Checks that every field is in range; names the bad field. */
lm_status lm_config_validate(const lm_model_config *c);
/* Reads / writes a Hugging Face config.json (GPT2Config fields). */
lm_status lm_config_load(const char *path, lm_model_config *c);
lm_status lm_config_save(const lm_model_config *c, const char *path);

/* ---- the parameter table ---- */
#define LM_PARAM_MAX_DIMS 4
typedef struct {
    char name[96];
    size_t offset; /* in floats, into the flat buffer */
    size_t numel;
    int ndim;
    int64_t shape[LM_PARAM_MAX_DIMS];
    int decay; /* AdamW weight decay applies (matrices yes; biases, norms no) */
} lm_param;

typedef struct {
    int n;
    lm_param *params;
    size_t total; /* floats */
} lm_param_table;

void lm_param_table_free(lm_param_table *t);
const lm_param *lm_param_find(const lm_param_table *t, const char *name);

/* ---- GPT-2 ---- */
typedef struct lm_gpt2 lm_gpt2;

/* Allocates parameters (and, when `train` is set, gradients). Weights are
 * initialised as GPT-2 does: N(0, 0.02), residual projections scaled by
 * 1/sqrt(2 * n_layer), biases 0, LayerNorm weight 1. Free with lm_gpt2_free. */
lm_status lm_gpt2_create(const lm_model_config *c, int train, uint64_t seed, lm_gpt2 **out);
void lm_gpt2_free(lm_gpt2 *m);
const lm_model_config *lm_gpt2_config(const lm_gpt2 *m);
const lm_param_table *lm_gpt2_params(const lm_gpt2 *m);
float *lm_gpt2_param_data(lm_gpt2 *m);
float *lm_gpt2_grad_data(lm_gpt2 *m); /* NULL unless created with train */

/* Data parallelism inside a step: a forward with targets splits the
 * batch's rows into `parts` slices that run side by side, one thread each
 * with single-threaded kernels, and backward adds their gradients up. For
 * models too narrow to split each op among threads well; costs activations
 * and a gradient buffer per part. Results depend on `parts` (the order of
 * the sums), not on the thread count. Default 1 (every op split among the
 * threads). */
#define LM_GPT2_MAX_PARTS 16
lm_status lm_gpt2_set_data_parallel(lm_gpt2 *m, int parts);
/* The parts lmkit picks for a batch of `batch` rows on `threads` threads. */
int lm_gpt2_auto_parts(const lm_model_config *c, int batch, int threads);

/* Loads weights from a Hugging Face GPT-2 safetensors (names with or
 * without the "transformer." prefix; F32/F16/BF16). Every expected tensor
 * must be present with the right shape. */
lm_status lm_gpt2_load_weights(lm_gpt2 *m, const char *safetensors_path);
/* Writes model.safetensors with GPT2LMHeadModel's names, atomically.
 * `step` goes into the file's metadata. */
lm_status lm_gpt2_save_weights(const lm_gpt2 *m, const char *path, long step);
/* Opens a checkpoint directory (config.json + model.safetensors). */
lm_status lm_gpt2_open_dir(const char *dir, int train, lm_gpt2 **out);

/* Forward over a batch ids[B*T] (T <= n_ctx). With targets (target < 0 is
 * ignored), computes the mean cross-entropy into *loss and keeps what
 * backward needs. Activation memory is sized on first use for (B, T) and
 * reused; a larger (B, T) reallocates. Logits of the last forward stay
 * available through lm_gpt2_logits (only when targets == NULL, as the loss
 * overwrites them with their gradient). */
lm_status lm_gpt2_forward(lm_gpt2 *m, const int32_t *ids, const int32_t *targets, int B, int T, float *loss);
const float *lm_gpt2_logits(const lm_gpt2 *m);
/* Whether a forward keeps what backward needs (default: when created with
 * train). Off (evaluation, as torch.no_grad), the layers share one set of
 * activation buffers, which stays in cache, the loss gradient is not
 * taken, and backward after such a forward is an error. */
void lm_gpt2_set_grad_enabled(lm_gpt2 *m, int on);
/* Accumulates d(loss * grad_scale)/d(params) into the gradient buffer.
 * Must follow a forward with targets, with gradients enabled. */
lm_status lm_gpt2_backward(lm_gpt2 *m, float grad_scale);
/* Zeroes the gradients. Deferred: the next backward writes the weight
 * matrices' gradients outright instead of adding to zeros (no memset of
 * the whole buffer); lm_gpt2_grad_data() zeroes for real if called first. */
void lm_gpt2_zero_grad(lm_gpt2 *m);
/* The gradient norm's share of the block weight matrices, summed as the
 * backward after lm_gpt2_zero_grad stored their gradients (every tensor's,
 * when data-parallel parts were added up); covered[i] (one flag per table
 * tensor) marks the tensors included, for the caller to sum the rest
 * (lm_grad_sum_squares with skip = covered). A second backward
 * before the update (accumulation) leaves nothing covered and returns 0. */
double lm_gpt2_fused_sum_squares(const lm_gpt2 *m, uint8_t *covered);
/* Sum of the loss terms of the last forward (not the mean), and how many
 * positions counted: perplexity needs exact totals. */
double lm_gpt2_last_loss_sum(const lm_gpt2 *m, int *counted);

/* ---- incremental decoding with a KV cache ----
 * Feeds n new tokens at positions [pos, pos+n) of one sequence and leaves
 * the logits of the last one in logits_out[V]. The cache holds n_ctx
 * positions; pos + n > n_ctx is an LM_ERR_RANGE error. */
typedef struct lm_gpt2_cache lm_gpt2_cache;
lm_status lm_gpt2_cache_create(const lm_gpt2 *m, lm_gpt2_cache **out);
void lm_gpt2_cache_free(lm_gpt2_cache *c);
lm_status lm_gpt2_decode(lm_gpt2 *m, lm_gpt2_cache *cache, const int32_t *ids, int n, int pos, float *logits_out);

#endif

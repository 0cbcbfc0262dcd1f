/* Inference engine for LLaMA-family models: runs batches of tokens from
 * any number of independent sequences through the model in one step.
 *
 * A batch is a list of (sequence, token) pairs. Each token is placed at
 * its sequence's next position, so one call can prefill a prompt (many
 * tokens of one sequence: the matmuls go through GEMM) or decode one token
 * for each of several sequences (the matmuls go through the quantized
 * dot kernels, reading each weight once for all of them). Sequences join
 * (lm_engine_reset, then feed tokens) and leave between calls.
 *
 * Memory: the KV cache and all activations are allocated once in
 * lm_engine_new; a forward call does not allocate. */
#ifndef LMKIT_ENGINE_H
#define LMKIT_ENGINE_H

#include <stdint.h>

#include "lmkit/llama.h"

typedef struct {
    int max_seqs;  /* sequences held at once (default 1) */
    int ctx_len;   /* positions per sequence (default: model max_seq_len) */
    int max_batch; /* tokens per internal step (default 512) */
    int kv_f16;    /* store the KV cache as F16 (default F32) */
} lm_engine_opts;

typedef struct lm_engine lm_engine;

/* The model must outlive the engine. opts may be NULL. Free with
 * lm_engine_free. */
lm_status lm_engine_new(const lm_llama_model *m, const lm_engine_opts *opts, lm_engine **out);
void lm_engine_free(lm_engine *e);

/* Runs n tokens; tokens[i] goes to sequence seqs[i] (NULL: all sequence
 * 0). For each i with want_logits[i] set (NULL: only the last token) a
 * row of vocab_size logits is written to `logits`, in order. Batches
 * larger than max_batch are split. A token past a sequence's ctx_len is
 * LM_ERR_RANGE (nothing is run; clear or reset the sequence first). */
lm_status lm_engine_forward(lm_engine *e, int n, const int32_t *tokens, const int *seqs, const uint8_t *want_logits,
                            float *logits);
void lm_engine_reset(lm_engine *e, int seq);
int lm_engine_seq_len(const lm_engine *e, int seq);
int lm_engine_ctx_len(const lm_engine *e);
int lm_engine_vocab_size(const lm_engine *e);
size_t lm_engine_kv_bytes(const lm_engine *e);

#endif

/* Evaluation: perplexity of a causal LM over a long token sequence. */
#ifndef LMKIT_EVAL_H
#define LMKIT_EVAL_H

#include "lmkit/engine.h"
#include "lmkit/model.h"

typedef struct {
    double nll_sum;   /* total negative log-likelihood, nats */
    long tokens;      /* tokens scored */
    int windows;
} lm_perplexity_result;

/* Strided sliding windows, the method of transformers' perplexity guide
 * with exact per-token totals: windows [b, b + n_ctx) start every `stride`
 * tokens; each scores the tokens no earlier window reached, predicted from
 * the window's tokens before them. Token 0 has no prediction (nor, with
 * stride == n_ctx, the first token of each window). */
lm_status lm_gpt2_perplexity(lm_gpt2 *m, const int32_t *ids, long n, int stride, lm_perplexity_result *out);
/* The same windows for a LLaMA-family model, n_ctx = the engine's context
 * length, run through the engine's sequence 0 (reset per window). */
lm_status lm_engine_perplexity(lm_engine *e, const int32_t *ids, long n, int stride, lm_perplexity_result *out);

#endif

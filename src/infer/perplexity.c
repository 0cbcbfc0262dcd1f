/* Perplexity over a long text by strided windows, as the transformers
 * perplexity guide computes it (see eval.h): windows of up to ctx tokens
 * every `stride`, each token scored once, by the first window that
 * predicts it. */
#include "lmkit/eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_gpt2_perplexity(lm_gpt2 *m, const int32_t *ids, long n, int stride, lm_perplexity_result *out) {
    memset(out, 0, sizeof *out);
    int ctx = lm_gpt2_config(m)->n_ctx;
    if (n < 2) return lm_error(LM_ERR_ARG, "perplexity: need at least 2 tokens, got %ld", n);
    if (stride < 1 || stride > ctx) return lm_error(LM_ERR_ARG, "perplexity: stride %d must be in [1, %d]", stride, ctx);
    int32_t *targets = malloc((size_t)ctx * sizeof *targets);
    if (!targets) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = LM_OK;
    long scored_until = 0; /* tokens 1..scored_until already scored */
    for (long b = 0; b < n - 1 && s == LM_OK; b += stride) {
        /* the guide's window is [b, b + ctx); its last token is no one's
         * input, so inputs [b, e) predict tokens b+1..e */
        long e = (b + ctx < n ? b + ctx : n) - 1;
        int T = (int)(e - b);
        for (int i = 0; i < T; i++) {
            long tok = b + 1 + i;
            targets[i] = tok > scored_until ? ids[tok] : -1;
        }
        s = lm_gpt2_forward(m, ids + b, targets, 1, T, NULL);
        int counted = 0;
        out->nll_sum += lm_gpt2_last_loss_sum(m, &counted);
        out->tokens += counted;
        out->windows++;
        scored_until = e;
        if (e == n - 1) break;
    }
    free(targets);
    return s;
}

/* Tokens per engine call inside a window: bounds the logits buffer
 * (chunk x vocab floats) while keeping the matmuls batched. */
#define LM_PPL_CHUNK 64

lm_status lm_engine_perplexity(lm_engine *e, const int32_t *ids, long n, int stride, lm_perplexity_result *out) {
    memset(out, 0, sizeof *out);
    int ctx = lm_engine_ctx_len(e), V = lm_engine_vocab_size(e);
    if (n < 2) return lm_error(LM_ERR_ARG, "perplexity: need at least 2 tokens, got %ld", n);
    if (stride < 1 || stride > ctx) return lm_error(LM_ERR_ARG, "perplexity: stride %d must be in [1, %d]", stride, ctx);
    float *logits = malloc(sizeof(float) * (size_t)LM_PPL_CHUNK * (size_t)V);
    if (!logits) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = LM_OK;
    long scored_until = 0;
    for (long b = 0; b < n - 1 && s == LM_OK; b += stride) {
        long e_ = (b + ctx < n ? b + ctx : n) - 1; /* as in lm_gpt2_perplexity */
        lm_engine_reset(e, 0);
        for (long c0 = b; c0 < e_ && s == LM_OK; c0 += LM_PPL_CHUNK) {
            int T = (int)(e_ - c0 < LM_PPL_CHUNK ? e_ - c0 : LM_PPL_CHUNK);
            uint8_t want[LM_PPL_CHUNK];
            for (int i = 0; i < T; i++) want[i] = c0 + 1 + i > scored_until;
            if ((s = lm_engine_forward(e, T, ids + c0, NULL, want, logits)) != LM_OK) break;
            const float *row = logits;
            for (int i = 0; i < T; i++) {
                if (!want[i]) continue;
                float mx = row[0];
                for (int v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
                double sum = 0;
                for (int v = 0; v < V; v++) sum += exp((double)(row[v] - mx));
                out->nll_sum += log(sum) + mx - row[ids[c0 + 1 + i]];
                out->tokens++;
                row += V;
            }
        }
        out->windows++;
        scored_until = e_;
        if (e_ == n - 1) break;
    }
    free(logits);
    return s;
}

/* Perplexity over a long text by strided windows (see eval.h). */
#include "lmkit/eval.h"

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
        long e = b + ctx < n - 1 ? b + ctx : n - 1; /* inputs [b, e) predict tokens b+1..e */
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

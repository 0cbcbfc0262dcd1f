/* Next-token sampling: penalties, temperature, top-k, top-p, min-p, with a
 * seeded RNG so a (seed, prompt) pair always gives the same text. */
#ifndef LMKIT_SAMPLER_H
#define LMKIT_SAMPLER_H

#include <stdint.h>

#include "lmkit/base.h"

typedef struct {
    float temperature;      /* 0: greedy */
    int top_k;              /* 0: off */
    float top_p;            /* 1: off */
    float min_p;            /* 0: off; keep tokens with p >= min_p * p_max */
    float repeat_penalty;   /* 1: off (llama.cpp semantics: divide positive logits) */
    float frequency_penalty, presence_penalty; /* 0: off (OpenAI semantics) */
    int penalty_last_n;     /* tokens of history the penalties see (0: all) */
    uint64_t seed;
} lm_sampler_params;

void lm_sampler_defaults(lm_sampler_params *p);
lm_status lm_sampler_check(const lm_sampler_params *p); /* names the bad field */

typedef struct lm_sampler lm_sampler;
lm_status lm_sampler_new(const lm_sampler_params *p, int vocab_size, lm_sampler **out);
void lm_sampler_free(lm_sampler *s);
/* Picks a token from logits (modified in place), given the history of
 * tokens so far. *logprob (if not NULL) gets the chosen token's log
 * probability under the final (penalized, tempered, truncated) distribution. */
int lm_sampler_sample(lm_sampler *s, float *logits, const int32_t *history, int n_history, float *logprob);

#endif

/* Token sampling from logits: greedy, temperature, top-k, top-p (nucleus),
 * min-p, and repetition / frequency / presence penalties. Seeded: the same
 * seed and logits give the same choices. */
#ifndef LMKIT_SAMPLE_H
#define LMKIT_SAMPLE_H

#include "lmkit/base.h"

typedef struct {
    float temperature;        /* 0: greedy (argmax) */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off; drop tokens with p < min_p * p_max */
    float repetition_penalty; /* 1: off; HF/CTRL style: logit /= r if > 0 else *= r */
    float frequency_penalty;  /* 0: off; OpenAI style: logit -= f * count */
    float presence_penalty;   /* 0: off; logit -= p if count > 0 */
    int penalty_last_n;       /* penalties look at the last n tokens (0: all) */
    uint64_t seed;
} lm_sample_params;

lm_sample_params lm_sample_defaults(void);

/* A field of lm_sample_params, as lm_sample_params_check reports it. */
typedef enum {
    LM_SAMPLE_VALID = 0,
    LM_SAMPLE_TEMPERATURE,
    LM_SAMPLE_TOP_K,
    LM_SAMPLE_TOP_P,
    LM_SAMPLE_MIN_P,
    LM_SAMPLE_REPETITION_PENALTY,
    LM_SAMPLE_FREQUENCY_PENALTY,
    LM_SAMPLE_PRESENCE_PENALTY,
    LM_SAMPLE_PENALTY_LAST_N,
} lm_sample_field;

/* The first field of p out of its range (LM_SAMPLE_VALID if none) and,
 * when rule is non-NULL, the rule it breaks as text ("in (0, 1]").
 * Allocates nothing, so a program can check its options before loading
 * a model and report them under its own names (lm_sampler_init applies
 * the same rules and names the struct's fields). */
lm_sample_field lm_sample_params_check(const lm_sample_params *p, const char **rule);

typedef struct {
    lm_sample_params p;
    lm_rng rng;
    int vocab;
    /* scratch, sized once for the vocabulary */
    float *probs;
    int32_t *order;
    int32_t *counts;
} lm_sampler;

lm_status lm_sampler_init(lm_sampler *s, const lm_sample_params *p, int vocab_size);
void lm_sampler_free(lm_sampler *s);

/* Picks the next token. logits[vocab] is modified in place (penalties,
 * temperature). history/n_history are the tokens so far (for penalties).
 * If logprob is non-NULL it receives log p(chosen) under the final
 * (filtered, tempered) distribution; for greedy, under softmax(logits). */
int32_t lm_sample(lm_sampler *s, float *logits, const int32_t *history, int n_history, float *logprob);

/* The k most likely tokens under softmax(logits) with their log
 * probabilities, most likely first. Returns how many were written. */
int lm_top_logprobs(const float *logits, int vocab, int k, int32_t *ids, float *logprobs);
/* log-softmax of logits at id (double-precision sum). */
float lm_logprob_of(const float *logits, int vocab, int32_t id);

#endif

/* Sampling pipeline, in llama.cpp's order: penalties on raw logits, then
 * temperature, then the truncations (top-k, top-p, min-p) on the sorted
 * distribution, then one uniform draw. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/sampler.h"

struct lm_sampler {
    lm_sampler_params p;
    int V;
    lm_rng rng;
    int *counts;
    int *idx;
    float *prob;
};

void lm_sampler_defaults(lm_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_p = 1.0f;
    p->repeat_penalty = 1.0f;
}

lm_status lm_sampler_check(const lm_sampler_params *p) {
    if (!(p->temperature >= 0 && p->temperature <= 100)) return lm_error(LM_ERR_ARG, "temperature %g out of range [0, 100]", p->temperature);
    if (p->top_k < 0) return lm_error(LM_ERR_ARG, "top_k %d must be >= 0", p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1)) return lm_error(LM_ERR_ARG, "top_p %g out of range (0, 1]", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1)) return lm_error(LM_ERR_ARG, "min_p %g out of range [0, 1]", p->min_p);
    if (!(p->repeat_penalty > 0 && p->repeat_penalty <= 10)) return lm_error(LM_ERR_ARG, "repeat_penalty %g out of range (0, 10]", p->repeat_penalty);
    if (!(fabsf(p->frequency_penalty) <= 2)) return lm_error(LM_ERR_ARG, "frequency_penalty %g out of range [-2, 2]", p->frequency_penalty);
    if (!(fabsf(p->presence_penalty) <= 2)) return lm_error(LM_ERR_ARG, "presence_penalty %g out of range [-2, 2]", p->presence_penalty);
    if (p->penalty_last_n < 0) return lm_error(LM_ERR_ARG, "penalty_last_n %d must be >= 0", p->penalty_last_n);
    return LM_OK;
}

lm_status lm_sampler_new(const lm_sampler_params *p, int vocab_size, lm_sampler **out) {
    LM_TRY(lm_sampler_check(p));
    if (vocab_size <= 0) return lm_error(LM_ERR_ARG, "sampler: vocab size %d", vocab_size);
    lm_sampler *s = calloc(1, sizeof *s);
    if (!s) return lm_error(LM_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->V = vocab_size;
    s->counts = calloc((size_t)vocab_size, sizeof(int));
    s->idx = malloc(sizeof(int) * (size_t)vocab_size);
    s->prob = malloc(sizeof(float) * (size_t)vocab_size);
    if (!s->counts || !s->idx || !s->prob) {
        lm_sampler_free(s);
        return lm_error(LM_ERR_NOMEM, "sampler: out of memory");
    }
    lm_rng_seed(&s->rng, p->seed, 0x5a4d);
    *out = s;
    return LM_OK;
}

void lm_sampler_free(lm_sampler *s) {
    if (!s) return;
    free(s->counts);
    free(s->idx);
    free(s->prob);
    free(s);
}

static int by_prob_desc(const void *a, const void *b, void *key) {
    const float *prob = key;
    float x = prob[*(const int *)a], y = prob[*(const int *)b];
    return x < y ? 1 : x > y ? -1 : (*(const int *)a - *(const int *)b);
}

int lm_sampler_sample(lm_sampler *s, float *logits, const int32_t *hist, int nh, float *logprob) {
    const lm_sampler_params *p = &s->p;
    int V = s->V;
    int start = p->penalty_last_n > 0 && nh > p->penalty_last_n ? nh - p->penalty_last_n : 0;
    int penalize = p->repeat_penalty != 1.0f || p->frequency_penalty != 0 || p->presence_penalty != 0;
    if (penalize) {
        for (int i = start; i < nh; i++)
            if (hist[i] >= 0 && hist[i] < V) s->counts[hist[i]]++;
        for (int i = start; i < nh; i++) {
            int t = hist[i];
            if (t < 0 || t >= V || !s->counts[t]) continue;
            float l = logits[t];
            l = l > 0 ? l / p->repeat_penalty : l * p->repeat_penalty;
            l -= s->counts[t] * p->frequency_penalty + p->presence_penalty;
            logits[t] = l;
            s->counts[t] = 0; /* once per distinct token; also resets the counts */
        }
    }
    if (p->temperature == 0) {
        int b = 0;
        for (int i = 1; i < V; i++)
            if (logits[i] > logits[b]) b = i;
        if (logprob) {
            double z = 0;
            for (int i = 0; i < V; i++) z += exp((double)logits[i] - logits[b]);
            *logprob = (float)-log(z);
        }
        return b;
    }
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) mx = fmaxf(mx, logits[i]);
    double z = 0;
    for (int i = 0; i < V; i++) z += (s->prob[i] = expf((logits[i] - mx) / p->temperature));
    for (int i = 0; i < V; i++) s->prob[i] = (float)(s->prob[i] / z), s->idx[i] = i;
    qsort_r(s->idx, (size_t)V, sizeof(int), by_prob_desc, s->prob);
    int n = V;
    if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    if (p->top_p < 1) {
        double c = 0;
        for (int i = 0; i < n; i++)
            if ((c += s->prob[s->idx[i]]) >= p->top_p) {
                n = i + 1;
                break;
            }
    }
    if (p->min_p > 0) {
        float cut = p->min_p * s->prob[s->idx[0]];
        int m = 1;
        while (m < n && s->prob[s->idx[m]] >= cut) m++;
        n = m;
    }
    double kept = 0;
    for (int i = 0; i < n; i++) kept += s->prob[s->idx[i]];
    double r = lm_rng_uniform(&s->rng) * kept, c = 0;
    int pick = s->idx[n - 1];
    for (int i = 0; i < n; i++)
        if ((c += s->prob[s->idx[i]]) > r) {
            pick = s->idx[i];
            break;
        }
    if (logprob) *logprob = (float)log(s->prob[pick] / kept);
    return pick;
}

/* Sampling: penalties -> temperature -> top-k -> top-p -> min-p -> draw. */
#include "lmkit/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lm_sample_params lm_sample_defaults(void) {
    lm_sample_params p = {0};
    p.temperature = 1.0f;
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    return p;
}

/* Comparisons are written so NaN fails them: NaN passes `x < 0`. */
lm_sample_field lm_sample_params_check(const lm_sample_params *p, const char **rule) {
    static const char *const rules[] = {"", "finite and >= 0", ">= 0", "in (0, 1]", "in [0, 1)", "> 0 and finite", "finite", "finite", ">= 0"};
    lm_sample_field f = LM_SAMPLE_VALID;
    if (!(p->temperature >= 0 && isfinite(p->temperature))) f = LM_SAMPLE_TEMPERATURE;
    else if (p->top_k < 0) f = LM_SAMPLE_TOP_K;
    else if (!(p->top_p > 0 && p->top_p <= 1)) f = LM_SAMPLE_TOP_P;
    else if (!(p->min_p >= 0 && p->min_p < 1)) f = LM_SAMPLE_MIN_P;
    else if (!(p->repetition_penalty > 0 && isfinite(p->repetition_penalty))) f = LM_SAMPLE_REPETITION_PENALTY;
    else if (!isfinite(p->frequency_penalty)) f = LM_SAMPLE_FREQUENCY_PENALTY;
    else if (!isfinite(p->presence_penalty)) f = LM_SAMPLE_PRESENCE_PENALTY;
    else if (p->penalty_last_n < 0) f = LM_SAMPLE_PENALTY_LAST_N;
    if (rule) *rule = rules[f];
    return f;
}

lm_status lm_sampler_init(lm_sampler *s, const lm_sample_params *p, int vocab) {
    memset(s, 0, sizeof *s);
    if (vocab < 1) return lm_error(LM_ERR_ARG, "sampler: vocabulary size %d", vocab);
    static const char *const names[] = {"",         "temperature",       "top_k",            "top_p",         "min_p",
                                        "repetition_penalty", "frequency_penalty", "presence_penalty", "penalty_last_n"};
    const char *rule;
    lm_sample_field f = lm_sample_params_check(p, &rule);
    if (f == LM_SAMPLE_TOP_K || f == LM_SAMPLE_PENALTY_LAST_N)
        return lm_error(LM_ERR_ARG, "sampler: %s %d must be %s", names[f], f == LM_SAMPLE_TOP_K ? p->top_k : p->penalty_last_n, rule);
    if (f != LM_SAMPLE_VALID) {
        const float v[] = {0, p->temperature, 0, p->top_p, p->min_p, p->repetition_penalty, p->frequency_penalty, p->presence_penalty};
        return lm_error(LM_ERR_ARG, "sampler: %s %g must be %s", names[f], (double)v[f], rule);
    }
    s->p = *p;
    s->vocab = vocab;
    lm_rng_seed(&s->rng, p->seed, 0x5a3b1e);
    s->probs = malloc((size_t)vocab * sizeof *s->probs);
    s->order = malloc((size_t)vocab * sizeof *s->order);
    s->counts = calloc((size_t)vocab, sizeof *s->counts);
    if (!s->probs || !s->order || !s->counts) {
        lm_sampler_free(s);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    return LM_OK;
}

void lm_sampler_free(lm_sampler *s) {
    free(s->probs);
    free(s->order);
    free(s->counts);
    s->probs = NULL;
    s->order = NULL;
    s->counts = NULL;
}

static void lm_apply_penalties(lm_sampler *s, float *logits, const int32_t *hist, int n) {
    const lm_sample_params *p = &s->p;
    if (p->repetition_penalty == 1.0f && p->frequency_penalty == 0 && p->presence_penalty == 0) return;
    int from = p->penalty_last_n > 0 && n > p->penalty_last_n ? n - p->penalty_last_n : 0;
    for (int i = from; i < n; i++)
        if (hist[i] >= 0 && hist[i] < s->vocab) s->counts[hist[i]]++;
    for (int i = from; i < n; i++) {
        int32_t t = hist[i];
        if (t < 0 || t >= s->vocab || s->counts[t] == 0) continue;
        float l = logits[t];
        if (p->repetition_penalty != 1.0f) l = l > 0 ? l / p->repetition_penalty : l * p->repetition_penalty;
        l -= p->frequency_penalty * (float)s->counts[t] + (p->presence_penalty);
        logits[t] = l;
        s->counts[t] = 0; /* each distinct token penalised once; also resets the scratch */
    }
}

/* Descending by probability; ties by id so results never depend on qsort's order. */
static int lm_prob_desc(const void *a, const void *b, void *probs) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    float px = ((const float *)probs)[x], py = ((const float *)probs)[y];
    if (px != py) return px > py ? -1 : 1;
    /* ties: higher id first, so a cut drops the lower ids, as transformers'
     * ascending sort does */
    return x > y ? -1 : 1;
}

static int32_t lm_argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static double lm_log_softmax_at(const float *logits, int n, int32_t id) {
    float maxv = logits[lm_argmax(logits, n)];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - maxv);
    return (double)logits[id] - maxv - log(sum);
}

int32_t lm_sample(lm_sampler *s, float *logits, const int32_t *history, int n_history, float *logprob) {
    const lm_sample_params *p = &s->p;
    int V = s->vocab;
    lm_apply_penalties(s, logits, history, n_history);
    if (p->temperature == 0) {
        int32_t id = lm_argmax(logits, V);
        if (logprob) *logprob = (float)lm_log_softmax_at(logits, V, id);
        return id;
    }
    float maxv = logits[lm_argmax(logits, V)];
    double sum = 0;
    for (int i = 0; i < V; i++) {
        s->probs[i] = expf((logits[i] - maxv) / p->temperature);
        sum += s->probs[i];
    }
    for (int i = 0; i < V; i++) s->probs[i] = (float)(s->probs[i] / sum);
    /* Candidates in descending probability; a partial sort would do for
     * top-k, but V log V on 50k floats is ~1 ms, well under a forward pass. */
    int n = V;
    for (int i = 0; i < V; i++) s->order[i] = i;
    int need_sort = p->top_k > 0 || p->top_p < 1.0f || p->min_p > 0;
    if (need_sort) {
        qsort_r(s->order, (size_t)V, sizeof *s->order, lm_prob_desc, s->probs);
        /* Top-k keeps every token tied with the k-th, as transformers does
         * (it removes only scores below the k-th largest). */
        if (p->top_k > 0 && p->top_k < n) {
            float kth = s->probs[s->order[p->top_k - 1]];
            n = p->top_k;
            while (n < V && s->probs[s->order[n]] == kth) n++;
        }
        /* Top-p over what top-k kept, renormalized (transformers' warpers
         * each take a fresh softmax of the surviving scores). */
        if (p->top_p < 1.0f) {
            double total = 0, cum = 0;
            for (int i = 0; i < n; i++) total += s->probs[s->order[i]];
            for (int i = 0; i < n; i++) {
                cum += s->probs[s->order[i]];
                if (cum >= p->top_p * total) {
                    n = i + 1;
                    break;
                }
            }
        }
        if (p->min_p > 0) {
            float floor_p = p->min_p * s->probs[s->order[0]];
            int keep = 1;
            while (keep < n && s->probs[s->order[keep]] >= floor_p) keep++;
            n = keep;
        }
    }
    double kept = 0;
    for (int i = 0; i < n; i++) kept += s->probs[s->order[i]];
    double u = (double)lm_rng_uniform(&s->rng) * kept, cum = 0;
    int32_t chosen = s->order[n - 1];
    for (int i = 0; i < n; i++) {
        cum += s->probs[s->order[i]];
        if (u < cum) {
            chosen = s->order[i];
            break;
        }
    }
    if (logprob) *logprob = (float)log(s->probs[chosen] / kept);
    return chosen;
}

float lm_logprob_of(const float *logits, int vocab, int32_t id) { return (float)lm_log_softmax_at(logits, vocab, id); }

int lm_top_logprobs(const float *logits, int vocab, int k, int32_t *ids, float *logprobs) {
    if (k > vocab) k = vocab;
    /* Insertion into a small sorted list: k is tiny (<= 20). */
    int n = 0;
    for (int i = 0; i < vocab; i++) {
        if (n == k && logits[i] <= logits[ids[n - 1]]) continue;
        int j = n < k ? n++ : k - 1;
        while (j > 0 && logits[ids[j - 1]] < logits[i]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
    for (int i = 0; i < n; i++) logprobs[i] = (float)lm_log_softmax_at(logits, vocab, ids[i]);
    return n;
}

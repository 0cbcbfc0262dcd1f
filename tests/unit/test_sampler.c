/* Sampler: greedy, seeded reproducibility, the sampled distribution, each
 * truncation and penalty, and parameter errors. */
#include "lmkit/sample.h"
#include "test.h"

static void freqs(lm_sample_params *p, const float *logits, int V, int draws, double *f) {
    lm_sampler s_, *s = &s_;
    CHECK_OK(lm_sampler_init(s, p, V));
    float l[8];
    for (int i = 0; i < V; i++) f[i] = 0;
    for (int d = 0; d < draws; d++) {
        memcpy(l, logits, sizeof(float) * (size_t)V);
        f[lm_sample(s, l, NULL, 0, NULL)] += 1.0 / draws;
    }
    lm_sampler_free(s);
}

int main(void) {
    const float base[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    lm_sample_params p;
    double f[4];
    p = lm_sample_defaults();
    p.temperature = 1.0f;
    p.seed = 7;
    /* 40000 draws: the standard error of each frequency is < 0.0025, so a
     * 0.01 band is 4 sigma. */
    freqs(&p, base, 4, 40000, f);
    CHECK_MSG(fabs(f[0] - 0.5) < 0.01 && fabs(f[1] - 0.3) < 0.01 && fabs(f[2] - 0.15) < 0.01 && fabs(f[3] - 0.05) < 0.01,
              "%f %f %f %f", f[0], f[1], f[2], f[3]);
    p.top_k = 2;
    freqs(&p, base, 4, 20000, f);
    CHECK(f[2] == 0 && f[3] == 0 && fabs(f[0] - 0.625) < 0.015);
    p.top_k = 0, p.top_p = 0.85f; /* 0.5 + 0.3 < 0.85 <= 0.95: keeps three */
    freqs(&p, base, 4, 20000, f);
    CHECK(f[3] == 0 && f[2] > 0.1);
    p.top_p = 1, p.min_p = 0.5f; /* keeps p >= 0.25: tokens 0 and 1 */
    freqs(&p, base, 4, 20000, f);
    CHECK(f[2] == 0 && f[3] == 0 && f[1] > 0.3);
    /* transformers' rules at the edges (its TopK/TopP warpers in
     * generate's order): top-p after top-k measures the kept tokens
     * renormalized ({0.5, 0.3} -> 0.625 alone reaches 0.6); top-k keeps
     * every token tied with the k-th; a top-p cut among ties drops the
     * lower ids. */
    p.min_p = 0, p.top_k = 2, p.top_p = 0.6f;
    freqs(&p, base, 4, 4000, f);
    CHECK_MSG(f[1] == 0 && f[2] == 0 && f[0] > 0.999, "top-p after top-k: %f %f", f[0], f[1]);
    const float tied[4] = {1, 1, 1, 0}, flat[5] = {0, 0, 0, 0, -9};
    p.top_k = 2, p.top_p = 1;
    freqs(&p, tied, 4, 6000, f);
    CHECK_MSG(f[0] > 0.25 && f[1] > 0.25 && f[2] > 0.25 && f[3] == 0, "top-k ties: %f %f %f %f", f[0], f[1], f[2], f[3]);
    p.top_k = 1;
    freqs(&p, tied, 4, 6000, f);
    CHECK_MSG(f[0] > 0.25 && f[1] > 0.25 && f[2] > 0.25, "top-k 1 with ties: %f %f %f", f[0], f[1], f[2]);
    double g[5];
    p.top_k = 0, p.top_p = 0.3f;
    freqs(&p, flat, 5, 6000, g);
    CHECK_MSG(g[0] == 0 && g[1] == 0 && g[2] > 0.4 && g[3] > 0.4 && g[4] == 0, "top-p ties: %f %f %f %f", g[0], g[1], g[2], g[3]);
    p.top_p = 1;
    /* Seeded: same seed, same sequence; different seed differs. */
    lm_sampler a_, b_, c_, *a = &a_, *b = &b_, *c = &c_;
    p.min_p = 0;
    CHECK_OK(lm_sampler_init(a, &p, 4));
    CHECK_OK(lm_sampler_init(b, &p, 4));
    p.seed = 8;
    CHECK_OK(lm_sampler_init(c, &p, 4));
    int same = 1, diff = 0;
    for (int i = 0; i < 200; i++) {
        float l1[4], l2[4], l3[4];
        memcpy(l1, base, sizeof l1), memcpy(l2, base, sizeof l2), memcpy(l3, base, sizeof l3);
        int x = lm_sample(a, l1, NULL, 0, NULL), y = lm_sample(b, l2, NULL, 0, NULL);
        same &= x == y;
        diff |= x != lm_sample(c, l3, NULL, 0, NULL);
    }
    CHECK(same && diff);
    lm_sampler_free(a), lm_sampler_free(b), lm_sampler_free(c);
    /* Greedy with logprob; penalties move the argmax off a repeated token. */
    p = lm_sample_defaults();
    p.temperature = 0;
    CHECK_OK(lm_sampler_init(a, &p, 4));
    float l[4];
    memcpy(l, base, sizeof l);
    float lp;
    CHECK(lm_sample(a, l, NULL, 0, &lp) == 0);
    CHECK(fabsf(lp - logf(0.5f)) < 1e-5f);
    lm_sampler_free(a);
    p.presence_penalty = 1.0f;
    CHECK_OK(lm_sampler_init(a, &p, 4));
    int32_t hist[3] = {0, 0, 0};
    memcpy(l, base, sizeof l);
    CHECK(lm_sample(a, l, hist, 3, NULL) == 1); /* log .5 - 1 < log .3 */
    lm_sampler_free(a);
    p.presence_penalty = 0, p.repetition_penalty = 1.5f;
    float pos[2] = {1.2f, 1.0f};
    CHECK_OK(lm_sampler_init(a, &p, 2));
    CHECK(lm_sample(a, pos, hist, 1, NULL) == 1); /* 1.2 / 1.5 < 1.0 */
    lm_sampler_free(a);
    /* Bad parameters name the field. */
    p = lm_sample_defaults();
    p.top_p = 0;
    CHECK(lm_sampler_init(a, &p, 4) == LM_ERR_ARG && strstr(lm_last_error(), "top_p"));
    p.top_p = 1, p.temperature = -1;
    CHECK(lm_sampler_init(a, &p, 4) == LM_ERR_ARG && strstr(lm_last_error(), "temperature"));
    /* The same rules without a sampler, for checking options up front;
     * NaN fails every range (it used to pass `temperature < 0`). */
    const char *rule = NULL;
    p = lm_sample_defaults();
    CHECK(lm_sample_params_check(&p, &rule) == LM_SAMPLE_VALID);
    p.temperature = NAN;
    CHECK(lm_sample_params_check(&p, &rule) == LM_SAMPLE_TEMPERATURE);
    CHECK(lm_sampler_init(a, &p, 4) == LM_ERR_ARG);
    p = lm_sample_defaults(), p.top_p = 1.5f;
    CHECK(lm_sample_params_check(&p, &rule) == LM_SAMPLE_TOP_P && !strcmp(rule, "in (0, 1]"));
    p = lm_sample_defaults(), p.top_k = -1;
    CHECK(lm_sample_params_check(&p, NULL) == LM_SAMPLE_TOP_K);
    CHECK(lm_sampler_init(a, &p, 4) == LM_ERR_ARG && strstr(lm_last_error(), "top_k -1 must be >= 0"));
    p = lm_sample_defaults(), p.min_p = 1;
    CHECK(lm_sample_params_check(&p, NULL) == LM_SAMPLE_MIN_P);
    p = lm_sample_defaults(), p.repetition_penalty = 0;
    CHECK(lm_sample_params_check(&p, &rule) == LM_SAMPLE_REPETITION_PENALTY);
    CHECK(lm_sampler_init(a, &p, 4) == LM_ERR_ARG && strstr(lm_last_error(), "repetition_penalty 0 must be > 0"));
    p = lm_sample_defaults(), p.frequency_penalty = INFINITY;
    CHECK(lm_sample_params_check(&p, NULL) == LM_SAMPLE_FREQUENCY_PENALTY);
    p = lm_sample_defaults(), p.penalty_last_n = -2;
    CHECK(lm_sample_params_check(&p, NULL) == LM_SAMPLE_PENALTY_LAST_N);
    TEST_MAIN_END();
}

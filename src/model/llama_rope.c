/* RoPE frequencies of a LLaMA-family model, incl. LLaMA 3.1 scaling. One
 * place computes them so the engine and the GGUF writer (which stores
 * llama3 scaling as per-frequency divisors, as llama.cpp does) agree. */
#include <math.h>

#include "lmkit/llama.h"

/* The divisor llama3 scaling applies to frequency j (1: unchanged). */
static float llama3_divisor(const lm_llama_config *c, float f) {
    float lo_wl = c->rope_orig_ctx / c->rope_low_freq_factor, hi_wl = c->rope_orig_ctx / c->rope_high_freq_factor;
    float wl = 2.f * (float)M_PI / f;
    if (wl < hi_wl) return 1.f;
    if (wl > lo_wl) return c->rope_factor;
    float sm = (c->rope_orig_ctx / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
    return 1.f / ((1 - sm) / c->rope_factor + sm);
}

static float base_freq(const lm_llama_config *c, int j) {
    /* Written as llama2.c does (float pow of i/head_dim) so greedy output
     * matches it token for token; transformers computes the same in fp32. */
    return 1.0f / powf(c->rope_theta, (float)(2 * j) / (float)c->head_dim);
}

void lm_llama_rope_freq_factors(const lm_llama_config *c, float *ff) {
    for (int j = 0; j < c->head_dim / 2; j++) ff[j] = c->rope_factor > 0 ? llama3_divisor(c, base_freq(c, j)) : 1.f;
}

void lm_llama_rope_inv_freq(const lm_llama_model *m, float *inv) {
    const lm_llama_config *c = &m->cfg;
    for (int j = 0; j < c->head_dim / 2; j++) {
        float f = base_freq(c, j);
        if (c->rope_factor > 0) {
            /* As transformers writes it: (1-s)*f/factor + s*f in the band. */
            float lo_wl = c->rope_orig_ctx / c->rope_low_freq_factor, hi_wl = c->rope_orig_ctx / c->rope_high_freq_factor;
            float wl = 2.f * (float)M_PI / f;
            if (wl > lo_wl) f /= c->rope_factor;
            else if (wl >= hi_wl) {
                float sm = (c->rope_orig_ctx / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - sm) * f / c->rope_factor + sm * f;
            }
        }
        if (m->rope_freq_factors) f /= m->rope_freq_factors[j];
        inv[j] = f;
    }
}

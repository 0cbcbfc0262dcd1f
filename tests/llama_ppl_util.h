/* Helpers shared by the quantization perplexity tests (test_llama_ppl.c,
 * test_llama_ppl_q4k.c): score a model, and score it again after a round
 * trip through a GGUF of another type, counting what each matrix became. */
#ifndef LMKIT_TEST_LLAMA_PPL_UTIL_H
#define LMKIT_TEST_LLAMA_PPL_UTIL_H

#include <stdlib.h>
#include <unistd.h>

#include "lmkit/eval.h"
#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"
#include "test.h"

static inline lm_perplexity_result lp_run(const lm_llama_model *m, const int32_t *ids, long n, int stride) {
    lm_engine *e;
    lm_perplexity_result r = {0};
    CHECK_OK(lm_engine_new(m, NULL, &e));
    CHECK_OK(lm_engine_perplexity(e, ids, n, stride, &r));
    lm_engine_free(e);
    CHECK(r.tokens == n - 1);
    return r;
}

static inline double lp_ppl(lm_perplexity_result r) { return exp(r.nll_sum / (double)r.tokens); }

/* Saves m as `type` with v's vocabulary, reloads it and returns its
 * perplexity; counts[t] gets how many reloaded matrices are of type t:
 * the embedding, the output when untied, 7 per layer. */
static inline double lp_quantized(const lm_llama_model *m, const lm_llama2c_vocab *v, lm_qtype type, const int32_t *ids, long n,
                                  int stride, int counts[64]) {
    char tmp[] = "/tmp/lmkit_ppl_XXXXXX";
    int fd = mkstemp(tmp);
    close(fd);
    CHECK_OK(lm_llama_save_gguf(m, tmp, (int)type, v->pieces, v->scores, v->n));
    lm_llama_model q;
    double p = NAN;
    memset(counts, 0, sizeof(int) * 64);
    if (lm_llama_load(tmp, &q) == LM_OK) {
        counts[q.tok_emb.type & 63]++;
        if (q.output.data != q.tok_emb.data) counts[q.output.type & 63]++;
        for (int l = 0; l < q.cfg.n_layers; l++) {
            const lm_llama_layer *ly = &q.layers[l];
            const lm_weight *w[7] = {&ly->wq, &ly->wk, &ly->wv, &ly->wo, &ly->w_gate, &ly->w_up, &ly->w_down};
            for (int i = 0; i < 7; i++) counts[w[i]->type & 63]++;
        }
        p = lp_ppl(lp_run(&q, ids, n, stride));
        lm_llama_free(&q);
    } else {
        CHECK_MSG(0, "%s", lm_last_error());
    }
    unlink(tmp);
    return p;
}

#endif

/* GPT-2 parity with PyTorch/transformers (goldens from ref/gpt2_golden.py):
 * logits and loss (rel err <= 1e-4), every parameter gradient (<= 1e-3),
 * parameters after 3 AdamW steps with warmup/cosine LR and clipping
 * (<= 1e-3), and greedy KV-cache generation token-identical. */
#include "lmkit/model.h"
#include "lmkit/safetensors.h"
#include "lmkit/train.h"
#include "lmkit/eval.h"
#include "test.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *tensor_f32(const lm_safetensors *st, const char *name, int64_t *n) {
    const lm_st_tensor *t = lm_safetensors_find(st, name);
    if (!t) {
        fprintf(stderr, "golden tensor %s missing\n", name);
        return NULL;
    }
    float *buf = malloc((size_t)t->numel * sizeof(float));
    if (lm_st_tensor_to_f32(t, buf, t->numel) != LM_OK) {
        free(buf);
        return NULL;
    }
    *n = t->numel;
    return buf;
}

/* Largest relative error over all parameters, each compared as a vector
 * (||a - b|| / ||b||), with the worst tensor's name reported. */
static double compare_params(const lm_param_table *tab, const float *mine, const lm_safetensors *gold, const char *prefix,
                             char *worst_name) {
    double worst = 0;
    for (int i = 0; i < tab->n; i++) {
        char name[160];
        snprintf(name, sizeof name, "%s%s", prefix, tab->params[i].name);
        int64_t n = 0;
        float *ref = tensor_f32(gold, name, &n);
        if (!ref || (size_t)n != tab->params[i].numel) {
            free(ref);
            strcpy(worst_name, name);
            return INFINITY;
        }
        const float *got = mine + tab->params[i].offset;
        double e;
        const char *suffix = "attn.c_attn.bias";
        size_t len = strlen(name), sl = strlen(suffix);
        if (!strcmp(prefix, "step3.") && len > sl && !strcmp(name + len - sl, suffix)) {
            /* The key bias has an exactly-zero true gradient (softmax ignores
             * a constant added to every score), so both frameworks feed Adam
             * float noise (~1e-9) and its normalised step goes in an arbitrary
             * direction. Compare q and v biases as usual; the k bias can only
             * have moved by at most the summed learning rates (0.025). */
            size_t C = (size_t)n / 3;
            double eq = test_rel_l2(got, ref, C), ev = test_rel_l2(got + 2 * C, ref + 2 * C, C), ek = 0;
            for (size_t j = C; j < 2 * C; j++) ek = fmax(ek, fabs((double)got[j] - ref[j]));
            e = fmax(eq, ev);
            if (ek > 2 * 0.025) e = INFINITY;
        } else {
            e = test_rel_l2(got, ref, (size_t)n);
        }
        if (!(e <= worst)) {
            worst = e;
            strcpy(worst_name, name);
        }
        free(ref);
    }
    return worst;
}

/* Loss, gradients, accumulation and 3 AdamW steps against the goldens,
 * with the batch split into `parts` data-parallel slices (1: none). */
static void check_training(const lm_safetensors *gold, int parts) {
    lm_gpt2 *m = NULL;
    CHECK_OK(lm_gpt2_open_dir(test_src_path("tests/golden/gpt2_tiny/model"), 1, &m));
    if (!m) return;
    CHECK_OK(lm_gpt2_set_data_parallel(m, parts));
    const lm_st_tensor *ids_t = lm_safetensors_find(gold, "input_ids"), *tg_t = lm_safetensors_find(gold, "targets");
    int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1];
    const int32_t *ids = ids_t->data, *targets = tg_t->data;
    int64_t n = 0;
    double e;
    /* loss and gradients; first without gradients (evaluation: the layers
     * share their activation buffers), which must give the same loss bit
     * for bit and leave nothing for a backward */
    float loss = 0, loss_eval = -1;
    lm_gpt2_set_grad_enabled(m, 0);
    CHECK_OK(lm_gpt2_forward(m, ids, targets, B, T, &loss_eval));
    CHECK(lm_gpt2_backward(m, 1.0f) == LM_ERR_ARG);
    lm_gpt2_set_grad_enabled(m, 1);
    CHECK_OK(lm_gpt2_forward(m, ids, targets, B, T, &loss));
    CHECK_MSG(loss_eval == loss, "parts %d: loss without gradients %.9g vs %.9g", parts, loss_eval, loss);
    float *ref_loss = tensor_f32(gold, "loss", &n);
    CHECK_MSG(fabs(loss - ref_loss[0]) <= 1e-4 * fabs(ref_loss[0]), "parts %d: loss %g vs %g", parts, loss, ref_loss[0]);
    lm_gpt2_zero_grad(m);
    CHECK_OK(lm_gpt2_backward(m, 1.0f));
    char worst[160] = "";
    e = compare_params(lm_gpt2_params(m), lm_gpt2_grad_data(m), gold, "grad.", worst);
    CHECK_MSG(e <= 1e-3, "parts %d: gradient rel err %g (worst: %s)", parts, e, worst);

    /* A second backward without zero_grad accumulates: exactly twice the
     * gradient (up to the rounding of wte's two contributions). The first
     * backward after zero_grad overwrites instead (the steps below rely on it). */
    {
        const lm_param_table *t = lm_gpt2_params(m);
        float *g1 = malloc(t->total * sizeof(float));
        memcpy(g1, lm_gpt2_grad_data(m), t->total * sizeof(float));
        CHECK_OK(lm_gpt2_forward(m, ids, targets, B, T, &loss));
        CHECK_OK(lm_gpt2_backward(m, 1.0f));
        const float *g2 = lm_gpt2_grad_data(m);
        /* per tensor, against its largest entry: bias gradients are sums
         * that cancel, and the second backward adds its rows one by one */
        double worst2 = 0;
        for (int q = 0; q < t->n; q++) {
            const lm_param *p = &t->params[q];
            double err = 0, top = 0;
            for (size_t i = p->offset; i < p->offset + p->numel; i++) {
                err = fmax(err, fabs((double)g2[i] - 2.0 * g1[i]));
                top = fmax(top, fabs(2.0 * g1[i]));
            }
            worst2 = fmax(worst2, err / (top + 1e-30));
        }
        CHECK_MSG(worst2 <= 1e-5, "parts %d: accumulated gradient vs twice one backward: rel err %g", parts, worst2);
        /* Accumulated, the GEMMs' norm share is void: nothing covered. */
        uint8_t *cov = malloc((size_t)t->n);
        CHECK(lm_gpt2_fused_sum_squares(m, cov) == 0.0 && memchr(cov, 1, (size_t)t->n) == NULL);
        free(cov);
        free(g1);
    }

    /* 3 AdamW steps on the same batch: lr 1e-2 -> 1e-3, warmup 2, total 3,
     * betas (0.9, 0.95), eps 1e-8, wd 0.1 on matrices, clip 1.0 */
    lm_lr_schedule sched = {1e-2f, 1e-3f, 2, 3};
    const lm_param_table *tab = lm_gpt2_params(m);
    lm_adamw opt;
    CHECK_OK(lm_adamw_init(&opt, tab->total, 0.9f, 0.95f, 1e-8f, 0.1f));
    float ref_lrs[3] = {0.005f, 0.01f, 0.01f};
    for (int s = 0; s < 3; s++) {
        CHECK_OK(lm_gpt2_forward(m, ids, targets, B, T, &loss));
        lm_gpt2_zero_grad(m);
        CHECK_OK(lm_gpt2_backward(m, 1.0f));
        float clip_scale; /* the trainer's path: the clip factor is applied inside AdamW */
        double norm = lm_grad_norm_clip_scale(lm_gpt2_grad_data(m), tab->total, 1.0f, &clip_scale);
        CHECK_MSG(norm > 1.0, "step %d grad norm %g should trigger clipping", s, norm);
        /* The trainer's norm: the weight GEMMs' share plus a pass over the
         * rest (1e-6: their tiles sum in fp32). */
        uint8_t *cov = malloc((size_t)tab->n);
        double fused = lm_gpt2_fused_sum_squares(m, cov);
        double fused_norm = sqrt(fused + lm_grad_sum_squares(tab, lm_gpt2_grad_data(m), NULL, cov));
        CHECK_MSG(fused > 0 && fabs(fused_norm - norm) <= 1e-6 * norm, "parts %d, step %d: fused norm %.10g vs %.10g", parts, s, fused_norm, norm);
        free(cov);
        float lr = lm_lr_at(&sched, s);
        CHECK_MSG(fabsf(lr - ref_lrs[s]) < 1e-9f, "lr(%d) = %g", s, lr);
        lm_adamw_step_scaled(&opt, tab, lm_gpt2_param_data(m), lm_gpt2_grad_data(m), lr, clip_scale);
    }
    e = compare_params(tab, lm_gpt2_param_data(m), gold, "step3.", worst);
    CHECK_MSG(e <= 1e-3, "parts %d: params after 3 steps rel err %g (worst: %s)", parts, e, worst);
    lm_adamw_free(&opt);
    free(ref_loss);
    lm_gpt2_free(m);

}

/* `eval --perplexity`'s windows against the transformers perplexity
 * guide's loop run by ref/perplexity_golden.py (per-token sums): scored
 * tokens and windows exactly, the summed NLL within 1e-5 relative. */
static void check_perplexity(lm_gpt2 *m) {
    json_t *g = json_load_file(test_src_path("tests/golden/gpt2_tiny/perplexity.json"), 0, NULL);
    CHECK(g != NULL);
    if (!g) return;
    json_t *jids = json_object_get(g, "ids"), *strides = json_object_get(g, "strides");
    long n = (long)json_array_size(jids);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    for (long i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, (size_t)i));
    const char *key;
    json_t *want;
    json_object_foreach(strides, key, want) {
        lm_perplexity_result r;
        CHECK_OK(lm_gpt2_perplexity(m, ids, n, atoi(key), &r));
        double nll = json_number_value(json_object_get(want, "nll_sum"));
        long tokens = (long)json_integer_value(json_object_get(want, "tokens"));
        long windows = (long)json_integer_value(json_object_get(want, "windows"));
        CHECK_MSG(r.tokens == tokens && r.windows == windows, "stride %s: %ld tokens in %ld windows, guide %ld in %ld", key,
                  (long)r.tokens, (long)r.windows, tokens, windows);
        CHECK_MSG(fabs(r.nll_sum - nll) <= 1e-5 * fabs(nll), "stride %s: nll %.6f, guide %.6f", key, r.nll_sum, nll);
    }
    free(ids);
    json_decref(g);
}

int main(void) {
    lm_set_threads(2);
    lm_gpt2 *m = NULL;
    CHECK_OK(lm_gpt2_open_dir(test_src_path("tests/golden/gpt2_tiny/model"), 1, &m));
    if (!m) TEST_MAIN_END();
    lm_safetensors gold;
    CHECK_OK(lm_safetensors_open(test_src_path("tests/golden/gpt2_tiny/golden.safetensors"), &gold));
    const lm_st_tensor *ids_t = lm_safetensors_find(&gold, "input_ids"), *tg_t = lm_safetensors_find(&gold, "targets");
    CHECK(ids_t && tg_t && ids_t->dtype == LM_DTYPE_I32 && ids_t->ndim == 2);
    int B = (int)ids_t->shape[0], T = (int)ids_t->shape[1];
    const int32_t *ids = ids_t->data;
    int V = lm_gpt2_config(m)->vocab_size;

    /* logits without targets */
    CHECK_OK(lm_gpt2_forward(m, ids, NULL, B, T, NULL));
    int64_t n = 0;
    float *ref_logits = tensor_f32(&gold, "logits", &n);
    CHECK(n == (int64_t)B * T * V);
    double e = test_max_rel_err(lm_gpt2_logits(m), ref_logits, (size_t)n, 1.0);
    CHECK_MSG(e <= 1e-4, "logits rel err %g", e);
    free(ref_logits);

    lm_gpt2_free(m);
    m = NULL;

    /* whole batch, then split among threads unevenly (1 + 2 rows) and one row each */
    for (int parts = 1; parts <= 3; parts++) check_training(&gold, parts);
    lm_safetensors_close(&gold);

    /* greedy generation through the KV cache equals transformers' generate */
    CHECK_OK(lm_gpt2_open_dir(test_src_path("tests/golden/gpt2_tiny/model"), 0, &m));
    if (m) check_perplexity(m);
    json_t *gen = json_load_file(test_src_path("tests/golden/gpt2_tiny/generate.json"), 0, NULL);
    CHECK(gen != NULL);
    if (m && gen) {
        json_t *prompt = json_object_get(gen, "prompt"), *want = json_object_get(gen, "new_tokens");
        int np = (int)json_array_size(prompt), nw = (int)json_array_size(want);
        int32_t toks[64];
        for (int i = 0; i < np; i++) toks[i] = (int32_t)json_integer_value(json_array_get(prompt, (size_t)i));
        lm_gpt2_cache *cache = NULL;
        CHECK_OK(lm_gpt2_cache_create(m, &cache));
        float *logits = malloc((size_t)V * sizeof(float));
        CHECK_OK(lm_gpt2_decode(m, cache, toks, np, 0, logits));
        int match = 1;
        for (int i = 0; i < nw; i++) {
            int best = 0;
            for (int v = 1; v < V; v++)
                if (logits[v] > logits[best]) best = v;
            match &= best == json_integer_value(json_array_get(want, (size_t)i));
            toks[np + i] = best;
            if (i + 1 < nw) CHECK_OK(lm_gpt2_decode(m, cache, &toks[np + i], 1, np + i, logits));
        }
        CHECK_MSG(match, "greedy KV-cache generation differs from transformers");
        /* past the context: a clear range error, not a crash */
        CHECK(lm_gpt2_decode(m, cache, toks, 1, lm_gpt2_config(m)->n_ctx, logits) == LM_ERR_RANGE);
        free(logits);
        lm_gpt2_cache_free(cache);
    }
    json_decref(gen);
    lm_gpt2_free(m);
    TEST_MAIN_END();
}

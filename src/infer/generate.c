/* The generation loop, shared by every causal LM: prefill the prompt in
 * one batched call, then sample and feed one token at a time. */
#include "lmkit/generate.h"

#include "lmkit/engine.h"

#include <stdlib.h>
#include <string.h>

lm_status lm_generate(const lm_decoder *d, const lm_tokenizer *tok, const int32_t *prompt_ids, int n_prompt,
                      const lm_generate_params *gp, lm_text_callback cb, void *user, lm_generate_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (n_prompt < 1) return lm_error(LM_ERR_ARG, "generate: empty prompt");
    if (n_prompt > d->n_ctx)
        return lm_error(LM_ERR_RANGE, "generate: prompt is %d tokens, longer than the model's context of %d", n_prompt, d->n_ctx);
    /* Rows of the model past the tokenizer's vocabulary (a vocab_size
     * padded up, or a smaller tokenizer) stand for no text: only ids the
     * tokenizer can decode are drawn. */
    int n_valid = tok && lm_tokenizer_vocab_size(tok) < d->vocab_size ? lm_tokenizer_vocab_size(tok) : d->vocab_size;
    lm_sampler sampler;
    LM_TRY(lm_sampler_init(&sampler, &gp->sample, n_valid));
    lm_status s = LM_OK;
    int max_new = gp->max_tokens > 0 ? gp->max_tokens : 0;
    int32_t *hist = malloc((size_t)(n_prompt + max_new + 1) * sizeof *hist);
    float *logits = malloc((size_t)d->vocab_size * sizeof *logits);
    if (!hist || !logits) s = lm_error(LM_ERR_NOMEM, "out of memory");
    lm_streamer st;
    lm_streamer_init(&st, gp->stops, gp->n_stops);
    int n = n_prompt, cached = n_prompt; /* tokens in history / in the KV cache */
    stats->prompt_tokens = n_prompt;
    stats->finish = "length";
    if (s == LM_OK) {
        memcpy(hist, prompt_ids, (size_t)n_prompt * sizeof *hist);
        double t0 = lm_now_seconds();
        s = d->feed(d->ctx, hist, n_prompt, 0, logits);
        stats->prefill_s = lm_now_seconds() - t0;
    }
    /* Reported log-probabilities are the model's own: taken from a copy of
     * the logits, which the sampler's penalties change in place. */
    const lm_token_report *rep = gp->report && gp->report->fn ? gp->report : NULL;
    int want_top = rep ? (rep->top_logprobs < 0 ? 0 : rep->top_logprobs > 20 ? 20 : rep->top_logprobs) : 0;
    int32_t top_ids[20];
    float top_lp[20];
    float *raw = rep ? malloc((size_t)n_valid * sizeof *raw) : NULL;
    if (rep && !raw && s == LM_OK) s = lm_error(LM_ERR_NOMEM, "out of memory");
    double t_dec = lm_now_seconds();
    while (s == LM_OK && stats->generated_tokens < max_new) {
        if (rep) memcpy(raw, logits, (size_t)n_valid * sizeof *raw);
        int32_t next = lm_sample(&sampler, logits, hist, n, NULL);
        if (rep) {
            int n_top = want_top ? lm_top_logprobs(raw, n_valid, want_top, top_ids, top_lp) : 0;
            rep->fn(next, lm_logprob_of(raw, n_valid, next), top_ids, top_lp, n_top, rep->user);
        }
        if (next == d->eos_id) {
            stats->finish = "eos";
            break;
        }
        hist[n++] = next;
        stats->generated_tokens++;
        const char *bytes = NULL;
        size_t nb = 0, ready = 0;
        /* A text that starts right after a lone BOS drops SentencePiece's
         * leading space, as llama2.c prints it. */
        int first = n_prompt == 1 && stats->generated_tokens == 1 && lm_tokenizer_is_special(tok, hist[0]);
        s = lm_tokenizer_decode_piece(tok, next, first, &bytes, &nb);
        if (s == LM_OK) s = lm_streamer_push(&st, bytes, nb, &ready);
        int user_stop = 0;
        if (s == LM_OK && ready) {
            user_stop = cb && cb(st.buf, ready, user);
            lm_streamer_consume(&st, ready);
        }
        if (st.stopped || user_stop) {
            stats->finish = "stop";
            break;
        }
        if (s != LM_OK || stats->generated_tokens >= max_new) break;
        if (cached >= d->n_ctx) {
            if (!gp->context_shift || d->n_ctx < 2) {
                stats->finish = "context";
                break;
            }
            /* Keep the newest half and recompute it from position 0: the
             * model sees a shorter but still recent context. */
            int keep = d->n_ctx / 2;
            s = d->feed(d->ctx, hist + n - keep, keep, 0, logits);
            cached = keep;
            stats->shifts++;
            continue;
        }
        s = d->feed(d->ctx, &hist[n - 1], 1, cached, logits);
        cached++;
    }
    stats->decode_s = lm_now_seconds() - t_dec;
    if (s == LM_OK && !st.stopped && strcmp(stats->finish, "stop") != 0) {
        size_t rest = lm_streamer_flush(&st);
        if (rest && cb) cb(st.buf, rest, user);
    }
    lm_streamer_free(&st);
    free(hist);
    free(logits);
    free(raw);
    lm_sampler_free(&sampler);
    return s;
}

/* ---- GPT-2 adapter ---- */
typedef struct {
    lm_gpt2 *m;
    lm_gpt2_cache *cache;
} lm_gpt2_decoder_ctx;

static lm_status lm_gpt2_feed(void *ctx, const int32_t *ids, int n, int pos, float *logits) {
    lm_gpt2_decoder_ctx *c = ctx;
    return lm_gpt2_decode(c->m, c->cache, ids, n, pos, logits);
}

lm_status lm_decoder_gpt2(lm_gpt2 *m, lm_decoder *d) {
    memset(d, 0, sizeof *d);
    lm_gpt2_decoder_ctx *c = calloc(1, sizeof *c);
    if (!c) return lm_error(LM_ERR_NOMEM, "out of memory");
    c->m = m;
    lm_status s = lm_gpt2_cache_create(m, &c->cache);
    if (s != LM_OK) {
        free(c);
        return s;
    }
    d->ctx = c;
    d->vocab_size = lm_gpt2_config(m)->vocab_size;
    d->n_ctx = lm_gpt2_config(m)->n_ctx;
    d->eos_id = -1;
    d->feed = lm_gpt2_feed;
    return LM_OK;
}

void lm_decoder_gpt2_free(lm_decoder *d) {
    lm_gpt2_decoder_ctx *c = d->ctx;
    if (c) lm_gpt2_cache_free(c->cache);
    free(c);
    d->ctx = NULL;
}

/* ---- LLaMA-family adapter: sequence 0 of an engine ---- */
static lm_status lm_engine_feed(void *ctx, const int32_t *ids, int n, int pos, float *logits) {
    lm_engine *e = ctx;
    if (pos == 0) lm_engine_reset(e, 0);
    if (pos != lm_engine_seq_len(e, 0))
        return lm_error(LM_ERR_ARG, "generate: position %d does not follow the cached %d tokens", pos, lm_engine_seq_len(e, 0));
    return lm_engine_forward(e, n, ids, NULL, NULL, logits);
}

lm_status lm_decoder_engine(lm_engine *e, int vocab_size, int n_ctx, lm_decoder *d) {
    memset(d, 0, sizeof *d);
    d->ctx = e;
    d->vocab_size = vocab_size;
    d->n_ctx = n_ctx;
    d->eos_id = -1;
    d->feed = lm_engine_feed;
    return LM_OK;
}

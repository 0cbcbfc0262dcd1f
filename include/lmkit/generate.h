/* Text generation helpers shared by `generate`, `chat` and the server:
 * a streamer that turns token bytes into printable text, holding back
 * incomplete UTF-8 characters and anything that might be the start of a
 * stop string, and the GPT-2 generation loop. */
#ifndef LMKIT_GENERATE_H
#define LMKIT_GENERATE_H

#include "lmkit/model.h"
#include "lmkit/sample.h"
#include "lmkit/tokenizer.h"

typedef struct {
    char *buf; /* bytes produced and not yet emitted */
    size_t len, cap;
    const char *const *stops;
    int n_stops;
    size_t max_stop;
    int stopped;
} lm_streamer;

void lm_streamer_init(lm_streamer *s, const char *const *stops, int n_stops);
void lm_streamer_free(lm_streamer *s);
/* Adds a token's bytes. Returns how many bytes at s->buf are safe to emit
 * now (the caller emits them, then calls lm_streamer_consume). Sets
 * s->stopped when a stop string appeared; the returned count then ends
 * right before it and everything after is dropped. */
lm_status lm_streamer_push(lm_streamer *s, const char *bytes, size_t n, size_t *ready);
void lm_streamer_consume(lm_streamer *s, size_t n);
/* At the end: everything left (complete or not) becomes ready. */
size_t lm_streamer_flush(lm_streamer *s);

typedef struct {
    int max_tokens;
    lm_sample_params sample;
    const char *const *stops;
    int n_stops;
    /* When the context fills: nonzero keeps the last half of the tokens,
     * recomputes them from position 0 and goes on (context shifting);
     * zero stops with finish "context". */
    int context_shift;
    /* Called once per generated token when set (see lm_token_callback),
     * with the top_logprobs (0-20) most likely tokens besides it. */
    struct lm_token_report *report;
} lm_generate_params;

/* Called with each chunk of text ready to show. Return nonzero to stop. */
typedef int (*lm_text_callback)(const char *text, size_t n, void *user);

/* Per generated token: its id and log-probability, and the n_top most
 * likely ids with theirs (most likely first). The log-probabilities are
 * the model's own (log-softmax of its logits, before penalties,
 * temperature and truncation), as an API's logprobs report them. */
typedef void (*lm_token_callback)(int32_t id, float logprob, const int32_t *top_ids, const float *top_logprobs, int n_top,
                                  void *user);
typedef struct lm_token_report {
    lm_token_callback fn;
    void *user;
    int top_logprobs;
} lm_token_report;

typedef struct {
    int prompt_tokens, generated_tokens;
    double prefill_s, decode_s;
    const char *finish; /* "stop", "length", "eos" or "context" */
    int shifts;         /* context shifts performed */
} lm_generate_stats;

/* Any causal LM with a KV cache, seen by the generation loop: `feed` runs
 * n tokens at positions [pos, pos+n) of one sequence and writes the last
 * one's logits (vocab floats). */
typedef struct {
    void *ctx;
    int vocab_size, n_ctx;
    int32_t eos_id; /* -1: none */
    lm_status (*feed)(void *ctx, const int32_t *ids, int n, int pos, float *logits);
} lm_decoder;

/* Adapters. The GPT-2 one owns a KV cache: release with lm_decoder_gpt2_free. */
lm_status lm_decoder_gpt2(lm_gpt2 *m, lm_decoder *d);
void lm_decoder_gpt2_free(lm_decoder *d);
/* LLaMA-family models run through an engine's sequence 0 (borrowed). */
struct lm_engine;
lm_status lm_decoder_engine(struct lm_engine *e, int vocab_size, int n_ctx, lm_decoder *d);

/* Generates a continuation of prompt_ids, streaming text through cb.
 * Stops at EOS, a stop string, max_tokens or the context end. */
lm_status lm_generate(const lm_decoder *d, const lm_tokenizer *tok, const int32_t *prompt_ids, int n_prompt,
                      const lm_generate_params *gp, lm_text_callback cb, void *user, lm_generate_stats *stats);

#endif

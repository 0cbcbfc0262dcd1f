/* lmkit generate: stream a continuation of a prompt. */
#include "args.h"
#include "cli.h"

#include "lmkit/causal_lm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int lm_print_chunk(const char *text, size_t n, void *user) {
    (void)user;
    fwrite(text, 1, n, stdout);
    fflush(stdout);
    return 0;
}

/* --logprobs: one JSON line per generated token on stderr, the token and
 * its log-probability, then the most likely tokens with theirs. */
static json_t *lm_token_json(const lm_tokenizer *tok, int32_t id, float lp) {
    const char *text = lm_tokenizer_id_to_token(tok, id);
    return json_pack("{s:i, s:o, s:f}", "id", (json_int_t)id, "token", text ? json_stringn_nocheck(text, strlen(text)) : json_null(),
                     "logprob", (double)lp);
}

static void lm_print_logprobs(int32_t id, float lp, const int32_t *top_ids, const float *top_lp, int n_top, void *user) {
    const lm_tokenizer *tok = user;
    json_t *j = lm_token_json(tok, id, lp), *top = json_array();
    for (int i = 0; i < n_top; i++) json_array_append_new(top, lm_token_json(tok, top_ids[i], top_lp[i]));
    json_object_set_new(j, "top", top);
    char *line = json_dumps(j, JSON_COMPACT);
    if (line) fprintf(stderr, "%s\n", line);
    free(line);
    json_decref(j);
}

int lm_cli_check_sampling(const char *cmd, const lm_sample_params *sp) {
    const char *rule;
    switch (lm_sample_params_check(sp, &rule)) {
    case LM_SAMPLE_VALID: return 0;
    case LM_SAMPLE_TEMPERATURE: return lm_fail("%s: --temperature %g must be %s", cmd, (double)sp->temperature, rule);
    case LM_SAMPLE_TOP_K: return lm_fail("%s: --top-k %d must be %s", cmd, sp->top_k, rule);
    case LM_SAMPLE_TOP_P: return lm_fail("%s: --top-p %g must be %s", cmd, (double)sp->top_p, rule);
    case LM_SAMPLE_MIN_P: return lm_fail("%s: --min-p %g must be %s", cmd, (double)sp->min_p, rule);
    case LM_SAMPLE_REPETITION_PENALTY: return lm_fail("%s: --repeat-penalty %g must be %s", cmd, (double)sp->repetition_penalty, rule);
    case LM_SAMPLE_FREQUENCY_PENALTY:
        return lm_fail("%s: --frequency-penalty %g must be %s", cmd, (double)sp->frequency_penalty, rule);
    case LM_SAMPLE_PRESENCE_PENALTY: return lm_fail("%s: --presence-penalty %g must be %s", cmd, (double)sp->presence_penalty, rule);
    case LM_SAMPLE_PENALTY_LAST_N: return lm_fail("%s: penalty window %d must be %s", cmd, sp->penalty_last_n, rule);
    }
    return 0;
}

int lm_cli_utf8_locate(const char *text, size_t len, size_t *offset, size_t *line, size_t *col) {
    const uint8_t *s = (const uint8_t *)text;
    *line = *col = 1;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = lm_utf8_decode(s + i, len - i, &c);
        if (!k) return *offset = i, 1;
        if (c == '\n') ++*line, *col = 1;
        else ++*col;
        i += (size_t)k;
    }
    return 0;
}

/* Whitespace a tokenizer may legitimately drop: a pre-tokenizer that
 * splits on it (BERT style) keeps it only as a word boundary. */
static int lm_is_ascii_space(uint32_t c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Each distinct character is encoded alone once: one that gives no token
 * at all is what the tokenizer drops inside a text too (unknown
 * characters of a vocabulary without <unk> or byte fallback). Byte-level
 * and byte-fallback vocabularies encode everything and pass. */
int lm_cli_find_unencodable(const lm_tokenizer *tok, const char *text, size_t len, char *msg, size_t cap) {
    const uint32_t invalid = 0x110000; /* stands for any invalid byte: all read as U+FFFD */
    unsigned char *seen = calloc((invalid + 1) / 8 + 1, 1);
    if (!seen) return snprintf(msg, cap, "out of memory"), -1;
    const unsigned char *s = (const unsigned char *)text;
    size_t line = 1, col = 1;
    int found = 0;
    for (size_t i = 0; i < len && !found;) {
        uint32_t c;
        size_t k = (size_t)lm_utf8_decode(s + i, len - i, &c);
        if (k == 0) c = invalid, k = 1;
        if (!(seen[c / 8] & (1u << (c % 8))) && !lm_is_ascii_space(c)) {
            seen[c / 8] |= (unsigned char)(1u << (c % 8));
            int32_t *ids = NULL;
            size_t n = 0;
            if (lm_tokenizer_encode(tok, text + i, k, 0, &ids, &n) != LM_OK)
                found = -1, snprintf(msg, cap, "%s", lm_last_error());
            else if (n == 0 && c == invalid)
                found = 1, snprintf(msg, cap, "line %zu, column %zu: invalid UTF-8 byte 0x%02X (read as U+FFFD, which is not in the "
                                              "model's vocabulary)", line, col, s[i]);
            else if (n == 0 && (c < 0x20 || (c >= 0x7F && c < 0xA0)))
                found = 1, snprintf(msg, cap, "line %zu, column %zu: control character U+%04X is not in the model's vocabulary", line,
                                    col, (unsigned)c);
            else if (n == 0)
                found = 1, snprintf(msg, cap, "line %zu, column %zu: character '%.*s' (U+%04X) is not in the model's vocabulary", line,
                                    col, (int)k, text + i, (unsigned)c);
            free(ids);
        }
        if (c == '\n') line++, col = 1;
        else col++;
        i += k;
    }
    free(seen);
    return found;
}

int lm_cli_check_encodable(const char *cmd, const char *source, const lm_tokenizer *tok, const char *text, size_t len) {
    char msg[256];
    return lm_cli_find_unencodable(tok, text, len, msg, sizeof msg) ? lm_fail("%s: %s: %s", cmd, source, msg) : 0;
}

int lm_cmd_generate(int argc, char **argv) {
    const char *model_dir = NULL, *prompt = NULL, *tok_spec = NULL;
    int max_tokens = 256, threads = 0, show_stats = 0, no_shift = 0, logprobs = -1;
    long seed = 0;
    lm_strs stops = {0};
    lm_sample_params sp = lm_sample_defaults();
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model_dir, "GPT-2 or LLaMA-family (LLaMA, Mistral, Qwen2) HF dir, .gguf, or llama2.c .bin"},
        {"--prompt", LM_ARG_STR, &prompt, "text to continue"},
        {"--tokenizer", LM_ARG_STR, &tok_spec, "tokenizer to use instead of the model's own"},
        {"--max-tokens", LM_ARG_INT, &max_tokens, "tokens to generate at most (256)"},
        {"--temperature", LM_ARG_FLOAT, &sp.temperature, "sampling temperature, 0 = greedy (1.0)"},
        {"--top-k", LM_ARG_INT, &sp.top_k, "sample from the k most likely tokens, 0 = off"},
        {"--top-p", LM_ARG_FLOAT, &sp.top_p, "nucleus sampling mass, 1 = off"},
        {"--min-p", LM_ARG_FLOAT, &sp.min_p, "drop tokens below min-p times the top probability, 0 = off"},
        {"--repeat-penalty", LM_ARG_FLOAT, &sp.repetition_penalty, "repetition penalty, 1 = off"},
        {"--frequency-penalty", LM_ARG_FLOAT, &sp.frequency_penalty, "frequency penalty, 0 = off"},
        {"--presence-penalty", LM_ARG_FLOAT, &sp.presence_penalty, "presence penalty, 0 = off"},
        {"--seed", LM_ARG_LONG, &seed, "random seed; the same seed gives the same text (0)"},
        {"--stop", LM_ARG_STRS, &stops, "stop when this text appears (repeatable)"},
        {"--stats", LM_ARG_FLAG, &show_stats, "print token counts and speed to stderr"},
        {"--logprobs", LM_ARG_INT, &logprobs,
         "per token, a JSON line on stderr: its log-probability and the N (0-20) most likely tokens' (the model's own)"},
        {"--no-context-shift", LM_ARG_FLAG, &no_shift, "stop at the context length instead of shifting the context"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit generate --model DIR --prompt TEXT [options]", specs, argc, argv, NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!model_dir) return lm_fail("generate: --model DIR is required");
    if (!prompt) return lm_fail("generate: --prompt TEXT is required");
    if (max_tokens < 0) return lm_fail("generate: --max-tokens %d must be >= 0", max_tokens);
    if (logprobs < -1 || logprobs > 20) return lm_fail("generate: --logprobs %d must be in [0, 20]", logprobs);
    if (lm_cli_check_sampling("generate", &sp)) return 2;
    lm_set_threads(threads);
    sp.seed = (uint64_t)seed;
    lm_causal_lm lm;
    if (lm_causal_lm_open(model_dir, tok_spec, &lm) != LM_OK) return lm_fail_status();
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    if (lm_cli_check_encodable("generate", "--prompt", lm.tok, prompt, strlen(prompt))) {
        rc = 1;
    } else if (lm_causal_lm_encode(&lm, prompt, &ids, &n) != LM_OK) {
        rc = lm_fail_status();
    } else if (n == 0) {
        rc = lm_fail("generate: --prompt is empty");
    } else if ((int)n > lm.decoder.n_ctx) {
        rc = lm_fail("generate: --prompt is %zu tokens, longer than the model's context of %d", n, lm.decoder.n_ctx);
    } else {
        lm_token_report report = {lm_print_logprobs, lm.tok, logprobs};
        lm_generate_params gp = {.max_tokens = max_tokens, .sample = sp, .stops = stops.items, .n_stops = stops.n,
                                 .context_shift = !no_shift, .report = logprobs >= 0 ? &report : NULL};
        lm_generate_stats st;
        fputs(prompt, stdout);
        if (lm_generate(&lm.decoder, lm.tok, ids, (int)n, &gp, lm_print_chunk, NULL, &st) != LM_OK) {
            fflush(stdout);
            fputc('\n', stdout);
            rc = lm_fail_status();
        } else {
            fputc('\n', stdout);
            if (!strcmp(st.finish, "context"))
                fprintf(stderr, "lmkit: note: stopped at the model's context length (%d tokens)\n", lm.decoder.n_ctx);
            if (show_stats)
                fprintf(stderr, "prompt %d tokens in %.3f s, generated %d tokens in %.3f s (%.1f tok/s), finish: %s\n", st.prompt_tokens,
                        st.prefill_s, st.generated_tokens, st.decode_s, st.decode_s > 0 ? st.generated_tokens / st.decode_s : 0.0,
                        st.finish);
        }
    }
    free(ids);
    lm_causal_lm_close(&lm);
    return rc;
}

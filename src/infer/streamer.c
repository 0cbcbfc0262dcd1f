/* Streaming text out of a token stream: never print half a UTF-8
 * character or the first bytes of a stop string that will be cut. */
#include "lmkit/generate.h"

#include <stdlib.h>
#include <string.h>

void lm_streamer_init(lm_streamer *s, const char *const *stops, int n_stops) {
    memset(s, 0, sizeof *s);
    s->stops = stops;
    s->n_stops = n_stops;
    for (int i = 0; i < n_stops; i++)
        if (strlen(stops[i]) > s->max_stop) s->max_stop = strlen(stops[i]);
}

void lm_streamer_free(lm_streamer *s) {
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

/* Length of the longest suffix of buf that is a proper prefix of a stop string. */
static size_t lm_partial_stop(const lm_streamer *s) {
    size_t best = 0;
    for (int i = 0; i < s->n_stops; i++) {
        size_t sl = strlen(s->stops[i]);
        for (size_t k = sl - 1; k > best && sl > 0; k--)
            if (k <= s->len && !memcmp(s->buf + s->len - k, s->stops[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

lm_status lm_streamer_push(lm_streamer *s, const char *bytes, size_t n, size_t *ready) {
    *ready = 0;
    if (s->stopped) return LM_OK;
    if (s->len + n + 1 > s->cap) {
        size_t cap = 2 * (s->len + n + 64);
        char *b = realloc(s->buf, cap);
        if (!b) return lm_error(LM_ERR_NOMEM, "out of memory");
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, bytes, n);
    s->len += n;
    s->buf[s->len] = 0;
    /* A stop string anywhere in the pending text ends generation there. */
    size_t cut = s->len;
    for (int i = 0; i < s->n_stops; i++) {
        size_t sl = strlen(s->stops[i]);
        if (!sl) continue;
        for (size_t k = 0; k + sl <= s->len; k++)
            if (!memcmp(s->buf + k, s->stops[i], sl)) {
                if (k < cut) cut = k;
                break;
            }
    }
    if (cut < s->len) {
        s->stopped = 1;
        s->len = cut;
        *ready = cut;
        return LM_OK;
    }
    size_t hold = lm_partial_stop(s);
    size_t safe = lm_utf8_complete_prefix(s->buf, s->len - hold);
    *ready = safe;
    return LM_OK;
}

void lm_streamer_consume(lm_streamer *s, size_t n) {
    if (n > s->len) n = s->len;
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
}

size_t lm_streamer_flush(lm_streamer *s) { return s->len; }

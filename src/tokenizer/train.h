/* Internals of tokenizer training (train_words.c, train_bpe.c, train.c). */
#ifndef LMKIT_TRAIN_H
#define LMKIT_TRAIN_H

#include "tokenizer/tok_internal.h"

typedef struct { char *s; uint32_t len; int64_t cnt; } lm_trword;

/* Normalizes and pre-tokenizes the texts and counts the pre-tokens: *out
 * sorted by bytes, each s malloc'd (free with lm_train_words_free). */
lm_status lm_train_count_words(const lm_norm *norm, const lm_pre *pre, const char *const *texts, const size_t *lens,
                               size_t n_texts, lm_trword **out, size_t *n_out);
void lm_train_words_free(lm_trword *w, size_t n);

/* The merge loop. Symbols are byte strings; words arrive as symbol id
 * sequences. A merge of (a, b) makes the symbol sym[a] + sym[b] with
 * strip_prefix removed from the front of sym[b] (WordPiece's "##").
 * Merges stop at vocab_size symbols or when the best pair is seen fewer
 * than min_freq times. Ties go to the smaller (a, b), so runs repeat. */
typedef struct {
    char **sym;
    uint32_t *sym_len;
    int32_t n_sym, cap_sym;
    int32_t (*merges)[3]; /* a, b, result */
    int32_t n_merges;
} lm_trsyms;
lm_status lm_trsyms_add(lm_trsyms *s, const char *str, uint32_t len, int32_t *id);
void lm_trsyms_free(lm_trsyms *s);
lm_status lm_train_merge(lm_trsyms *syms, uint32_t **words, uint32_t *wlen, const int64_t *wcnt, size_t n_words,
                         int vocab_size, int64_t min_freq, const char *strip_prefix);

#endif

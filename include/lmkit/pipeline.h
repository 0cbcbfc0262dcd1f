/* lmkit encoder pipelines: text in, answers out — classification scores,
 * sentence embeddings (mean pooling, as sentence-transformers), and
 * masked-token filling. Texts are processed in padded chunks of 32. */
#ifndef LMKIT_PIPELINE_H
#define LMKIT_PIPELINE_H

#include "lmkit/bert.h"
#include "lmkit/tokenizer.h"

/* Tokenizes n texts into one right-padded batch (T = the longest row,
 * rows cut to max_len keeping the final [SEP]). *ids and *mask are
 * malloc'd [n * T]; the caller frees them. *truncated counts cut rows. */
lm_status lm_pipeline_batch(const lm_tokenizer *tok, const char *const *texts, int n, int max_len, int pad_id, int32_t **ids,
                            int32_t **mask, int *T, int *truncated);

/* scores [n * num_labels]: softmax probabilities (single-label), sigmoid
 * probabilities (multi-label) or the raw outputs (regression). */
lm_status lm_pipeline_classify(lm_bert *m, const lm_tokenizer *tok, const char *const *texts, int n, int max_len, float *scores,
                               int *truncated);

/* out [n * hidden]: mean-pooled last hidden states, L2-normalised when
 * normalize is set. */
lm_status lm_pipeline_embed(lm_bert *m, const lm_tokenizer *tok, const char *const *texts, int n, int max_len, int normalize,
                            float *out, int *truncated);

typedef struct {
    int32_t id;
    float score; /* softmax probability */
} lm_fill_candidate;

/* For each [MASK] in text (at most max_masks), the top_k tokens:
 * out [max_masks * top_k], *n_masks receives how many masks were found
 * (0 is an error). */
lm_status lm_pipeline_fill_mask(lm_bert *m, const lm_tokenizer *tok, const char *text, int max_len, int top_k, int max_masks,
                                lm_fill_candidate *out, int *n_masks);

#endif

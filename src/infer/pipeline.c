/* Encoder pipelines over lm_bert: batching texts, classification scores,
 * sentence embeddings and fill-mask. */
#include "lmkit/pipeline.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LM_PIPE_CHUNK 32

lm_status lm_pipeline_batch(const lm_tokenizer *tok, const char *const *texts, int n, int max_len, int pad_id, int32_t **ids_out,
                            int32_t **mask_out, int *T_out, int *truncated) {
    *ids_out = *mask_out = NULL;
    if (n < 1) return lm_error(LM_ERR_ARG, "no texts to encode");
    if (max_len < 2) return lm_error(LM_ERR_ARG, "max length %d is too small", max_len);
    lm_encoding *enc = calloc((size_t)n, sizeof *enc);
    size_t *lens = malloc((size_t)n * sizeof *lens);
    if (!enc || !lens) {
        free(enc);
        free(lens);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) lens[i] = strlen(texts[i]);
    /* One token past the limit reveals rows that were longer; cutting
     * there and keeping the final [SEP] equals truncation to max_len. */
    lm_encode_opts o = lm_tokenizer_default_opts(tok);
    o.add_special = 1;
    o.max_length = (size_t)max_len + 1;
    o.pad_to = 0;
    o.pad_to_longest = 0;
    lm_status s = lm_tokenizer_encode_batch(tok, texts, lens, (size_t)n, &o, enc);
    free(lens);
    if (s != LM_OK) {
        free(enc);
        return s;
    }
    int T = 1, cut = 0;
    for (int i = 0; i < n; i++) {
        if ((int)enc[i].n > max_len) {
            enc[i].ids[max_len - 1] = enc[i].ids[enc[i].n - 1];
            enc[i].n = (size_t)max_len;
            cut++;
        }
        if ((int)enc[i].n > T) T = (int)enc[i].n;
    }
    int32_t *ids = malloc((size_t)n * T * sizeof *ids), *mask = malloc((size_t)n * T * sizeof *mask);
    if (!ids || !mask) s = lm_error(LM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && s == LM_OK; i++)
        for (int t = 0; t < T; t++) {
            ids[i * T + t] = t < (int)enc[i].n ? enc[i].ids[t] : pad_id;
            mask[i * T + t] = t < (int)enc[i].n;
        }
    for (int i = 0; i < n; i++) lm_encoding_free(&enc[i]);
    free(enc);
    if (s != LM_OK) {
        free(ids);
        free(mask);
        return s;
    }
    *ids_out = ids;
    *mask_out = mask;
    *T_out = T;
    if (truncated) *truncated = cut;
    return LM_OK;
}

/* Runs fn over texts in chunks: encodes each chunk and calls back. */
typedef lm_status (*lm_chunk_fn)(lm_bert *m, int first, int n, void *ctx);

static lm_status lm_chunks(lm_bert *m, const lm_tokenizer *tok, const char *const *texts, int n, int max_len, int *truncated,
                           lm_chunk_fn fn, void *ctx) {
    if (truncated) *truncated = 0;
    int mp = lm_bert_get_config(m)->max_pos;
    if (max_len > mp) max_len = mp;
    for (int first = 0; first < n; first += LM_PIPE_CHUNK) {
        int k = n - first < LM_PIPE_CHUNK ? n - first : LM_PIPE_CHUNK, T = 0, cut = 0;
        int32_t *ids = NULL, *mask = NULL;
        LM_TRY(lm_pipeline_batch(tok, texts + first, k, max_len, lm_bert_get_config(m)->pad_token_id, &ids, &mask, &T, &cut));
        lm_bert_batch b = {k, T, ids, NULL, mask};
        lm_status s = lm_bert_encode(m, &b);
        if (s == LM_OK) s = fn(m, first, k, ctx);
        free(ids);
        free(mask);
        LM_TRY(s);
        if (truncated) *truncated += cut;
    }
    return LM_OK;
}

static lm_status lm_classify_chunk(lm_bert *m, int first, int n, void *ctx) {
    float *scores = ctx;
    LM_TRY(lm_bert_cls_forward(m, NULL, NULL, NULL));
    const lm_bert_config *c = lm_bert_get_config(m);
    int NL = c->num_labels;
    const float *z = lm_bert_cls_logits(m);
    for (int b = 0; b < n; b++) {
        const float *zr = z + (size_t)b * NL;
        float *o = scores + (size_t)(first + b) * NL;
        if (c->problem == LM_PROBLEM_SINGLE_LABEL) {
            float mx = zr[0];
            for (int k = 1; k < NL; k++) mx = zr[k] > mx ? zr[k] : mx;
            double sum = 0;
            for (int k = 0; k < NL; k++) sum += exp((double)zr[k] - mx);
            for (int k = 0; k < NL; k++) o[k] = (float)(exp((double)zr[k] - mx) / sum);
        } else if (c->problem == LM_PROBLEM_MULTI_LABEL) {
            for (int k = 0; k < NL; k++) o[k] = (float)(1.0 / (1.0 + exp(-(double)zr[k])));
        } else {
            memcpy(o, zr, (size_t)NL * sizeof(float));
        }
    }
    return LM_OK;
}

lm_status lm_pipeline_classify(lm_bert *m, const lm_tokenizer *tok, const char *const *texts, int n, int max_len, float *scores,
                               int *truncated) {
    if (lm_bert_get_config(m)->head != LM_BERT_HEAD_CLS)
        return lm_error(LM_ERR_ARG, "the model has no classification head (config.json architectures is not BertForSequenceClassification)");
    int was = lm_bert_set_pooled_only(m, 1); /* the head reads [CLS] only */
    lm_status s = lm_chunks(m, tok, texts, n, max_len, truncated, lm_classify_chunk, scores);
    lm_bert_set_pooled_only(m, was);
    return s;
}

typedef struct {
    float *out;
    int normalize;
} lm_embed_ctx;

static lm_status lm_embed_chunk(lm_bert *m, int first, int n, void *ctx) {
    lm_embed_ctx *e = ctx;
    (void)n;
    lm_bert_mean_pool(m, e->out + (size_t)first * lm_bert_get_config(m)->hidden, e->normalize);
    return LM_OK;
}

lm_status lm_pipeline_embed(lm_bert *m, const lm_tokenizer *tok, const char *const *texts, int n, int max_len, int normalize,
                            float *out, int *truncated) {
    lm_embed_ctx e = {out, normalize};
    int was = lm_bert_set_pooled_only(m, 0); /* mean pooling reads every token */
    lm_status s = lm_chunks(m, tok, texts, n, max_len, truncated, lm_embed_chunk, &e);
    lm_bert_set_pooled_only(m, was);
    return s;
}

lm_status lm_pipeline_fill_mask(lm_bert *m, const lm_tokenizer *tok, const char *text, int max_len, int top_k, int max_masks,
                                lm_fill_candidate *out, int *n_masks) {
    *n_masks = 0;
    const lm_bert_config *c = lm_bert_get_config(m);
    if (c->head != LM_BERT_HEAD_MLM)
        return lm_error(LM_ERR_ARG, "the model has no masked-LM head (config.json architectures is not BertForMaskedLM)");
    int32_t mask_id = lm_tokenizer_token_to_id(tok, "[MASK]");
    if (mask_id < 0) return lm_error(LM_ERR_FORMAT, "the tokenizer has no [MASK] token");
    if (top_k < 1 || top_k > c->vocab_size) return lm_error(LM_ERR_ARG, "top-k %d out of range [1, %d]", top_k, c->vocab_size);
    if (max_len > c->max_pos) max_len = c->max_pos;
    int32_t *ids = NULL, *mask = NULL;
    int T = 0;
    LM_TRY(lm_pipeline_batch(tok, &text, 1, max_len, c->pad_token_id, &ids, &mask, &T, NULL));
    lm_bert_batch b = {1, T, ids, NULL, mask};
    lm_status s = lm_bert_encode(m, &b);
    if (s == LM_OK) s = lm_bert_mlm_forward(m, NULL, NULL);
    int V = c->vocab_size, found = 0;
    const float *logits = lm_bert_mlm_logits(m, NULL, NULL);
    for (int t = 0; t < T && s == LM_OK; t++) {
        if (ids[t] != mask_id) continue;
        if (found >= max_masks) break;
        const float *z = logits + (size_t)t * V;
        float mx = z[0];
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        double sum = 0;
        for (int v = 0; v < V; v++) sum += exp((double)z[v] - mx);
        lm_fill_candidate *o = out + (size_t)found * top_k;
        /* Top-k by insertion: k is small. */
        int have = 0;
        for (int v = 0; v < V; v++) {
            float p = (float)(exp((double)z[v] - mx) / sum);
            if (have == top_k && p <= o[top_k - 1].score) continue;
            int j = have < top_k ? have++ : top_k - 1;
            while (j > 0 && o[j - 1].score < p) {
                o[j] = o[j - 1];
                j--;
            }
            o[j].id = v;
            o[j].score = p;
        }
        found++;
    }
    free(ids);
    free(mask);
    LM_TRY(s);
    if (!found) return lm_error(LM_ERR_ARG, "the text has no [MASK] token to fill");
    *n_masks = found;
    return LM_OK;
}

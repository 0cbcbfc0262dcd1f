/* MLM masking statistics (15% selected; of those 80% [MASK], 10% random,
 * 10% kept; special tokens never; whole-word masking selects a token and
 * its ## pieces together) and a short MLM training run on the tiny BERT
 * that must lower the loss on a fixed batch. */
#include "lmkit/bert.h"
#include "lmkit/mlm.h"
#include "lmkit/train.h"
#include "test.h"

int main(void) {
    lm_set_threads(2);
    lm_tokenizer *tok = NULL;
    CHECK_OK(lm_tokenizer_load(test_src_path("tests/data/bert_tiny_tok/tokenizer.json"), &tok));
    if (!tok) TEST_MAIN_END();
    int V = lm_tokenizer_vocab_size(tok);
    lm_mlm_masker mk;
    CHECK_OK(lm_mlm_masker_init(&mk, tok, V, 0.15f, 0));
    int32_t cls = lm_tokenizer_token_to_id(tok, "[CLS]"), mask = lm_tokenizer_token_to_id(tok, "[MASK]");
    enum { N = 200000 };
    int32_t *ids = malloc(N * sizeof *ids), *orig = malloc(N * sizeof *orig), *labels = malloc(N * sizeof *labels);
    lm_rng r;
    lm_rng_seed(&r, 7, 0);
    for (int i = 0; i < N; i++) orig[i] = ids[i] = i % 50 == 0 ? cls : 5 + (int32_t)lm_rng_below(&r, (uint32_t)(V - 5));
    int sel = lm_mlm_mask(&mk, &r, ids, labels, N);
    long nmask = 0, nkeep = 0, nrand = 0, special_hit = 0, maskable = 0;
    for (int i = 0; i < N; i++) {
        maskable += orig[i] != cls;
        if (labels[i] < 0) {
            CHECK(ids[i] == orig[i]);
            continue;
        }
        CHECK(labels[i] == orig[i]);
        special_hit += orig[i] == cls;
        if (ids[i] == mask) nmask++;
        else if (ids[i] == orig[i]) nkeep++;
        else nrand++;
    }
    double f = (double)sel / maskable;
    CHECK_MSG(fabs(f - 0.15) < 0.005, "selected fraction %.4f", f);
    CHECK_MSG(special_hit == 0, "%ld special tokens masked", special_hit);
    /* A random replacement can draw the original id (1/V of the time). */
    CHECK_MSG(fabs((double)nmask / sel - 0.8) < 0.01 && fabs((double)nrand / sel - 0.1) < 0.01 && fabs((double)nkeep / sel - 0.1) < 0.01,
              "mask %.3f random %.3f kept %.3f", (double)nmask / sel, (double)nrand / sel, (double)nkeep / sel);
    lm_mlm_masker_free(&mk);

    /* Whole words: "##" pieces share their word's fate. */
    CHECK_OK(lm_mlm_masker_init(&mk, tok, V, 0.3f, 1));
    int32_t piece = lm_tokenizer_token_to_id(tok, "##s"), word = lm_tokenizer_token_to_id(tok, "movie");
    CHECK(piece > 0 && word > 0);
    for (int i = 0; i < N; i++) orig[i] = ids[i] = i % 3 == 0 ? word : piece;
    lm_mlm_mask(&mk, &r, ids, labels, N);
    int split = 0;
    for (int i = 0; i + 2 < N; i += 3) split += !((labels[i] >= 0) == (labels[i + 1] >= 0) && (labels[i] >= 0) == (labels[i + 2] >= 0));
    CHECK_MSG(split == 0, "%d words partly masked", split);
    lm_mlm_masker_free(&mk);

    /* Training steps on the tiny MLM golden model lower the loss. */
    lm_bert_open_options o;
    lm_bert_open_options_default(&o);
    o.train = 1;
    lm_bert *m = NULL;
    CHECK_OK(lm_bert_open_dir(test_src_path("tests/golden/bert_tiny/model"), &o, &m));
    if (m) {
        int32_t bid[2 * 12], blab[2 * 12];
        CHECK_OK(lm_mlm_masker_init(&mk, tok, V, 0.3f, 0));
        lm_rng_seed(&r, 3, 1);
        for (int i = 0; i < 24; i++) bid[i] = i % 12 == 0 ? cls : 5 + (i * 7) % 90;
        lm_mlm_mask(&mk, &r, bid, blab, 24);
        blab[5] = 17; /* at least one label */
        lm_bert_batch b = {2, 12, bid, NULL, NULL};
        lm_adamw opt;
        CHECK_OK(lm_adamw_init(&opt, lm_bert_params(m)->total, 0.9f, 0.999f, 1e-8f, 0.0f));
        float first = 0, last = 0;
        for (int step = 0; step < 30; step++) {
            CHECK_OK(lm_bert_encode(m, &b));
            CHECK_OK(lm_bert_mlm_forward(m, blab, &last));
            if (step == 0) first = last;
            lm_bert_zero_grad(m);
            CHECK_OK(lm_bert_backward(m, 1.0f));
            lm_adamw_step(&opt, lm_bert_params(m), lm_bert_param_data(m), lm_bert_grad_data(m), 1e-2f);
        }
        CHECK_MSG(last < 0.5f * first, "MLM loss %.4f -> %.4f", first, last);
        lm_adamw_free(&opt);
        lm_mlm_masker_free(&mk);
        lm_bert_free(m);
    }
    free(ids);
    free(orig);
    free(labels);
    lm_tokenizer_free(tok);
    TEST_MAIN_END();
}

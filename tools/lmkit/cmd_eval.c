/* lmkit eval: perplexity of a model over a text file. */
#include "args.h"
#include "bert_cli.h"
#include "cli.h"

#include "lmkit/causal_lm.h"
#include "lmkit/eval.h"
#include "lmkit/tokenizer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Tokenizers read invalid UTF-8 as U+FFFD (as HF does), so the model
 * would score three other bytes in place of each bad sequence and
 * bits_per_byte would be per byte of a text that was never scored:
 * refused, naming the first one. */
static int lm_eval_check_utf8(const char *file, const char *text, size_t len) {
    size_t at, line, col;
    if (!lm_cli_utf8_locate(text, len, &at, &line, &col)) return 0;
    return lm_fail("eval: %s: line %zu, column %zu: invalid UTF-8 byte 0x%02X (perplexity is scored on UTF-8 text)", file, line, col,
                   (unsigned char)text[at]);
}

int lm_cmd_eval(int argc, char **argv) {
    const char *model_dir = NULL, *ppl_file = NULL, *tok_spec = NULL, *data = NULL, *text_column = NULL, *label_column = NULL;
    int stride = 0, threads = 0, json = 0, no_header = 0, max_len = 512, batch = 32;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &model_dir, "model: GPT-2 or LLaMA-family directory, .gguf or llama2.c .bin"},
        {"--tokenizer", LM_ARG_STR, &tok_spec, "tokenizer (default: the model's own)"},
        {"--perplexity", LM_ARG_STR, &ppl_file, "text file to score"},
        {"--stride", LM_ARG_INT, &stride, "window stride in tokens (default: half the context)"},
        {"--data", LM_ARG_STR, &data, "labelled .tsv/.csv/.jsonl: accuracy/macro-F1 or RMSE/Pearson of a fine-tuned encoder"},
        {"--text-column", LM_ARG_STR, &text_column, "with --data: text column [text|sentence]"},
        {"--label-column", LM_ARG_STR, &label_column, "with --data: label column [label]"},
        {"--no-header", LM_ARG_FLAG, &no_header, "with --data: no header row (columns are 0-based indices)"},
        {"--max-len", LM_ARG_INT, &max_len, "with --data: tokens per row [512]"},
        {"--batch", LM_ARG_INT, &batch, "with --data: rows per forward pass [32]"},
        {"--json", LM_ARG_FLAG, &json, "print one JSON object on stdout"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit eval --model M (--perplexity FILE [--tokenizer T] [--stride N] | --data FILE) [--json]", specs, argc,
                          argv, NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!model_dir) return lm_fail("eval: --model DIR is required");
    lm_set_threads(threads);
    if (data && ppl_file) return lm_fail("eval: give --perplexity or --data, not both");
    if (data) return lm_cli_eval_data(model_dir, data, text_column, label_column, no_header, max_len, batch, json);
    if (!ppl_file) return lm_fail("eval: --perplexity FILE (language models) or --data FILE (classifiers) is required");
    lm_causal_lm lm = {0};
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    double t0 = lm_now_seconds();
    if (lm_causal_lm_open(model_dir, tok_spec, &lm) != LM_OK || lm_read_file(ppl_file, &text, &len) != LM_OK) {
        rc = lm_fail_status();
        goto done;
    }
    /* Every byte counted in bits_per_byte must reach the model. */
    if (lm_eval_check_utf8(ppl_file, text, len) || lm_cli_check_encodable("eval", ppl_file, lm.tok, text, len)) {
        rc = 1;
        goto done;
    }
    /* by length: a file may hold NUL bytes, which must be scored too */
    if (lm_causal_lm_encode_n(&lm, text, len, -1, &ids, &n) != LM_OK) {
        rc = lm_fail("eval: %s: %s", ppl_file, lm_last_error());
        goto done;
    }
    if (n < 2) {
        rc = lm_fail("eval: %s has %zu tokens; at least 2 are needed", ppl_file, n);
        goto done;
    }
    int n_ctx = lm.decoder.n_ctx;
    if (stride == 0) stride = n_ctx / 2 > 0 ? n_ctx / 2 : 1;
    lm_perplexity_result res;
    lm_status st = lm.gpt2 ? lm_gpt2_perplexity(lm.gpt2, ids, (long)n, stride, &res)
                           : lm_engine_perplexity(lm.engine, ids, (long)n, stride, &res);
    if (st != LM_OK) {
        rc = lm_fail_status();
        goto done;
    }
    double loss = res.nll_sum / (double)res.tokens, secs = lm_now_seconds() - t0;
    if (json)
        printf("{\"loss\": %.6f, \"perplexity\": %.6f, \"tokens\": %ld, \"bytes\": %zu, \"bits_per_byte\": %.6f, \"windows\": %d, "
               "\"stride\": %d, \"context\": %d, \"seconds\": %.3f}\n",
               loss, exp(loss), res.tokens, len, res.nll_sum / log(2.0) / (double)len, res.windows, stride,
               n_ctx, secs);
    else
        printf("%s: %ld tokens, loss %.4f nats/token, perplexity %.3f (%d windows, context %d, stride %d)\n", ppl_file, res.tokens,
               loss, exp(loss), res.windows, n_ctx, stride);
done:
    free(ids);
    free(text);
    lm_causal_lm_close(&lm);
    return rc;
}

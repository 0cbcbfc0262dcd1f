/* lmkit finetune: fine-tune a BERT-family encoder for classification or
 * regression on a labelled TSV / CSV / JSONL file. */
#include "args.h"
#include "cli.h"
#include "progress.h"

#include "lmkit/finetune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void lm_ft_report(const lm_finetune_event *ev, void *user) {
    lm_progress *p = user;
    if (ev->kind == 2) {
        if (p->tty) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "%s\n", ev->text);
        return;
    }
    if (ev->kind == 1) {
        if (p->tty) fprintf(stderr, "\r\033[K");
        if (ev->eval.rmse > 0 || ev->eval.pearson != 0)
            fprintf(stderr, "epoch %d step %ld/%ld: eval loss %.4f, RMSE %.4f, Pearson %.4f%s\n", ev->epoch, ev->step, ev->total_steps,
                    ev->eval.loss, ev->eval.rmse, ev->eval.pearson, ev->best ? " (best, saved)" : "");
        else
            fprintf(stderr, "epoch %d step %ld/%ld: eval loss %.4f, accuracy %.4f, macro-F1 %.4f%s\n", ev->epoch, ev->step, ev->total_steps,
                    ev->eval.loss, ev->eval.accuracy, ev->eval.macro_f1, ev->best ? " (best, saved)" : "");
        return;
    }
    char caption[160];
    snprintf(caption, sizeof caption, "epoch %d loss %.4f lr %.2e %.1f rows/s", ev->epoch, ev->loss, ev->lr, ev->rows_per_sec);
    lm_progress_show(p, ev->step, ev->total_steps, caption, ev->eta_s, 0);
}

int lm_cmd_finetune(int argc, char **argv) {
    lm_finetune_options o;
    lm_finetune_options_default(&o);
    const char *task = "classify", *eval_every = NULL;
    int threads = 0, no_header = 0;
    long seed = (long)o.seed;
    const lm_arg specs[] = {
        {"--model", LM_ARG_STR, &o.model_dir, "pretrained model directory (config.json, model.safetensors, tokenizer.json)"},
        {"--task", LM_ARG_STR, &task, "classify (single-label softmax) or regress (MSE) [classify]"},
        {"--train", LM_ARG_STR, &o.train_path, "training data: .tsv, .csv or .jsonl"},
        {"--eval", LM_ARG_STR, &o.eval_path, "evaluation data, same format"},
        {"--text-column", LM_ARG_STR, &o.data.text_column, "text column name (or 0-based index with --no-header) [text|sentence]"},
        {"--label-column", LM_ARG_STR, &o.data.label_column, "label column name (or index) [label]"},
        {"--no-header", LM_ARG_FLAG, &no_header, "TSV/CSV files have no header row"},
        {"--epochs", LM_ARG_INT, &o.epochs, "passes over the training data [3]"},
        {"--batch", LM_ARG_INT, &o.batch, "rows per step [8]"},
        {"--lr", LM_ARG_FLOAT, &o.lr, "peak learning rate, linear decay to 0 [2e-5]"},
        {"--max-len", LM_ARG_INT, &o.max_len, "tokens per row incl. [CLS]/[SEP]; longer rows are truncated [128 or the model's limit]"},
        {"--warmup", LM_ARG_LONG, &o.warmup, "linear warmup steps [0]"},
        {"--weight-decay", LM_ARG_FLOAT, &o.weight_decay, "AdamW weight decay (not on biases/LayerNorm) [0]"},
        {"--clip", LM_ARG_FLOAT, &o.clip, "gradient-norm clip, 0 = off [1.0]"},
        {"--eval-every", LM_ARG_STR, &eval_every, "'epoch' or a step count [epoch]"},
        {"--early-stop", LM_ARG_INT, &o.early_stop, "stop after this many evaluations without improvement [off]"},
        {"--lora", LM_ARG_INT, &o.lora_rank, "LoRA rank on attention query/value; 0 = full fine-tuning [0]"},
        {"--lora-alpha", LM_ARG_FLOAT, &o.lora_alpha, "LoRA alpha (scale alpha/rank) [16]"},
        {"--dropout", LM_ARG_FLOAT, &o.dropout, "dropout on hidden states, attention probabilities and the pooled output while training [the config's, 0.1 for BERT]"},
        {"--seed", LM_ARG_LONG, &seed, "shuffling, dropout masks and new-head initialisation [42]"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {"--out", LM_ARG_STR, &o.out_dir, "run directory (a Hugging Face model directory)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit finetune --model DIR --train FILE --eval FILE --out RUN [--task classify|regress] [options]", specs,
                          argc, argv, NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    if (!o.model_dir) return lm_fail("finetune: --model DIR is required");
    if (!o.train_path) return lm_fail("finetune: --train FILE is required");
    if (!o.eval_path) return lm_fail("finetune: --eval FILE is required");
    if (!o.out_dir) return lm_fail("finetune: --out RUN is required");
    if (!strcmp(task, "classify")) o.problem = LM_PROBLEM_SINGLE_LABEL;
    else if (!strcmp(task, "regress")) o.problem = LM_PROBLEM_REGRESSION;
    else return lm_fail("finetune: --task '%s' must be 'classify' or 'regress'", task);
    if (eval_every && strcmp(eval_every, "epoch") != 0) {
        char *end;
        o.eval_every = strtol(eval_every, &end, 10);
        if (*end || o.eval_every < 1) return lm_fail("finetune: --eval-every '%s' must be 'epoch' or a positive step count", eval_every);
    }
    if (o.max_len != 0 && o.max_len < 2) return lm_fail("finetune: --max-len %d must be at least 2", o.max_len);
    if (o.lora_rank < 0) return lm_fail("finetune: --lora %d must be >= 0", o.lora_rank);
    if (o.dropout >= 1) return lm_fail("finetune: --dropout %g must be below 1", o.dropout);
    o.data.no_header = no_header;
    o.seed = (uint64_t)seed;
    lm_set_threads(threads);
    lm_progress p;
    lm_progress_init(&p);
    double t0 = lm_now_seconds();
    lm_status s = lm_finetune_run(&o, lm_ft_report, &p);
    lm_progress_end(&p);
    if (s != LM_OK) return lm_fail_status();
    fprintf(stderr, "done in %.1f s; best model in %s\n", lm_now_seconds() - t0, o.out_dir);
    return 0;
}

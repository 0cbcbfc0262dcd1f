/* lmkit train --arch bert --objective mlm: masked-LM pretraining of a
 * BERT from token shards (prepared with a WordPiece tokenizer.json). */
#include "args.h"
#include "bert_cli.h"
#include "progress.h"

#include "lmkit/mlm.h"

#include <stdio.h>

static void lm_mlm_report(const lm_mlm_event *ev, void *user) {
    lm_progress *p = user;
    char caption[160];
    snprintf(caption, sizeof caption, "mlm loss %.4f lr %.2e %.0f tok/s", ev->loss, ev->lr, ev->tokens_per_sec);
    if (ev->has_val) {
        if (p->tty) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "step %ld/%ld: train loss %.4f, val loss %.4f (saved)\n", ev->step, ev->total_steps, ev->loss, ev->val_loss);
    }
    lm_progress_show(p, ev->step, ev->total_steps, caption, ev->eta_s, ev->has_val);
}

int lm_cli_train_mlm(const lm_mlm_options *o) {
    lm_progress p;
    lm_progress_init(&p);
    lm_status s = lm_mlm_train_run(o, lm_mlm_report, &p);
    lm_progress_end(&p);
    if (s != LM_OK) return lm_fail_status();
    fprintf(stderr, "saved %s (BertForMaskedLM: config.json, model.safetensors, tokenizer.json, metrics.jsonl, loss.svg)\n", o->out_dir);
    return 0;
}

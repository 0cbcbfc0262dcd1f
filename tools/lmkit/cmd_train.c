/* lmkit train: pretrain a GPT-2 from token shards, or --resume a run. */
#include "args.h"
#include "bert_cli.h"
#include "cli.h"
#include "progress.h"

#include "lmkit/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void lm_train_report(const lm_train_event *ev, void *user) {
    lm_progress *p = user;
    char caption[160];
    snprintf(caption, sizeof caption, "loss %.4f lr %.2e %.0f tok/s", ev->loss, ev->lr, ev->tokens_per_sec);
    if (ev->has_val) {
        if (p->tty) fprintf(stderr, "\r\033[K");
        fprintf(stderr, "step %ld/%ld: train loss %.4f, val loss %.4f%s\n", ev->step, ev->total_steps, ev->loss, ev->val_loss,
                ev->saved ? " (checkpoint saved)" : "");
    }
    lm_progress_show(p, ev->step, ev->total_steps, caption, ev->eta_s, ev->has_val);
}

int lm_cmd_train(int argc, char **argv) {
    lm_train_options o;
    lm_train_options_default(&o);
    const char *arch = "gpt2", *resume = NULL;
    float min_lr = -1;
    long warmup = -1, steps = -1;
    long seed = 1337;
    int threads = 0, n_layer = 4, n_head = 4, n_embd = 128, n_ctx = 0, whole_word = 0;
    const char *objective = NULL;
    float mask_prob = 0.15f;
    const lm_arg specs[] = {
        {"--data", LM_ARG_STR, &o.data_dir, "directory written by 'lmkit prepare'"},
        {"--out", LM_ARG_STR, &o.out_dir, "run directory (a Hugging Face checkpoint dir)"},
        {"--resume", LM_ARG_STR, &resume, "continue the run in this directory from its last checkpoint"},
        {"--arch", LM_ARG_STR, &arch, "model architecture: gpt2 | bert"},
        {"--objective", LM_ARG_STR, &objective, "training objective: clm (gpt2) | mlm (bert)"},
        {"--mask-prob", LM_ARG_FLOAT, &mask_prob, "mlm: fraction of tokens selected (0.15; 80% [MASK], 10% random, 10% kept)"},
        {"--whole-word", LM_ARG_FLAG, &whole_word, "mlm: mask whole words (a token and its ## pieces) together"},
        {"--n-layer", LM_ARG_INT, &n_layer, "transformer blocks (4)"},
        {"--n-head", LM_ARG_INT, &n_head, "attention heads (4)"},
        {"--n-embd", LM_ARG_INT, &n_embd, "model width (128)"},
        {"--n-ctx", LM_ARG_INT, &n_ctx, "context length of the model (default: --seq-len)"},
        {"--seq-len", LM_ARG_INT, &o.seq_len, "tokens per training sequence (64)"},
        {"--batch", LM_ARG_INT, &o.batch, "sequences per micro-batch (8)"},
        {"--grad-accum", LM_ARG_INT, &o.grad_accum, "micro-batches per optimizer step (1)"},
        {"--steps", LM_ARG_LONG, &steps, "optimizer steps (1000)"},
        {"--stop-at", LM_ARG_LONG, &o.stop_at_step, "stop after this step (checkpointed), schedule still spans --steps"},
        {"--lr", LM_ARG_FLOAT, &o.lr.max_lr, "peak learning rate (6e-4)"},
        {"--min-lr", LM_ARG_FLOAT, &min_lr, "final learning rate of the cosine decay (default lr/10)"},
        {"--warmup", LM_ARG_LONG, &warmup, "linear warmup steps (default min(100, steps/10))"},
        {"--weight-decay", LM_ARG_FLOAT, &o.weight_decay, "AdamW decoupled weight decay on matrices (0.1)"},
        {"--beta1", LM_ARG_FLOAT, &o.beta1, "AdamW beta1 (0.9)"},
        {"--beta2", LM_ARG_FLOAT, &o.beta2, "AdamW beta2 (0.99)"},
        {"--clip", LM_ARG_FLOAT, &o.clip, "global gradient-norm clip, 0 disables (1.0)"},
        {"--eval-every", LM_ARG_LONG, &o.eval_every, "steps between validation runs (250)"},
        {"--eval-batches", LM_ARG_INT, &o.eval_batches, "batches per validation run (20)"},
        {"--save-every", LM_ARG_LONG, &o.save_every, "steps between checkpoints (default: at each validation)"},
        {"--log-every", LM_ARG_LONG, &o.log_every, "steps between metrics.jsonl lines (1)"},
        {"--seed", LM_ARG_LONG, &seed, "random seed (1337)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads (default: all cores)"},
        {"--data-parallel", LM_ARG_INT, &o.data_parallel,
         "gpt2: batch slices run side by side, one per thread (default: one per thread for models up to 384 wide)"},
        {NULL, 0, NULL, NULL},
    };
    int r = lm_args_parse("lmkit train --data DIR --out RUN [options] | lmkit train --resume RUN [--steps N]", specs, argc, argv,
                          NULL, NULL);
    if (r) return r == 1 ? 0 : 2;
    lm_set_threads(threads);
    o.seed = (uint64_t)seed;
    if (resume) {
        if (o.out_dir && strcmp(o.out_dir, resume) != 0) return lm_fail("train: --resume and --out name different runs");
        o.out_dir = resume;
        o.resume = 1;
        o.steps = steps; /* -1: keep the run's own budget */
    } else {
        if (!o.data_dir) return lm_fail("train: --data DIR is required");
        if (!o.out_dir) return lm_fail("train: --out RUN is required");
        if (!strcmp(arch, "bert")) {
            if (objective && strcmp(objective, "mlm") != 0) return lm_fail("train: --arch bert supports --objective mlm only (got '%s')", objective);
            lm_mlm_options mo;
            lm_mlm_options_default(&mo);
            mo.data_dir = o.data_dir;
            mo.out_dir = o.out_dir;
            mo.hidden = n_embd;
            mo.n_layer = n_layer;
            mo.n_head = n_head;
            mo.batch = o.batch;
            mo.seq_len = o.seq_len;
            mo.steps = steps > 0 ? steps : o.steps;
            mo.lr = o.lr.max_lr;
            mo.min_lr = min_lr >= 0 ? min_lr : mo.lr / 10;
            mo.warmup = warmup >= 0 ? warmup : (mo.steps / 10 < 100 ? mo.steps / 10 : 100);
            mo.eval_every = o.eval_every;
            mo.eval_batches = o.eval_batches;
            mo.weight_decay = o.weight_decay;
            mo.clip = o.clip;
            mo.mask_prob = mask_prob;
            mo.whole_word = whole_word;
            mo.seed = o.seed;
            return lm_cli_train_mlm(&mo);
        }
        if (strcmp(arch, "gpt2") != 0) return lm_fail("train: --arch '%s' is not supported (available: gpt2, bert)", arch);
        if (objective && strcmp(objective, "clm") != 0) return lm_fail("train: --arch gpt2 supports --objective clm only (got '%s')", objective);
        if (steps > 0) o.steps = steps;
        else if (steps == 0 || steps < -1) return lm_fail("train: --steps %ld must be >= 1", steps);
        o.model.n_layer = n_layer;
        o.model.n_head = n_head;
        o.model.n_embd = n_embd;
        o.model.n_ctx = n_ctx;
        o.lr.min_lr = min_lr >= 0 ? min_lr : o.lr.max_lr / 10;
        o.lr.warmup = warmup >= 0 ? warmup : (o.steps / 10 < 100 ? o.steps / 10 : 100);
        o.lr.total = o.steps;
        if (o.lr.warmup > o.steps) return lm_fail("train: --warmup %ld exceeds --steps %ld", o.lr.warmup, o.steps);
    }
    lm_progress p;
    lm_progress_init(&p);
    lm_status s = lm_train_run(&o, lm_train_report, &p);
    lm_progress_end(&p);
    if (s != LM_OK) return lm_fail_status();
    fprintf(stderr, "saved %s (config.json, model.safetensors, metrics.jsonl, loss.svg)\n", o.out_dir);
    return 0;
}

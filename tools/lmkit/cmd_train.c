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

static int lm_spec_index(const lm_arg *specs, const char *name) {
    for (int k = 0; specs[k].name; k++)
        if (!strcmp(specs[k].name, name)) return k;
    return -1;
}

static int lm_is_given(const lm_arg *specs, const int *pos, const char *name) {
    int k = lm_spec_index(specs, name);
    return k >= 0 && pos[k] > 0;
}

/* The given flag that comes first on the command line among `names`
 * (in_list 1) or among those not in `names` (in_list 0); NULL if none. */
static const char *lm_first_given(const lm_arg *specs, const int *pos, const char *const *names, int in_list) {
    const char *first = NULL;
    int at = 0;
    for (int k = 0; specs[k].name; k++) {
        if (!pos[k] || (at && pos[k] > at)) continue;
        int listed = 0;
        for (const char *const *n = names; *n; n++) listed |= !strcmp(*n, specs[k].name);
        if (listed == in_list) {
            first = specs[k].name;
            at = pos[k];
        }
    }
    return first;
}

/* Resume keeps the run's stored options (bit-exact continuation): only
 * these may be given with it. */
static const char *const lm_resume_flags[] = {"--resume", "--out", "--steps", "--stop-at", "--threads", NULL};
/* Flags the masked-LM trainer has no use for. */
static const char *const lm_mlm_unsupported[] = {"--grad-accum", "--stop-at", "--save-every", "--data-parallel", "--n-ctx", NULL};
static const char *const lm_mlm_only[] = {"--mask-prob", "--whole-word", NULL};

int lm_cmd_train(int argc, char **argv) {
    lm_train_options o;
    lm_train_options_default(&o);
    const char *arch = "gpt2", *resume = NULL;
    float min_lr = 0, beta1 = o.beta1, beta2 = o.beta2, eps = o.eps;
    long warmup = 0, steps = o.steps;
    long seed = 1337, log_every = o.log_every;
    int threads = 0, n_layer = 4, n_head = 4, n_embd = 128, n_ctx = 0, whole_word = 0, overwrite = 0;
    const char *objective = NULL;
    float mask_prob = 0.15f;
    const lm_arg specs[] = {
        {"--data", LM_ARG_STR, &o.data_dir, "directory written by 'lmkit prepare'"},
        {"--out", LM_ARG_STR, &o.out_dir, "new run directory (a Hugging Face checkpoint dir): absent or empty, or a run with --overwrite"},
        {"--overwrite", LM_ARG_FLAG, &overwrite,
         "replace the run already in --out; the old one is kept until the new one's first checkpoint"},
        {"--resume", LM_ARG_STR, &resume,
         "continue the run in this directory from its last checkpoint, with its own options (only --steps, --stop-at, "
         "--threads may be given)"},
        {"--arch", LM_ARG_STR, &arch, "model architecture: gpt2 | bert"},
        {"--objective", LM_ARG_STR, &objective, "training objective: clm (gpt2) | mlm (bert)"},
        {"--mask-prob", LM_ARG_FLOAT, &mask_prob, "mlm: fraction of tokens selected (0.15; 80% [MASK], 10% random, 10% kept)"},
        {"--whole-word", LM_ARG_FLAG, &whole_word, "mlm: mask whole words (a token and its ## pieces) together"},
        {"--n-layer", LM_ARG_INT, &n_layer, "transformer blocks (4)"},
        {"--n-head", LM_ARG_INT, &n_head, "attention heads (4)"},
        {"--n-embd", LM_ARG_INT, &n_embd, "model width (128)"},
        {"--n-ctx", LM_ARG_INT, &n_ctx, "gpt2: context length of the model (default: --seq-len)"},
        {"--seq-len", LM_ARG_INT, &o.seq_len, "tokens per training sequence (64)"},
        {"--batch", LM_ARG_INT, &o.batch, "sequences per micro-batch (8)"},
        {"--grad-accum", LM_ARG_INT, &o.grad_accum, "gpt2: micro-batches per optimizer step (1)"},
        {"--steps", LM_ARG_LONG, &steps, "optimizer steps (1000)"},
        {"--stop-at", LM_ARG_LONG, &o.stop_at_step, "gpt2: stop after this step (checkpointed), schedule still spans --steps"},
        {"--lr", LM_ARG_FLOAT, &o.lr.max_lr, "peak learning rate (6e-4)"},
        {"--min-lr", LM_ARG_FLOAT, &min_lr, "final learning rate of the cosine decay, in [0, lr] (default lr/10)"},
        {"--warmup", LM_ARG_LONG, &warmup, "linear warmup steps, in [0, steps] (default min(100, steps/10))"},
        {"--weight-decay", LM_ARG_FLOAT, &o.weight_decay, "AdamW decoupled weight decay on matrices (0.1)"},
        {"--beta1", LM_ARG_FLOAT, &beta1, "AdamW beta1, in [0, 1) (0.9)"},
        {"--beta2", LM_ARG_FLOAT, &beta2, "AdamW beta2, in [0, 1) (0.99; mlm: 0.999)"},
        {"--eps", LM_ARG_FLOAT, &eps, "AdamW epsilon, > 0 (1e-8; mlm: 1e-6)"},
        {"--clip", LM_ARG_FLOAT, &o.clip, "global gradient-norm clip, 0 disables (1.0)"},
        {"--eval-every", LM_ARG_LONG, &o.eval_every, "steps between validation runs, 0: only at the end (250)"},
        {"--eval-batches", LM_ARG_INT, &o.eval_batches, "batches per validation run (20)"},
        {"--save-every", LM_ARG_LONG, &o.save_every, "gpt2: steps between checkpoints (default: at each validation)"},
        {"--log-every", LM_ARG_LONG, &log_every, "steps between metrics.jsonl lines (1)"},
        {"--seed", LM_ARG_LONG, &seed, "random seed, >= 0 (1337)"},
        {"--threads", LM_ARG_INT, &threads, "CPU threads, 0: all cores (0)"},
        {"--data-parallel", LM_ARG_INT, &o.data_parallel,
         "gpt2: batch slices run side by side, one per thread (default: one per thread for models up to 384 wide)"},
        {NULL, 0, NULL, NULL},
    };
    int pos[sizeof specs / sizeof *specs] = {0}; /* where each flag was given (argv index, 0: not given) */
    int r = lm_args_parse_given("lmkit train --data DIR --out RUN [options] | lmkit train --resume RUN [--steps N] "
                                "[--stop-at N] [--threads N]",
                                specs, argc, argv, NULL, NULL, pos);
    if (r) return r == 1 ? 0 : 2;
#define LM_GIVEN(name) lm_is_given(specs, pos, name)
    if (threads < 0 || threads > 4096) return lm_fail("train: --threads %d must be in [0, 4096] (0: all cores)", threads);
    if (seed < 0) return lm_fail("train: --seed %ld must be >= 0", seed);
    if (steps < 1) return lm_fail("train: --steps %ld must be >= 1", steps);
    lm_set_threads(threads);
    o.seed = (uint64_t)seed;
    o.steps = steps;
    o.beta1 = beta1;
    o.beta2 = beta2;
    o.eps = eps;
    o.log_every = log_every;
    o.overwrite = overwrite;
    if (resume) {
        const char *extra = lm_first_given(specs, pos, lm_resume_flags, 0);
        if (extra)
            return lm_fail("train: %s cannot be given with --resume: the run keeps its stored options (--resume accepts "
                           "--steps, --stop-at, --threads)",
                           extra);
        if (o.out_dir && strcmp(o.out_dir, resume) != 0) return lm_fail("train: --resume and --out name different runs");
        o.out_dir = resume;
        o.resume = 1;
        o.steps = LM_GIVEN("--steps") ? steps : -1; /* -1: keep the run's own budget */
    } else {
        if (!o.data_dir) return lm_fail("train: --data DIR is required");
        if (!o.out_dir) return lm_fail("train: --out RUN is required");
        o.lr.min_lr = LM_GIVEN("--min-lr") ? min_lr : o.lr.max_lr / 10;
        o.lr.warmup = LM_GIVEN("--warmup") ? warmup : (o.steps / 10 < 100 ? o.steps / 10 : 100);
        o.lr.total = o.steps;
        if (!strcmp(arch, "bert")) {
            if (objective && strcmp(objective, "mlm") != 0) return lm_fail("train: --arch bert supports --objective mlm only (got '%s')", objective);
            const char *unsupported = lm_first_given(specs, pos, lm_mlm_unsupported, 1);
            if (unsupported) return lm_fail("train: %s is not supported with --objective mlm", unsupported);
            lm_mlm_options mo;
            lm_mlm_options_default(&mo);
            mo.data_dir = o.data_dir;
            mo.out_dir = o.out_dir;
            mo.overwrite = overwrite;
            mo.hidden = n_embd;
            mo.n_layer = n_layer;
            mo.n_head = n_head;
            mo.batch = o.batch;
            mo.seq_len = o.seq_len;
            mo.steps = o.steps;
            mo.lr = o.lr.max_lr;
            mo.min_lr = o.lr.min_lr;
            mo.warmup = o.lr.warmup;
            mo.eval_every = o.eval_every;
            mo.eval_batches = o.eval_batches;
            mo.log_every = log_every;
            mo.weight_decay = o.weight_decay;
            /* BERT's own AdamW defaults (HF: beta2 0.999, eps 1e-6) unless given */
            if (LM_GIVEN("--beta1")) mo.beta1 = beta1;
            if (LM_GIVEN("--beta2")) mo.beta2 = beta2;
            if (LM_GIVEN("--eps")) mo.eps = eps;
            mo.clip = o.clip;
            mo.mask_prob = mask_prob;
            mo.whole_word = whole_word;
            mo.seed = o.seed;
            return lm_cli_train_mlm(&mo);
        }
        if (strcmp(arch, "gpt2") != 0) return lm_fail("train: --arch '%s' is not supported (available: gpt2, bert)", arch);
        if (objective && strcmp(objective, "clm") != 0) return lm_fail("train: --arch gpt2 supports --objective clm only (got '%s')", objective);
        const char *mlm_flag = lm_first_given(specs, pos, lm_mlm_only, 1);
        if (mlm_flag) return lm_fail("train: %s is only used with --arch bert --objective mlm", mlm_flag);
        o.model.n_layer = n_layer;
        o.model.n_head = n_head;
        o.model.n_embd = n_embd;
        o.model.n_ctx = n_ctx;
    }
#undef LM_GIVEN
    lm_progress p;
    lm_progress_init(&p);
    lm_status s = lm_train_run(&o, lm_train_report, &p);
    lm_progress_end(&p);
    if (s != LM_OK) return lm_fail_status();
    fprintf(stderr, "saved %s (config.json, model.safetensors, metrics.jsonl, loss.svg)\n", o.out_dir);
    return 0;
}

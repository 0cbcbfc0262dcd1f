/* The pretraining loop: sample batches, forward/backward with gradient
 * accumulation, clip, AdamW under the LR schedule, evaluate, checkpoint.
 *
 * Every random choice is a pure function of (seed, step, micro-step), so a
 * resumed run draws exactly the batches an uninterrupted run would. */
#include "lmkit/train.h"

#include "lmkit/tokenizer.h"
#include "train/checkpoint.h"
#include "tokenizer/tokenizer_files.h"
#include "train/metrics.h"
#include "train/run_dir.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* RNG streams: training batches use stream step * accum + micro; the
 * validation set uses its own fixed streams above this offset. */
#define LM_VAL_STREAM_BASE (1ull << 48)

void lm_train_options_default(lm_train_options *o) {
    memset(o, 0, sizeof *o);
    o->model.arch = LM_ARCH_GPT2;
    o->model.layer_norm_eps = 1e-5f;
    o->model.bos_token_id = o->model.eos_token_id = -1;
    o->batch = 8;
    o->seq_len = 64;
    o->grad_accum = 1;
    o->steps = 1000;
    o->lr = (lm_lr_schedule){6e-4f, 6e-5f, 100, 1000};
    o->weight_decay = 0.1f;
    o->beta1 = 0.9f;
    o->beta2 = 0.99f;
    o->eps = 1e-8f;
    o->clip = 1.0f;
    o->eval_every = 250;
    o->save_every = 0; /* 0: at eval steps and at the end */
    o->log_every = 1;
    o->eval_batches = 20;
    o->seed = 1337;
}

/* Fills ids/targets[B*T] with B random windows of the shard. */
static void lm_sample_batch(const lm_shard *sh, lm_rng *r, int B, int T, int32_t *ids, int32_t *targets) {
    uint64_t span = sh->n_tokens - (uint64_t)T; /* windows need T + 1 tokens */
    for (int b = 0; b < B; b++) {
        uint64_t start = ((lm_rng_u64(r) >> 11) % span);
        for (int t = 0; t < T; t++) {
            ids[b * T + t] = lm_shard_token(sh, start + (uint64_t)t);
            targets[b * T + t] = lm_shard_token(sh, start + (uint64_t)t + 1);
        }
    }
}

lm_status lm_eval_shard_loss(lm_gpt2 *m, const lm_shard *s, int batch, int seq_len, int batches, uint64_t seed, float *loss) {
    if (s->n_tokens < (uint64_t)seq_len + 2)
        return lm_error(LM_ERR_ARG, "validation shard has %llu tokens, need more than seq_len + 1 = %d",
                        (unsigned long long)s->n_tokens, seq_len + 1);
    int32_t *ids = malloc((size_t)batch * seq_len * sizeof *ids), *tg = malloc((size_t)batch * seq_len * sizeof *tg);
    if (!ids || !tg) {
        free(ids);
        free(tg);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    double sum = 0;
    long count = 0;
    lm_status st = LM_OK;
    lm_gpt2_set_grad_enabled(m, 0); /* no backward follows: activations stay in cache */
    for (int i = 0; i < batches && st == LM_OK; i++) {
        lm_rng r;
        lm_rng_seed(&r, seed, LM_VAL_STREAM_BASE + (uint64_t)i);
        lm_sample_batch(s, &r, batch, seq_len, ids, tg);
        st = lm_gpt2_forward(m, ids, tg, batch, seq_len, NULL);
        int counted = 0;
        sum += lm_gpt2_last_loss_sum(m, &counted);
        count += counted;
    }
    lm_gpt2_set_grad_enabled(m, 1);
    free(ids);
    free(tg);
    if (st == LM_OK) *loss = count ? (float)(sum / (double)count) : 0.0f;
    return st;
}

static lm_status lm_open_shards(const char *data_dir, lm_shard *train, lm_shard *val, int seq_len) {
    char *tp = lm_path_join(data_dir, "train.bin"), *vp = lm_path_join(data_dir, "val.bin");
    lm_status s = lm_shard_open(tp, train);
    if (s == LM_OK) {
        s = lm_shard_open(vp, val);
        if (s != LM_OK) lm_shard_close(train);
    }
    if (s == LM_OK && train->n_tokens < (uint64_t)seq_len + 2) {
        s = lm_error(LM_ERR_ARG, "%s: %llu tokens is too few for --seq-len %d", tp, (unsigned long long)train->n_tokens, seq_len);
        lm_shard_close(train);
        lm_shard_close(val);
    }
    free(tp);
    free(vp);
    return s;
}

/* BOS/EOS ids of the data's tokenizer, for config.json. The tokenizer is
 * required: `lmkit prepare` always writes it, and a run without one
 * could not turn its output back into text. */
static lm_status lm_tokenizer_special_ids(const char *data_dir, int *bos, int *eos) {
    char *path = lm_path_join(data_dir, "tokenizer.json");
    lm_tokenizer *tok = NULL;
    *bos = *eos = -1;
    lm_status s = path ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    if (s == LM_OK && !lm_file_exists(path))
        s = lm_error(LM_ERR_IO, "%s: missing (lmkit prepare writes it with the shards; the run needs it to decode text)", path);
    if (s == LM_OK) s = lm_tokenizer_load(path, &tok);
    if (s == LM_OK) {
        *bos = lm_tokenizer_bos_id(tok);
        *eos = lm_tokenizer_eos_id(tok);
    }
    lm_tokenizer_free(tok);
    free(path);
    return s;
}

/* A BERT masked-LM run has a config.json but no checkpoint to resume. */
static int lm_run_is_mlm(const char *run_dir) {
    char *path = lm_path_join(run_dir, "config.json");
    json_t *root = path ? json_load_file(path, 0, NULL) : NULL;
    json_t *mt = root ? json_object_get(root, "model_type") : NULL;
    int bert = json_is_string(mt) && !strcmp(json_string_value(mt), "bert");
    json_decref(root);
    free(path);
    return bert;
}

/* Every option, checked before anything is written. `origin` NULL: the
 * options came from flags, and errors name them (--beta1); else they were
 * read from that trainer_state.json, and errors name the file and key. */
lm_status lm_train_options_check(const lm_train_options *o, const char *origin) {
    const char *pre = origin ? origin : "", *sep = origin ? ": options." : "";
#define LM_OPT(flag, key) pre, sep, origin ? key : flag
#define LM_BAD(fmt, flag, key, ...) return lm_error(LM_ERR_ARG, "%s%s%s " fmt, LM_OPT(flag, key), __VA_ARGS__)
    if (o->batch < 1 || o->batch > (1 << 20)) LM_BAD("%d must be in [1, 1048576]", "--batch", "batch", o->batch);
    if (o->seq_len < 1 || o->seq_len > (1 << 20)) LM_BAD("%d must be in [1, 1048576]", "--seq-len", "seq_len", o->seq_len);
    if ((long long)o->batch * o->seq_len > (1 << 30))
        LM_BAD("%d x --seq-len %d is more than 2^30 tokens per micro-batch", "--batch", "batch", o->batch, o->seq_len);
    if (o->grad_accum < 1 || o->grad_accum > (1 << 20))
        LM_BAD("%d must be in [1, 1048576]", "--grad-accum", "grad_accum", o->grad_accum);
    if (o->steps < 1) LM_BAD("%ld must be >= 1", "--steps", "steps", o->steps);
    if (!(o->lr.max_lr > 0) || !isfinite(o->lr.max_lr)) LM_BAD("%g must be finite and > 0", "--lr", "max_lr", o->lr.max_lr);
    if (!(o->lr.min_lr >= 0 && o->lr.min_lr <= o->lr.max_lr))
        LM_BAD("%g must be in [0, --lr %g]", "--min-lr", "min_lr", o->lr.min_lr, o->lr.max_lr);
    if (o->lr.warmup < 0 || o->lr.warmup > o->lr.total)
        LM_BAD("%ld must be in [0, %ld] (the schedule's steps)", "--warmup", "warmup", o->lr.warmup, o->lr.total);
    if (o->lr.total < 1) LM_BAD("%ld must be >= 1", "--steps", "lr_total", o->lr.total);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        LM_BAD("%g must be finite and >= 0", "--weight-decay", "weight_decay", o->weight_decay);
    /* beta 1 never forgets the first moment and its bias correction divides by 1 - beta^t = 0 */
    if (!(o->beta1 >= 0 && o->beta1 < 1)) LM_BAD("%g must be in [0, 1)", "--beta1", "beta1", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1)) LM_BAD("%g must be in [0, 1)", "--beta2", "beta2", o->beta2);
    if (!(o->eps > 0) || !isfinite(o->eps)) LM_BAD("%g must be finite and > 0", "--eps", "eps", o->eps);
    if (!(o->clip >= 0) || !isfinite(o->clip)) LM_BAD("%g must be finite and >= 0 (0 disables)", "--clip", "clip", o->clip);
    if (o->eval_every < 0) LM_BAD("%ld must be >= 0 (0: only at the end)", "--eval-every", "eval_every", o->eval_every);
    if (o->save_every < 0)
        LM_BAD("%ld must be >= 0 (0: at each validation)", "--save-every", "save_every", o->save_every);
    if (o->log_every < 1) LM_BAD("%ld must be >= 1", "--log-every", "log_every", o->log_every);
    if (o->eval_batches < 1 || o->eval_batches > (1 << 20))
        LM_BAD("%d must be in [1, 1048576]", "--eval-batches", "eval_batches", o->eval_batches);
    if (o->data_parallel < 0 || o->data_parallel > LM_GPT2_MAX_PARTS)
        LM_BAD("%d must be in [0, %d] (0: automatic)", "--data-parallel", "data_parallel", o->data_parallel, LM_GPT2_MAX_PARTS);
    if (o->stop_at_step < 0) LM_BAD("%ld must be >= 0 (0: run all --steps)", "--stop-at", "stop_at", o->stop_at_step);
#undef LM_BAD
#undef LM_OPT
    return LM_OK;
}

typedef struct {
    lm_train_options o;
    lm_gpt2 *model;
    lm_adamw opt;
    lm_shard train, val;
    lm_metrics metrics;
    long start_step;
    char *resumed_data_dir; /* owned copy when the options came from a checkpoint */
    lm_run_stage stage;     /* a new run, until its first checkpoint */
    const char *dir;        /* where run files go now: the stage, then o.out_dir */
} lm_trainer;

/* The stored options of the run being resumed; they win, except the step budget. */
static lm_status lm_trainer_resume_options(lm_trainer *tr, const lm_train_options *opts, char **ckpt_dir) {
    char *latest = lm_path_join(opts->out_dir, "latest_checkpoint");
    int has_ckpt = latest && lm_file_exists(latest);
    free(latest);
    if (!has_ckpt && lm_run_is_mlm(opts->out_dir))
        return lm_error(LM_ERR_UNSUPPORTED,
                        "%s: a BERT masked-LM run (--objective mlm) cannot be resumed; it keeps no optimizer checkpoint",
                        opts->out_dir);
    lm_train_options stored = *opts;
    LM_TRY(lm_checkpoint_read_state(opts->out_dir, &stored, &tr->start_step, ckpt_dir));
    tr->resumed_data_dir = (char *)stored.data_dir;
    stored.out_dir = opts->out_dir;
    stored.resume = 1;
    stored.stop_at_step = opts->stop_at_step;
    if (opts->steps > 0 && opts->steps != stored.steps) {
        stored.steps = opts->steps;
        stored.lr.total = opts->steps; /* the cosine spans the new budget */
    }
    tr->o = stored;
    if (tr->start_step >= tr->o.steps)
        return lm_error(LM_ERR_ARG, "%s: already at step %ld; pass --steps N > %ld to continue", opts->out_dir, tr->start_step,
                        tr->start_step);
    return LM_OK;
}

/* A new run's model configuration, from the flags and the data. */
static lm_status lm_trainer_new_config(lm_trainer *tr, lm_model_config *cfg) {
    *cfg = tr->o.model;
    cfg->vocab_size = tr->train.vocab_size;
    LM_TRY(lm_tokenizer_special_ids(tr->o.data_dir, &cfg->bos_token_id, &cfg->eos_token_id));
    if (cfg->n_ctx == 0) cfg->n_ctx = tr->o.seq_len;
    if (cfg->n_inner == 0) cfg->n_inner = 4 * cfg->n_embd;
    tr->o.model = *cfg;
    return lm_config_validate(cfg);
}

/* A new run's first files, in its staging directory. */
static lm_status lm_trainer_begin_files(lm_trainer *tr, const lm_model_config *cfg) {
    LM_TRY(lm_run_stage_begin(&tr->stage, tr->o.out_dir, tr->o.overwrite));
    tr->dir = tr->stage.stage;
    char *cfg_path = lm_path_join(tr->dir, "config.json");
    lm_status s = cfg_path ? lm_config_save(cfg, cfg_path) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(cfg_path);
    if (s == LM_OK) s = lm_copy_tokenizer_files(tr->o.data_dir, tr->dir);
    return s;
}

/* Everything is read and checked before the first file is written. */
static lm_status lm_trainer_setup(lm_trainer *tr, const lm_train_options *opts) {
    tr->o = *opts;
    tr->dir = opts->out_dir;
    char *ckpt_dir = NULL;
    lm_status s = opts->resume ? lm_trainer_resume_options(tr, opts, &ckpt_dir) : LM_OK;
    if (s == LM_OK) s = lm_train_options_check(&tr->o, NULL);
    if (s == LM_OK && !opts->resume) s = lm_run_stage_check(opts->out_dir, opts->overwrite);
    if (s == LM_OK) s = lm_open_shards(tr->o.data_dir, &tr->train, &tr->val, tr->o.seq_len);
    lm_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (s == LM_OK && opts->resume) {
        char *cfg_path = lm_path_join(tr->o.out_dir, "config.json");
        s = lm_config_load(cfg_path, &cfg);
        free(cfg_path);
    } else if (s == LM_OK) {
        s = lm_trainer_new_config(tr, &cfg);
    }
    if (s == LM_OK && tr->o.seq_len > cfg.n_ctx)
        s = lm_error(LM_ERR_ARG, "--seq-len %d exceeds the model context %d", tr->o.seq_len, cfg.n_ctx);
    if (s == LM_OK && cfg.vocab_size != tr->train.vocab_size)
        s = lm_error(LM_ERR_ARG, "%s: data vocabulary %d does not match the model's %d", tr->o.data_dir, tr->train.vocab_size,
                     cfg.vocab_size);
    if (s == LM_OK) s = lm_gpt2_create(&cfg, 1, tr->o.seed, &tr->model);
    if (s == LM_OK && tr->o.data_parallel == 0) tr->o.data_parallel = lm_gpt2_auto_parts(&cfg, tr->o.batch, lm_get_threads());
    if (s == LM_OK) s = lm_gpt2_set_data_parallel(tr->model, tr->o.data_parallel);
    if (s == LM_OK)
        s = lm_adamw_init(&tr->opt, lm_gpt2_params(tr->model)->total, tr->o.beta1, tr->o.beta2, tr->o.eps, tr->o.weight_decay);
    if (s == LM_OK && ckpt_dir) s = lm_checkpoint_load(ckpt_dir, tr->model, &tr->opt);
    free(ckpt_dir);
    if (s == LM_OK && !opts->resume) s = lm_trainer_begin_files(tr, &cfg);
    if (s == LM_OK) s = lm_metrics_open(&tr->metrics, tr->dir, opts->resume ? tr->start_step : -1);
    return s;
}

/* After a checkpoint: a new run's directory takes its place whole. */
static lm_status lm_trainer_commit(lm_trainer *tr) {
    if (!tr->stage.begun || tr->stage.committed) return LM_OK;
    LM_TRY(lm_run_stage_commit(&tr->stage));
    tr->dir = tr->o.out_dir;
    return lm_metrics_move(&tr->metrics, tr->dir);
}

static void lm_trainer_teardown(lm_trainer *tr) {
    free(tr->resumed_data_dir);
    lm_metrics_close(&tr->metrics);
    lm_adamw_free(&tr->opt);
    lm_gpt2_free(tr->model);
    lm_shard_close(&tr->train);
    lm_shard_close(&tr->val);
    lm_run_stage_end(&tr->stage); /* a run that never checkpointed leaves nothing */
}

lm_status lm_train_run(const lm_train_options *opts, lm_train_callback cb, void *user) {
    lm_trainer tr;
    memset(&tr, 0, sizeof tr);
    lm_status s = lm_trainer_setup(&tr, opts);
    if (s != LM_OK) {
        lm_trainer_teardown(&tr);
        return s;
    }
    const lm_train_options *o = &tr.o;
    int B = o->batch, T = o->seq_len, K = o->grad_accum;
    int32_t *ids = malloc((size_t)B * T * sizeof *ids), *tg = malloc((size_t)B * T * sizeof *tg);
    const lm_param_table *tab = lm_gpt2_params(tr.model);
    uint8_t *covered = malloc((size_t)tab->n);
    if (!ids || !tg || !covered) s = lm_error(LM_ERR_NOMEM, "out of memory");
    double t_start = lm_now_seconds(), step_time_sum = 0;
    long steps_timed = 0;
    /* --stop-at ends this invocation early (after a checkpoint) while the
     * schedule still spans all of --steps: a time-boxed job, or a test of resume. */
    long stop = o->steps;
    if (o->stop_at_step > tr.start_step && o->stop_at_step < stop) stop = o->stop_at_step;
    for (long step = tr.start_step; step < stop && s == LM_OK; step++) {
        double t0 = lm_now_seconds();
        lm_gpt2_zero_grad(tr.model);
        float loss_sum = 0;
        for (int k = 0; k < K && s == LM_OK; k++) {
            lm_rng r;
            lm_rng_seed(&r, o->seed, (uint64_t)step * (uint64_t)K + (uint64_t)k);
            lm_sample_batch(&tr.train, &r, B, T, ids, tg);
            float loss = 0;
            s = lm_gpt2_forward(tr.model, ids, tg, B, T, &loss);
            if (s == LM_OK) s = lm_gpt2_backward(tr.model, 1.0f / (float)K);
            loss_sum += loss;
        }
        if (s != LM_OK) break;
        float loss = loss_sum / (float)K;
        if (!isfinite(loss)) {
            s = lm_error(LM_ERR_RANGE, "loss became %g at step %ld; lower --lr or raise --warmup", loss, step + 1);
            break;
        }
        /* The weight matrices' share of the norm came with their gradient
         * GEMMs (one backward per step); a pass sums the rest. */
        double sq = lm_gpt2_fused_sum_squares(tr.model, covered);
        double norm = sqrt(sq + lm_grad_sum_squares(tab, lm_gpt2_grad_data(tr.model), NULL, covered));
        float clip_scale = lm_clip_scale(norm, o->clip);
        float lr = lm_lr_at(&o->lr, step);
        lm_adamw_step_scaled(&tr.opt, tab, lm_gpt2_param_data(tr.model), lm_gpt2_grad_data(tr.model), lr, clip_scale);
        double dt = lm_now_seconds() - t0;
        step_time_sum += dt;
        steps_timed++;

        long done = step + 1;
        int last = done == stop;
        lm_train_event ev = {0};
        ev.step = done;
        ev.total_steps = o->steps;
        ev.loss = loss;
        ev.lr = lr;
        ev.grad_norm = norm;
        ev.tokens_per_sec = (double)B * T * K / dt;
        ev.elapsed_s = lm_now_seconds() - t_start;
        ev.eta_s = step_time_sum / (double)steps_timed * (double)(o->steps - done);
        if ((o->eval_every > 0 && done % o->eval_every == 0) || done == o->steps) {
            s = lm_eval_shard_loss(tr.model, &tr.val, B, T, o->eval_batches, o->seed, &ev.val_loss);
            ev.has_val = s == LM_OK;
        }
        if (s == LM_OK && (ev.has_val || done % (o->log_every > 0 ? o->log_every : 1) == 0 || last))
            s = lm_metrics_log(&tr.metrics, done, loss, lr, norm, ev.tokens_per_sec, ev.elapsed_s, ev.has_val, ev.val_loss);
        int save = last || (o->save_every > 0 ? done % o->save_every == 0 : ev.has_val);
        if (s == LM_OK && save) {
            s = lm_checkpoint_save(tr.dir, tr.model, &tr.opt, done, o);
            if (s == LM_OK) s = lm_trainer_commit(&tr);
            if (s == LM_OK) s = lm_metrics_plot(&tr.metrics);
            ev.saved = s == LM_OK;
        }
        if (cb && s == LM_OK) cb(&ev, user);
    }
    free(ids);
    free(tg);
    free(covered);
    lm_trainer_teardown(&tr);
    return s;
}

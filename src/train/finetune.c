/* Fine-tuning an encoder for sequence classification or regression:
 * validate all data first (so a bad row never leaves a half-written run),
 * then shuffled mini-batches with dynamic padding, AdamW under a linear
 * warmup/decay schedule (transformers.Trainer's default), evaluation each
 * epoch or every N steps, and the best evaluation's weights kept as a
 * Hugging Face directory. LoRA trains only adapters + classifier. */
#include "lmkit/finetune.h"

#include "lmkit/kernels.h"
#include "lmkit/train.h"
#include "train/metrics.h"
#include "tokenizer/tokenizer_files.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lm_finetune_options_default(lm_finetune_options *o) {
    memset(o, 0, sizeof *o);
    o->problem = LM_PROBLEM_SINGLE_LABEL;
    o->epochs = 3;
    o->batch = 8;
    o->max_len = 0; /* 128, or the model's limit if smaller */
    o->lr = 2e-5f;
    o->clip = 1.0f;
    o->lora_alpha = 16;
    o->seed = 42;
    o->dropout = -1; /* the model config's */
}

/* Linear warmup to lr, then linear decay to 0 at `total`. */
static float lm_linear_lr(float lr, long warmup, long total, long step) {
    if (step < warmup) return lr * (float)(step + 1) / (float)warmup;
    if (total <= warmup) return lr;
    float f = (float)(total - step) / (float)(total - warmup);
    return f > 0 ? lr * f : 0.0f;
}

static void lm_note(lm_finetune_callback cb, void *user, const char *text) {
    if (!cb) return;
    lm_finetune_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = 2;
    ev.text = text;
    cb(&ev, user);
}

typedef struct {
    lm_text_dataset train, eval;
    lm_text_examples train_ex, eval_ex;
    int32_t *train_ids, *eval_ids;
    float *train_vals, *eval_vals;
    char **names;
    int n_labels;
} lm_ft_data;

static void lm_ft_data_free(lm_ft_data *d) {
    lm_text_dataset_free(&d->train);
    lm_text_dataset_free(&d->eval);
    lm_text_examples_free(&d->train_ex);
    lm_text_examples_free(&d->eval_ex);
    free(d->train_ids);
    free(d->eval_ids);
    free(d->train_vals);
    free(d->eval_vals);
    lm_labels_free(d->names, d->n_labels);
}

/* Loads and checks both datasets and the label map against the model. */
static lm_status lm_ft_load_data(const lm_finetune_options *o, const lm_tokenizer *tok, const lm_bert_config *mc, lm_ft_data *d,
                                 lm_finetune_callback cb, void *user) {
    lm_text_dataset_options dopt = o->data;
    dopt.need_labels = 1;
    LM_TRY(lm_text_dataset_load(o->train_path, &dopt, &d->train));
    LM_TRY(lm_text_dataset_load(o->eval_path, &dopt, &d->eval));
    char note[512];
    const lm_text_dataset *sets[2] = {&d->train, &d->eval};
    for (int i = 0; i < 2; i++)
        if (sets[i]->blank_lines) {
            snprintf(note, sizeof note, "warning: %s: skipped %d blank line%s (first at line %d)", sets[i]->path, sets[i]->blank_lines,
                     sets[i]->blank_lines == 1 ? "" : "s", sets[i]->first_blank_line);
            lm_note(cb, user, note);
        }
    if (o->problem == LM_PROBLEM_REGRESSION) {
        d->train_vals = malloc((size_t)d->train.n * sizeof(float));
        d->eval_vals = malloc((size_t)d->eval.n * sizeof(float));
        if (!d->train_vals || !d->eval_vals) return lm_error(LM_ERR_NOMEM, "out of memory");
        LM_TRY(lm_dataset_label_values(&d->train, d->train_vals));
        LM_TRY(lm_dataset_label_values(&d->eval, d->eval_vals));
        if (mc->head == LM_BERT_HEAD_CLS && mc->num_labels != 1)
            return lm_error(LM_ERR_ARG, "the model has a %d-label head; regression needs 1 (start from a base model)", mc->num_labels);
    } else {
        /* A model that was fine-tuned already keeps its label map; a base
         * model takes the training data's labels. */
        int named = mc->head == LM_BERT_HEAD_CLS && mc->labels && strncmp(mc->labels[0], "LABEL_", 6) != 0;
        if (named) {
            d->n_labels = mc->num_labels;
            d->names = calloc((size_t)d->n_labels, sizeof *d->names);
            if (!d->names) return lm_error(LM_ERR_NOMEM, "out of memory");
            for (int i = 0; i < d->n_labels; i++)
                if (!(d->names[i] = strdup(mc->labels[i]))) return lm_error(LM_ERR_NOMEM, "out of memory");
        } else {
            LM_TRY(lm_dataset_label_names(&d->train, &d->names, &d->n_labels));
            if (d->n_labels < 2) return lm_error(LM_ERR_FORMAT, "%s: only one distinct label ('%s'); classification needs at least 2", o->train_path, d->names[0]);
            if (mc->head == LM_BERT_HEAD_CLS && mc->num_labels != d->n_labels)
                return lm_error(LM_ERR_ARG, "the model's head has %d labels but %s has %d; start from a base model or matching data",
                                mc->num_labels, o->train_path, d->n_labels);
        }
        d->train_ids = malloc((size_t)d->train.n * sizeof(int32_t));
        d->eval_ids = malloc((size_t)d->eval.n * sizeof(int32_t));
        if (!d->train_ids || !d->eval_ids) return lm_error(LM_ERR_NOMEM, "out of memory");
        LM_TRY(lm_dataset_label_ids(&d->train, d->names, d->n_labels, d->train_ids));
        LM_TRY(lm_dataset_label_ids(&d->eval, d->names, d->n_labels, d->eval_ids));
    }
    LM_TRY(lm_text_examples_build(tok, &d->train, o->max_len, &d->train_ex));
    LM_TRY(lm_text_examples_build(tok, &d->eval, o->max_len, &d->eval_ex));
    const lm_text_examples *exs[2] = {&d->train_ex, &d->eval_ex};
    for (int i = 0; i < 2; i++)
        if (exs[i]->truncated) {
            snprintf(note, sizeof note, "warning: %s: %d row%s longer than --max-len %d tokens, truncated", sets[i]->path, exs[i]->truncated,
                     exs[i]->truncated == 1 ? "" : "s", o->max_len);
            lm_note(cb, user, note);
        }
    return LM_OK;
}

/* Is evaluation a better than the best so far? */
static int lm_better(const lm_finetune_options *o, const lm_cls_metrics *a, const lm_cls_metrics *best, int have_best) {
    if (!have_best) return 1;
    if (o->problem == LM_PROBLEM_REGRESSION) return a->rmse < best->rmse;
    /* Equal accuracy (common on small eval sets): the lower loss wins. */
    return a->accuracy > best->accuracy || (a->accuracy == best->accuracy && a->loss < best->loss);
}

/* Writes the run directory: config + weights (LoRA: merged into a copy of
 * the weights, adapters separately), tokenizer files. */
static lm_status lm_ft_save(const lm_finetune_options *o, lm_bert *m, lm_lora *lora) {
    if (!lora) return lm_bert_save_dir(m, o->out_dir);
    float *P = lm_bert_param_data(m);
    size_t n = lm_bert_params(m)->total;
    float *backup = malloc(n * sizeof(float));
    if (!backup) return lm_error(LM_ERR_NOMEM, "out of memory");
    memcpy(backup, P, n * sizeof(float));
    lm_lora_add_to_weights(m, lora);
    lm_status s = lm_bert_save_dir(m, o->out_dir);
    memcpy(P, backup, n * sizeof(float));
    free(backup);
    char *ad = lm_path_join(o->out_dir, "adapter");
    if (s == LM_OK) s = lm_lora_save_dir(lora, ad, o->model_dir);
    free(ad);
    return s;
}

static lm_status lm_ft_eval_json(char **log, size_t *len, const char *path, long step, int epoch, const lm_cls_metrics *e, int regress) {
    char line[256];
    int k = regress ? snprintf(line, sizeof line, "{\"step\": %ld, \"epoch\": %d, \"eval_loss\": %.6f, \"rmse\": %.6f, \"pearson\": %.6f}\n", step,
                               epoch, e->loss, e->rmse, e->pearson)
                    : snprintf(line, sizeof line, "{\"step\": %ld, \"epoch\": %d, \"eval_loss\": %.6f, \"accuracy\": %.6f, \"macro_f1\": %.6f}\n",
                               step, epoch, e->loss, e->accuracy, e->macro_f1);
    char *g = realloc(*log, *len + (size_t)k + 1);
    if (!g) return lm_error(LM_ERR_NOMEM, "out of memory");
    memcpy(g + *len, line, (size_t)k + 1);
    *log = g;
    *len += (size_t)k;
    return lm_write_file_atomic(path, *log, *len);
}

lm_status lm_finetune_run(const lm_finetune_options *o, lm_finetune_callback cb, void *user) {
    if (!o->model_dir || !o->train_path || !o->eval_path || !o->out_dir)
        return lm_error(LM_ERR_ARG, "finetune: model, train, eval and out paths are required");
    if (o->epochs < 1 || o->batch < 1) return lm_error(LM_ERR_ARG, "finetune: epochs %d and batch %d must be >= 1", o->epochs, o->batch);
    if (!(o->lr > 0)) return lm_error(LM_ERR_ARG, "finetune: learning rate %g must be positive", o->lr);
    char *cfg_path = lm_path_join(o->model_dir, "config.json");
    lm_bert_config mc;
    lm_status s = lm_bert_config_load(cfg_path, &mc);
    free(cfg_path);
    LM_TRY(s);
    lm_finetune_options oo = *o;
    if (oo.max_len <= 0) oo.max_len = mc.max_pos < 128 ? mc.max_pos : 128;
    o = &oo;
    if (o->max_len > mc.max_pos) {
        lm_bert_config_free(&mc);
        return lm_error(LM_ERR_ARG, "finetune: --max-len %d exceeds the model's max_position_embeddings %d", o->max_len, mc.max_pos);
    }
    lm_tokenizer *tok = NULL;
    lm_ft_data d;
    memset(&d, 0, sizeof d);
    lm_bert *m = NULL;
    lm_lora *lora = NULL;
    lm_adamw opt, opt_lora;
    memset(&opt, 0, sizeof opt);
    memset(&opt_lora, 0, sizeof opt_lora);
    lm_metrics mt;
    memset(&mt, 0, sizeof mt);
    int *order = NULL;
    int32_t *ids = NULL, *mask = NULL, *bl = NULL;
    float *bv = NULL;
    char *eval_log = NULL, *eval_path = NULL;
    size_t eval_len = 0;
    lm_param_table head = {0};
    /* Full fine-tuning: word-embedding rows of the token ids seen so far
     * (the only rows whose gradient, moments and values can have changed). */
    uint8_t *live = NULL, *fused = NULL;
    lm_row_runs runs = {.param = -1};
    int regress = o->problem == LM_PROBLEM_REGRESSION;

    s = lm_tokenizer_load(o->model_dir, &tok);
    if (s == LM_OK) s = lm_ft_load_data(o, tok, &mc, &d, cb, user);
    if (s == LM_OK) {
        lm_bert_open_options bo;
        lm_bert_open_options_default(&bo);
        bo.head = LM_BERT_HEAD_CLS;
        bo.train = 1;
        bo.seed = o->seed;
        bo.problem = o->problem;
        bo.num_labels = regress ? 1 : d.n_labels;
        bo.labels = regress ? NULL : (const char *const *)d.names;
        s = lm_bert_open_dir(o->model_dir, &bo, &m);
    }
    if (s == LM_OK && lm_bert_new_tensors(m)) {
        char note[160];
        snprintf(note, sizeof note, "note: %d head tensor%s newly initialised (pooler/classifier absent from the checkpoint)",
                 lm_bert_new_tensors(m), lm_bert_new_tensors(m) == 1 ? "" : "s");
        lm_note(cb, user, note);
    }
    if (s == LM_OK && o->lora_rank > 0) s = lm_lora_attach(m, o->lora_rank, o->lora_alpha, o->seed, &lora);
    const lm_param_table *tab = m ? lm_bert_params(m) : NULL;
    if (s == LM_OK) {
        if (lora) {
            /* Only the classifier trains besides the adapters: a table of
             * just its tensors (same offsets) drives the optimizer. */
            for (int i = 0; i < tab->n; i++)
                if (!strncmp(tab->params[i].name, "classifier.", 11)) {
                    lm_param *g = realloc(head.params, (size_t)(head.n + 1) * sizeof *g);
                    if (!g) break;
                    head.params = g;
                    head.params[head.n++] = tab->params[i];
                }
            head.total = tab->total;
            s = lm_adamw_init(&opt, tab->total, 0.9f, 0.999f, 1e-8f, o->weight_decay);
            if (s == LM_OK) s = lm_adamw_init(&opt_lora, lm_lora_params(lora)->total, 0.9f, 0.999f, 1e-8f, o->weight_decay);
        } else {
            s = lm_adamw_init(&opt, tab->total, 0.9f, 0.999f, 1e-8f, o->weight_decay);
        }
    }
    if (s == LM_OK) {
        /* Dropout as transformers trains the model: the config's
         * hidden_dropout_prob, attention_probs_dropout_prob and
         * classifier_dropout (null: the hidden one). */
        const lm_bert_config *bc = lm_bert_get_config(m);
        float hidden = o->dropout >= 0 ? o->dropout : bc->hidden_dropout;
        float attn = o->dropout >= 0 ? o->dropout : bc->attn_dropout;
        float cls = o->dropout >= 0 ? o->dropout : bc->classifier_dropout >= 0 ? bc->classifier_dropout : bc->hidden_dropout;
        lm_bert_set_dropout(m, hidden, cls, o->seed);
        lm_bert_set_attention_dropout(m, attn);
        lm_bert_set_training(m, 1);
        char note[160];
        snprintf(note, sizeof note, "dropout %g on hidden states, %g on attention probabilities, %g on the pooled output", hidden,
                 attn, cls);
        lm_note(cb, user, note);
    }
    int N = d.train.n, B = o->batch;
    long steps_per_epoch = (N + B - 1) / B, total = steps_per_epoch * o->epochs;
    if (s == LM_OK) {
        order = malloc((size_t)N * sizeof *order);
        ids = malloc((size_t)B * o->max_len * sizeof *ids);
        mask = malloc((size_t)B * o->max_len * sizeof *mask);
        bl = malloc((size_t)B * sizeof *bl);
        bv = malloc((size_t)B * sizeof *bv);
        if (!order || !ids || !mask || !bl || !bv) s = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    int vocab = mc.vocab_size;
    if (s == LM_OK && !lora) {
        for (int i = 0; i < tab->n; i++) {
            size_t len = strlen(tab->params[i].name);
            if (len >= 22 && !strcmp(tab->params[i].name + len - 22, "word_embeddings.weight")) runs.param = i;
        }
        runs.row_len = (size_t)mc.hidden;
        live = calloc((size_t)vocab, 1);
        runs.start = malloc(((size_t)vocab / 2 + 1) * sizeof *runs.start);
        runs.end = malloc(((size_t)vocab / 2 + 1) * sizeof *runs.end);
        fused = malloc((size_t)tab->n);
        if (!live || !runs.start || !runs.end || !fused) s = lm_error(LM_ERR_NOMEM, "out of memory");
        /* the weight matrices' squares are summed as their gradients are stored */
        if (s == LM_OK) lm_bert_set_fused_norm(m, 1);
    }
    /* Everything is validated: only now does the run directory appear. */
    if (s == LM_OK) s = lm_mkdir_p(o->out_dir);
    if (s == LM_OK) s = lm_metrics_open(&mt, o->out_dir, -1);
    if (s == LM_OK && !(eval_path = lm_path_join(o->out_dir, "eval.jsonl"))) s = lm_error(LM_ERR_NOMEM, "out of memory");

    lm_cls_metrics best;
    memset(&best, 0, sizeof best);
    int have_best = 0, since_best = 0, stop = 0;
    if (s == LM_OK) lm_bert_zero_grad(m); /* and the adapters'; from here on each update zeroes what it read */
    if (s == LM_OK) lm_bert_set_pooled_only(m, 1); /* the classification head reads [CLS] only */
    double t0 = lm_now_seconds();
    long step = 0;
    for (int epoch = 0; epoch < o->epochs && s == LM_OK && !stop; epoch++) {
        for (int i = 0; i < N; i++) order[i] = i;
        lm_rng r;
        lm_rng_seed(&r, o->seed, 77 + (uint64_t)epoch);
        for (int i = N - 1; i > 0; i--) {
            int j = (int)lm_rng_below(&r, (uint32_t)i + 1), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (long bi = 0; bi < steps_per_epoch && s == LM_OK && !stop; bi++) {
            int start = (int)(bi * B), nb = N - start < B ? N - start : B;
            const int *rows = order + start;
            int T = lm_text_examples_batch(&d.train_ex, rows, nb, mc.pad_token_id, ids, mask);
            for (int b = 0; b < nb; b++) {
                if (regress) bv[b] = d.train_vals[rows[b]];
                else bl[b] = d.train_ids[rows[b]];
            }
            lm_bert_batch in = {nb, T, ids, NULL, mask};
            float loss = 0;
            s = lm_bert_encode(m, &in);
            if (s == LM_OK) s = lm_bert_cls_forward(m, regress ? NULL : bl, regress ? bv : NULL, &loss);
            if (s != LM_OK) break;
            /* Only gradients that can be nonzero are summed and updated
             * (and zeroed, by the update itself: they start zero): under
             * LoRA the classifier's (the encoder is frozen), else every
             * tensor but the word embeddings, of which only the rows of
             * tokens seen so far. */
            float *G = lm_bert_grad_data(m);
            const lm_param_table *trained = lora ? &head : tab;
            const lm_row_runs *sparse = NULL;
            if (live) {
                int grew = 0;
                for (int i = 0; i < nb * T; i++)
                    if (ids[i] >= 0 && ids[i] < vocab && !live[ids[i]]) live[ids[i]] = 1, grew = 1;
                if (grew) lm_row_runs_from(&runs, live, vocab);
                if (runs.param >= 0) sparse = &runs;
            }
            s = lm_bert_backward(m, 1.0f);
            if (s != LM_OK) break;
            /* Global-norm clipping folded into the update (no pass of its
             * own); the weight matrices' share came with their GEMMs. */
            double sq = fused ? lm_bert_fused_sum_squares(m, fused) : 0;
            double gnorm = sqrt(sq + lm_grad_sum_squares(trained, G, sparse, fused) +
                                (lora ? lm_sum_squares(lm_lora_grad_data(lora), lm_lora_params(lora)->total) : 0));
            float clip_scale = lm_clip_scale(gnorm, o->clip);
            float lr = lm_linear_lr(o->lr, o->warmup, total, step);
            lm_adamw_step_rows(&opt, trained, lm_bert_param_data(m), G, lr, clip_scale, sparse, 1);
            if (lora)
                lm_adamw_step_rows(&opt_lora, lm_lora_params(lora), lm_lora_param_data(lora), lm_lora_grad_data(lora), lr,
                                   clip_scale, NULL, 1);
            step++;
            double el = lm_now_seconds() - t0;
            int do_eval = o->eval_every > 0 ? (step % o->eval_every == 0 || step == total) : bi == steps_per_epoch - 1;
            lm_finetune_event ev;
            memset(&ev, 0, sizeof ev);
            ev.step = step;
            ev.total_steps = total;
            ev.epoch = epoch + 1;
            ev.loss = loss;
            ev.lr = lr;
            ev.elapsed_s = el;
            ev.eta_s = el / step * (total - step);
            ev.rows_per_sec = (double)step * B / el;
            if (cb) cb(&ev, user);
            lm_cls_metrics em;
            memset(&em, 0, sizeof em);
            if (do_eval) {
                lm_bert_set_training(m, 0);
                s = lm_bert_evaluate(m, &d.eval_ex, d.eval_ids, d.eval_vals, 32, &em, NULL);
                lm_bert_set_training(m, 1);
                if (s != LM_OK) break;
                ev.kind = 1;
                ev.eval = em;
                ev.best = lm_better(o, &em, &best, have_best);
                if (ev.best) {
                    best = em;
                    have_best = 1;
                    since_best = 0;
                    s = lm_ft_save(o, m, lora);
                    if (s == LM_OK) s = lm_copy_tokenizer_files(o->model_dir, o->out_dir);
                } else if (o->early_stop > 0 && ++since_best >= o->early_stop) {
                    stop = 1;
                }
                if (s == LM_OK) s = lm_ft_eval_json(&eval_log, &eval_len, eval_path, step, epoch + 1, &em, regress);
                if (cb) cb(&ev, user);
            }
            if (s == LM_OK) s = lm_metrics_log(&mt, step, loss, lr, gnorm, ev.rows_per_sec, el, do_eval, (float)em.loss);
            if (s == LM_OK && do_eval) s = lm_metrics_plot(&mt);
            if (stop) lm_note(cb, user, "early stop: no improvement in the last evaluations");
        }
    }
    lm_metrics_close(&mt);
    free(eval_log);
    free(eval_path);
    free(order);
    free(ids);
    free(mask);
    free(bl);
    free(bv);
    free(head.params);
    free(live);
    free(fused);
    free(runs.start);
    free(runs.end);
    lm_adamw_free(&opt);
    lm_adamw_free(&opt_lora);
    lm_bert_free(m);
    lm_ft_data_free(&d);
    lm_tokenizer_free(tok);
    lm_bert_config_free(&mc);
    return s;
}

/* Masked-LM pretraining: BERT's 15% / 80-10-10 masking (optionally whole
 * words) and the training loop over token shards. */
#include "lmkit/mlm.h"

#include "lmkit/kernels.h"
#include "lmkit/train.h"
#include "train/metrics.h"
#include "train/run_dir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LM_MLM_VAL_STREAM (1ull << 40)

lm_status lm_mlm_masker_init(lm_mlm_masker *mk, const lm_tokenizer *tok, int vocab_size, float prob, int whole_word) {
    memset(mk, 0, sizeof *mk);
    if (!(prob > 0 && prob < 1)) return lm_error(LM_ERR_ARG, "mlm: mask probability %g out of range (0, 1)", prob);
    mk->mask_id = lm_tokenizer_token_to_id(tok, "[MASK]");
    if (mk->mask_id < 0 || mk->mask_id >= vocab_size) return lm_error(LM_ERR_FORMAT, "mlm: the tokenizer has no [MASK] token");
    mk->prob = prob;
    mk->whole_word = whole_word;
    mk->vocab_size = vocab_size;
    mk->special = calloc((size_t)vocab_size, 1);
    mk->continuation = calloc((size_t)vocab_size, 1);
    if (!mk->special || !mk->continuation) {
        lm_mlm_masker_free(mk);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < vocab_size; i++) {
        mk->special[i] = (uint8_t)lm_tokenizer_is_special(tok, i);
        const char *t = lm_tokenizer_id_to_token(tok, i);
        mk->continuation[i] = t && t[0] == '#' && t[1] == '#';
    }
    return LM_OK;
}

void lm_mlm_masker_free(lm_mlm_masker *mk) {
    free(mk->special);
    free(mk->continuation);
    memset(mk, 0, sizeof *mk);
}

int lm_mlm_mask(const lm_mlm_masker *mk, lm_rng *r, int32_t *ids, int32_t *labels, int n) {
    int selected = 0;
    for (int i = 0; i < n;) {
        int end = i + 1;
        /* A whole word: this token plus the "##" pieces that follow it. */
        if (mk->whole_word)
            while (end < n && mk->continuation[ids[end]] && !mk->special[ids[end]]) end++;
        int pick = !mk->special[ids[i]] && lm_rng_uniform(r) < mk->prob;
        for (int j = i; j < end; j++) {
            labels[j] = -100;
            if (!pick || mk->special[ids[j]]) continue;
            labels[j] = ids[j];
            selected++;
            float u = lm_rng_uniform(r);
            if (u < 0.8f) ids[j] = mk->mask_id;
            else if (u < 0.9f) ids[j] = (int32_t)lm_rng_below(r, (uint32_t)mk->vocab_size);
        }
        i = end;
    }
    return selected;
}

void lm_mlm_options_default(lm_mlm_options *o) {
    memset(o, 0, sizeof *o);
    o->hidden = 128;
    o->n_layer = 2;
    o->n_head = 2;
    o->batch = 16;
    o->seq_len = 64;
    o->steps = 1000;
    o->warmup = 100;
    o->eval_every = 250;
    o->eval_batches = 10;
    o->lr = 5e-4f;
    o->min_lr = 5e-5f;
    o->weight_decay = 0.01f;
    o->clip = 1.0f;
    o->mask_prob = 0.15f;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-6f;
    o->log_every = 1;
    o->seed = 1337;
}

/* Every option, checked before anything is read or written; errors name the flag. */
static lm_status lm_mlm_check_options(const lm_mlm_options *o) {
#define LM_BAD(...) return lm_error(LM_ERR_ARG, __VA_ARGS__)
    if (o->seq_len < 3 || o->seq_len > (1 << 16)) LM_BAD("mlm: --seq-len %d must be in [3, 65536] ([CLS] and [SEP] take two)", o->seq_len);
    if (o->batch < 1 || o->batch > (1 << 20)) LM_BAD("mlm: --batch %d must be in [1, 1048576]", o->batch);
    if ((long long)o->batch * o->seq_len > (1 << 30)) LM_BAD("mlm: --batch %d x --seq-len %d is more than 2^30 tokens", o->batch, o->seq_len);
    if (o->steps < 1) LM_BAD("mlm: --steps %ld must be >= 1", o->steps);
    if (!(o->lr > 0) || !isfinite(o->lr)) LM_BAD("mlm: --lr %g must be finite and > 0", o->lr);
    if (!(o->min_lr >= 0 && o->min_lr <= o->lr)) LM_BAD("mlm: --min-lr %g must be in [0, --lr %g]", o->min_lr, o->lr);
    if (o->warmup < 0 || o->warmup > o->steps) LM_BAD("mlm: --warmup %ld must be in [0, --steps %ld]", o->warmup, o->steps);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay)) LM_BAD("mlm: --weight-decay %g must be finite and >= 0", o->weight_decay);
    if (!(o->beta1 >= 0 && o->beta1 < 1)) LM_BAD("mlm: --beta1 %g must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1)) LM_BAD("mlm: --beta2 %g must be in [0, 1)", o->beta2);
    if (!(o->eps > 0) || !isfinite(o->eps)) LM_BAD("mlm: --eps %g must be finite and > 0", o->eps);
    if (!(o->clip >= 0) || !isfinite(o->clip)) LM_BAD("mlm: --clip %g must be finite and >= 0 (0 disables)", o->clip);
    if (!(o->mask_prob > 0 && o->mask_prob < 1)) LM_BAD("mlm: --mask-prob %g must be in (0, 1)", o->mask_prob);
    if (o->eval_every < 0) LM_BAD("mlm: --eval-every %ld must be >= 0 (0: only at the end)", o->eval_every);
    if (o->eval_batches < 1 || o->eval_batches > (1 << 20)) LM_BAD("mlm: --eval-batches %d must be in [1, 1048576]", o->eval_batches);
    if (o->log_every < 1) LM_BAD("mlm: --log-every %ld must be >= 1", o->log_every);
#undef LM_BAD
    return LM_OK;
}

/* The model, tokenizer and plot of the run in `dir` (its staging
 * directory until the first save commits it). */
static lm_status lm_mlm_save(const lm_bert *m, const lm_tokenizer *tok, const char *dir) {
    LM_TRY(lm_bert_save_dir(m, dir));
    char *dst = lm_path_join(dir, "tokenizer.json");
    lm_status s = dst ? lm_tokenizer_save(tok, dst) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(dst);
    return s;
}

/* B windows of T - 2 shard tokens, wrapped in [CLS] ... [SEP], masked. */
static void lm_mlm_batch(const lm_shard *sh, const lm_mlm_masker *mk, lm_rng *r, int B, int T, int32_t cls, int32_t sep,
                         int32_t *ids, int32_t *labels) {
    uint64_t span = sh->n_tokens - (uint64_t)(T - 2) + 1;
    for (int b = 0; b < B; b++) {
        uint64_t start = (lm_rng_u64(r) >> 11) % span;
        int32_t *row = ids + (size_t)b * T;
        row[0] = cls;
        for (int t = 0; t < T - 2; t++) row[t + 1] = lm_shard_token(sh, start + (uint64_t)t);
        row[T - 1] = sep;
        lm_mlm_mask(mk, r, row, labels + (size_t)b * T, T);
    }
}

static lm_status lm_mlm_val_loss(lm_bert *m, const lm_shard *val, const lm_mlm_masker *mk, const lm_mlm_options *o, int32_t cls,
                                 int32_t sep, int32_t *ids, int32_t *labels, float *out) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < o->eval_batches; i++) {
        lm_rng r;
        lm_rng_seed(&r, o->seed, LM_MLM_VAL_STREAM + (uint64_t)i);
        lm_mlm_batch(val, mk, &r, o->batch, o->seq_len, cls, sep, ids, labels);
        lm_bert_batch in = {o->batch, o->seq_len, ids, NULL, NULL};
        float loss = 0;
        LM_TRY(lm_bert_encode(m, &in));
        LM_TRY(lm_bert_mlm_forward(m, labels, &loss));
        sum += loss;
        n++;
    }
    *out = n ? (float)(sum / n) : 0;
    return LM_OK;
}

lm_status lm_mlm_train_run(const lm_mlm_options *o, void (*cb)(const lm_mlm_event *ev, void *user), void *user) {
    LM_TRY(lm_mlm_check_options(o));
    LM_TRY(lm_run_stage_check(o->out_dir, o->overwrite));
    char *tr_path = lm_path_join(o->data_dir, "train.bin"), *va_path = lm_path_join(o->data_dir, "val.bin");
    char *tok_path = lm_path_join(o->data_dir, "tokenizer.json");
    lm_shard tr, va;
    memset(&tr, 0, sizeof tr);
    memset(&va, 0, sizeof va);
    lm_tokenizer *tok = NULL;
    lm_mlm_masker mk;
    memset(&mk, 0, sizeof mk);
    lm_bert *m = NULL;
    lm_adamw opt;
    memset(&opt, 0, sizeof opt);
    lm_metrics mt;
    memset(&mt, 0, sizeof mt);
    int32_t *ids = NULL, *labels = NULL;
    int have_val = 0;
    lm_run_stage stage;
    memset(&stage, 0, sizeof stage);
    const char *dir = o->out_dir; /* the staging directory until the first save */
    lm_status s = lm_shard_open(tr_path, &tr);
    if (s == LM_OK && lm_file_exists(va_path)) {
        s = lm_shard_open(va_path, &va);
        have_val = s == LM_OK;
    }
    if (s == LM_OK) s = lm_tokenizer_load(tok_path, &tok);
    if (s == LM_OK && tr.n_tokens < (uint64_t)o->seq_len) s = lm_error(LM_ERR_ARG, "%s: %llu tokens, fewer than --seq-len %d", tr_path, (unsigned long long)tr.n_tokens, o->seq_len);
    if (s == LM_OK && have_val && va.n_tokens < (uint64_t)o->seq_len) have_val = 0;
    int32_t cls = tok ? lm_tokenizer_token_to_id(tok, "[CLS]") : -1, sep = tok ? lm_tokenizer_token_to_id(tok, "[SEP]") : -1;
    if (s == LM_OK && (cls < 0 || sep < 0)) s = lm_error(LM_ERR_FORMAT, "%s: the tokenizer has no [CLS]/[SEP] tokens (use a WordPiece tokenizer)", tok_path);
    int V = tr.vocab_size;
    if (s == LM_OK && lm_tokenizer_vocab_size(tok) > V) V = lm_tokenizer_vocab_size(tok);
    if (s == LM_OK) s = lm_mlm_masker_init(&mk, tok, V, o->mask_prob, o->whole_word);
    if (s == LM_OK) {
        lm_bert_config c;
        memset(&c, 0, sizeof c);
        c.vocab_size = V;
        c.hidden = o->hidden;
        c.n_layer = o->n_layer;
        c.n_head = o->n_head;
        c.intermediate = o->intermediate > 0 ? o->intermediate : 4 * o->hidden;
        c.max_pos = o->seq_len;
        c.type_vocab = 2;
        c.pad_token_id = lm_tokenizer_pad_id(tok) >= 0 ? lm_tokenizer_pad_id(tok) : 0;
        c.layer_norm_eps = 1e-12f;
        c.head = LM_BERT_HEAD_MLM;
        c.num_labels = 2;
        s = lm_bert_create(&c, 1, o->seed, &m);
    }
    if (s == LM_OK) s = lm_adamw_init(&opt, lm_bert_params(m)->total, o->beta1, o->beta2, o->eps, o->weight_decay);
    if (s == LM_OK) {
        ids = malloc((size_t)o->batch * o->seq_len * sizeof *ids);
        labels = malloc((size_t)o->batch * o->seq_len * sizeof *labels);
        if (!ids || !labels) s = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    if (s == LM_OK) s = lm_run_stage_begin(&stage, o->out_dir, o->overwrite);
    if (s == LM_OK) dir = stage.stage;
    if (s == LM_OK) s = lm_metrics_open(&mt, dir, -1);
    lm_lr_schedule sched = {o->lr, o->min_lr, o->warmup, o->steps};
    double t0 = lm_now_seconds();
    for (long step = 0; step < o->steps && s == LM_OK; step++) {
        lm_rng r;
        lm_rng_seed(&r, o->seed, (uint64_t)step);
        lm_mlm_batch(&tr, &mk, &r, o->batch, o->seq_len, cls, sep, ids, labels);
        lm_bert_batch in = {o->batch, o->seq_len, ids, NULL, NULL};
        float loss = 0;
        s = lm_bert_encode(m, &in);
        if (s == LM_OK) s = lm_bert_mlm_forward(m, labels, &loss);
        if (s != LM_OK) break;
        if (!isfinite(loss)) {
            s = lm_error(LM_ERR_RANGE, "loss became %g at step %ld; lower --lr or raise --warmup", loss, step + 1);
            break;
        }
        lm_bert_zero_grad(m);
        s = lm_bert_backward(m, 1.0f);
        if (s != LM_OK) break;
        float clip_scale; /* clipping rides on the AdamW pass */
        double gnorm = lm_grad_norm_clip_scale(lm_bert_grad_data(m), lm_bert_params(m)->total, o->clip, &clip_scale);
        float lr = lm_lr_at(&sched, step);
        lm_adamw_step_scaled(&opt, lm_bert_params(m), lm_bert_param_data(m), lm_bert_grad_data(m), lr, clip_scale);
        lm_mlm_event ev;
        memset(&ev, 0, sizeof ev);
        ev.step = step + 1;
        ev.total_steps = o->steps;
        ev.loss = loss;
        ev.lr = lr;
        ev.elapsed_s = lm_now_seconds() - t0;
        ev.eta_s = ev.elapsed_s / ev.step * (o->steps - ev.step);
        ev.tokens_per_sec = (double)ev.step * o->batch * o->seq_len / ev.elapsed_s;
        int eval = (o->eval_every > 0 && ev.step % o->eval_every == 0) || ev.step == o->steps;
        if (eval) {
            if (have_val) {
                s = lm_mlm_val_loss(m, &va, &mk, o, cls, sep, ids, labels, &ev.val_loss);
                ev.has_val = s == LM_OK;
            }
        }
        int log = eval || ev.step % o->log_every == 0;
        if (s == LM_OK && log) s = lm_metrics_log(&mt, ev.step, loss, lr, gnorm, ev.tokens_per_sec, ev.elapsed_s, ev.has_val, ev.val_loss);
        if (s == LM_OK && eval) s = lm_mlm_save(m, tok, dir);
        if (s == LM_OK && eval && !stage.committed) { /* the first save: the run directory appears whole */
            s = lm_run_stage_commit(&stage);
            dir = o->out_dir;
            if (s == LM_OK) s = lm_metrics_move(&mt, dir);
        }
        if (s == LM_OK && eval) s = lm_metrics_plot(&mt);
        if (cb && s == LM_OK) cb(&ev, user);
    }
    lm_metrics_close(&mt);
    lm_run_stage_end(&stage); /* a run that never saved leaves nothing */
    free(ids);
    free(labels);
    lm_adamw_free(&opt);
    lm_bert_free(m);
    lm_mlm_masker_free(&mk);
    lm_tokenizer_free(tok);
    if (tr.map.data) lm_shard_close(&tr);
    if (va.map.data) lm_shard_close(&va);
    free(tr_path);
    free(va_path);
    free(tok_path);
    return s;
}

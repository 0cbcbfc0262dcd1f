/* Trainer checkpoints: written aside, renamed whole, committed by one
 * atomic pointer-file replace (see checkpoint.h). */
#include "train/checkpoint.h"
#include "train/run_dir.h"

#include "lmkit/safetensors.h"

#include "base/json_field.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static json_t *lm_options_to_json(const lm_train_options *o) {
    /* the data directory as an absolute path: --resume may run from
     * another working directory */
    char *abs = realpath(o->data_dir, NULL);
    json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:I, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:i, s:I, s:i}",
                     "data_dir", abs ? abs : o->data_dir, "batch", o->batch, "seq_len", o->seq_len, "grad_accum", o->grad_accum, "steps",
                     (json_int_t)o->steps, "max_lr", (double)o->lr.max_lr, "min_lr", (double)o->lr.min_lr, "warmup",
                     (json_int_t)o->lr.warmup, "lr_total", (json_int_t)o->lr.total, "weight_decay", (double)o->weight_decay,
                     "beta1", (double)o->beta1, "beta2", (double)o->beta2, "eps", (double)o->eps, "clip", (double)o->clip,
                     "eval_every", (json_int_t)o->eval_every, "save_every", (json_int_t)o->save_every, "log_every",
                     (json_int_t)o->log_every, "eval_batches", o->eval_batches, "seed", (json_int_t)o->seed,
                     "data_parallel", o->data_parallel);
    free(abs);
    return j;
}

lm_status lm_checkpoint_save(const char *run_dir, const lm_gpt2 *m, const lm_adamw *opt, long step, const lm_train_options *o) {
    char name[64], tmp_name[80];
    snprintf(name, sizeof name, "checkpoint-%ld", step);
    snprintf(tmp_name, sizeof tmp_name, "checkpoint-%ld.tmp", step);
    char *final_dir = lm_path_join(run_dir, name), *tmp_dir = lm_path_join(run_dir, tmp_name);
    char *model_path = lm_path_join(tmp_dir, "model.safetensors"), *opt_path = lm_path_join(tmp_dir, "optimizer.safetensors");
    char *state_path = lm_path_join(tmp_dir, "trainer_state.json");
    lm_status s = LM_OK;
    (void)lm_remove_tree(tmp_dir); /* leftovers of a killed save */
    if (mkdir(tmp_dir, 0777) != 0) s = lm_error(LM_ERR_IO, "%s: cannot create directory", tmp_dir);
    if (s == LM_OK) s = lm_gpt2_save_weights(m, model_path, step);
    if (s == LM_OK) {
        lm_st_writer w;
        lm_st_writer_init(&w);
        int64_t shape[1] = {(int64_t)opt->n};
        char t[32];
        snprintf(t, sizeof t, "%ld", opt->t);
        s = lm_st_writer_add(&w, "adamw.m", LM_DTYPE_F32, 1, shape, opt->m);
        if (s == LM_OK) s = lm_st_writer_add(&w, "adamw.v", LM_DTYPE_F32, 1, shape, opt->v);
        if (s == LM_OK) s = lm_st_writer_meta(&w, "adamw_t", t);
        if (s == LM_OK) s = lm_st_writer_save(&w, opt_path);
        lm_st_writer_free(&w);
    }
    if (s == LM_OK) {
        json_t *state = json_pack("{s:I, s:I, s:o}", "step", (json_int_t)step, "adamw_t", (json_int_t)opt->t, "options",
                                  lm_options_to_json(o));
        s = lm_json_save(state, state_path);
    }
    if (s == LM_OK) {
        lm_fsync_dir(tmp_dir);
        (void)lm_remove_tree(final_dir);
        if (rename(tmp_dir, final_dir) != 0) s = lm_error(LM_ERR_IO, "%s: rename failed: %s", final_dir, strerror(errno));
    }
    if (s == LM_OK) {
        /* The commit point: from here on, resume uses the new checkpoint. */
        char *latest = lm_path_join(run_dir, "latest_checkpoint");
        char line[80];
        snprintf(line, sizeof line, "%s\n", name);
        s = lm_write_file_atomic(latest, line, strlen(line));
        free(latest);
    }
    if (s == LM_OK) {
        /* Point RUN/model.safetensors at the new weights (link + rename keeps it atomic). */
        char *src = lm_path_join(final_dir, "model.safetensors"), *dst = lm_path_join(run_dir, "model.safetensors");
        char *tmp = lm_path_join(run_dir, "model.safetensors.link.tmp");
        unlink(tmp);
        if (link(src, tmp) != 0 || rename(tmp, dst) != 0) {
            /* Filesystems without hard links: fall back to a copy. */
            unlink(tmp);
            s = lm_gpt2_save_weights(m, dst, step);
        }
        free(src);
        free(dst);
        free(tmp);
        lm_fsync_dir(run_dir);
    }
    if (s == LM_OK) {
        /* Older checkpoints are no longer needed. */
        DIR *d = opendir(run_dir);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "checkpoint-", 11) != 0 || !strcmp(e->d_name, name)) continue;
            char *p = lm_path_join(run_dir, e->d_name);
            (void)lm_remove_tree(p);
            free(p);
        }
        if (d) closedir(d);
    } else {
        (void)lm_remove_tree(tmp_dir);
    }
    free(final_dir);
    free(tmp_dir);
    free(model_path);
    free(opt_path);
    free(state_path);
    return s;
}

/* trainer_state.json is read strictly: a field of the wrong type or range
 * is an error naming the file and key, never a silent default (a resumed
 * run must continue exactly what was saved). */
static lm_status lm_state_int(json_t *obj, const char *path, const char *key, long long lo, long long hi, long long *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return lm_error(LM_ERR_FORMAT, "%s: missing '%s'", path, key);
    if (!json_is_integer(v)) return lm_error(LM_ERR_FORMAT, "%s: '%s' must be an integer", path, key);
    long long x = (long long)json_integer_value(v);
    if (x < lo || x > hi) return lm_error(LM_ERR_FORMAT, "%s: '%s' is %lld, must be in [%lld, %lld]", path, key, x, lo, hi);
    *out = x;
    return LM_OK;
}

static lm_status lm_state_float(json_t *obj, const char *path, const char *key, float *out) {
    json_t *v = json_object_get(obj, key);
    if (!v) return lm_error(LM_ERR_FORMAT, "%s: missing '%s'", path, key);
    if (!json_is_number(v)) return lm_error(LM_ERR_FORMAT, "%s: '%s' must be a number", path, key);
    *out = (float)json_number_value(v);
    return LM_OK;
}

/* The options object; ranges are checked afterwards by lm_train_options_check. */
static lm_status lm_state_options(json_t *opts, const char *path, lm_train_options *o) {
    static const struct {
        const char *key;
        size_t off;
        int is_long;
    } ints[] = {
        {"batch", offsetof(lm_train_options, batch), 0},
        {"seq_len", offsetof(lm_train_options, seq_len), 0},
        {"grad_accum", offsetof(lm_train_options, grad_accum), 0},
        {"steps", offsetof(lm_train_options, steps), 1},
        {"warmup", offsetof(lm_train_options, lr.warmup), 1},
        {"lr_total", offsetof(lm_train_options, lr.total), 1},
        {"eval_every", offsetof(lm_train_options, eval_every), 1},
        {"save_every", offsetof(lm_train_options, save_every), 1},
        {"log_every", offsetof(lm_train_options, log_every), 1},
        {"eval_batches", offsetof(lm_train_options, eval_batches), 0},
    };
    static const struct {
        const char *key;
        size_t off;
    } floats[] = {
        {"max_lr", offsetof(lm_train_options, lr.max_lr)}, {"min_lr", offsetof(lm_train_options, lr.min_lr)},
        {"weight_decay", offsetof(lm_train_options, weight_decay)}, {"beta1", offsetof(lm_train_options, beta1)},
        {"beta2", offsetof(lm_train_options, beta2)}, {"eps", offsetof(lm_train_options, eps)},
        {"clip", offsetof(lm_train_options, clip)},
    };
    char *base = (char *)o;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        long long x = 0;
        LM_TRY(lm_state_int(opts, path, ints[i].key, ints[i].is_long ? LONG_MIN : INT_MIN, ints[i].is_long ? LONG_MAX : INT_MAX, &x));
        if (ints[i].is_long) *(long *)(base + ints[i].off) = (long)x;
        else *(int *)(base + ints[i].off) = (int)x;
    }
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) LM_TRY(lm_state_float(opts, path, floats[i].key, (float *)(base + floats[i].off)));
    long long seed = 0, parts = 1;
    LM_TRY(lm_state_int(opts, path, "seed", 0, LLONG_MAX, &seed)); /* exact: a double would round seeds past 2^53 */
    o->seed = (uint64_t)seed;
    /* runs saved before data parallelism ran whole batches */
    if (json_object_get(opts, "data_parallel")) LM_TRY(lm_state_int(opts, path, "data_parallel", INT_MIN, INT_MAX, &parts));
    o->data_parallel = (int)parts;
    lm_train_options stored = *o;
    stored.stop_at_step = 0; /* the caller's, not the file's: checked with the flags */
    return lm_train_options_check(&stored, path);
}

lm_status lm_checkpoint_read_state(const char *run_dir, lm_train_options *o, long *step, char **ckpt_dir) {
    char *latest = lm_path_join(run_dir, "latest_checkpoint");
    char *text = NULL;
    lm_status s = lm_read_file(latest, &text, NULL);
    free(latest);
    if (s != LM_OK) return lm_error(LM_ERR_IO, "%s: no checkpoint to resume from (latest_checkpoint missing)", run_dir);
    text[strcspn(text, "\r\n")] = 0;
    if (strncmp(text, "checkpoint-", 11) != 0 || strchr(text, '/')) {
        lm_status e = lm_error(LM_ERR_FORMAT, "%s/latest_checkpoint: invalid content '%s'", run_dir, text);
        free(text);
        return e;
    }
    char *dir = lm_path_join(run_dir, text);
    free(text);
    char *state_path = lm_path_join(dir, "trainer_state.json");
    json_error_t jerr;
    json_t *st = json_load_file(state_path, 0, &jerr);
    if (!st) {
        s = lm_error(LM_ERR_FORMAT, "%s: cannot read trainer state: %s", state_path, jerr.text);
        free(state_path);
        free(dir);
        return s;
    }
    json_t *opts = json_object_get(st, "options");
    json_t *jdata = json_is_object(opts) ? json_object_get(opts, "data_dir") : NULL;
    long long at = 0;
    if (!json_is_object(opts)) s = lm_error(LM_ERR_FORMAT, "%s: missing object 'options'", state_path);
    else if (!json_is_string(jdata) || !*json_string_value(jdata))
        s = lm_error(LM_ERR_FORMAT, "%s: 'options.data_dir' must be a non-empty string", state_path);
    if (s == LM_OK) s = lm_state_options(opts, state_path, o);
    /* a checkpoint is saved after a step, never past the budget it ran under */
    if (s == LM_OK) s = lm_state_int(st, state_path, "step", 1, o->steps, &at);
    if (s == LM_OK) {
        *step = (long)at;
        o->data_dir = strdup(json_string_value(jdata)); /* the caller frees it */
        if (!o->data_dir) s = lm_error(LM_ERR_NOMEM, "out of memory");
    }
    json_decref(st);
    free(state_path);
    if (s == LM_OK) *ckpt_dir = dir;
    else free(dir);
    return s;
}

lm_status lm_checkpoint_load(const char *ckpt_dir, lm_gpt2 *m, lm_adamw *opt) {
    char *model_path = lm_path_join(ckpt_dir, "model.safetensors"), *opt_path = lm_path_join(ckpt_dir, "optimizer.safetensors");
    lm_status s = lm_gpt2_load_weights(m, model_path);
    lm_safetensors st = {0};
    if (s == LM_OK) s = lm_safetensors_open(opt_path, &st);
    if (s == LM_OK) {
        const lm_st_tensor *tm = lm_safetensors_find(&st, "adamw.m"), *tv = lm_safetensors_find(&st, "adamw.v");
        if (!tm || !tv) s = lm_error(LM_ERR_FORMAT, "%s: missing adamw.m / adamw.v", opt_path);
        if (s == LM_OK) s = lm_st_tensor_to_f32(tm, opt->m, (int64_t)opt->n);
        if (s == LM_OK) s = lm_st_tensor_to_f32(tv, opt->v, (int64_t)opt->n);
        const char *meta = st.metadata_json ? strstr(st.metadata_json, "\"adamw_t\":\"") : NULL;
        if (s == LM_OK && !meta) s = lm_error(LM_ERR_FORMAT, "%s: missing adamw_t metadata", opt_path);
        if (s == LM_OK) {
            char *end = NULL;
            long t = strtol(meta + 11, &end, 10);
            if (end == meta + 11 || *end != '"' || t < 1)
                s = lm_error(LM_ERR_FORMAT, "%s: adamw_t metadata must be an integer >= 1", opt_path);
            else opt->t = t;
        }
        if (s != LM_OK && s != LM_ERR_NOMEM) s = lm_error(s, "%s", lm_last_error());
        lm_safetensors_close(&st);
    }
    free(model_path);
    free(opt_path);
    return s;
}

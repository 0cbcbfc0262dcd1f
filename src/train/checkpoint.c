/* Trainer checkpoints: written aside, renamed whole, committed by one
 * atomic pointer-file replace (see checkpoint.h). */
#include "train/checkpoint.h"

#include "lmkit/safetensors.h"

#include "base/json_field.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Removes a checkpoint directory (it holds only plain files). */
static void lm_remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = lm_path_join(dir, e->d_name);
        if (p) unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

static json_t *lm_options_to_json(const lm_train_options *o) {
    return json_pack("{s:s, s:i, s:i, s:i, s:I, s:f, s:f, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:i, s:I, s:i}",
                     "data_dir", o->data_dir, "batch", o->batch, "seq_len", o->seq_len, "grad_accum", o->grad_accum, "steps",
                     (json_int_t)o->steps, "max_lr", (double)o->lr.max_lr, "min_lr", (double)o->lr.min_lr, "warmup",
                     (json_int_t)o->lr.warmup, "lr_total", (json_int_t)o->lr.total, "weight_decay", (double)o->weight_decay,
                     "beta1", (double)o->beta1, "beta2", (double)o->beta2, "eps", (double)o->eps, "clip", (double)o->clip,
                     "eval_every", (json_int_t)o->eval_every, "save_every", (json_int_t)o->save_every, "log_every",
                     (json_int_t)o->log_every, "eval_batches", o->eval_batches, "seed", (json_int_t)o->seed,
                     "data_parallel", o->data_parallel);
}

lm_status lm_checkpoint_save(const char *run_dir, const lm_gpt2 *m, const lm_adamw *opt, long step, const lm_train_options *o) {
    char name[64], tmp_name[80];
    snprintf(name, sizeof name, "checkpoint-%ld", step);
    snprintf(tmp_name, sizeof tmp_name, "checkpoint-%ld.tmp", step);
    char *final_dir = lm_path_join(run_dir, name), *tmp_dir = lm_path_join(run_dir, tmp_name);
    char *model_path = lm_path_join(tmp_dir, "model.safetensors"), *opt_path = lm_path_join(tmp_dir, "optimizer.safetensors");
    char *state_path = lm_path_join(tmp_dir, "trainer_state.json");
    lm_status s = LM_OK;
    lm_remove_dir(tmp_dir); /* leftovers of a killed save */
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
        lm_remove_dir(final_dir);
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
            lm_remove_dir(p);
            free(p);
        }
        if (d) closedir(d);
    } else {
        lm_remove_dir(tmp_dir);
    }
    free(final_dir);
    free(tmp_dir);
    free(model_path);
    free(opt_path);
    free(state_path);
    return s;
}

static double lm_jnum(json_t *o, const char *k, double def) {
    json_t *v = json_object_get(o, k);
    return v && json_is_number(v) ? json_number_value(v) : def;
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
    json_t *opts = json_object_get(st, "options"), *jstep = json_object_get(st, "step");
    json_t *jdata = opts ? json_object_get(opts, "data_dir") : NULL;
    if (!json_is_object(opts) || !json_is_integer(jstep) || !json_is_string(jdata)) {
        s = lm_error(LM_ERR_FORMAT, "%s: missing 'step' or 'options'", state_path);
    } else {
        *step = (long)json_integer_value(jstep);
        o->data_dir = strdup(json_string_value(jdata)); /* the caller frees it */
        o->batch = (int)lm_jnum(opts, "batch", o->batch);
        o->seq_len = (int)lm_jnum(opts, "seq_len", o->seq_len);
        o->grad_accum = (int)lm_jnum(opts, "grad_accum", o->grad_accum);
        o->steps = (long)lm_jnum(opts, "steps", (double)o->steps);
        o->lr.max_lr = (float)lm_jnum(opts, "max_lr", o->lr.max_lr);
        o->lr.min_lr = (float)lm_jnum(opts, "min_lr", o->lr.min_lr);
        o->lr.warmup = (long)lm_jnum(opts, "warmup", (double)o->lr.warmup);
        o->lr.total = (long)lm_jnum(opts, "lr_total", (double)o->lr.total);
        o->weight_decay = (float)lm_jnum(opts, "weight_decay", o->weight_decay);
        o->beta1 = (float)lm_jnum(opts, "beta1", o->beta1);
        o->beta2 = (float)lm_jnum(opts, "beta2", o->beta2);
        o->eps = (float)lm_jnum(opts, "eps", o->eps);
        o->clip = (float)lm_jnum(opts, "clip", o->clip);
        o->eval_every = (long)lm_jnum(opts, "eval_every", (double)o->eval_every);
        o->save_every = (long)lm_jnum(opts, "save_every", (double)o->save_every);
        o->log_every = (long)lm_jnum(opts, "log_every", (double)o->log_every);
        o->eval_batches = (int)lm_jnum(opts, "eval_batches", o->eval_batches);
        o->seed = (uint64_t)lm_jnum(opts, "seed", (double)o->seed);
        /* runs saved before data parallelism ran whole batches */
        o->data_parallel = (int)lm_jnum(opts, "data_parallel", 1);
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
        if (s == LM_OK) opt->t = strtol(meta + 11, NULL, 10);
        if (s != LM_OK && s != LM_ERR_NOMEM) s = lm_error(s, "%s", lm_last_error());
        lm_safetensors_close(&st);
    }
    free(model_path);
    free(opt_path);
    return s;
}

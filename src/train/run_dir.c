/* A new run directory appears whole or not at all (see run_dir.h). */
#include "train/run_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LM_STAGE_MARK ".lmkit-partial"

/* 1: a directory with entries, 0: an empty directory, -1: cannot list. */
static int lm_dir_has_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    int any = 0;
    while (!any && (e = readdir(d))) any = strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return any;
}

static int lm_dir_holds(const char *dir, const char *name) {
    char *p = lm_path_join(dir, name);
    int yes = p && lm_file_exists(p);
    free(p);
    return yes;
}

/* A directory lmkit trained: a GPT-2 run has its latest_checkpoint, an MLM
 * run its metrics.jsonl. A downloaded model (config.json alone) is not
 * one, so --overwrite never deletes it. */
static int lm_is_run_dir(const char *dir) {
    return lm_dir_holds(dir, "latest_checkpoint") || (lm_dir_holds(dir, "config.json") && lm_dir_holds(dir, "metrics.jsonl"));
}

lm_status lm_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? LM_OK : lm_error(LM_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lm_error(LM_ERR_IO, "%s: cannot list: %s", path, strerror(errno));
        struct dirent *e;
        lm_status s = LM_OK;
        while (s == LM_OK && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = lm_path_join(path, e->d_name);
            s = p ? lm_remove_tree(p) : lm_error(LM_ERR_NOMEM, "out of memory");
            free(p);
        }
        closedir(d);
        if (s == LM_OK && rmdir(path) != 0) s = lm_error(LM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return s;
    }
    if (unlink(path) != 0) return lm_error(LM_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return LM_OK;
}

lm_status lm_run_stage_check(const char *out, int replace) {
    struct stat sb;
    if (stat(out, &sb) != 0) {
        if (errno == ENOENT) return LM_OK;
        return lm_error(LM_ERR_IO, "--out %s: %s", out, strerror(errno));
    }
    if (!S_ISDIR(sb.st_mode)) return lm_error(LM_ERR_ARG, "--out %s exists and is not a directory", out);
    int full = lm_dir_has_entries(out);
    if (full < 0) return lm_error(LM_ERR_IO, "--out %s: cannot list: %s", out, strerror(errno));
    if (!full) return LM_OK;
    if (!lm_is_run_dir(out))
        return lm_error(LM_ERR_ARG, "--out %s is not empty and holds no lmkit run; choose a new --out directory", out);
    if (!replace)
        return lm_error(LM_ERR_ARG,
                        "--out %s already holds a run; continue it with --resume %s, replace it with --overwrite, or choose "
                        "a new --out directory",
                        out, out);
    return LM_OK;
}

static char *lm_path_suffix(const char *path, size_t len, const char *suffix) {
    char *p = malloc(len + strlen(suffix) + 1);
    if (p) {
        memcpy(p, path, len);
        strcpy(p + len, suffix);
    }
    return p;
}

lm_status lm_run_stage_begin(lm_run_stage *st, const char *out, int replace) {
    memset(st, 0, sizeof *st);
    LM_TRY(lm_run_stage_check(out, replace));
    size_t len = strlen(out);
    while (len > 1 && out[len - 1] == '/') len--; /* "run/" names run: stage beside it, not inside */
    st->out = lm_path_suffix(out, len, "");
    st->stage = lm_path_suffix(out, len, ".partial");
    st->old = lm_path_suffix(out, len, ".replaced");
    st->replace = replace;
    if (!st->out || !st->stage || !st->old) return lm_error(LM_ERR_NOMEM, "out of memory");
    if (lm_file_exists(st->stage)) {
        /* Left by a run killed before its first checkpoint; anything else of that name is not ours to delete. */
        if (!lm_dir_holds(st->stage, LM_STAGE_MARK))
            return lm_error(LM_ERR_ARG, "%s exists and was not made by lmkit train; remove it or choose another --out", st->stage);
        LM_TRY(lm_remove_tree(st->stage));
    }
    if (replace && lm_file_exists(st->out) && lm_file_exists(st->old))
        return lm_error(LM_ERR_ARG, "%s exists (a run an interrupted --overwrite set aside); move or remove it first", st->old);
    LM_TRY(lm_mkdir_p(st->stage));
    st->begun = 1;
    char *mark = lm_path_join(st->stage, LM_STAGE_MARK);
    lm_status s = mark ? lm_write_file_atomic(mark, "", 0) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(mark);
    return s;
}

/* fsync the directory that holds `path`, so the renames are durable. */
static void lm_fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) {
        lm_fsync_dir(".");
        return;
    }
    char *parent = lm_path_suffix(path, slash == path ? 1 : (size_t)(slash - path), "");
    if (parent) lm_fsync_dir(parent);
    free(parent);
}

lm_status lm_run_stage_commit(lm_run_stage *st) {
    if (st->committed) return LM_OK;
    int moved_old = 0;
    /* An empty --out is replaced by rename itself; a run (--overwrite) is set aside first. */
    if (st->replace && lm_dir_has_entries(st->out) > 0) {
        if (rename(st->out, st->old) != 0)
            return lm_error(LM_ERR_IO, "%s: cannot move the old run aside: %s", st->out, strerror(errno));
        moved_old = 1;
    }
    if (rename(st->stage, st->out) != 0) {
        lm_status s = lm_error(LM_ERR_IO, "%s: cannot rename to %s: %s", st->stage, st->out, strerror(errno));
        if (moved_old) rename(st->old, st->out); /* put the old run back */
        return s;
    }
    st->committed = 1;
    char *mark = lm_path_join(st->out, LM_STAGE_MARK);
    if (mark) unlink(mark);
    free(mark);
    lm_fsync_parent(st->out);
    /* The new run is in place: the old one can go. */
    if (moved_old) LM_TRY(lm_remove_tree(st->old));
    return LM_OK;
}

void lm_run_stage_end(lm_run_stage *st) {
    if (st->begun && !st->committed && st->stage) lm_remove_tree(st->stage);
    free(st->out);
    free(st->stage);
    free(st->old);
    memset(st, 0, sizeof *st);
}

/* Internal: creating a new run directory without ever leaving half a run.
 *
 * A new run is written to <out>.partial/ (marked as lmkit's by a
 * .lmkit-partial file) and renamed to <out> whole once it holds its first
 * checkpoint: a run that fails or is killed before that leaves <out> as it
 * was. <out> must be absent or an empty directory, or, with `replace`
 * (--overwrite), hold a run, which is moved to <out>.replaced at the
 * commit and deleted once the new run is in place. */
#ifndef LMKIT_RUN_DIR_H
#define LMKIT_RUN_DIR_H

#include "lmkit/base.h"

typedef struct {
    char *out;   /* the run directory (without trailing slashes) */
    char *stage; /* <out>.partial */
    char *old;   /* <out>.replaced */
    int replace, begun, committed;
} lm_run_stage;

/* Checks, writing nothing, that `out` can take a new run. */
lm_status lm_run_stage_check(const char *out, int replace);
/* lm_run_stage_check, then creates an empty stage directory (removing a
 * stale one left by a killed run). */
lm_status lm_run_stage_begin(lm_run_stage *st, const char *out, int replace);
/* Puts the stage in place of `out` (the commit point). */
lm_status lm_run_stage_commit(lm_run_stage *st);
/* Removes the stage unless committed, and frees. Safe on a zeroed struct. */
void lm_run_stage_end(lm_run_stage *st);

/* Deletes a directory tree (symbolic links are removed, not followed);
 * also old checkpoints and a killed save's leftovers (checkpoint.c). */
lm_status lm_remove_tree(const char *path);

#endif

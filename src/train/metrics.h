/* Internal: the training metrics log (metrics.jsonl) and its loss plot. */
#ifndef LMKIT_METRICS_H
#define LMKIT_METRICS_H

#include "lmkit/base.h"

typedef struct {
    int n, cap;
    long *step;
    float *loss;
    float *val; /* NaN where no validation ran */
    char *jsonl_path, *svg_path;
} lm_metrics;

/* Opens RUN/metrics.jsonl. keep_until >= 0 (resume) keeps the history of
 * steps <= keep_until and drops the rest, rewriting the file atomically;
 * keep_until < 0 starts a new log. */
lm_status lm_metrics_open(lm_metrics *mt, const char *run_dir, long keep_until);
/* Appends one line (val_loss only when has_val) and records the point. */
lm_status lm_metrics_log(lm_metrics *mt, long step, float loss, float lr, double grad_norm, double tokens_per_sec,
                         double elapsed_s, int has_val, float val_loss);
/* Writes RUN/loss.svg (train and validation loss against step), atomically. */
lm_status lm_metrics_plot(const lm_metrics *mt);
/* The log's files were moved into run_dir (a new run committed from its
 * staging directory): write there from now on. */
lm_status lm_metrics_move(lm_metrics *mt, const char *run_dir);
void lm_metrics_close(lm_metrics *mt);

#endif

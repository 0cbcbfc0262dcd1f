/* AdamW over a parameter table, and global-norm gradient clipping. */
#include "lmkit/train.h"

#include "lmkit/kernels.h"

#include <math.h>
#include <omp.h>
#include <string.h>

lm_status lm_adamw_init(lm_adamw *opt, size_t n, float beta1, float beta2, float eps, float weight_decay) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->n = n;
    opt->m = lm_alloc_huge(n * sizeof(float));
    opt->v = lm_alloc_huge(n * sizeof(float));
    if (!opt->m || !opt->v) {
        lm_adamw_free(opt);
        return lm_error(LM_ERR_NOMEM, "out of memory for optimizer state (%zu parameters)", n);
    }
    return LM_OK;
}

void lm_adamw_free(lm_adamw *opt) {
    lm_free(opt->m);
    lm_free(opt->v);
    opt->m = opt->v = NULL;
}

void lm_row_runs_from(lm_row_runs *r, const uint8_t *live, int rows) {
    r->n = 0;
    for (int i = 0; i < rows;) {
        if (!live[i]) {
            i++;
            continue;
        }
        int e = i;
        while (e < rows && live[e]) e++;
        r->start[r->n] = i;
        r->end[r->n++] = e;
        i = e;
    }
}

/* Whether weight decay applies to tensor p. */
static int decays(const lm_adamw *opt, const lm_param *p) { return p->decay && opt->weight_decay != 0.0f; }

/* The tensor whose live rows `sparse` lists (-1: none). */
static int sparse_tensor(const lm_row_runs *sparse) { return sparse && sparse->row_len ? sparse->param : -1; }

/* Dense tensors are visited as spans of neighbours in the flat buffer: one
 * parallel loop per span rather than one per tensor, most of which (biases,
 * norms) are too small to split. The alignment gaps between tensors hold
 * zeros in parameters, gradients and moments, and every pass here leaves a
 * zero there a zero. A span ends before tensor `stop` (the row-sparse one,
 * or -1) and, when decay_of is set, where the weight decay changes.
 * Returns the index one past the span. */
static int span_end(const lm_param_table *t, int i, int stop, const lm_adamw *decay_of, const uint8_t *skip) {
    int j = i + 1;
    while (j < t->n && j != stop && (!skip || !skip[j]) &&
           (!decay_of || t->params[j].decay == t->params[i].decay || decay_of->weight_decay == 0.0f))
        j++;
    return j;
}

static size_t span_len(const lm_param_table *t, int i, int j) {
    return t->params[j - 1].offset + t->params[j - 1].numel - t->params[i].offset;
}

void lm_adamw_step_rows(lm_adamw *opt, const lm_param_table *table, float *params, float *grads, float lr,
                        float grad_scale, const lm_row_runs *sparse, int zero_grads) {
    opt->t++;
    /* The step's scalars, with and without weight decay, formed once. */
    lm_adamw_consts with_wd = lm_adamw_prepare(lr, opt->beta1, opt->beta2, opt->eps, opt->weight_decay, (int)opt->t, grad_scale);
    lm_adamw_consts no_wd = lm_adamw_prepare(lr, opt->beta1, opt->beta2, opt->eps, 0.0f, (int)opt->t, grad_scale);
    /* With weight decay every row moves each step: dense. */
    int stop = sparse_tensor(sparse);
    if (stop >= 0 && decays(opt, &table->params[stop])) stop = -1;
    /* The dense spans (neighbouring tensors with the same decay) all run in
     * one parallel region, each thread on its share of every span: a small
     * model's spans are mostly too short for a region of their own, and
     * one at a time they would run on one thread while the others wait. */
    struct {
        size_t off, n;
        const lm_adamw_consts *c;
    } spans[table->n > 0 ? table->n : 1];
    int ns = 0;
    size_t dense = 0;
    for (int i = 0; i < table->n;) {
        if (i == stop) {
            i++;
            continue;
        }
        const lm_param *p = &table->params[i];
        int j = span_end(table, i, stop, opt, NULL);
        spans[ns].off = p->offset;
        spans[ns].n = span_len(table, i, j);
        spans[ns].c = decays(opt, p) ? &with_wd : &no_wd;
        dense += spans[ns++].n;
        i = j;
    }
#pragma omp parallel if (dense >= 65536)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int k = 0; k < ns; k++) {
            size_t a = spans[k].off + spans[k].n * (size_t)t / (size_t)nt;
            size_t b = spans[k].off + spans[k].n * (size_t)(t + 1) / (size_t)nt;
            if (b > a) lm_adamw_apply(params + a, grads + a, opt->m + a, opt->v + a, b - a, spans[k].c, zero_grads);
        }
    }
    if (stop >= 0) {
        const lm_param *p = &table->params[stop];
        const lm_adamw_consts *c = decays(opt, p) ? &with_wd : &no_wd;
        /* Runs are short (scattered token ids): one parallel loop over
         * them, each update on one thread. */
        const lm_row_runs *r = sparse;
#pragma omp parallel for schedule(dynamic, 8)
        for (int k = 0; k < r->n; k++) {
            size_t off = p->offset + (size_t)r->start[k] * r->row_len, n = (size_t)(r->end[k] - r->start[k]) * r->row_len;
            lm_adamw_apply(params + off, grads + off, opt->m + off, opt->v + off, n, c, zero_grads);
        }
    }
}

void lm_adamw_step_scaled(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr,
                          float grad_scale) {
    lm_adamw_step_rows(opt, table, params, (float *)grads, lr, grad_scale, NULL, 0); /* grads only read */
}

double lm_grad_sum_squares(const lm_param_table *table, const float *grads, const lm_row_runs *sparse, const uint8_t *skip) {
    double total = 0;
    int stop = sparse_tensor(sparse);
    for (int i = 0; i < table->n;) {
        const lm_param *p = &table->params[i];
        if (skip && skip[i]) {
            i++;
            continue;
        }
        if (i != stop) {
            int j = span_end(table, i, stop, NULL, skip);
            total += lm_sum_squares(grads + p->offset, span_len(table, i, j));
            i = j;
            continue;
        }
        /* Runs are short: a fixed split of them into parts summed in
         * parallel (each run on one thread, no parallel region of its
         * own), the parts added in order — the same total for any thread
         * count. */
        enum { PARTS = 64 };
        double part[PARTS];
        const lm_row_runs *r = sparse;
#pragma omp parallel for schedule(static)
        for (int q = 0; q < PARTS; q++) {
            double acc = 0;
            for (int k = (int)((long)r->n * q / PARTS); k < (int)((long)r->n * (q + 1) / PARTS); k++)
                acc += lm_sum_squares_serial(grads + p->offset + (size_t)r->start[k] * r->row_len,
                                             (size_t)(r->end[k] - r->start[k]) * r->row_len);
            part[q] = acc;
        }
        for (int q = 0; q < PARTS; q++) total += part[q];
        i++;
    }
    return total;
}

void lm_grad_zero(const lm_param_table *table, float *grads, const lm_row_runs *sparse) {
    int stop = sparse_tensor(sparse);
    for (int i = 0; i < table->n;) {
        const lm_param *p = &table->params[i];
        if (i != stop) {
            int j = span_end(table, i, stop, NULL, NULL);
            lm_zero(grads + p->offset, span_len(table, i, j));
            i = j;
            continue;
        }
        const lm_row_runs *r = sparse;
#pragma omp parallel for schedule(dynamic, 8)
        for (int k = 0; k < r->n; k++)
            memset(grads + p->offset + (size_t)r->start[k] * r->row_len, 0,
                   (size_t)(r->end[k] - r->start[k]) * r->row_len * sizeof(float));
        i++;
    }
}

void lm_adamw_step(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr) {
    lm_adamw_step_scaled(opt, table, params, grads, lr, 1.0f);
}

float lm_clip_scale(double norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
}

double lm_grad_norm_clip_scale(const float *grads, size_t n, float max_norm, float *scale) {
    double norm = sqrt(lm_sum_squares(grads, n));
    *scale = lm_clip_scale(norm, max_norm);
    return norm;
}

double lm_clip_grad_norm(float *grads, size_t n, float max_norm) {
    float scale;
    double norm = lm_grad_norm_clip_scale(grads, n, max_norm, &scale);
    if (scale != 1.0f) lm_scale(grads, scale, n);
    return norm;
}

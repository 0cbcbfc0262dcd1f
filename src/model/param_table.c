/* The name -> (offset, shape) table over a model's flat parameter buffer. */
#include "lmkit/model.h"
#include "model/param_table_build.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

lm_status lm_param_table_add(lm_param_table *t, int decay, int ndim, const int64_t *shape, const char *fmt, ...) {
    lm_param *grown = realloc(t->params, (size_t)(t->n + 1) * sizeof *grown);
    if (!grown) return lm_error(LM_ERR_NOMEM, "out of memory");
    t->params = grown;
    lm_param *p = &t->params[t->n];
    memset(p, 0, sizeof *p);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->name, sizeof p->name, fmt, ap);
    va_end(ap);
    p->ndim = ndim;
    p->numel = 1;
    for (int d = 0; d < ndim; d++) {
        p->shape[d] = shape[d];
        p->numel *= (size_t)shape[d];
    }
    /* Keep every tensor 64-byte aligned inside the buffer for SIMD loads. */
    p->offset = (t->total + 15) & ~(size_t)15;
    p->decay = decay;
    t->total = p->offset + p->numel;
    t->n++;
    return LM_OK;
}

void lm_param_table_free(lm_param_table *t) {
    free(t->params);
    memset(t, 0, sizeof *t);
}

const lm_param *lm_param_find(const lm_param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->params[i].name, name)) return &t->params[i];
    return NULL;
}

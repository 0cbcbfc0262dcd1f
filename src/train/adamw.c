/* AdamW over a parameter table, and global-norm gradient clipping. */
#include "lmkit/train.h"

#include "lmkit/kernels.h"

#include <math.h>
#include <string.h>

lm_status lm_adamw_init(lm_adamw *opt, size_t n, float beta1, float beta2, float eps, float weight_decay) {
    memset(opt, 0, sizeof *opt);
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->weight_decay = weight_decay;
    opt->n = n;
    opt->m = lm_alloc(n * sizeof(float));
    opt->v = lm_alloc(n * sizeof(float));
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

void lm_adamw_step_scaled(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr,
                          float grad_scale) {
    opt->t++;
    for (int i = 0; i < table->n; i++) {
        const lm_param *p = &table->params[i];
        lm_adamw_update_scaled(params + p->offset, grads + p->offset, opt->m + p->offset, opt->v + p->offset, p->numel, lr,
                               opt->beta1, opt->beta2, opt->eps, p->decay ? opt->weight_decay : 0.0f, (int)opt->t,
                               grad_scale);
    }
}

void lm_adamw_step(lm_adamw *opt, const lm_param_table *table, float *params, const float *grads, float lr) {
    lm_adamw_step_scaled(opt, table, params, grads, lr, 1.0f);
}

double lm_grad_norm_clip_scale(const float *grads, size_t n, float max_norm, float *scale) {
    double norm = sqrt(lm_sum_squares(grads, n));
    *scale = max_norm > 0 && norm > max_norm ? (float)(max_norm / (norm + 1e-6)) : 1.0f;
    return norm;
}

double lm_clip_grad_norm(float *grads, size_t n, float max_norm) {
    float scale;
    double norm = lm_grad_norm_clip_scale(grads, n, max_norm, &scale);
    if (scale != 1.0f) lm_scale(grads, scale, n);
    return norm;
}

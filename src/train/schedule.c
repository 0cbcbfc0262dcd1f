/* Learning-rate schedule: linear warmup, then cosine decay to min_lr. */
#include "lmkit/train.h"

#include <math.h>

float lm_lr_at(const lm_lr_schedule *s, long step) {
    if (step < s->warmup) return s->max_lr * (float)(step + 1) / (float)s->warmup;
    if (step >= s->total) return s->min_lr;
    double ratio = (double)(step - s->warmup) / (double)(s->total - s->warmup);
    double coeff = 0.5 * (1.0 + cos(M_PI * ratio));
    return (float)(s->min_lr + coeff * (s->max_lr - s->min_lr));
}

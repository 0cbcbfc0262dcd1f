/* Internal: building a parameter table (models call this while laying out
 * their flat buffer). */
#ifndef LMKIT_PARAM_TABLE_BUILD_H
#define LMKIT_PARAM_TABLE_BUILD_H

#include "lmkit/model.h"

/* Appends a tensor named by printf-style fmt; `decay` marks it for AdamW
 * weight decay. */
lm_status lm_param_table_add(lm_param_table *t, int decay, int ndim, const int64_t *shape, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif

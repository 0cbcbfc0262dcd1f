/* Internal: reading typed fields of JSON configuration files (jansson),
 * with errors that name the file and the field. */
#ifndef LMKIT_JSON_FIELD_H
#define LMKIT_JSON_FIELD_H

#include <jansson.h>

#include "lmkit/base.h"

/* Reads root[key] as an integer in [0, 2^30] into *out. A missing or null
 * field is an error when `required`, else leaves *out unchanged. */
lm_status lm_json_field_int(json_t *root, const char *path, const char *key, int *out, int required);

/* Writes root as indented JSON (keys in insertion order) to path,
 * atomically, and releases root. A NULL root (a failed json_pack) is an
 * out-of-memory error naming the path. */
lm_status lm_json_save(json_t *root, const char *path);

#endif

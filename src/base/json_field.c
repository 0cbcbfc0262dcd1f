/* Typed JSON fields with file/field-naming errors. */
#include "base/json_field.h"

#include <stdlib.h>
#include <string.h>

lm_status lm_json_field_int(json_t *root, const char *path, const char *key, int *out, int required) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (required) return lm_error(LM_ERR_FORMAT, "%s: missing field '%s'", path, key);
        return LM_OK;
    }
    if (!json_is_integer(v)) return lm_error(LM_ERR_FORMAT, "%s: field '%s' must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < 0 || x > (1 << 30)) return lm_error(LM_ERR_FORMAT, "%s: field '%s' = %lld out of range", path, key, (long long)x);
    *out = (int)x;
    return LM_OK;
}

lm_status lm_json_save(json_t *root, const char *path) {
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return lm_error(LM_ERR_NOMEM, "%s: cannot serialize JSON", path);
    lm_status s = lm_write_file_atomic(path, text, strlen(text));
    free(text);
    return s;
}

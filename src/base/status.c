/* Per-thread error text: library calls fail with a status code and leave
 * a one-line message naming the file / field / value that was wrong. */
#include "lmkit/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char lm_error_text[1024];

lm_status lm_error(lm_status code, const char *fmt, ...) {
    /* Formatted aside first: callers prefix context to the last error with
     * lm_error(s, "%s: %s", path, lm_last_error()), an argument that is
     * the very buffer being written. */
    char text[sizeof lm_error_text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(lm_error_text, text, sizeof text);
    return code;
}

const char *lm_last_error(void) { return lm_error_text; }

const char *lm_status_name(lm_status s) {
    switch (s) {
    case LM_OK: return "ok";
    case LM_ERR_IO: return "i/o error";
    case LM_ERR_FORMAT: return "format error";
    case LM_ERR_ARG: return "invalid argument";
    case LM_ERR_NOMEM: return "out of memory";
    case LM_ERR_UNSUPPORTED: return "unsupported";
    case LM_ERR_RANGE: return "out of range";
    }
    return "unknown error";
}

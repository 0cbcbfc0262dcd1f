/* Labelled text datasets for fine-tuning: TSV, CSV (RFC 4180) and JSONL,
 * with header-named or indexed columns. Every problem is reported with
 * the file and 1-based line number, and a load either fully succeeds or
 * leaves nothing allocated. */
#include "lmkit/finetune.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_TSV, FMT_CSV, FMT_JSONL };

static int lm_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcasecmp(s + a - b, suffix);
}

/* One parsed record: up to 64 fields, each a malloc'd string. */
typedef struct {
    int n;
    char *f[64];
} lm_record;

static void lm_record_clear(lm_record *r) {
    for (int i = 0; i < r->n; i++) free(r->f[i]);
    r->n = 0;
}

static lm_status lm_record_push(lm_record *r, const char *s, size_t len, const char *path, int line) {
    if (r->n >= 64) return lm_error(LM_ERR_FORMAT, "%s: line %d: more than 64 fields", path, line);
    char *f = malloc(len + 1);
    if (!f) return lm_error(LM_ERR_NOMEM, "out of memory");
    memcpy(f, s, len);
    f[len] = '\0';
    r->f[r->n++] = f;
    return LM_OK;
}

/* Parses one TSV/CSV record starting at *pos; advances *pos and *line past
 * it. A CSV quoted field may hold separators, "" and newlines. */
static lm_status lm_next_record(const char *buf, size_t len, size_t *pos, int fmt, const char *path, int *line, lm_record *r) {
    char sep = fmt == FMT_CSV ? ',' : '\t';
    size_t p = *pos;
    int start_line = *line;
    char *tmp = NULL;
    size_t tn = 0, tcap = 0;
    lm_status s = LM_OK;
    for (;;) {
        tn = 0;
        if (fmt == FMT_CSV && p < len && buf[p] == '"') {
            p++;
            for (;;) {
                if (p >= len) {
                    free(tmp);
                    return lm_error(LM_ERR_FORMAT, "%s: line %d: unterminated quoted field", path, start_line);
                }
                char c = buf[p++];
                if (c == '"') {
                    if (p < len && buf[p] == '"') p++;
                    else break;
                } else if (c == '\n') {
                    (*line)++;
                }
                if (tn + 1 >= tcap) {
                    tcap = tcap ? 2 * tcap : 256;
                    char *g = realloc(tmp, tcap);
                    if (!g) {
                        free(tmp);
                        return lm_error(LM_ERR_NOMEM, "out of memory");
                    }
                    tmp = g;
                }
                tmp[tn++] = c;
            }
            s = lm_record_push(r, tmp ? tmp : "", tn, path, start_line);
            /* After the closing quote only a separator or the line end may follow. */
            if (s == LM_OK && p < len && buf[p] != sep && buf[p] != '\n' && buf[p] != '\r')
                s = lm_error(LM_ERR_FORMAT, "%s: line %d: text after a closing quote", path, *line);
        } else {
            size_t b = p;
            while (p < len && buf[p] != sep && buf[p] != '\n') p++;
            size_t e = p;
            if (e > b && buf[e - 1] == '\r' && (p >= len || buf[p] == '\n')) e--;
            s = lm_record_push(r, buf + b, e - b, path, start_line);
        }
        if (s != LM_OK) break;
        if (p < len && buf[p] == '\r') p++;
        if (p >= len || buf[p] == '\n') {
            if (p < len) p++;
            (*line)++;
            break;
        }
        p++; /* the separator */
    }
    free(tmp);
    *pos = p;
    return s;
}

static int lm_is_index(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Column index of `want` (a header name, or a number with no header). */
static lm_status lm_find_column(const lm_record *hdr, const char *want, const char *const *defaults, int def_index, int required,
                                const char *role, const char *path, int *col) {
    *col = -1;
    if (!hdr) {
        if (want && !lm_is_index(want))
            return lm_error(LM_ERR_ARG, "%s: --%s-column '%s' must be a 0-based index when the file has no header", path, role, want);
        *col = want ? atoi(want) : def_index;
        return LM_OK;
    }
    for (int i = 0; i < hdr->n && *col < 0; i++) {
        if (want) {
            if (!strcmp(hdr->f[i], want)) *col = i;
        } else {
            for (int k = 0; defaults[k] && *col < 0; k++)
                if (!strcmp(hdr->f[i], defaults[k])) *col = i;
        }
    }
    if (*col < 0 && required) {
        char cols[512] = "";
        for (int i = 0; i < hdr->n; i++) snprintf(cols + strlen(cols), sizeof cols - strlen(cols), "%s'%s'", i ? ", " : "", hdr->f[i]);
        if (want) return lm_error(LM_ERR_ARG, "%s: line 1: no %s column '%s' (columns: %s)", path, role, want, cols);
        return lm_error(LM_ERR_ARG, "%s: line 1: no %s column (looked for '%s'; columns: %s); name it with --%s-column", path, role,
                        defaults[0], cols, role);
    }
    return LM_OK;
}

static lm_status lm_dataset_push(lm_text_dataset *d, int *cap, const char *text, const char *label, int line) {
    if (d->n == *cap) {
        int nc = *cap ? 2 * *cap : 1024;
        char **t = realloc(d->texts, (size_t)nc * sizeof *t);
        if (t) d->texts = t;
        char **l = realloc(d->labels, (size_t)nc * sizeof *l);
        if (l) d->labels = l;
        int *ln = realloc(d->lines, (size_t)nc * sizeof *ln);
        if (ln) d->lines = ln;
        if (!t || !l || !ln) return lm_error(LM_ERR_NOMEM, "out of memory");
        *cap = nc;
    }
    d->texts[d->n] = strdup(text);
    d->labels[d->n] = label ? strdup(label) : NULL;
    d->lines[d->n] = line;
    d->n++;
    if (!d->texts[d->n - 1] || (label && !d->labels[d->n - 1])) return lm_error(LM_ERR_NOMEM, "out of memory");
    return LM_OK;
}

static int lm_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

static lm_status lm_load_jsonl(const char *buf, size_t len, const lm_text_dataset_options *o, lm_text_dataset *d, int *cap) {
    const char *path = d->path;
    int line = 0;
    size_t p = 0;
    lm_status s = LM_OK;
    while (p < len && s == LM_OK) {
        line++;
        size_t e = p;
        while (e < len && buf[e] != '\n') e++;
        if (lm_blank(buf + p, e - p)) {
            if (!d->blank_lines++) d->first_blank_line = line;
            p = e + 1;
            continue;
        }
        json_error_t jerr;
        json_t *obj = json_loadb(buf + p, e - p, 0, &jerr);
        p = e + 1;
        if (!json_is_object(obj)) {
            json_decref(obj);
            return lm_error(LM_ERR_FORMAT, "%s: line %d: not a JSON object%s%s", path, line, obj ? "" : ": ", obj ? "" : jerr.text);
        }
        const char *tk = o->text_column;
        json_t *tv = tk ? json_object_get(obj, tk) : NULL;
        if (!tk) {
            tv = json_object_get(obj, "text");
            tk = "text";
            if (!tv && (tv = json_object_get(obj, "sentence"))) tk = "sentence";
        }
        const char *lk = o->label_column ? o->label_column : "label";
        json_t *lv = json_object_get(obj, lk);
        char num[64];
        const char *label = NULL;
        if (!json_is_string(tv)) s = lm_error(LM_ERR_FORMAT, "%s: line %d: no string field '%s' (the text column)", path, line, tk);
        else if (lv && json_is_string(lv)) label = json_string_value(lv);
        else if (lv && json_is_integer(lv)) snprintf(num, sizeof num, "%lld", (long long)json_integer_value(lv)), label = num;
        else if (lv && json_is_real(lv)) snprintf(num, sizeof num, "%.9g", json_real_value(lv)), label = num;
        else if (lv && json_is_boolean(lv)) label = json_is_true(lv) ? "true" : "false";
        else if (lv && !json_is_null(lv)) s = lm_error(LM_ERR_FORMAT, "%s: line %d: label field '%s' must be a string or number", path, line, lk);
        if (s == LM_OK && o->need_labels && (!label || !*label))
            s = lm_error(LM_ERR_FORMAT, "%s: line %d: missing label (field '%s')", path, line, lk);
        if (s == LM_OK) s = lm_dataset_push(d, cap, json_string_value(tv), label, line);
        json_decref(obj);
    }
    return s;
}

static lm_status lm_load_delimited(const char *buf, size_t len, int fmt, const lm_text_dataset_options *o, lm_text_dataset *d, int *cap) {
    const char *path = d->path;
    static const char *text_defaults[] = {"text", "sentence", NULL}, *label_defaults[] = {"label", NULL};
    size_t pos = 0;
    int line = 1;
    lm_record hdr = {0}, rec = {0};
    lm_status s = LM_OK;
    if (!o->no_header) {
        while (pos < len && s == LM_OK) {
            size_t e = pos;
            while (e < len && buf[e] != '\n') e++;
            if (!lm_blank(buf + pos, e - pos)) break;
            pos = e + 1;
            line++;
        }
        s = lm_next_record(buf, len, &pos, fmt, path, &line, &hdr);
    }
    int tc = -1, lc = -1;
    if (s == LM_OK) s = lm_find_column(o->no_header ? NULL : &hdr, o->text_column, text_defaults, 0, 1, "text", path, &tc);
    if (s == LM_OK)
        s = lm_find_column(o->no_header ? NULL : &hdr, o->label_column, label_defaults, 1, o->need_labels || o->label_column, "label", path, &lc);
    while (s == LM_OK && pos < len) {
        size_t e = pos;
        while (e < len && buf[e] != '\n') e++;
        if (lm_blank(buf + pos, e - pos)) {
            if (!d->blank_lines++) d->first_blank_line = line;
            pos = e + 1;
            line++;
            continue;
        }
        int rec_line = line;
        s = lm_next_record(buf, len, &pos, fmt, path, &line, &rec);
        if (s != LM_OK) break;
        int need = (tc > lc ? tc : lc) + 1;
        if (rec.n <= tc || (o->need_labels && rec.n <= lc)) {
            s = lm_error(LM_ERR_FORMAT, "%s: line %d: %d %s-separated field%s, expected %d", path, rec_line, rec.n,
                         fmt == FMT_CSV ? "comma" : "tab", rec.n == 1 ? "" : "s", need);
            break;
        }
        const char *label = lc >= 0 && rec.n > lc ? rec.f[lc] : NULL;
        if (o->need_labels && (!label || lm_blank(label, strlen(label)))) {
            s = lm_error(LM_ERR_FORMAT, "%s: line %d: missing label", path, rec_line);
            break;
        }
        s = lm_dataset_push(d, cap, rec.f[tc], label, rec_line);
        lm_record_clear(&rec);
    }
    lm_record_clear(&rec);
    lm_record_clear(&hdr);
    return s;
}

lm_status lm_text_dataset_load(const char *path, const lm_text_dataset_options *o, lm_text_dataset *d) {
    memset(d, 0, sizeof *d);
    char *buf = NULL;
    size_t len = 0;
    LM_TRY(lm_read_file(path, &buf, &len));
    d->path = strdup(path);
    int cap = 0;
    int fmt = lm_ends_with(path, ".jsonl") || lm_ends_with(path, ".json") ? FMT_JSONL : lm_ends_with(path, ".csv") ? FMT_CSV : FMT_TSV;
    lm_status s = d->path ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
    if (s == LM_OK) s = fmt == FMT_JSONL ? lm_load_jsonl(buf, len, o, d, &cap) : lm_load_delimited(buf, len, fmt, o, d, &cap);
    free(buf);
    if (s == LM_OK && d->n == 0) s = lm_error(LM_ERR_FORMAT, "%s: no data rows", path);
    if (s != LM_OK) lm_text_dataset_free(d);
    return s;
}

void lm_text_dataset_free(lm_text_dataset *d) {
    for (int i = 0; i < d->n; i++) {
        free(d->texts[i]);
        free(d->labels[i]);
    }
    free(d->texts);
    free(d->labels);
    free(d->lines);
    free(d->path);
    memset(d, 0, sizeof *d);
}

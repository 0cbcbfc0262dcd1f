/* metrics.jsonl (one JSON object per logged step) and loss.svg. */
#include "train/metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static lm_status lm_metrics_push(lm_metrics *mt, long step, float loss, float val) {
    if (mt->n == mt->cap) {
        int cap = mt->cap ? 2 * mt->cap : 256;
        long *s = realloc(mt->step, (size_t)cap * sizeof *s);
        if (s) mt->step = s;
        float *l = realloc(mt->loss, (size_t)cap * sizeof *l);
        if (l) mt->loss = l;
        float *v = realloc(mt->val, (size_t)cap * sizeof *v);
        if (v) mt->val = v;
        if (!s || !l || !v) return lm_error(LM_ERR_NOMEM, "out of memory");
        mt->cap = cap;
    }
    mt->step[mt->n] = step;
    mt->loss[mt->n] = loss;
    mt->val[mt->n] = val;
    mt->n++;
    return LM_OK;
}

lm_status lm_metrics_open(lm_metrics *mt, const char *run_dir, long keep_until) {
    memset(mt, 0, sizeof *mt);
    mt->jsonl_path = lm_path_join(run_dir, "metrics.jsonl");
    mt->svg_path = lm_path_join(run_dir, "loss.svg");
    if (!mt->jsonl_path || !mt->svg_path) return lm_error(LM_ERR_NOMEM, "out of memory");
    char *kept = NULL;
    size_t kept_len = 0, kept_cap = 0;
    if (keep_until >= 0 && lm_file_exists(mt->jsonl_path)) {
        char *text = NULL;
        LM_TRY(lm_read_file(mt->jsonl_path, &text, NULL));
        /* Keep whole lines of steps already covered by the checkpoint; a
         * torn last line from a killed run is dropped with the rest. */
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (!next) break; /* incomplete last line */
            *next++ = 0;
            json_t *o = json_loads(line, 0, NULL);
            json_t *js = o ? json_object_get(o, "step") : NULL;
            if (js && json_is_integer(js) && json_integer_value(js) <= keep_until) {
                json_t *jl = json_object_get(o, "loss"), *jv = json_object_get(o, "val_loss");
                lm_metrics_push(mt, (long)json_integer_value(js), jl ? (float)json_number_value(jl) : NAN,
                                jv ? (float)json_number_value(jv) : NAN);
                size_t n = strlen(line);
                if (kept_len + n + 2 > kept_cap) {
                    kept_cap = 2 * (kept_len + n + 2);
                    char *k = realloc(kept, kept_cap);
                    if (!k) {
                        json_decref(o);
                        free(text);
                        free(kept);
                        return lm_error(LM_ERR_NOMEM, "out of memory");
                    }
                    kept = k;
                }
                memcpy(kept + kept_len, line, n);
                kept_len += n;
                kept[kept_len++] = '\n';
            }
            json_decref(o);
        }
        free(text);
    }
    lm_status s = lm_write_file_atomic(mt->jsonl_path, kept ? kept : "", kept_len);
    free(kept);
    return s;
}

lm_status lm_metrics_log(lm_metrics *mt, long step, float loss, float lr, double grad_norm, double tokens_per_sec,
                         double elapsed_s, int has_val, float val_loss) {
    FILE *f = fopen(mt->jsonl_path, "a");
    if (!f) return lm_error(LM_ERR_IO, "%s: cannot append", mt->jsonl_path);
    /* %.9g prints a float exactly, so logs compare bit for bit. */
    fprintf(f, "{\"step\": %ld, \"loss\": %.9g, \"lr\": %.9g, \"grad_norm\": %.6g, \"tokens_per_sec\": %.1f, \"elapsed_s\": %.3f",
            step, loss, lr, grad_norm, tokens_per_sec, elapsed_s);
    if (has_val) fprintf(f, ", \"val_loss\": %.9g", val_loss);
    fprintf(f, "}\n");
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad) return lm_error(LM_ERR_IO, "%s: write failed", mt->jsonl_path);
    return lm_metrics_push(mt, step, loss, has_val ? val_loss : NAN);
}

/* Appends printf output to a growing buffer. */
typedef struct {
    char *buf;
    size_t len, cap;
} lm_sbuf;

__attribute__((format(printf, 2, 3))) static void lm_sbuf_printf(lm_sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->buf && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = 2 * (b->cap + (size_t)n + 64);
        char *nb = realloc(b->buf, cap);
        if (!nb) return;
        b->buf = nb;
        b->cap = cap;
    }
}

lm_status lm_metrics_plot(const lm_metrics *mt) {
    const double W = 720, H = 420, left = 60, right = 20, top = 30, bottom = 50;
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (int i = 0; i < mt->n; i++) {
        double x = (double)mt->step[i];
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        float ys[2] = {mt->loss[i], mt->val[i]};
        for (int k = 0; k < 2; k++)
            if (isfinite(ys[k])) {
                if (ys[k] < ymin) ymin = ys[k];
                if (ys[k] > ymax) ymax = ys[k];
            }
    }
    if (mt->n == 0 || !isfinite(ymin)) {
        xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    }
    if (xmax <= xmin) xmax = xmin + 1;
    if (ymax <= ymin) ymax = ymin + 1;
    double pad = 0.05 * (ymax - ymin);
    ymin -= pad;
    ymax += pad;
#define PX(x) (left + ((x) - xmin) / (xmax - xmin) * (W - left - right))
#define PY(y) (top + (ymax - (y)) / (ymax - ymin) * (H - top - bottom))
    lm_sbuf b = {0};
    lm_sbuf_printf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
    lm_sbuf_printf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    lm_sbuf_printf(&b, "<text x=\"%.0f\" y=\"18\" font-size=\"14\">loss (nats/token)</text>\n", left);
    for (int k = 0; k <= 4; k++) {
        double y = ymin + (ymax - ymin) * k / 4, x = xmin + (xmax - xmin) * k / 4;
        lm_sbuf_printf(&b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, PY(y), W - right, PY(y));
        lm_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n", left - 6, PY(y) + 4, y);
        lm_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n", PX(x), H - bottom + 18, x);
    }
    lm_sbuf_printf(&b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">step</text>\n", (left + W - right) / 2, H - 10);
    const char *colors[2] = {"#1f77b4", "#d62728"};
    const char *labels[2] = {"train", "val"};
    for (int k = 0; k < 2; k++) {
        lm_sbuf_printf(&b, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", colors[k]);
        for (int i = 0; i < mt->n; i++) {
            float y = k == 0 ? mt->loss[i] : mt->val[i];
            if (isfinite(y)) lm_sbuf_printf(&b, "%.1f,%.1f ", PX((double)mt->step[i]), PY(y));
        }
        lm_sbuf_printf(&b, "\"/>\n");
        lm_sbuf_printf(&b, "<text x=\"%.0f\" y=\"%.0f\" fill=\"%s\">%s</text>\n", W - right - 60, top + 16 + 16 * k, colors[k], labels[k]);
    }
    lm_sbuf_printf(&b, "</svg>\n");
#undef PX
#undef PY
    if (!b.buf) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = lm_write_file_atomic(mt->svg_path, b.buf, b.len);
    free(b.buf);
    return s;
}

void lm_metrics_close(lm_metrics *mt) {
    free(mt->step);
    free(mt->loss);
    free(mt->val);
    free(mt->jsonl_path);
    free(mt->svg_path);
    memset(mt, 0, sizeof *mt);
}

lm_status lm_metrics_move(lm_metrics *mt, const char *run_dir) {
    char *jsonl = lm_path_join(run_dir, "metrics.jsonl"), *svg = lm_path_join(run_dir, "loss.svg");
    if (!jsonl || !svg) {
        free(jsonl);
        free(svg);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    free(mt->jsonl_path);
    free(mt->svg_path);
    mt->jsonl_path = jsonl;
    mt->svg_path = svg;
    return LM_OK;
}

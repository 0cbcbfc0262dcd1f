#include "progress.h"

#include "lmkit/base.h"

#include <stdio.h>
#include <unistd.h>

void lm_progress_init(lm_progress *p) {
    p->last_print = 0;
    p->tty = isatty(2);
}

static void lm_fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) s = 0;
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, n, "%d:%02d", t / 60, t % 60);
}

void lm_progress_show(lm_progress *p, long done, long total, const char *caption, double eta_s, int force) {
    double now = lm_now_seconds();
    double every = p->tty ? 0.1 : 5.0;
    if (!force && now - p->last_print < every && done != total) return;
    p->last_print = now;
    char eta[32];
    lm_fmt_time(eta, sizeof eta, eta_s);
    const int width = 24;
    int fill = total > 0 ? (int)((double)done / (double)total * width) : 0;
    char bar[width + 1];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s[%s] %ld/%ld %s eta %s%s", p->tty ? "\r\033[K" : "", bar, done, total, caption, eta, p->tty ? "" : "\n");
    fflush(stderr);
}

void lm_progress_end(lm_progress *p) {
    if (p->tty) fprintf(stderr, "\n");
}

/* A one-line progress bar on stderr (redrawn in place on a terminal,
 * printed every few seconds otherwise, so logs stay readable). */
#ifndef LMKIT_PROGRESS_H
#define LMKIT_PROGRESS_H

typedef struct {
    double last_print;
    int tty;
} lm_progress;

void lm_progress_init(lm_progress *p);
/* done/total steps, a caption with the figures, elapsed and eta seconds. */
void lm_progress_show(lm_progress *p, long done, long total, const char *caption, double eta_s, int force);
void lm_progress_end(lm_progress *p);

#endif

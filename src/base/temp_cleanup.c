/* Temporary outputs removed when the process is interrupted (see
 * lm_temp_register in base.h). Why: a conversion or quantization stopped
 * with Ctrl-C left its multi-GB "<out>.tmp.<pid>" behind. The table is
 * plain static memory, so the handler touches nothing but it and the
 * async-signal-safe unlink, rmdir, signal and raise. Paths are registered
 * and released by the thread that writes the file. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "lmkit/base.h"

#define LM_TEMP_SLOTS 32
#define LM_TEMP_PATH 4096

static char lm_temp_path[LM_TEMP_SLOTS][LM_TEMP_PATH];
static volatile sig_atomic_t lm_temp_state[LM_TEMP_SLOTS]; /* 0 free, 1 file, 2 directory */

int lm_temp_register(const char *path, int is_dir) {
    size_t n = strlen(path);
    if (n >= LM_TEMP_PATH) return -1;
    for (int i = 0; i < LM_TEMP_SLOTS; i++)
        if (!lm_temp_state[i]) {
            memcpy(lm_temp_path[i], path, n + 1);
            lm_temp_state[i] = is_dir ? 2 : 1; /* set last: the handler reads the path only once this is */
            return i;
        }
    return -1;
}

void lm_temp_unregister(int slot) {
    if (slot >= 0 && slot < LM_TEMP_SLOTS) lm_temp_state[slot] = 0;
}

static void lm_temp_on_signal(int sig) {
    for (int i = 0; i < LM_TEMP_SLOTS; i++)
        if (lm_temp_state[i] == 1) unlink(lm_temp_path[i]);
    for (int i = 0; i < LM_TEMP_SLOTS; i++)
        if (lm_temp_state[i] == 2) rmdir(lm_temp_path[i]);
    signal(sig, SIG_DFL);
    raise(sig);
}

void lm_remove_temps_on_signals(void) {
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = lm_temp_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* Temporary outputs are removed on SIGINT/SIGTERM (lm_temp_register,
 * lm_remove_temps_on_signals): a child registers a temp file inside a
 * staging directory, a bare temp file, and the directory, then signals
 * itself; it must die of that signal with all three gone, while a file it
 * registered and released stays. */
#include "lmkit/base.h"
#include "test.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void touch(const char *p) {
    FILE *f = fopen(p, "w");
    if (f) fputs("x", f), fclose(f);
}

static void check_signal(int sig) {
    char dir[] = "/tmp/lmkit_temp_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char stage[128], inner[160], bare[160], kept[160];
    snprintf(stage, sizeof stage, "%s/out.partial.1", dir);
    snprintf(inner, sizeof inner, "%s/model.safetensors", stage);
    snprintf(bare, sizeof bare, "%s/out.gguf.tmp.1", dir);
    snprintf(kept, sizeof kept, "%s/done.gguf", dir);
    pid_t pid = fork();
    if (pid == 0) {
        lm_remove_temps_on_signals();
        mkdir(stage, 0777);
        touch(inner), touch(bare), touch(kept);
        lm_temp_register(inner, 0);
        lm_temp_register(stage, 1);
        lm_temp_register(bare, 0);
        lm_temp_unregister(lm_temp_register(kept, 0));
        raise(sig);
        _exit(0); /* not reached */
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    CHECK_MSG(WIFSIGNALED(status) && WTERMSIG(status) == sig, "child status %d (want death by signal %d)", status, sig);
    CHECK_MSG(!lm_file_exists(inner) && !lm_file_exists(stage) && !lm_file_exists(bare), "signal %d left temp files", sig);
    CHECK(lm_file_exists(kept));
    unlink(kept);
    rmdir(dir);
}

int main(void) {
    check_signal(SIGINT);
    check_signal(SIGTERM);
    /* a full table or an overlong path is refused, not overrun */
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    CHECK(lm_temp_register(longp, 0) == -1);
    int slots[40], got = 0;
    for (int i = 0; i < 40; i++) got += (slots[i] = lm_temp_register("/nonexistent/x", 0)) >= 0;
    CHECK(got > 0 && got < 40);
    for (int i = 0; i < 40; i++) lm_temp_unregister(slots[i]);
    TEST_MAIN_END();
}

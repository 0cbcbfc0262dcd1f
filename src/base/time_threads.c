/* Monotonic time and the thread count used by OpenMP kernels. */
#include "lmkit/base.h"

#include <omp.h>
#include <time.h>

double lm_now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads): on a shared machine it is a
 * steadier measure of work than wall-clock time. */
double lm_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void lm_set_threads(int n) {
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
}

int lm_get_threads(void) { return omp_get_max_threads(); }

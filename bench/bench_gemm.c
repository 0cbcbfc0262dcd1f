/* GEMM throughput: OpenBLAS vs lmkit's own AVX-512 sgemm vs the dispatching
 * lm_sgemm, on the shapes GPT-2 124M training uses (B*T = 256 rows) and a
 * 2048^3 peak reference. Prints GFLOP/s (best of several runs) and machine
 * details. Build: cmake --build build --target bench_gemm; run:
 *   OMP_NUM_THREADS=2 ./build/bench_gemm [rows=256] [min_seconds=0.3] */
#include "kernels/kernels_ref.h"
#include "lmkit/base.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float,
                        float *, int);

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best wall-clock GFLOP/s; *per_cpu gets GFLOP per CPU-second (all threads'
 * CPU time, best run): unlike wall time it does not drop when other jobs
 * take the cores, so it shows the kernel's own efficiency per core. */
static double bench(gemm_fn fn, int ta, int tb, int M, int N, int K, float beta, const float *A,
                    const float *B, float *C, double min_s, double *per_cpu) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N); /* warm-up */
    double best = 1e30, best_cpu = 1e30, total = 0;
    int reps = 0;
    while (total < min_s || reps < 3) {
        double c0 = cpu_seconds(), t0 = lm_now_seconds();
        fn(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, N);
        double dt = lm_now_seconds() - t0, dc = cpu_seconds() - c0;
        total += dt;
        reps++;
        if (dt < best) best = dt;
        if (dc < best_cpu) best_cpu = dc;
    }
    double fl = 2.0 * M * N * K * 1e-9;
    if (per_cpu) *per_cpu = fl / best_cpu;
    return fl / best;
}

static void cpu_model(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                snprintf(buf, n, "%s", p + 2);
                buf[strcspn(buf, "\n")] = 0;
            }
            break;
        }
    fclose(f);
}

int main(int argc, char **argv) {
    int R = argc > 1 ? atoi(argv[1]) : 256;
    double min_s = argc > 2 ? atof(argv[2]) : 0.3;
    const lm_cpu_features *f = lm_cpu();
    char model[256];
    cpu_model(model, sizeof model);
    printf("cpu: %s | threads %d | avx2 %d fma %d avx512f %d avx512bw %d avx512_bf16 %d\n", model,
           omp_get_max_threads(), f->avx2, f->fma, f->avx512f, f->avx512bw, f->avx512_bf16);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("OPENBLAS_CORETYPE=%s\n", ct ? ct : "(unset)");
    struct { const char *what; int ta, tb, M, N, K; float beta; } shapes[] = {
        {"peak 2048^3 NN", 0, 0, 2048, 2048, 2048, 0},
        {"fwd qkv      ", 0, 1, R, 2304, 768, 0},
        {"fwd attn.proj", 0, 1, R, 768, 768, 0},
        {"fwd fc       ", 0, 1, R, 3072, 768, 0},
        {"fwd fc.proj  ", 0, 1, R, 768, 3072, 0},
        {"fwd lm_head  ", 0, 1, R, 50257, 768, 0},
        {"dinp qkv     ", 0, 0, R, 768, 2304, 1},
        {"dinp attn.prj", 0, 0, R, 768, 768, 1},
        {"dinp fc      ", 0, 0, R, 768, 3072, 1},
        {"dinp fc.proj ", 0, 0, R, 3072, 768, 1},
        {"dinp lm_head ", 0, 0, R, 768, 50257, 1},
        {"dW qkv       ", 1, 0, 2304, 768, R, 1},
        {"dW attn.proj ", 1, 0, 768, 768, R, 1},
        {"dW fc        ", 1, 0, 3072, 768, R, 1},
        {"dW fc.proj   ", 1, 0, 768, 3072, R, 1},
        {"dW lm_head   ", 1, 0, 50257, 768, R, 1},
    };
    int ns = sizeof shapes / sizeof shapes[0];
    size_t maxA = 0, maxB = 0, maxC = 0;
    for (int i = 0; i < ns; i++) {
        size_t a = (size_t)shapes[i].M * shapes[i].K, b = (size_t)shapes[i].K * shapes[i].N,
               c = (size_t)shapes[i].M * shapes[i].N;
        if (a > maxA) maxA = a;
        if (b > maxB) maxB = b;
        if (c > maxC) maxC = c;
    }
    float *A = lm_alloc(maxA * 4), *B = lm_alloc(maxB * 4), *C = lm_alloc(maxC * 4);
    lm_rng rng;
    lm_rng_seed(&rng, 1, 0);
    for (size_t i = 0; i < maxA; i++) A[i] = lm_rng_uniform(&rng) - 0.5f;
    for (size_t i = 0; i < maxB; i++) B[i] = lm_rng_uniform(&rng) - 0.5f;
    int own = f->avx512f && f->avx512bw && f->avx512vl && f->fma;
    /* One back end at a time over all shapes, with a pause in between:
     * OpenBLAS's pthreads spin for a while after each call and would steal
     * the cores from the OpenMP threads of the next measurement. */
    gemm_fn fns[3] = {lm_sgemm_openblas, own ? lm_sgemm_avx512 : NULL, lm_sgemm};
    double g[3][32] = {{0}}, own_cpu[32] = {0};
    for (int b = 0; b < 3; b++) {
        if (!fns[b]) continue;
        for (int i = 0; i < ns; i++)
            g[b][i] = bench(fns[b], shapes[i].ta, shapes[i].tb, shapes[i].M, shapes[i].N, shapes[i].K,
                            shapes[i].beta, A, B, C, min_s, b == 1 ? &own_cpu[i] : NULL);
        struct timespec pause = {0, 500000000};
        nanosleep(&pause, NULL);
    }
    printf("%-14s %2s %6s %6s %6s | %9s %9s %9s | %11s\n", "shape", "op", "M", "N", "K", "openblas",
           own ? "own" : "own(n/a)", "lm_sgemm", "own/cpu-s");
    printf("%-14s %2s %6s %6s %6s | %29s | %11s\n", "", "", "", "", "", "GFLOP/s, wall clock, best", "GFLOP/cpu-s");
    double fl_tot = 0, t[3] = {0}, t_cpu = 0;
    for (int i = 0; i < ns; i++) {
        int M = shapes[i].M, N = shapes[i].N, K = shapes[i].K;
        printf("%-14s %c%c %6d %6d %6d | %9.1f %9.1f %9.1f | %11.1f\n", shapes[i].what, shapes[i].ta ? 'T' : 'N',
               shapes[i].tb ? 'T' : 'N', M, N, K, g[0][i], g[1][i], g[2][i], own_cpu[i]);
        if (i > 0) { /* training shapes: time-weighted aggregate */
            double fl = 2.0 * M * N * K * 1e-9;
            fl_tot += fl;
            for (int b = 0; b < 3; b++) t[b] += g[b][i] > 0 ? fl / g[b][i] : 0;
            t_cpu += own_cpu[i] > 0 ? fl / own_cpu[i] : 0;
        }
    }
    printf("%-14s %2s %6s %6s %6s | %9.1f %9.1f %9.1f | %11.1f\n", "GPT-2 step mix", "", "", "", "", fl_tot / t[0],
           own ? fl_tot / t[1] : 0.0, fl_tot / t[2], own ? fl_tot / t_cpu : 0.0);
    double la[3] = {0};
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (fscanf(lf, "%lf %lf %lf", &la[0], &la[1], &la[2]) != 3) la[0] = -1;
        fclose(lf);
    }
    printf("load average at the end: %.2f %.2f %.2f (other jobs on the machine lower the wall-clock rates)\n",
           la[0], la[1], la[2]);
    lm_free(A);
    lm_free(B);
    lm_free(C);
    return 0;
}

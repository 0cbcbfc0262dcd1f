/* Memory read bandwidth: the bound on decode speed (a decode step reads
 * every weight once). Sums 512 MiB of floats with T threads, best of 5
 * passes after one warm-up, two ways:
 *   sum     - the parallel float sum PEERS.md describes (one stream per
 *             thread, whatever the compiler makes of it);
 *   streams - four streams per thread with 64-byte vector loads and
 *             software prefetch, which is how the decode kernels read.
 * On some machines the second reads far faster (measured here: 20 vs 31
 * GB/s on 2 threads); the bound is the faster of the two, since a kernel
 * that reads faster than the "bound" proves the bound too low.
 * With a FILE it also reads that file through a read-only shared map
 * the way the model loader maps weights (streams, best of 5 after one
 * pass that brings it into the page cache): on a VM the page cache can
 * read slower than freshly allocated memory (measured here: a 3.8 GB
 * model file 30.6 GB/s against 34.3; 0.6 GB files as fast), and decode
 * reads the weights from there.
 * Build: cc -O3 -march=native -ffast-math -fopenmp bench/membw.c -o membw
 * Run:   ./membw [threads [FILE]]  -> prints "GB/s <best> (sum <a>, streams <b>, ...)"
 *                                     and, with FILE, "file GB/s <c>" */
#include <fcntl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef float v16 __attribute__((vector_size(64)));

static double sum_pass(const float *a, size_t n, int threads, double *sink) {
    double t0 = omp_get_wtime(), s = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : s)
    for (size_t i = 0; i < n; i++) s += a[i];
    *sink += s;
    return (double)n * sizeof(float) / (omp_get_wtime() - t0) / 1e9;
}

static double streams_pass(const float *a, size_t n, int threads, double *sink) {
    double t0 = omp_get_wtime(), s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lo = n * t / nt, hi = n * (t + 1) / nt, len = (hi - lo) / 4 / 16 * 16;
        v16 acc[4] = {{0}, {0}, {0}, {0}};
        for (size_t i = 0; i < len; i += 16)
            for (int k = 0; k < 4; k++) {
                const float *p = a + lo + k * len + i;
                __builtin_prefetch((const char *)p + 1024);
                acc[k] += *(const v16 *)p;
            }
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 16; j++) s += acc[k][j];
    }
    *sink += s;
    return (double)n * sizeof(float) / (omp_get_wtime() - t0) / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_num_procs();
    size_t n = (512u << 20) / sizeof(float);
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 1;
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
    double best_sum = 0, best_streams = 0, sink = 0;
    for (int pass = 0; pass < 6; pass++) {
        double g1 = sum_pass(a, n, threads, &sink), g2 = streams_pass(a, n, threads, &sink);
        if (pass > 0 && g1 > best_sum) best_sum = g1;
        if (pass > 0 && g2 > best_streams) best_streams = g2;
    }
    printf("GB/s %.1f (sum %.1f, streams %.1f; threads %d, checksum %.0f)\n",
           best_sum > best_streams ? best_sum : best_streams, best_sum, best_streams, threads, sink);
    free(a);
    if (argc > 2) {
        int fd = open(argv[2], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size < (1 << 20)) {
            fprintf(stderr, "membw: %s: cannot open, or smaller than 1 MiB\n", argv[2]);
            return 1;
        }
        const float *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (map == MAP_FAILED) {
            fprintf(stderr, "membw: %s: mmap failed\n", argv[2]);
            return 1;
        }
        madvise((void *)map, (size_t)st.st_size, MADV_HUGEPAGE); /* as lm_mmap_open does */
        size_t nf = (size_t)st.st_size / sizeof(float) / 64 * 64;
        double best_file = 0;
        for (int pass = 0; pass < 6; pass++) {
            double g = streams_pass(map, nf, threads, &sink);
            if (pass > 0 && g > best_file) best_file = g;
        }
        printf("file GB/s %.1f (%s, %.2f GB; checksum %.0f)\n", best_file, argv[2], (double)st.st_size / 1e9, sink);
        munmap((void *)map, (size_t)st.st_size);
    }
    return 0;
}

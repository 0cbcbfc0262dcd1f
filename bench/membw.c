/* Memory read bandwidth: the bound on decode speed (a decode step reads
 * every weight once). Sums 512 MiB of floats with T threads, best of 5
 * passes after one warm-up, as PEERS.md describes.
 * Build: cc -O3 -march=native -ffast-math -fopenmp bench/membw.c -o membw
 * Run:   ./membw [threads]  -> prints "GB/s <x>" */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : omp_get_num_procs();
    size_t n = (512u << 20) / sizeof(float);
    float *a = aligned_alloc(64, n * sizeof(float));
    if (!a) return 1;
#pragma omp parallel for num_threads(threads)
    for (size_t i = 0; i < n; i++) a[i] = (float)(i & 1023);
    double best = 0, sink = 0;
    for (int pass = 0; pass < 6; pass++) {
        double t0 = omp_get_wtime(), s = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : s)
        for (size_t i = 0; i < n; i++) s += a[i];
        double gbs = (double)n * sizeof(float) / (omp_get_wtime() - t0) / 1e9;
        sink += s;
        if (pass > 0 && gbs > best) best = gbs;
    }
    printf("GB/s %.1f (threads %d, checksum %.0f)\n", best, threads, sink);
    free(a);
    return 0;
}

/* lmkit bench tokenize: encode throughput (MB/s) of a whole file, best of
 * --repeat runs, on --threads threads (the input is cut at line starts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "lmkit/tokenizer.h"

int lm_bench_tokenize(int argc, char **argv) {
    const char *tok_path = NULL, *input = NULL;
    int threads = 1, repeat = 3, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: lmkit bench tokenize --tokenizer PATH --input FILE [--threads N] [--repeat N] [--json]\n");
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc) input = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) repeat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            fprintf(stderr, "lmkit: error: bench tokenize: unknown or incomplete option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!tok_path || !input || threads < 1 || repeat < 1) {
        fprintf(stderr, "lmkit: error: bench tokenize: --tokenizer and --input are required (threads, repeat >= 1)\n");
        return 2;
    }
    lm_tokenizer *t;
    char *buf;
    size_t len;
    if (lm_tokenizer_load(tok_path, &t) != LM_OK || lm_read_file(input, &buf, &len) != LM_OK) {
        fprintf(stderr, "lmkit: error: %s\n", lm_last_error());
        return 1;
    }
    lm_set_threads(threads);
    double best = 1e30;
    size_t n = 0;
    for (int r = 0; r < repeat; r++) {
        int32_t *ids;
        double t0 = lm_now_seconds();
        if (lm_tokenizer_encode(t, buf, len, 0, &ids, &n) != LM_OK) {
            fprintf(stderr, "lmkit: error: %s: %s\n", input, lm_last_error());
            free(buf);
            lm_tokenizer_free(t);
            return 1;
        }
        double dt = lm_now_seconds() - t0;
        if (dt < best) best = dt;
        free(ids);
    }
    double mbs = len / 1e6 / best;
    if (json)
        printf("{\"tokenizer\": \"%s\", \"input\": \"%s\", \"bytes\": %zu, \"tokens\": %zu, \"threads\": %d, "
               "\"seconds\": %.4f, \"mb_per_s\": %.2f, \"bytes_per_token\": %.3f}\n",
               tok_path, input, len, n, threads, best, mbs, n ? (double)len / n : 0.0);
    else
        printf("%s on %s: %zu bytes -> %zu tokens (%.3f bytes/token), %d thread(s): %.3f s, %.2f MB/s\n", tok_path,
               input, len, n, n ? (double)len / n : 0.0, threads, best, mbs);
    free(buf);
    lm_tokenizer_free(t);
    return 0;
}

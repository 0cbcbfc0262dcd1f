/* The optimizer passes that skip embedding rows no token has reached yet
 * (lm_adamw_step_rows, lm_grad_sum_squares, lm_grad_zero) against the dense
 * passes over the whole buffer: over several steps with gradients only on
 * live rows, parameters and both moments must be bit-identical (a row whose
 * gradient was always zero has m = v = 0, and without weight decay the dense
 * update leaves it unchanged); with weight decay on the embedding the rows
 * path must fall back to the dense update; the update that zeroes the
 * gradients it read equals the update plus lm_grad_zero. Sums of squares
 * (also with a tensor skipped and summed apart)
 * agree to 1e-12 relative (only the order of additions differs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/kernels.h"
#include "lmkit/train.h"
#include "model/param_table_build.h"
#include "test.h"

enum { ROWS = 41, ROW_LEN = 24, STEPS = 7 };

static void run(float wd, int threads) {
    lm_set_threads(threads);
    lm_param_table t = {0};
    CHECK_OK(lm_param_table_add(&t, 1, 2, (int64_t[]){ROWS, ROW_LEN}, "embeddings.word_embeddings.weight"));
    CHECK_OK(lm_param_table_add(&t, 1, 2, (int64_t[]){17, 5}, "dense.weight"));
    CHECK_OK(lm_param_table_add(&t, 0, 1, (int64_t[]){17}, "dense.bias"));
    size_t n = t.total;
    float *p_dense = lm_alloc(n * sizeof(float)), *p_rows = lm_alloc(n * sizeof(float));
    float *g_dense = lm_alloc(n * sizeof(float)), *g_rows = lm_alloc(n * sizeof(float));
    float *p_fused = lm_alloc(n * sizeof(float)), *g_fused = lm_alloc(n * sizeof(float));
    lm_adamw dense, rows, fused;
    CHECK_OK(lm_adamw_init(&dense, n, 0.9f, 0.999f, 1e-8f, wd));
    CHECK_OK(lm_adamw_init(&rows, n, 0.9f, 0.999f, 1e-8f, wd));
    CHECK_OK(lm_adamw_init(&fused, n, 0.9f, 0.999f, 1e-8f, wd));
    lm_rng r;
    lm_rng_seed(&r, 5, 0);
    for (size_t i = 0; i < n; i++) p_dense[i] = p_rows[i] = p_fused[i] = lm_rng_normal(&r);
    uint8_t live[ROWS] = {0};
    int32_t start[ROWS], end[ROWS];
    lm_row_runs runs = {.param = 0, .row_len = ROW_LEN, .start = start, .end = end};
    for (int step = 0; step < STEPS; step++) {
        /* This step's tokens: a few rows, some new, some seen before. */
        int touched[4];
        for (int k = 0; k < 4; k++) touched[k] = (int)lm_rng_below(&r, step < 3 ? 10 : ROWS);
        for (int k = 0; k < 4; k++) live[touched[k]] = 1;
        lm_row_runs_from(&runs, live, ROWS);
        memset(g_dense, 0, n * sizeof(float));
        lm_grad_zero(&t, g_rows, &runs);
        for (int k = 0; k < 4; k++)
            for (int c = 0; c < ROW_LEN; c++) {
                float v = lm_rng_normal(&r);
                g_dense[(size_t)touched[k] * ROW_LEN + c] += v;
                g_rows[(size_t)touched[k] * ROW_LEN + c] += v;
            }
        for (int k = 1; k < t.n; k++) /* tensors are 64-byte aligned: gaps stay 0 */
            for (size_t i = t.params[k].offset; i < t.params[k].offset + t.params[k].numel; i++)
                g_dense[i] = g_rows[i] = lm_rng_normal(&r);
        CHECK(memcmp(g_dense, g_rows, n * sizeof(float)) == 0); /* zeroing left nothing stale */
        double sd = lm_sum_squares(g_dense, n), sr = lm_grad_sum_squares(&t, g_rows, &runs, NULL);
        CHECK_MSG(fabs(sd - sr) <= 1e-12 * sd, "sum of squares %.17g vs %.17g", sr, sd);
        /* A tensor summed elsewhere (skip) is left out, and only it. */
        uint8_t skip[3] = {0, 1, 0};
        double ss = lm_grad_sum_squares(&t, g_rows, &runs, skip) + lm_sum_squares(g_rows + t.params[1].offset, t.params[1].numel);
        CHECK_MSG(fabs(sd - ss) <= 1e-12 * sd, "sum of squares with a skipped tensor %.17g vs %.17g", ss, sd);
        float scale = step % 2 ? 0.5f : 1.0f; /* clipping folded in on odd steps */
        lm_adamw_step_scaled(&dense, &t, p_dense, g_dense, 1e-2f, scale);
        lm_adamw_step_rows(&rows, &t, p_rows, g_rows, 1e-2f, scale, &runs, 0);
        /* The update that zeroes what it read: same parameters, and the
         * gradients of the tensors and live rows it updated left zero. */
        memcpy(g_fused, g_rows, n * sizeof(float));
        lm_adamw_step_rows(&fused, &t, p_fused, g_fused, 1e-2f, scale, &runs, 1);
        CHECK(memcmp(p_fused, p_rows, n * sizeof(float)) == 0);
        lm_grad_zero(&t, g_rows, &runs);
        CHECK(memcmp(g_fused, g_rows, n * sizeof(float)) == 0);
    }
    CHECK_MSG(memcmp(p_dense, p_rows, n * sizeof(float)) == 0, "parameters differ (wd %g, %d threads)", wd, threads);
    CHECK(memcmp(dense.m, rows.m, n * sizeof(float)) == 0);
    CHECK(memcmp(dense.v, rows.v, n * sizeof(float)) == 0);
    CHECK(dense.t == rows.t);
    lm_adamw_free(&dense);
    lm_adamw_free(&rows);
    lm_adamw_free(&fused);
    lm_free(p_fused);
    lm_free(g_fused);
    lm_free(p_dense);
    lm_free(p_rows);
    lm_free(g_dense);
    lm_free(g_rows);
    lm_param_table_free(&t);
}

int main(void) {
    run(0.0f, 1);
    run(0.0f, 2);
    run(0.1f, 2); /* decay on the embedding: dense for it, still identical */
    TEST_MAIN_END();
}

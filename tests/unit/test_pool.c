/* lm_parallel: every task runs exactly once per job, across thousands of
 * back-to-back jobs (the decode pattern), with nested calls run inline
 * and one thread forced. */
#include <stdatomic.h>

#include "lmkit/base.h"
#include "test.h"

typedef struct {
    _Atomic int *hits;
    int job;
    _Atomic int nested_ok;
} ctx_t;

static void inner(void *vc, int i) {
    ctx_t *c = vc;
    (void)i;
    atomic_fetch_add(&c->nested_ok, 1);
}

static void task(void *vc, int i) {
    ctx_t *c = vc;
    atomic_fetch_add(&c->hits[i], 1);
    /* A nested parallel call runs on this thread, to completion. */
    if (i == 0 && c->job % 97 == 0) {
        ctx_t in = {.hits = c->hits};
        lm_parallel(5, inner, &in);
        if (atomic_load(&in.nested_ok) == 5) atomic_fetch_add(&c->nested_ok, 1);
    }
}

/* lm_parallel_range: every index once, in chunks of at most grain that
 * start at multiples of grain. */
typedef struct {
    _Atomic int *hits;
    int grain;
    _Atomic int bad_chunks;
} range_ctx;

static void range_fn(void *vc, int b, int e) {
    range_ctx *c = vc;
    if (e <= b || e - b > c->grain || b % c->grain) atomic_fetch_add(&c->bad_chunks, 1);
    for (int i = b; i < e; i++) atomic_fetch_add(&c->hits[i], 1);
    /* uneven chunk costs, so that shares run out at different times and
     * get stolen from */
    if (b % (7 * c->grain) == 0)
        for (volatile int k = 0; k < 2000; k++) (void)0;
}

static void test_range(_Atomic int *hits, int max_n) {
    int bad = 0, bad_chunks = 0, jobs = getenv("LMKIT_SANITIZED") ? 300 : 3000;
    for (int j = 0; j < jobs; j++) {
        int n = 1 + (j * 131) % max_n, grain = 1 + j % 9;
        for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
        range_ctx c = {.hits = hits, .grain = grain};
        lm_parallel_range(n, grain, range_fn, &c);
        for (int i = 0; i < n; i++) bad += atomic_load(&hits[i]) != 1;
        bad_chunks += atomic_load(&c.bad_chunks);
    }
    CHECK_MSG(bad == 0, "lm_parallel_range: %d indices ran a wrong number of times", bad);
    CHECK_MSG(bad_chunks == 0, "lm_parallel_range: %d chunks too long or misaligned", bad_chunks);
}

int main(void) {
    enum { N = 300 };
    static _Atomic int hits[N];
    int jobs = getenv("LMKIT_SANITIZED") ? 2000 : 20000, bad = 0, nested = 0, nested_want = 0;
    lm_set_threads(2);
    for (int j = 0; j < jobs; j++) {
        int n = 1 + (j * 37) % N;
        for (int i = 0; i < n; i++) atomic_store(&hits[i], 0);
        ctx_t c = {.hits = hits, .job = j};
        lm_parallel(n, task, &c);
        for (int i = 0; i < n; i++) bad += atomic_load(&hits[i]) != 1;
        nested += atomic_load(&c.nested_ok);
        nested_want += j % 97 == 0;
    }
    CHECK_MSG(bad == 0, "%d tasks ran a wrong number of times", bad);
    CHECK(nested == nested_want);
    lm_set_threads(1);
    for (int i = 0; i < 10; i++) atomic_store(&hits[i], 0);
    ctx_t c = {.hits = hits, .job = 1};
    lm_parallel(10, task, &c);
    int ok = 1;
    for (int i = 0; i < 10; i++) ok &= atomic_load(&hits[i]) == 1;
    CHECK(ok);
    lm_parallel(0, task, &c); /* no tasks: returns */
    test_range(hits, N); /* one thread: inline */
    lm_set_threads(2);
    test_range(hits, N);
    lm_set_threads(3); /* more threads than cores: shares wait for the CPU */
    test_range(hits, N);
    TEST_MAIN_END();
}

/* A thread pool for inference kernels, built for shared machines.
 *
 * Why not an OpenMP parallel-for: its barrier waits until every thread of
 * the team has arrived, so when the machine is oversubscribed and one
 * worker is descheduled, each of the ~150 matmuls of a decode step waits
 * a scheduler time slice for it (measured: 1B Q4_0 decode at 0.8 tok/s on
 * 2 threads against 7 on one). Here the caller works too, tasks are
 * claimed one at a time, and the job is over when every task is done:
 * a worker that never got the CPU never held a task, so nobody waits for
 * it. The worst case is the caller doing everything, i.e. one thread.
 *
 * Job word (64 bits, one atomic): generation (24) | task count (20) |
 * next unclaimed task (20). Claiming is a CAS on the whole word, so a
 * worker holding a stale view cannot take a task of a later job. */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lmkit/base.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define LM_POOL_MAX 64
#define LM_POOL_MAX_TASKS ((1 << 20) - 1)
/* Spins (pause instructions) before a worker sleeps: a decode step's jobs
 * come every few microseconds, a sleeping worker costs a futex wake. */
#define LM_POOL_SPIN 20000

typedef struct {
    _Atomic uint64_t word;
    _Atomic uint32_t seq; /* futex: bumped on every new job */
    _Atomic int done;
    _Atomic int sleepers;
    _Atomic int active; /* workers allowed to claim (threads - 1) */
    lm_task_fn fn;
    void *ctx;
    int n_workers;
    pthread_t th[LM_POOL_MAX];
    pthread_mutex_t start_lock;
} lm_pool;

static lm_pool g_pool = {.start_lock = PTHREAD_MUTEX_INITIALIZER};
static _Thread_local int t_in_task;

static inline uint32_t w_gen(uint64_t w) { return (uint32_t)(w >> 40); }
static inline int w_n(uint64_t w) { return (int)((w >> 20) & 0xFFFFF); }
static inline int w_next(uint64_t w) { return (int)(w & 0xFFFFF); }

static void futex_wait(_Atomic uint32_t *addr, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *addr) {
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Claims and runs tasks of the current job until none is left. */
static void run_tasks(lm_pool *p) {
    uint64_t w = atomic_load_explicit(&p->word, memory_order_acquire);
    while (w_next(w) < w_n(w)) {
        if (atomic_compare_exchange_weak_explicit(&p->word, &w, w + 1, memory_order_acq_rel, memory_order_acquire)) {
            t_in_task = 1;
            p->fn(p->ctx, w_next(w));
            t_in_task = 0;
            atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
            w = atomic_load_explicit(&p->word, memory_order_acquire);
        }
    }
}

static void *worker(void *arg) {
    lm_pool *p = &g_pool;
    int id = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&p->seq);
    for (;;) {
        int spins = 0;
        uint32_t s;
        while ((s = atomic_load_explicit(&p->seq, memory_order_acquire)) == seen) {
            if (++spins < LM_POOL_SPIN) {
                cpu_relax();
                continue;
            }
            atomic_fetch_add(&p->sleepers, 1);
            if (atomic_load(&p->seq) == seen) futex_wait(&p->seq, seen);
            atomic_fetch_sub(&p->sleepers, 1);
            spins = 0;
        }
        seen = s;
        if (id < atomic_load_explicit(&p->active, memory_order_relaxed)) run_tasks(p);
    }
    return NULL;
}

static void ensure_workers(lm_pool *p, int want) {
    if (want > LM_POOL_MAX) want = LM_POOL_MAX;
    if (p->n_workers >= want) return;
    pthread_mutex_lock(&p->start_lock);
    while (p->n_workers < want) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int ok = pthread_create(&p->th[p->n_workers], &a, worker, (void *)(intptr_t)p->n_workers) == 0;
        pthread_attr_destroy(&a);
        if (!ok) break; /* fewer helpers; the caller still does all work */
        p->n_workers++;
    }
    pthread_mutex_unlock(&p->start_lock);
}

void lm_parallel(int n, lm_task_fn fn, void *ctx) {
    lm_pool *p = &g_pool;
    int threads = lm_get_threads();
    /* Nested calls, one task, one thread, or another thread's job in
     * flight: run inline. (One job at a time: inference calls come from
     * one thread.) */
    static _Atomic int busy;
    int expected = 0;
    if (n <= 0) return;
    if (n == 1 || threads <= 1 || t_in_task || n > LM_POOL_MAX_TASKS || !atomic_compare_exchange_strong(&busy, &expected, 1)) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    ensure_workers(p, threads - 1);
    atomic_store_explicit(&p->active, threads - 1, memory_order_relaxed);
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint64_t old = atomic_load(&p->word);
    uint64_t gen = (uint64_t)((w_gen(old) + 1) & 0xFFFFFF);
    atomic_store_explicit(&p->word, gen << 40 | (uint64_t)n << 20, memory_order_release);
    atomic_fetch_add_explicit(&p->seq, 1, memory_order_release);
    if (atomic_load(&p->sleepers)) futex_wake(&p->seq);
    run_tasks(p);
    /* Tasks still running elsewhere: spin, then yield so that a worker
     * preempted mid-task gets the core back sooner. */
    int spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < n) {
        if (++spins < 4000) cpu_relax();
        else sched_yield();
    }
    atomic_store(&busy, 0);
}

/* ---- lm_parallel_range: contiguous shares, the back half stolen ----
 *
 * Each share is one atomic word, begin (low 32 bits) | end (high 32). Its
 * owner claims the chunk at begin; a thief moves end down to the middle
 * and takes [middle, old end) as its own share. Both are one CAS on the
 * word, so a chunk is claimed once. A share word never takes the same
 * value twice while in use (ranges only shrink, and a new range comes
 * from rows no other share holds), so a stale CAS cannot succeed. */
typedef struct {
    _Alignas(64) _Atomic uint64_t word; /* own line: owners claim often */
} lm_share;

typedef struct {
    lm_share share[LM_POOL_MAX];
    int n_shares, grain;
    lm_range_fn fn;
    void *ctx;
} lm_range_job;

static inline uint64_t share_word(int begin, int end) { return (uint64_t)(uint32_t)end << 32 | (uint32_t)begin; }
static inline int share_begin(uint64_t w) { return (int)(uint32_t)w; }
static inline int share_end(uint64_t w) { return (int)(w >> 32); }

/* Takes the back half of the largest other share into share `me`; 0 when
 * no share has two chunks left. */
static int steal_half(lm_range_job *j, int me) {
    for (;;) {
        int victim = -1, most = 0;
        uint64_t seen = 0;
        for (int s = 0; s < j->n_shares; s++) {
            uint64_t w = atomic_load_explicit(&j->share[s].word, memory_order_acquire);
            int left = share_end(w) - share_begin(w);
            if (s != me && left > most) victim = s, most = left, seen = w;
        }
        if (victim < 0 || most < 2 * j->grain) return 0;
        int b = share_begin(seen), e = share_end(seen);
        /* begin is always a multiple of grain, so the middle is too */
        int mid = b + ((e - b) / 2 + j->grain - 1) / j->grain * j->grain;
        if (mid >= e) return 0;
        if (atomic_compare_exchange_strong_explicit(&j->share[victim].word, &seen, share_word(b, mid), memory_order_acq_rel,
                                                    memory_order_acquire)) {
            atomic_store_explicit(&j->share[me].word, share_word(mid, e), memory_order_release);
            return 1;
        }
    }
}

static void range_task(void *ctx, int me) {
    lm_range_job *j = ctx;
    do {
        uint64_t w = atomic_load_explicit(&j->share[me].word, memory_order_acquire);
        while (share_begin(w) < share_end(w)) {
            /* An eighth of what is left, in whole chunks (at least one):
             * a locked CAS per chunk cost ~1.5% of a decode step, and the
             * claims still shrink to one chunk near the end. */
            int b = share_begin(w), e = share_end(w), g = j->grain;
            int take = (e - b) / 8 / g * g, c = b + (take > g ? take : g);
            if (c > e) c = e;
            if (!atomic_compare_exchange_weak_explicit(&j->share[me].word, &w, share_word(c, e), memory_order_acq_rel,
                                                       memory_order_acquire))
                continue; /* a thief moved the end: w now holds the new word */
            for (int x = b; x < c; x += g) j->fn(j->ctx, x, x + g < c ? x + g : c);
            w = atomic_load_explicit(&j->share[me].word, memory_order_acquire);
        }
    } while (steal_half(j, me));
}

void lm_parallel_range(int n, int grain, lm_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int chunks = (n + grain - 1) / grain, threads = lm_get_threads();
    int shares = threads < chunks ? threads : chunks;
    if (shares > LM_POOL_MAX) shares = LM_POOL_MAX;
    if (shares <= 1 || t_in_task) {
        for (int b = 0; b < n; b += grain) fn(ctx, b, b + grain < n ? b + grain : n);
        return;
    }
    lm_range_job j = {.n_shares = shares, .grain = grain, .fn = fn, .ctx = ctx};
    for (int s = 0; s < shares; s++) {
        int b = (int)((long)chunks * s / shares) * grain, e = (int)((long)chunks * (s + 1) / shares) * grain;
        atomic_init(&j.share[s].word, share_word(b, e < n ? e : n));
    }
    lm_parallel(shares, range_task, &j);
}

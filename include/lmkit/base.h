/* lmkit base: status codes, errors, memory, files, RNG, timers.
 *
 * Every library function that can fail returns lm_status. On failure the
 * message (with file / field / value context) is kept per thread and read
 * with lm_last_error(). The library never prints and never exits. */
#ifndef LMKIT_BASE_H
#define LMKIT_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    LM_OK = 0,
    LM_ERR_IO,        /* open/read/write/rename failed */
    LM_ERR_FORMAT,    /* file contents malformed or truncated */
    LM_ERR_ARG,       /* bad argument / configuration value */
    LM_ERR_NOMEM,     /* allocation failed */
    LM_ERR_UNSUPPORTED,
    LM_ERR_RANGE      /* value out of range (e.g. prompt longer than context) */
} lm_status;

/* Sets the thread's error message (printf-style) and returns `code`,
 * so callers can write `return lm_error(LM_ERR_IO, "...", ...)`. */
lm_status lm_error(lm_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *lm_last_error(void);
const char *lm_status_name(lm_status s);

/* Propagate a failing status unchanged. */
#define LM_TRY(expr)                         \
    do {                                     \
        lm_status lm_try_s_ = (expr);        \
        if (lm_try_s_ != LM_OK) return lm_try_s_; \
    } while (0)

/* ---- memory ---- */
/* 64-byte aligned, zeroed. Caller frees with lm_free. NULL on failure
 * (and the error message is set). */
void *lm_alloc(size_t bytes);
/* The same, for large buffers that every training step walks (parameters,
 * gradients, optimizer moments, activations): from 2 MiB up, 2 MiB aligned
 * and asked for transparent huge pages, so a pass over hundreds of MB, or
 * over scattered embedding rows, does not miss the TLB every few KB (the
 * Shakespeare model's training step ran 4% faster with its activations on huge
 * pages). Freed with lm_free. */
void *lm_alloc_huge(size_t bytes);
void lm_free(void *p);
/* One lm_alloc_huge carved into float buffers: *slots[i].ptr gets slots[i].n
 * floats (NULL when n is 0), each 64-byte aligned. Returns the block to
 * lm_free, or NULL (error set, pointers untouched). */
typedef struct {
    float **ptr;
    size_t n;
} lm_float_slot;
float *lm_alloc_slots(const lm_float_slot *slots, size_t count);

/* ---- files ---- */
/* Reads a whole file into a malloc'd, NUL-terminated buffer. Caller frees
 * *out with free(). */
lm_status lm_read_file(const char *path, char **out, size_t *len);

/* A read-only memory map of a whole file. */
typedef struct {
    void *data;
    size_t size;
} lm_mmap;
lm_status lm_mmap_open(const char *path, lm_mmap *m);
void lm_mmap_close(lm_mmap *m);

/* Atomic file write: data goes to "<path>.tmp.<pid>", is fsynced, then
 * renamed over path, so a crash leaves either the old file or the new one.
 * The temp file is registered with lm_temp_register while it is open. */
typedef struct {
    FILE *f;
    char *path;
    char *tmp_path;
    int temp_slot;
} lm_atomic_file;
lm_status lm_atomic_open(lm_atomic_file *af, const char *path);
lm_status lm_atomic_write(lm_atomic_file *af, const void *data, size_t n);
lm_status lm_atomic_commit(lm_atomic_file *af); /* fsync + rename; closes */
void lm_atomic_abort(lm_atomic_file *af);       /* removes the temp file */
/* Temporary outputs (a file being written, a staging directory) that an
 * interrupted process should not leave behind: once
 * lm_remove_temps_on_signals has run, SIGINT, SIGTERM and SIGHUP remove
 * every registered file, then every registered (emptied) directory, and
 * then end the process as the signal would have. A kill -9 cannot be
 * caught; the temp names carry the pid so a later run never mistakes them
 * for output. lm_temp_register returns a slot (-1 when the table is full
 * or the path too long: then the path is simply not cleaned up). */
int lm_temp_register(const char *path, int is_dir);
void lm_temp_unregister(int slot);
void lm_remove_temps_on_signals(void);
/* Convenience: write a whole buffer atomically. */
lm_status lm_write_file_atomic(const char *path, const void *data, size_t n);
/* fsync a directory so a rename inside it is durable. */
lm_status lm_fsync_dir(const char *dir);
lm_status lm_mkdir_p(const char *dir);
int lm_file_exists(const char *path);
/* Joins dir and name into a malloc'd string. */
char *lm_path_join(const char *dir, const char *name);

/* ---- random numbers ----
 * Counter-based: the stream is a pure function of (seed, stream id), so
 * training randomness can be derived from (seed, step, rank) and resume
 * reproduces exactly. */
typedef struct {
    uint64_t state;
} lm_rng;
void lm_rng_seed(lm_rng *r, uint64_t seed, uint64_t stream);
uint64_t lm_rng_u64(lm_rng *r);
uint32_t lm_rng_below(lm_rng *r, uint32_t n); /* uniform in [0, n) */
float lm_rng_uniform(lm_rng *r);              /* uniform in [0, 1) */
float lm_rng_normal(lm_rng *r);               /* standard normal */

/* ---- time ---- */
double lm_now_seconds(void); /* monotonic */
double lm_cpu_seconds(void); /* CPU time of the process, all threads */

/* ---- threads ---- */
void lm_set_threads(int n); /* <= 0: all cores */
int lm_get_threads(void);
/* Runs fn(ctx, i) for every i in [0, n) on the calling thread and up to
 * lm_get_threads() - 1 pool workers, returning when all are done. Tasks
 * are claimed one at a time, so a worker the OS does not schedule costs
 * nothing (see src/base/pool.c); make tasks a few microseconds or more.
 * Called from inside a task, or while another thread's job runs, it runs
 * the tasks inline. */
typedef void (*lm_task_fn)(void *ctx, int i);
void lm_parallel(int n, lm_task_fn fn, void *ctx);
/* Runs fn(ctx, begin, end) over chunks that cover [0, n) exactly once,
 * each at most grain long and starting at a multiple of grain. Each thread
 * starts on an equal contiguous share and walks it forward, claiming
 * several chunks at a time while much is left and one near the end; a
 * thread that runs out takes the back half of the largest share left.
 * So every thread streams through long runs of neighbouring chunks (what
 * kernels that prefetch ahead want) and all finish within about one chunk
 * of each other. */
typedef void (*lm_range_fn)(void *ctx, int begin, int end);
void lm_parallel_range(int n, int grain, lm_range_fn fn, void *ctx);

/* ---- half precision conversion ---- */
float lm_f16_to_f32(uint16_t h);
uint16_t lm_f32_to_f16(float f);
float lm_bf16_to_f32(uint16_t h);
uint16_t lm_f32_to_bf16(float f); /* round to nearest even */

#endif

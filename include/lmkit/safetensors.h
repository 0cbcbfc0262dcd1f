/* safetensors: the Hugging Face weight format.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype", "shape", "data_offsets": [begin, end)}, "__metadata__": {...}},
 * then the data buffer. Files are memory-mapped, never copied: tensor data
 * pointers point into the map. The reader validates everything a hostile
 * file could get wrong (header size, dtype, shape vs byte count, offsets
 * in range, no overlaps, buffer fully covered) and names the offending
 * tensor in the error. */
#ifndef LMKIT_SAFETENSORS_H
#define LMKIT_SAFETENSORS_H

#include "lmkit/base.h"

#define LM_MAX_DIMS 8

typedef enum {
    LM_DTYPE_F32 = 0,
    LM_DTYPE_F16,
    LM_DTYPE_BF16,
    LM_DTYPE_F64,
    LM_DTYPE_I64,
    LM_DTYPE_I32,
    LM_DTYPE_I16,
    LM_DTYPE_I8,
    LM_DTYPE_U8,
    LM_DTYPE_BOOL,
    LM_DTYPE_COUNT
} lm_dtype;

const char *lm_dtype_name(lm_dtype t);
size_t lm_dtype_size(lm_dtype t);

typedef struct {
    char *name;
    lm_dtype dtype;
    int ndim;
    int64_t shape[LM_MAX_DIMS];
    int64_t numel;
    const void *data; /* inside the map */
    size_t nbytes;
    const char *file; /* path of the file holding it (owned by the set) */
} lm_st_tensor;

/* One file or a sharded set (model.safetensors.index.json). */
typedef struct {
    int n_files;
    char **paths;
    lm_mmap *maps;
    int n_tensors;
    lm_st_tensor *tensors; /* sorted by name */
    char *metadata_json;   /* "__metadata__" of the first file, or NULL */
} lm_safetensors;

/* Opens one .safetensors file, a model.safetensors.index.json, or a
 * directory holding either. Caller closes with lm_safetensors_close. */
lm_status lm_safetensors_open(const char *path, lm_safetensors *st);
void lm_safetensors_close(lm_safetensors *st);
const lm_st_tensor *lm_safetensors_find(const lm_safetensors *st, const char *name);

/* Converts a tensor (F32/F16/BF16/F64) to fp32 into dst, which holds
 * exactly `n` floats; n must equal the tensor's element count. */
lm_status lm_st_tensor_to_f32(const lm_st_tensor *t, float *dst, int64_t n);

/* Writer: collect tensors (data pointers must stay valid until
 * lm_st_writer_save), then save atomically. */
/* Produces a tensor's nbytes at save time, into a buffer the writer owns. */
typedef lm_status (*lm_st_fill_fn)(void *user, void *dst, size_t nbytes);
typedef struct {
    const char *name;
    lm_dtype dtype;
    int ndim;
    int64_t shape[LM_MAX_DIMS];
    const void *data;
    lm_st_fill_fn fill; /* when data is NULL */
    void *user;
} lm_st_entry;

typedef struct {
    int n, cap;
    lm_st_entry *entries;
    int n_meta;
    char **meta_keys, **meta_values;
} lm_st_writer;

void lm_st_writer_init(lm_st_writer *w);
/* name and data are borrowed, not copied. */
lm_status lm_st_writer_add(lm_st_writer *w, const char *name, lm_dtype dtype, int ndim,
                           const int64_t *shape, const void *data);
/* A tensor made only while it is written (converted or permuted
 * weights): at most one such tensor is in memory at a time, so a model
 * larger than memory as F32 can still be written. user is borrowed. */
lm_status lm_st_writer_add_fn(lm_st_writer *w, const char *name, lm_dtype dtype, int ndim, const int64_t *shape,
                              lm_st_fill_fn fill, void *user);
lm_status lm_st_writer_meta(lm_st_writer *w, const char *key, const char *value);
lm_status lm_st_writer_save(const lm_st_writer *w, const char *path);
void lm_st_writer_free(lm_st_writer *w);

#endif

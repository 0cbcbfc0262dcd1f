/* GGUF (ggml's model file, versions 2 and 3): a validating, memory-mapped
 * reader and an atomic writer.
 *
 * The reader checks every count, length, type, dimension and offset
 * against the file before anything is used, so a truncated or corrupt
 * file gives LM_ERR_FORMAT (or LM_ERR_UNSUPPORTED for a tensor type this
 * build cannot multiply) with the field named, never a crash. Tensor data
 * stays in the mapping: lm_gguf_tensor.data points into it. */
#ifndef LMKIT_GGUF_H
#define LMKIT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "lmkit/base.h"
#include "lmkit/quant.h"

typedef enum {
    LM_GGUF_U8 = 0, LM_GGUF_I8, LM_GGUF_U16, LM_GGUF_I16, LM_GGUF_U32, LM_GGUF_I32, LM_GGUF_F32,
    LM_GGUF_BOOL, LM_GGUF_STRING, LM_GGUF_ARRAY, LM_GGUF_U64, LM_GGUF_I64, LM_GGUF_F64,
} lm_gguf_vtype;

typedef struct {
    char *key;            /* NUL-terminated copy */
    lm_gguf_vtype type;
    /* Scalars, widened: integers and bools in i (and u), floats in f. */
    int64_t i;
    uint64_t u;
    double f;
    /* STRING: bytes in the file (not NUL-terminated). */
    const char *str;
    uint64_t str_len;
    /* ARRAY: element type, count, and the raw elements in the file; for
     * string arrays str_off[k] is the offset of element k's u64 length. */
    lm_gguf_vtype arr_type;
    uint64_t arr_n;
    const void *arr_data;
    size_t *str_off;
    /* The whole serialized pair in the file, so a writer can copy it. */
    size_t raw_begin, raw_end;
} lm_gguf_kv;

typedef struct {
    char *name;
    int n_dims;
    int64_t dims[4]; /* innermost (row length) first, as in the file */
    lm_qtype type;
    uint64_t offset; /* relative to the data section */
    size_t nbytes;
    const void *data;
} lm_gguf_tensor;

typedef struct lm_gguf {
    lm_mmap map;     /* empty when parsed from a caller's buffer */
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint64_t alignment;
    size_t data_offset;
    size_t n_kv;
    lm_gguf_kv *kv;
    size_t n_tensors;
    lm_gguf_tensor *tensors;
} lm_gguf;

/* Maps and validates path. On success close with lm_gguf_close. */
lm_status lm_gguf_open(const char *path, lm_gguf *g);
/* Validates a GGUF image in memory (kept by reference; for fuzzing). */
lm_status lm_gguf_parse(const void *data, size_t size, lm_gguf *g);
void lm_gguf_close(lm_gguf *g);

const lm_gguf_kv *lm_gguf_find(const lm_gguf *g, const char *key);
const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name);
/* Typed getters: LM_ERR_FORMAT naming the key if it is missing (unless a
 * default applies: *_or functions), of the wrong type, or out of range. */
lm_status lm_gguf_get_int(const lm_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out);
lm_status lm_gguf_get_int_or(const lm_gguf *g, const char *key, int64_t min, int64_t max, int64_t def,
                             int64_t *out);
lm_status lm_gguf_get_float_or(const lm_gguf *g, const char *key, double def, double *out);
/* A malloc'd NUL-terminated copy of a string value (caller frees). */
lm_status lm_gguf_get_str(const lm_gguf *g, const char *key, char **out);
/* Element k of a string array. */
void lm_gguf_arr_str(const lm_gguf *g, const lm_gguf_kv *kv, uint64_t k, const char **s, uint64_t *len);

/* ---- writer ----
 * Keys and tensors are written in the order added; tensor data pointers
 * must stay valid until lm_gguf_writer_write returns. */
typedef struct lm_gguf_writer lm_gguf_writer;
lm_gguf_writer *lm_gguf_writer_new(void); /* NULL on allocation failure */
void lm_gguf_writer_free(lm_gguf_writer *w);
lm_status lm_gguf_writer_set_u32(lm_gguf_writer *w, const char *key, uint32_t v);
lm_status lm_gguf_writer_set_i32(lm_gguf_writer *w, const char *key, int32_t v);
lm_status lm_gguf_writer_set_f32(lm_gguf_writer *w, const char *key, float v);
lm_status lm_gguf_writer_set_bool(lm_gguf_writer *w, const char *key, int v);
lm_status lm_gguf_writer_set_str(lm_gguf_writer *w, const char *key, const char *v);
/* Numeric array (elem type LM_GGUF_U8..F64 except STRING/ARRAY). */
lm_status lm_gguf_writer_set_arr(lm_gguf_writer *w, const char *key, lm_gguf_vtype elem, const void *data,
                                 uint64_t n);
lm_status lm_gguf_writer_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
/* Copies one key/value pair verbatim from an open file. */
lm_status lm_gguf_writer_copy_kv(lm_gguf_writer *w, const lm_gguf *g, const lm_gguf_kv *kv);
lm_status lm_gguf_writer_add_tensor(lm_gguf_writer *w, const char *name, lm_qtype type, int n_dims,
                                    const int64_t *dims, const void *data);
/* A tensor whose bytes are produced at write time: fill(user, dst,
 * nbytes) writes them into a buffer the writer allocates for that tensor
 * alone, so a model can be converted or generated tensor by tensor
 * without holding the whole output. `data` is passed through to nothing
 * (NULL is fine); an error from fill aborts the write. */
typedef lm_status (*lm_gguf_fill_fn)(void *user, void *dst, size_t nbytes);
lm_status lm_gguf_writer_add_tensor_fn(lm_gguf_writer *w, const char *name, lm_qtype type, int n_dims,
                                       const int64_t *dims, const void *data, lm_gguf_fill_fn fill, void *user);
/* Writes atomically (temp file, fsync, rename). general.alignment is 32
 * unless set as a u32 key. */
lm_status lm_gguf_writer_write(lm_gguf_writer *w, const char *path);

#endif

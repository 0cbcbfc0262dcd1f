/* safetensors reader (mmap + validation) and atomic writer. */
#include "lmkit/safetensors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LM_ST_MAX_HEADER (100u << 20) /* the reference implementation's limit */

static const char *const lm_dtype_names[LM_DTYPE_COUNT] = {
    "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
static const size_t lm_dtype_sizes[LM_DTYPE_COUNT] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};

const char *lm_dtype_name(lm_dtype t) { return (unsigned)t < LM_DTYPE_COUNT ? lm_dtype_names[t] : "?"; }
size_t lm_dtype_size(lm_dtype t) { return (unsigned)t < LM_DTYPE_COUNT ? lm_dtype_sizes[t] : 0; }

static int lm_dtype_parse(const char *s, lm_dtype *out) {
    for (int i = 0; i < LM_DTYPE_COUNT; i++)
        if (!strcmp(s, lm_dtype_names[i])) {
            *out = (lm_dtype)i;
            return 1;
        }
    return 0;
}

static int lm_tensor_cmp(const void *a, const void *b) {
    return strcmp(((const lm_st_tensor *)a)->name, ((const lm_st_tensor *)b)->name);
}

typedef struct {
    size_t begin, end;
    const char *name;
} lm_st_span;

static int lm_span_cmp(const void *a, const void *b) {
    const lm_st_span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : 0;
}

/* Parses one mapped file's header and appends its tensors to st. */
static lm_status lm_st_parse_file(lm_safetensors *st, int file_index) {
    const char *path = st->paths[file_index];
    const lm_mmap *m = &st->maps[file_index];
    const uint8_t *base = m->data;
    if (m->size < 8) return lm_error(LM_ERR_FORMAT, "%s: truncated safetensors file (%zu bytes, need >= 8)", path, m->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | base[i];
    if (hlen > LM_ST_MAX_HEADER) return lm_error(LM_ERR_FORMAT, "%s: header length %llu exceeds the 100 MB limit", path, (unsigned long long)hlen);
    if (hlen > m->size - 8) return lm_error(LM_ERR_FORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", path, (unsigned long long)hlen, m->size);
    json_error_t jerr;
    /* a tensor named twice would silently mean the last one */
    json_t *root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return lm_error(LM_ERR_FORMAT, "%s: header is not valid JSON: %s (position %d)", path, jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return lm_error(LM_ERR_FORMAT, "%s: header is not a JSON object", path);
    }
    const uint8_t *data = base + 8 + hlen;
    size_t data_size = m->size - 8 - (size_t)hlen;
    size_t n_new = json_object_size(root);
    lm_st_tensor *grown = realloc(st->tensors, (st->n_tensors + n_new) * sizeof *grown);
    lm_st_span *spans = malloc((n_new ? n_new : 1) * sizeof *spans);
    if (!grown || !spans) {
        if (grown) st->tensors = grown;
        free(spans);
        json_decref(root);
        return lm_error(LM_ERR_NOMEM, "%s: out of memory", path);
    }
    st->tensors = grown;
    int n_spans = 0;
    lm_status status = LM_OK;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) {
                status = lm_error(LM_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                break;
            }
            if (file_index == 0 && !st->metadata_json) st->metadata_json = json_dumps(val, JSON_COMPACT);
            continue;
        }
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2) {
            status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': needs dtype, shape and data_offsets[2]", path, key);
            break;
        }
        lm_st_tensor t = {0};
        if (!lm_dtype_parse(json_string_value(jd), &t.dtype)) {
            status = lm_error(LM_ERR_UNSUPPORTED, "%s: tensor '%s': unsupported dtype '%s'", path, key, json_string_value(jd));
            break;
        }
        if (json_array_size(js) > LM_MAX_DIMS) {
            status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': %zu dims (max %d)", path, key, json_array_size(js), LM_MAX_DIMS);
            break;
        }
        t.ndim = (int)json_array_size(js);
        t.numel = 1;
        for (int d = 0; d < t.ndim && status == LM_OK; d++) {
            json_t *dim = json_array_get(js, (size_t)d);
            if (!json_is_integer(dim) || json_integer_value(dim) < 0 || json_integer_value(dim) > ((int64_t)1 << 40)) {
                status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': shape[%d] is not a valid size", path, key, d);
                break;
            }
            t.shape[d] = json_integer_value(dim);
            /* checked before the product, which could overflow (2^40 x 2^40) */
            if (t.shape[d] > 0 && t.numel > ((int64_t)1 << 40) / t.shape[d]) {
                status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': shape has more than 2^40 elements", path, key);
                break;
            }
            t.numel *= t.shape[d];
        }
        if (status != LM_OK) break;
        json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
        if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 ||
            json_integer_value(je) < json_integer_value(jb) || (uint64_t)json_integer_value(je) > data_size) {
            status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': data_offsets out of range (data buffer is %zu bytes)", path, key, data_size);
            break;
        }
        size_t begin = (size_t)json_integer_value(jb), end = (size_t)json_integer_value(je);
        t.nbytes = end - begin;
        if ((uint64_t)t.numel * lm_dtype_size(t.dtype) != t.nbytes) {
            status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s': shape needs %llu bytes but data_offsets span %zu", path, key,
                              (unsigned long long)((uint64_t)t.numel * lm_dtype_size(t.dtype)), t.nbytes);
            break;
        }
        t.data = data + begin;
        t.file = path;
        t.name = strdup(key);
        if (!t.name) {
            status = lm_error(LM_ERR_NOMEM, "out of memory");
            break;
        }
        spans[n_spans++] = (lm_st_span){begin, end, t.name};
        st->tensors[st->n_tensors++] = t;
    }
    if (status == LM_OK) {
        /* Tensors must tile the buffer exactly: no overlap, no gap. */
        qsort(spans, (size_t)n_spans, sizeof *spans, lm_span_cmp);
        size_t cursor = 0;
        for (int i = 0; i < n_spans; i++) {
            if (spans[i].begin != cursor) {
                status = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' %s at byte %zu (expected %zu)", path, spans[i].name,
                                  spans[i].begin < cursor ? "overlaps the previous tensor" : "leaves a gap", spans[i].begin, cursor);
                break;
            }
            cursor = spans[i].end;
        }
        if (status == LM_OK && cursor != data_size)
            status = lm_error(LM_ERR_FORMAT, "%s: data buffer has %zu bytes but tensors cover %zu", path, data_size, cursor);
    }
    free(spans);
    json_decref(root);
    return status;
}

static lm_status lm_st_add_file(lm_safetensors *st, const char *path) {
    char **paths = realloc(st->paths, (st->n_files + 1) * sizeof *paths);
    if (!paths) return lm_error(LM_ERR_NOMEM, "out of memory");
    st->paths = paths;
    lm_mmap *maps = realloc(st->maps, (st->n_files + 1) * sizeof *maps);
    if (!maps) return lm_error(LM_ERR_NOMEM, "out of memory");
    st->maps = maps;
    st->paths[st->n_files] = strdup(path);
    if (!st->paths[st->n_files]) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = lm_mmap_open(path, &st->maps[st->n_files]);
    if (s != LM_OK) {
        free(st->paths[st->n_files]);
        return s;
    }
    st->n_files++;
    return lm_st_parse_file(st, st->n_files - 1);
}

static int lm_ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

/* Sharded checkpoints: {"weight_map": {tensor: file}} names each shard. */
static lm_status lm_st_open_index(lm_safetensors *st, const char *index_path) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return lm_error(LM_ERR_FORMAT, "%s: invalid JSON: %s (line %d)", index_path, jerr.text, jerr.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return lm_error(LM_ERR_FORMAT, "%s: missing object 'weight_map'", index_path);
    }
    char *dir = strdup(index_path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash) *slash = 0;
    else if (dir) strcpy(dir, ".");
    lm_status s = LM_OK;
    const char *key;
    json_t *val;
    json_object_foreach(wm, key, val) {
        if (!json_is_string(val) || strchr(json_string_value(val), '/')) {
            s = lm_error(LM_ERR_FORMAT, "%s: weight_map['%s'] is not a file name", index_path, key);
            break;
        }
        char *shard = lm_path_join(dir, json_string_value(val));
        int seen = 0;
        for (int i = 0; i < st->n_files && !seen; i++) seen = !strcmp(st->paths[i], shard);
        if (!seen) s = lm_st_add_file(st, shard);
        free(shard);
        if (s != LM_OK) break;
    }
    free(dir);
    json_decref(root);
    return s;
}

lm_status lm_safetensors_open(const char *path, lm_safetensors *st) {
    memset(st, 0, sizeof *st);
    struct stat sb;
    if (stat(path, &sb) != 0) return lm_error(LM_ERR_IO, "%s: no such file or directory", path);
    lm_status s;
    if (S_ISDIR(sb.st_mode)) {
        char *single = lm_path_join(path, "model.safetensors");
        char *index = lm_path_join(path, "model.safetensors.index.json");
        if (lm_file_exists(single)) s = lm_st_add_file(st, single);
        else if (lm_file_exists(index)) s = lm_st_open_index(st, index);
        else s = lm_error(LM_ERR_IO, "%s: no model.safetensors or model.safetensors.index.json", path);
        free(single);
        free(index);
    } else if (lm_ends_with(path, ".index.json")) {
        s = lm_st_open_index(st, path);
    } else {
        s = lm_st_add_file(st, path);
    }
    if (s == LM_OK) {
        qsort(st->tensors, (size_t)st->n_tensors, sizeof *st->tensors, lm_tensor_cmp);
        for (int i = 1; i < st->n_tensors; i++)
            if (!strcmp(st->tensors[i].name, st->tensors[i - 1].name)) {
                s = lm_error(LM_ERR_FORMAT, "%s: tensor '%s' appears twice", path, st->tensors[i].name);
                break;
            }
    }
    if (s != LM_OK) lm_safetensors_close(st);
    return s;
}

void lm_safetensors_close(lm_safetensors *st) {
    for (int i = 0; i < st->n_tensors; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_files; i++) {
        lm_mmap_close(&st->maps[i]);
        free(st->paths[i]);
    }
    free(st->tensors);
    free(st->maps);
    free(st->paths);
    free(st->metadata_json);
    memset(st, 0, sizeof *st);
}

const lm_st_tensor *lm_safetensors_find(const lm_safetensors *st, const char *name) {
    int lo = 0, hi = st->n_tensors - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = strcmp(st->tensors[mid].name, name);
        if (c == 0) return &st->tensors[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

lm_status lm_st_tensor_to_f32(const lm_st_tensor *t, float *dst, int64_t n) {
    if (n != t->numel) return lm_error(LM_ERR_FORMAT, "tensor '%s': has %lld elements, expected %lld", t->name, (long long)t->numel, (long long)n);
    const uint8_t *src = t->data;
    switch (t->dtype) {
    case LM_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); break;
    case LM_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = lm_f16_to_f32(h);
        }
        break;
    case LM_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = lm_bf16_to_f32(h);
        }
        break;
    case LM_DTYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    default:
        return lm_error(LM_ERR_UNSUPPORTED, "tensor '%s': dtype %s is not a floating-point type", t->name, lm_dtype_name(t->dtype));
    }
    return LM_OK;
}

/* ---- writer ---- */

void lm_st_writer_init(lm_st_writer *w) { memset(w, 0, sizeof *w); }

lm_status lm_st_writer_add(lm_st_writer *w, const char *name, lm_dtype dtype, int ndim, const int64_t *shape,
                           const void *data) {
    if (ndim < 0 || ndim > LM_MAX_DIMS) return lm_error(LM_ERR_ARG, "tensor '%s': %d dims (max %d)", name, ndim, LM_MAX_DIMS);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        lm_st_entry *e = realloc(w->entries, (size_t)cap * sizeof *e);
        if (!e) return lm_error(LM_ERR_NOMEM, "out of memory");
        w->entries = e;
        w->cap = cap;
    }
    lm_st_entry *e = &w->entries[w->n++];
    e->name = name;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    e->data = data;
    e->fill = NULL;
    e->user = NULL;
    return LM_OK;
}

lm_status lm_st_writer_add_fn(lm_st_writer *w, const char *name, lm_dtype dtype, int ndim, const int64_t *shape,
                              lm_st_fill_fn fill, void *user) {
    LM_TRY(lm_st_writer_add(w, name, dtype, ndim, shape, NULL));
    w->entries[w->n - 1].fill = fill;
    w->entries[w->n - 1].user = user;
    return LM_OK;
}

/* Writes one entry's bytes: its data, or what its fill function makes. */
static lm_status lm_write_entry(lm_atomic_file *af, const lm_st_entry *e, size_t nb) {
    if (!e->fill) return lm_atomic_write(af, e->data, nb);
    void *buf = malloc(nb ? nb : 1);
    if (!buf) return lm_error(LM_ERR_NOMEM, "tensor '%s': out of memory", e->name);
    lm_status s = e->fill(e->user, buf, nb);
    if (s == LM_OK) s = lm_atomic_write(af, buf, nb);
    free(buf);
    return s;
}

lm_status lm_st_writer_meta(lm_st_writer *w, const char *key, const char *value) {
    char **k = realloc(w->meta_keys, (size_t)(w->n_meta + 1) * sizeof *k);
    if (!k) return lm_error(LM_ERR_NOMEM, "out of memory");
    w->meta_keys = k;
    char **v = realloc(w->meta_values, (size_t)(w->n_meta + 1) * sizeof *v);
    if (!v) return lm_error(LM_ERR_NOMEM, "out of memory");
    w->meta_values = v;
    w->meta_keys[w->n_meta] = strdup(key);
    w->meta_values[w->n_meta] = strdup(value);
    w->n_meta++;
    return LM_OK;
}

static size_t lm_entry_bytes(const lm_st_entry *e) {
    size_t n = lm_dtype_size(e->dtype);
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

lm_status lm_st_writer_save(const lm_st_writer *w, const char *path) {
    json_t *root = json_object();
    if (w->n_meta) {
        json_t *meta = json_object();
        for (int i = 0; i < w->n_meta; i++) json_object_set_new(meta, w->meta_keys[i], json_string(w->meta_values[i]));
        json_object_set_new(root, "__metadata__", meta);
    }
    size_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const lm_st_entry *e = &w->entries[i];
        json_t *t = json_object(), *shape = json_array(), *offs = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        size_t nb = lm_entry_bytes(e);
        json_array_append_new(offs, json_integer((json_int_t)offset));
        json_array_append_new(offs, json_integer((json_int_t)(offset + nb)));
        offset += nb;
        json_object_set_new(t, "dtype", json_string(lm_dtype_name(e->dtype)));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "data_offsets", offs);
        json_object_set_new(root, e->name, t);
    }
    char *header = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!header) return lm_error(LM_ERR_NOMEM, "%s: cannot serialize header", path);
    size_t hlen = strlen(header);
    size_t padded = (hlen + 7) & ~(size_t)7; /* data starts 8-byte aligned, as the reference writer does */
    uint8_t len_bytes[8];
    for (int i = 0; i < 8; i++) len_bytes[i] = (uint8_t)(padded >> (8 * i));
    lm_atomic_file af;
    lm_status s = lm_atomic_open(&af, path);
    if (s != LM_OK) {
        free(header);
        return s;
    }
    static const char spaces[8] = "        ";
    s = lm_atomic_write(&af, len_bytes, 8);
    if (s == LM_OK) s = lm_atomic_write(&af, header, hlen);
    if (s == LM_OK) s = lm_atomic_write(&af, spaces, padded - hlen);
    for (int i = 0; i < w->n && s == LM_OK; i++) s = lm_write_entry(&af, &w->entries[i], lm_entry_bytes(&w->entries[i]));
    free(header);
    if (s != LM_OK) {
        lm_atomic_abort(&af);
        return s;
    }
    return lm_atomic_commit(&af);
}

void lm_st_writer_free(lm_st_writer *w) {
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->meta_keys);
    free(w->meta_values);
    free(w->entries);
    memset(w, 0, sizeof *w);
}

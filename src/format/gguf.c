/* GGUF reader: one bounds-checked cursor over the mapped file. Every read
 * goes through cur_need, so no field can send us past the end, and every
 * count is checked against the bytes left before anything is allocated
 * for it (a 10-byte file cannot ask for 2^60 tensors). */
#include "lmkit/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_MAX_DIMS 4

typedef struct {
    const uint8_t *p;
    size_t size, pos;
} cursor;

static lm_status cur_need(cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->pos)
        return lm_error(LM_ERR_FORMAT, "gguf: truncated at byte %zu reading %s (need %llu bytes, %zu left)", c->pos,
                        what, (unsigned long long)n, c->size - c->pos);
    return LM_OK;
}

static lm_status cur_u32(cursor *c, uint32_t *v, const char *what) {
    LM_TRY(cur_need(c, 4, what));
    memcpy(v, c->p + c->pos, 4);
    c->pos += 4;
    return LM_OK;
}

static lm_status cur_u64(cursor *c, uint64_t *v, const char *what) {
    LM_TRY(cur_need(c, 8, what));
    memcpy(v, c->p + c->pos, 8);
    c->pos += 8;
    return LM_OK;
}

static lm_status cur_str(cursor *c, const char **s, uint64_t *len, const char *what) {
    LM_TRY(cur_u64(c, len, what));
    LM_TRY(cur_need(c, *len, what));
    *s = (const char *)c->p + c->pos;
    c->pos += *len;
    return LM_OK;
}

static size_t scalar_size(uint32_t t) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t <= LM_GGUF_F64 ? sz[t] : 0;
}

static char *dup_n(const char *s, uint64_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static void read_scalar(lm_gguf_kv *kv, const uint8_t *p) {
    union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32; float f32;
            uint64_t u64; int64_t i64; double f64; } v;
    memcpy(&v, p, scalar_size(kv->type));
    switch (kv->type) {
    case LM_GGUF_U8: kv->i = v.u8; break;
    case LM_GGUF_BOOL: kv->i = v.u8 != 0; break;
    case LM_GGUF_I8: kv->i = v.i8; break;
    case LM_GGUF_U16: kv->i = v.u16; break;
    case LM_GGUF_I16: kv->i = v.i16; break;
    case LM_GGUF_U32: kv->i = v.u32; break;
    case LM_GGUF_I32: kv->i = v.i32; break;
    case LM_GGUF_U64: kv->i = (int64_t)v.u64; kv->u = v.u64; kv->f = (double)v.u64; return;
    case LM_GGUF_I64: kv->i = v.i64; break;
    case LM_GGUF_F32: kv->f = v.f32; kv->i = (int64_t)0; kv->u = 0; return;
    case LM_GGUF_F64: kv->f = v.f64; return;
    default: return;
    }
    kv->u = (uint64_t)kv->i;
    kv->f = (double)kv->i;
}

static lm_status parse_kv(cursor *c, lm_gguf_kv *kv, size_t idx) {
    const char *key;
    uint64_t klen;
    uint32_t type;
    kv->raw_begin = c->pos;
    LM_TRY(cur_str(c, &key, &klen, "key"));
    if (klen == 0 || klen > 65535) return lm_error(LM_ERR_FORMAT, "gguf: key %zu has length %llu", idx, (unsigned long long)klen);
    if (!(kv->key = dup_n(key, klen))) return lm_error(LM_ERR_NOMEM, "gguf: out of memory");
    if (strlen(kv->key) != klen) return lm_error(LM_ERR_FORMAT, "gguf: key %zu contains a NUL byte", idx);
    LM_TRY(cur_u32(c, &type, kv->key));
    if (type > LM_GGUF_F64) return lm_error(LM_ERR_FORMAT, "gguf: key '%s' has unknown value type %u", kv->key, type);
    kv->type = (lm_gguf_vtype)type;
    if (type == LM_GGUF_STRING) {
        LM_TRY(cur_str(c, &kv->str, &kv->str_len, kv->key));
    } else if (type == LM_GGUF_ARRAY) {
        uint32_t et;
        LM_TRY(cur_u32(c, &et, kv->key));
        LM_TRY(cur_u64(c, &kv->arr_n, kv->key));
        if (et == LM_GGUF_ARRAY) return lm_error(LM_ERR_UNSUPPORTED, "gguf: key '%s' is a nested array", kv->key);
        if (et > LM_GGUF_F64) return lm_error(LM_ERR_FORMAT, "gguf: key '%s' has unknown array element type %u", kv->key, et);
        kv->arr_type = (lm_gguf_vtype)et;
        kv->arr_data = c->p + c->pos;
        if (et == LM_GGUF_STRING) {
            /* Each element needs at least its 8-byte length. */
            if (kv->arr_n > (c->size - c->pos) / 8)
                return lm_error(LM_ERR_FORMAT, "gguf: key '%s' claims %llu strings, more than the file holds", kv->key,
                                (unsigned long long)kv->arr_n);
            kv->str_off = malloc(sizeof(size_t) * (kv->arr_n ? kv->arr_n : 1));
            if (!kv->str_off) return lm_error(LM_ERR_NOMEM, "gguf: out of memory");
            for (uint64_t k = 0; k < kv->arr_n; k++) {
                const char *s;
                uint64_t n;
                kv->str_off[k] = c->pos;
                LM_TRY(cur_str(c, &s, &n, kv->key));
            }
        } else {
            size_t es = scalar_size(et);
            if (kv->arr_n > (c->size - c->pos) / es)
                return lm_error(LM_ERR_FORMAT, "gguf: key '%s' claims %llu elements, more than the file holds", kv->key,
                                (unsigned long long)kv->arr_n);
            c->pos += kv->arr_n * es;
        }
    } else {
        LM_TRY(cur_need(c, scalar_size(type), kv->key));
        read_scalar(kv, c->p + c->pos);
        c->pos += scalar_size(type);
    }
    kv->raw_end = c->pos;
    return LM_OK;
}

static lm_status parse_tensor(cursor *c, lm_gguf_tensor *t, size_t idx) {
    const char *name;
    uint64_t nlen;
    uint32_t nd, type;
    LM_TRY(cur_str(c, &name, &nlen, "tensor name"));
    if (nlen == 0 || nlen > 1024) return lm_error(LM_ERR_FORMAT, "gguf: tensor %zu has name length %llu", idx, (unsigned long long)nlen);
    if (!(t->name = dup_n(name, nlen))) return lm_error(LM_ERR_NOMEM, "gguf: out of memory");
    if (strlen(t->name) != nlen) return lm_error(LM_ERR_FORMAT, "gguf: tensor %zu name contains a NUL byte", idx);
    LM_TRY(cur_u32(c, &nd, t->name));
    if (nd < 1 || nd > GGUF_MAX_DIMS)
        return lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' has n_dims %u (expected 1..4)", t->name, nd);
    t->n_dims = (int)nd;
    uint64_t elems = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) t->dims[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v;
        LM_TRY(cur_u64(c, &v, t->name));
        if (v == 0 || v > (1ull << 40) || elems > (1ull << 50) / v)
            return lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' dim %u = %llu out of range", t->name, d, (unsigned long long)v);
        t->dims[d] = (int64_t)v;
        elems *= v;
    }
    LM_TRY(cur_u32(c, &type, t->name));
    if (!lm_qtype_valid((int)type) || type == LM_QT_Q8_K)
        return lm_error(LM_ERR_UNSUPPORTED, "gguf: tensor '%s' has ggml type %u, which lmkit does not support", t->name, type);
    t->type = (lm_qtype)type;
    int be = lm_qtype_block_elems(t->type);
    if (t->dims[0] % be)
        return lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' row length %lld is not a multiple of %s's block size %d", t->name,
                        (long long)t->dims[0], lm_qtype_name(t->type), be);
    t->nbytes = lm_qtype_row_bytes(t->type, t->dims[0]) * (size_t)(elems / (uint64_t)t->dims[0]);
    LM_TRY(cur_u64(c, &t->offset, t->name));
    return LM_OK;
}

lm_status lm_gguf_parse(const void *data, size_t size, lm_gguf *g) {
    memset(g, 0, sizeof *g);
    cursor c = {data, size, 0};
    g->base = data;
    g->size = size;
    uint32_t magic;
    uint64_t n_tensors, n_kv;
    lm_status s;
    if ((s = cur_u32(&c, &magic, "magic")) != LM_OK) goto fail;
    if (magic != 0x46554747u) { /* "GGUF" little-endian */
        s = lm_error(LM_ERR_FORMAT, "gguf: bad magic 0x%08x (not a GGUF file)", magic);
        goto fail;
    }
    if ((s = cur_u32(&c, &g->version, "version")) != LM_OK) goto fail;
    if (g->version != 2 && g->version != 3) {
        s = lm_error(LM_ERR_UNSUPPORTED, "gguf: version %u (supported: 2, 3)", g->version);
        goto fail;
    }
    if ((s = cur_u64(&c, &n_tensors, "tensor_count")) != LM_OK || (s = cur_u64(&c, &n_kv, "kv_count")) != LM_OK) goto fail;
    /* Smallest kv: 8 (key len) + 1 + 4 + 1; smallest tensor info: 8 + 1 + 4 + 8 + 4 + 8. */
    if (n_kv > (size - c.pos) / 14 || n_tensors > (size - c.pos) / 33) {
        s = lm_error(LM_ERR_FORMAT, "gguf: kv_count %llu / tensor_count %llu exceed what a %zu-byte file can hold",
                     (unsigned long long)n_kv, (unsigned long long)n_tensors, size);
        goto fail;
    }
    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) {
        s = lm_error(LM_ERR_NOMEM, "gguf: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n_kv; i++) {
        g->n_kv = i + 1;
        if ((s = parse_kv(&c, &g->kv[i], i)) != LM_OK) goto fail;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(g->kv[j].key, g->kv[i].key)) {
                s = lm_error(LM_ERR_FORMAT, "gguf: duplicate key '%s'", g->kv[i].key);
                goto fail;
            }
    }
    g->alignment = 32;
    const lm_gguf_kv *al = lm_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != LM_GGUF_U32 || al->u == 0 || (al->u & (al->u - 1)) || al->u > 65536) {
            s = lm_error(LM_ERR_FORMAT, "gguf: general.alignment must be a u32 power of two, got %llu", (unsigned long long)al->u);
            goto fail;
        }
        g->alignment = al->u;
    }
    for (size_t i = 0; i < n_tensors; i++) {
        g->n_tensors = i + 1;
        if ((s = parse_tensor(&c, &g->tensors[i], i)) != LM_OK) goto fail;
    }
    for (size_t i = 1; i < g->n_tensors && g->n_tensors <= 20000; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(g->tensors[i].name, g->tensors[j].name)) {
                s = lm_error(LM_ERR_FORMAT, "gguf: duplicate tensor '%s'", g->tensors[i].name);
                goto fail;
            }
    g->data_offset = (c.pos + g->alignment - 1) / g->alignment * g->alignment;
    for (size_t i = 0; i < g->n_tensors; i++) {
        lm_gguf_tensor *t = &g->tensors[i];
        if (t->offset % g->alignment) {
            s = lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' offset %llu is not a multiple of the alignment %llu", t->name,
                         (unsigned long long)t->offset, (unsigned long long)g->alignment);
            goto fail;
        }
        if (g->data_offset > size || t->offset > size - g->data_offset || t->nbytes > size - g->data_offset - t->offset) {
            s = lm_error(LM_ERR_FORMAT, "gguf: tensor '%s' data [%llu, +%zu) runs past the end of the file (%zu bytes)", t->name,
                         (unsigned long long)t->offset, t->nbytes, size);
            goto fail;
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    return LM_OK;
fail:
    lm_gguf_close(g);
    return s;
}

lm_status lm_gguf_open(const char *path, lm_gguf *g) {
    lm_mmap m;
    memset(g, 0, sizeof *g);
    LM_TRY(lm_mmap_open(path, &m));
    lm_status s = lm_gguf_parse(m.data, m.size, g);
    if (s != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_last_error());
        lm_mmap_close(&m);
        return lm_error(s, "%s: %s", path, msg);
    }
    g->map = m;
    return LM_OK;
}

void lm_gguf_close(lm_gguf *g) {
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str_off);
    }
    for (size_t i = 0; i < g->n_tensors; i++) free(g->tensors[i].name);
    free(g->kv);
    free(g->tensors);
    if (g->map.data) lm_mmap_close(&g->map);
    memset(g, 0, sizeof *g);
}

const lm_gguf_kv *lm_gguf_find(const lm_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const lm_gguf_tensor *lm_gguf_find_tensor(const lm_gguf *g, const char *name) {
    for (size_t i = 0; i < g->n_tensors; i++)
        if (!strcmp(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

static int is_int_type(lm_gguf_vtype t) {
    return t <= LM_GGUF_I32 || t == LM_GGUF_BOOL || t == LM_GGUF_U64 || t == LM_GGUF_I64;
}

lm_status lm_gguf_get_int_or(const lm_gguf *g, const char *key, int64_t min, int64_t max, int64_t def, int64_t *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return LM_OK;
    }
    if (!is_int_type(kv->type)) return lm_error(LM_ERR_FORMAT, "gguf: key '%s' is not an integer (type %d)", key, (int)kv->type);
    if ((kv->type == LM_GGUF_U64 && kv->u > (uint64_t)INT64_MAX) || kv->i < min || kv->i > max)
        return lm_error(LM_ERR_FORMAT, "gguf: key '%s' = %lld out of range [%lld, %lld]", key, (long long)kv->i,
                        (long long)min, (long long)max);
    *out = kv->i;
    return LM_OK;
}

lm_status lm_gguf_get_int(const lm_gguf *g, const char *key, int64_t min, int64_t max, int64_t *out) {
    if (!lm_gguf_find(g, key)) return lm_error(LM_ERR_FORMAT, "gguf: missing key '%s'", key);
    return lm_gguf_get_int_or(g, key, min, max, 0, out);
}

lm_status lm_gguf_get_float_or(const lm_gguf *g, const char *key, double def, double *out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) {
        *out = def;
        return LM_OK;
    }
    if (kv->type == LM_GGUF_STRING || kv->type == LM_GGUF_ARRAY)
        return lm_error(LM_ERR_FORMAT, "gguf: key '%s' is not a number", key);
    *out = kv->f;
    return LM_OK;
}

lm_status lm_gguf_get_str(const lm_gguf *g, const char *key, char **out) {
    const lm_gguf_kv *kv = lm_gguf_find(g, key);
    if (!kv) return lm_error(LM_ERR_FORMAT, "gguf: missing key '%s'", key);
    if (kv->type != LM_GGUF_STRING) return lm_error(LM_ERR_FORMAT, "gguf: key '%s' is not a string", key);
    /* a NUL inside would make "llama\0zz" read as "llama" */
    if (memchr(kv->str, 0, kv->str_len)) return lm_error(LM_ERR_FORMAT, "gguf: key '%s' holds a NUL byte", key);
    if (!(*out = dup_n(kv->str, kv->str_len))) return lm_error(LM_ERR_NOMEM, "gguf: out of memory");
    return LM_OK;
}

void lm_gguf_arr_str(const lm_gguf *g, const lm_gguf_kv *kv, uint64_t k, const char **s, uint64_t *len) {
    memcpy(len, g->base + kv->str_off[k], 8);
    *s = (const char *)g->base + kv->str_off[k] + 8;
}

/* GGUF writer: key/value pairs are serialized as they are added into one
 * growing buffer; tensors are recorded by reference and streamed out at
 * write time, each padded to the alignment. */
#include <stdlib.h>
#include <string.h>

#include "lmkit/gguf.h"

typedef struct {
    char *name;
    lm_qtype type;
    int n_dims;
    int64_t dims[4];
    const void *data;
    lm_gguf_fill_fn fill; /* produces the data at write time instead */
    void *fill_user;
    size_t nbytes;
    uint64_t offset;
} wtensor;

struct lm_gguf_writer {
    uint8_t *kv;
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    uint32_t alignment;
    wtensor *t;
    size_t n_t, cap_t;
};

lm_gguf_writer *lm_gguf_writer_new(void) {
    lm_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) lm_error(LM_ERR_NOMEM, "gguf writer: out of memory");
    else w->alignment = 32;
    return w;
}

void lm_gguf_writer_free(lm_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->kv);
    free(w);
}

static lm_status put(lm_gguf_writer *w, const void *p, size_t n) {
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        uint8_t *nb = realloc(w->kv, cap);
        if (!nb) return lm_error(LM_ERR_NOMEM, "gguf writer: out of memory");
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return LM_OK;
}

static lm_status put_str(lm_gguf_writer *w, const char *s) {
    uint64_t n = strlen(s);
    LM_TRY(put(w, &n, 8));
    return put(w, s, n);
}

static lm_status put_key(lm_gguf_writer *w, const char *key, lm_gguf_vtype t) {
    uint32_t t32 = (uint32_t)t;
    LM_TRY(put_str(w, key));
    w->n_kv++;
    return put(w, &t32, 4);
}

lm_status lm_gguf_writer_set_u32(lm_gguf_writer *w, const char *key, uint32_t v) {
    if (!strcmp(key, "general.alignment")) {
        if (!v || (v & (v - 1))) return lm_error(LM_ERR_ARG, "gguf writer: alignment %u is not a power of two", v);
        w->alignment = v;
    }
    LM_TRY(put_key(w, key, LM_GGUF_U32));
    return put(w, &v, 4);
}
lm_status lm_gguf_writer_set_i32(lm_gguf_writer *w, const char *key, int32_t v) {
    LM_TRY(put_key(w, key, LM_GGUF_I32));
    return put(w, &v, 4);
}
lm_status lm_gguf_writer_set_f32(lm_gguf_writer *w, const char *key, float v) {
    LM_TRY(put_key(w, key, LM_GGUF_F32));
    return put(w, &v, 4);
}
lm_status lm_gguf_writer_set_bool(lm_gguf_writer *w, const char *key, int v) {
    uint8_t b = v != 0;
    LM_TRY(put_key(w, key, LM_GGUF_BOOL));
    return put(w, &b, 1);
}
lm_status lm_gguf_writer_set_str(lm_gguf_writer *w, const char *key, const char *v) {
    LM_TRY(put_key(w, key, LM_GGUF_STRING));
    return put_str(w, v);
}

lm_status lm_gguf_writer_set_arr(lm_gguf_writer *w, const char *key, lm_gguf_vtype elem, const void *data, uint64_t n) {
    static const size_t sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (elem > LM_GGUF_F64 || !sz[elem]) return lm_error(LM_ERR_ARG, "gguf writer: bad array element type %d", (int)elem);
    uint32_t e = (uint32_t)elem;
    LM_TRY(put_key(w, key, LM_GGUF_ARRAY));
    LM_TRY(put(w, &e, 4));
    LM_TRY(put(w, &n, 8));
    return put(w, data, n * sz[elem]);
}

lm_status lm_gguf_writer_set_arr_str(lm_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    uint32_t e = LM_GGUF_STRING;
    LM_TRY(put_key(w, key, LM_GGUF_ARRAY));
    LM_TRY(put(w, &e, 4));
    LM_TRY(put(w, &n, 8));
    for (uint64_t i = 0; i < n; i++) LM_TRY(put_str(w, strs[i]));
    return LM_OK;
}

lm_status lm_gguf_writer_copy_kv(lm_gguf_writer *w, const lm_gguf *g, const lm_gguf_kv *kv) {
    if (!strcmp(kv->key, "general.alignment")) w->alignment = (uint32_t)kv->u;
    w->n_kv++;
    return put(w, g->base + kv->raw_begin, kv->raw_end - kv->raw_begin);
}

lm_status lm_gguf_writer_add_tensor(lm_gguf_writer *w, const char *name, lm_qtype type, int n_dims, const int64_t *dims,
                                    const void *data) {
    return lm_gguf_writer_add_tensor_fn(w, name, type, n_dims, dims, data, NULL, NULL);
}

lm_status lm_gguf_writer_add_tensor_fn(lm_gguf_writer *w, const char *name, lm_qtype type, int n_dims, const int64_t *dims,
                                       const void *data, lm_gguf_fill_fn fill, void *user) {
    if (n_dims < 1 || n_dims > 4) return lm_error(LM_ERR_ARG, "gguf writer: tensor '%s' has %d dims", name, n_dims);
    if (!lm_qtype_valid(type) || type == LM_QT_Q8_K)
        return lm_error(LM_ERR_ARG, "gguf writer: tensor '%s' has unsupported type %d", name, (int)type);
    if (dims[0] % lm_qtype_block_elems(type))
        return lm_error(LM_ERR_ARG, "gguf writer: tensor '%s' row length %lld is not a multiple of %s's block size", name,
                        (long long)dims[0], lm_qtype_name(type));
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) return lm_error(LM_ERR_NOMEM, "gguf writer: out of memory");
        w->t = nt;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return lm_error(LM_ERR_NOMEM, "gguf writer: out of memory");
    t->type = type;
    t->n_dims = n_dims;
    size_t rows = 1;
    for (int d = 0; d < n_dims; d++) {
        t->dims[d] = dims[d];
        if (d) rows *= (size_t)dims[d];
    }
    t->nbytes = lm_qtype_row_bytes(type, dims[0]) * rows;
    t->data = data;
    t->fill = fill;
    t->fill_user = user;
    w->n_t++;
    return LM_OK;
}

static const uint8_t zeros[64 * 1024];

static lm_status pad_to(lm_atomic_file *af, uint64_t *pos, uint64_t align) {
    uint64_t pad = (align - *pos % align) % align;
    *pos += pad;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        LM_TRY(lm_atomic_write(af, zeros, n));
        pad -= n;
    }
    return LM_OK;
}

lm_status lm_gguf_writer_write(lm_gguf_writer *w, const char *path) {
    /* Header and tensor infos go into the kv buffer's tail, then the whole
     * thing is written once. */
    uint8_t head[24];
    uint32_t magic = 0x46554747u, version = 3;
    uint64_t nt = w->n_t;
    memcpy(head, &magic, 4);
    memcpy(head + 4, &version, 4);
    memcpy(head + 8, &nt, 8);
    memcpy(head + 16, &w->n_kv, 8);
    size_t kv_end = w->kv_len;
    uint64_t off = 0;
    lm_status s = LM_OK;
    for (size_t i = 0; i < w->n_t && s == LM_OK; i++) {
        wtensor *t = &w->t[i];
        uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
        t->offset = off;
        if ((s = put_str(w, t->name)) != LM_OK || (s = put(w, &nd, 4)) != LM_OK) break;
        for (int d = 0; d < t->n_dims && s == LM_OK; d++) s = put(w, &t->dims[d], 8);
        if (s != LM_OK || (s = put(w, &ty, 4)) != LM_OK || (s = put(w, &t->offset, 8)) != LM_OK) break;
        off += (t->nbytes + w->alignment - 1) / w->alignment * w->alignment;
    }
    if (s != LM_OK) {
        w->kv_len = kv_end;
        return s;
    }
    lm_atomic_file af;
    if ((s = lm_atomic_open(&af, path)) != LM_OK) {
        w->kv_len = kv_end;
        return s;
    }
    uint64_t pos = 24 + w->kv_len;
    if ((s = lm_atomic_write(&af, head, 24)) == LM_OK && (s = lm_atomic_write(&af, w->kv, w->kv_len)) == LM_OK)
        s = pad_to(&af, &pos, w->alignment);
    for (size_t i = 0; i < w->n_t && s == LM_OK; i++) {
        const wtensor *t = &w->t[i];
        if (t->fill) {
            /* One produced tensor in memory at a time. */
            void *buf = malloc(t->nbytes ? t->nbytes : 1);
            if (!buf) s = lm_error(LM_ERR_NOMEM, "gguf writer: cannot allocate %zu bytes for '%s'", t->nbytes, t->name);
            else if ((s = t->fill(t->fill_user, buf, t->nbytes)) == LM_OK) s = lm_atomic_write(&af, buf, t->nbytes);
            free(buf);
        } else {
            s = lm_atomic_write(&af, t->data, t->nbytes);
        }
        if (s != LM_OK) break;
        pos += w->t[i].nbytes;
        if (i + 1 < w->n_t) s = pad_to(&af, &pos, w->alignment);
    }
    w->kv_len = kv_end; /* the writer can be written again */
    if (s != LM_OK) {
        lm_atomic_abort(&af);
        return s;
    }
    return lm_atomic_commit(&af);
}

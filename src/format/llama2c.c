/* llama2.c checkpoints (.bin, legacy and v1 headers) and tokenizer.bin.
 *
 * The header's sizes are checked against the file before any pointer is
 * formed: every weight is a float array inside the mapping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"
#include "model/llama_internal.h"

static lm_status own(lm_llama_model *m, void *p) {
    void **o = realloc(m->owned, sizeof(void *) * (size_t)(m->n_owned + 1));
    if (!o) {
        free(p);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    m->owned = o;
    m->owned[m->n_owned++] = p;
    return LM_OK;
}

static lm_weight f32w(const float *p, int rows, int cols) {
    lm_weight w = {p, LM_QT_F32, rows, cols};
    return w;
}

lm_status lm_llama_parse_llama2c(const void *data, size_t size, lm_llama_model *m) {
    memset(m, 0, sizeof *m);
    const uint8_t *base = data;
    int32_t h[7];
    size_t off;
    int shared;
    uint32_t magic = 0;
    if (size >= 4) memcpy(&magic, base, 4);
    if (magic == 0x616b3432u) {
        int32_t version;
        if (size < 256) return lm_error(LM_ERR_FORMAT, "llama2.c: v1 header truncated (%zu of 256 bytes)", size);
        memcpy(&version, base + 4, 4);
        if (version != 1)
            return lm_error(LM_ERR_UNSUPPORTED, "llama2.c: header version %d (supported: legacy, 1; 2 is int8 and not supported)",
                            version);
        memcpy(h, base + 8, sizeof h);
        shared = base[36] != 0;
        off = 256;
    } else {
        if (size < 28) return lm_error(LM_ERR_FORMAT, "llama2.c: header truncated (%zu of 28 bytes)", size);
        memcpy(h, base, sizeof h);
        shared = h[5] > 0;
        /* INT32_MIN has no positive counterpart; leave it for the range check. */
        if (h[5] < 0 && h[5] != INT32_MIN) h[5] = -h[5];
        off = 28;
    }
    static const char *names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
    static const int32_t maxv[7] = {1 << 16, 1 << 18, 1024, 1024, 1024, 1 << 22, 1 << 22};
    for (int i = 0; i < 7; i++)
        if (h[i] <= 0 || h[i] > maxv[i])
            return lm_error(LM_ERR_FORMAT, "llama2.c: header field %s = %d out of range [1, %d]", names[i], h[i], maxv[i]);
    lm_llama_config *c = &m->cfg;
    c->dim = h[0], c->hidden_dim = h[1], c->n_layers = h[2], c->n_heads = h[3], c->n_kv_heads = h[4];
    c->vocab_size = h[5], c->max_seq_len = h[6];
    c->rope_theta = 10000.f, c->rms_eps = 1e-5f, c->rope_neox = 0, c->bos_id = 1, c->eos_id = 2;
    if (c->dim % c->n_heads) return lm_error(LM_ERR_FORMAT, "llama2.c: dim %d not divisible by n_heads %d", c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    LM_TRY(lm_llama_config_check(c));
    uint64_t D = (uint64_t)c->dim, H = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers, V = (uint64_t)c->vocab_size;
    uint64_t KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    uint64_t per_layer = 2 * D + D * D + 2 * KV * D + D * D + 3 * H * D;
    uint64_t floats = V * D + L * per_layer + D + (shared ? 0 : V * D);
    if (magic != 0x616b3432u) floats += (uint64_t)c->max_seq_len * (uint64_t)c->head_dim; /* freq_cis */
    if (floats > (size - off) / 4)
        return lm_error(LM_ERR_FORMAT, "llama2.c: header implies %llu bytes of weights but the file has %zu",
                        (unsigned long long)(floats * 4), size - off);
    const float *p = (const float *)(base + off);
    m->layers = calloc((size_t)L, sizeof *m->layers);
    if (!m->layers) return lm_error(LM_ERR_NOMEM, "out of memory");
    int kvd = (int)KV;
#define TAKE(n) (p += (n), p - (n))
    if (magic == 0x616b3432u) {
        for (uint64_t l = 0; l < L; l++) m->layers[l].attn_norm = TAKE(D);
        for (uint64_t l = 0; l < L; l++) m->layers[l].ffn_norm = TAKE(D);
        m->out_norm = TAKE(D);
        m->tok_emb = f32w(TAKE(V * D), (int)V, (int)D);
    } else {
        m->tok_emb = f32w(TAKE(V * D), (int)V, (int)D);
        for (uint64_t l = 0; l < L; l++) m->layers[l].attn_norm = TAKE(D);
    }
    for (uint64_t l = 0; l < L; l++) m->layers[l].wq = f32w(TAKE(D * D), (int)D, (int)D);
    for (uint64_t l = 0; l < L; l++) m->layers[l].wk = f32w(TAKE(KV * D), kvd, (int)D);
    for (uint64_t l = 0; l < L; l++) m->layers[l].wv = f32w(TAKE(KV * D), kvd, (int)D);
    for (uint64_t l = 0; l < L; l++) m->layers[l].wo = f32w(TAKE(D * D), (int)D, (int)D);
    if (magic != 0x616b3432u)
        for (uint64_t l = 0; l < L; l++) m->layers[l].ffn_norm = TAKE(D);
    for (uint64_t l = 0; l < L; l++) m->layers[l].w_gate = f32w(TAKE(H * D), (int)H, (int)D);
    for (uint64_t l = 0; l < L; l++) m->layers[l].w_down = f32w(TAKE(D * H), (int)D, (int)H);
    for (uint64_t l = 0; l < L; l++) m->layers[l].w_up = f32w(TAKE(H * D), (int)H, (int)D);
    if (magic != 0x616b3432u) {
        m->out_norm = TAKE(D);
        p += (uint64_t)c->max_seq_len * (uint64_t)c->head_dim; /* precomputed RoPE tables, unused */
    }
    m->output = shared ? m->tok_emb : f32w(TAKE(V * D), (int)V, (int)D);
#undef TAKE
    m->weight_bytes = floats * 4;
    return LM_OK;
}

lm_status lm_llama_load_llama2c(const char *path, lm_llama_model *m) {
    double t0 = lm_now_seconds();
    lm_mmap map;
    memset(m, 0, sizeof *m);
    LM_TRY(lm_mmap_open(path, &map));
    lm_status s = lm_llama_parse_llama2c(map.data, map.size, m);
    if (s != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_last_error());
        lm_mmap_close(&map);
        lm_llama_free(m);
        return lm_error(s, "%s: %s", path, msg);
    }
    m->map = map;
    m->load_seconds = lm_now_seconds() - t0;
    return LM_OK;
}

/* ---------------- tokenizer.bin ---------------- */

lm_status lm_llama2c_vocab_parse(const void *data, size_t size, int vocab_size, lm_llama2c_vocab *v) {
    memset(v, 0, sizeof *v);
    const uint8_t *p = data;
    size_t pos = 4;
    if (vocab_size <= 0 || vocab_size > (1 << 22)) return lm_error(LM_ERR_ARG, "tokenizer.bin: vocab size %d out of range", vocab_size);
    if (size < 4) return lm_error(LM_ERR_FORMAT, "tokenizer.bin: truncated header");
    int32_t mtl;
    memcpy(&mtl, p, 4);
    if (mtl <= 0 || mtl > 65536) return lm_error(LM_ERR_FORMAT, "tokenizer.bin: max_token_length %d out of range", mtl);
    v->max_token_length = mtl;
    v->pieces = calloc((size_t)vocab_size, sizeof *v->pieces);
    v->scores = calloc((size_t)vocab_size, sizeof *v->scores);
    if (!v->pieces || !v->scores) {
        lm_llama2c_vocab_free(v);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    v->n = vocab_size;
    for (int i = 0; i < vocab_size; i++) {
        int32_t len;
        if (size - pos < 8) {
            lm_llama2c_vocab_free(v);
            return lm_error(LM_ERR_FORMAT, "tokenizer.bin: truncated at token %d of %d", i, vocab_size);
        }
        memcpy(&v->scores[i], p + pos, 4);
        memcpy(&len, p + pos + 4, 4);
        pos += 8;
        if (len < 0 || len > mtl || (size_t)len > size - pos) {
            lm_llama2c_vocab_free(v);
            return lm_error(LM_ERR_FORMAT, "tokenizer.bin: token %d has length %d (max %d, %zu bytes left)", i, len, mtl, size - pos);
        }
        if (!(v->pieces[i] = malloc((size_t)len + 1))) {
            lm_llama2c_vocab_free(v);
            return lm_error(LM_ERR_NOMEM, "out of memory");
        }
        memcpy(v->pieces[i], p + pos, (size_t)len);
        v->pieces[i][len] = 0;
        pos += (size_t)len;
    }
    return LM_OK;
}

lm_status lm_llama2c_vocab_load(const char *path, int vocab_size, lm_llama2c_vocab *v) {
    char *buf;
    size_t n;
    memset(v, 0, sizeof *v);
    LM_TRY(lm_read_file(path, &buf, &n));
    lm_status s = lm_llama2c_vocab_parse(buf, n, vocab_size, v);
    free(buf);
    if (s != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_last_error());
        return lm_error(s, "%s: %s", path, msg);
    }
    return LM_OK;
}

void lm_llama2c_vocab_free(lm_llama2c_vocab *v) {
    if (v->pieces)
        for (int i = 0; i < v->n; i++) free(v->pieces[i]);
    free(v->pieces);
    free(v->scores);
    memset(v, 0, sizeof *v);
}

const char *lm_llama2c_vocab_piece(const lm_llama2c_vocab *v, int prev, int tok, char buf[2]) {
    if (tok < 0 || tok >= v->n) return "";
    const char *piece = v->pieces[tok];
    if (prev == 1 && piece[0] == ' ') piece++;
    unsigned int byte;
    if (strlen(piece) == 6 && sscanf(piece, "<0x%02X>", &byte) == 1) {
        buf[0] = (char)byte;
        buf[1] = 0;
        return buf;
    }
    return piece;
}

lm_status lm_llama_own(lm_llama_model *m, void *p) { return own(m, p); }

/* Writing a LLaMA model as a Hugging Face checkpoint directory
 * (config.json, model.safetensors with transformers' tensor names, the
 * tokenizer), the inverse of lm_llama_load_hf, so whatever lmkit reads
 * (GGUF, llama2.c .bin) loads in transformers.
 *
 * HF rotates the two halves of each head; models read with pair rotation
 * (llama2.c, llama-arch GGUF) get their q/k rows permuted back, as
 * transformers' convert_llama_weights_to_hf.py does for Meta checkpoints.
 * A GGUF's LLaMA 3 rope_freqs.weight becomes the rope_scaling it was made
 * from. The directory is written aside and renamed into place whole. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"
#include "base/json_field.h"
#include "tokenizer/tokenizer_files.h"

#define LM_TWO_PI 6.283185307179586

/* Allocations that live until the safetensors file is written. */
typedef struct {
    void **bufs;
    int n;
} keep_list;

static void *keep(keep_list *k, void *p) {
    void **nb = p ? realloc(k->bufs, sizeof(void *) * (size_t)(k->n + 1)) : NULL;
    if (!nb) {
        free(p);
        lm_error(LM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    k->bufs = nb;
    k->bufs[k->n++] = p;
    return p;
}

/* One tensor made at write time: rows of `w` (any type; a vector is a
 * [n, 1] column so biases permute like rows), row i of each head read
 * from the pair-layout row 2 * (i % half) + i / half when permute_heads,
 * converted to `out`. */
typedef struct {
    lm_weight w;
    lm_dtype out;
    int permute_heads;
} hf_src;

static int src_row(const hf_src *h, int r) {
    if (!h->permute_heads) return r;
    int hd = h->w.rows / h->permute_heads, half = hd / 2, i = r % hd;
    return r - i + 2 * (i % half) + i / half;
}

static lm_status fill_tensor(void *user, void *dst, size_t nbytes) {
    const hf_src *h = user;
    int K = h->w.cols;
    size_t in_rb = lm_qtype_row_bytes(h->w.type, K), out_rb = lm_dtype_size(h->out) * (size_t)K;
    if (out_rb * (size_t)h->w.rows != nbytes) return lm_error(LM_ERR_ARG, "hf export: tensor size mismatch");
    float *f = malloc(sizeof(float) * (size_t)K);
    if (!f) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_status s = LM_OK;
    for (int r = 0; r < h->w.rows && s == LM_OK; r++) {
        char *o = (char *)dst + out_rb * (size_t)r;
        s = lm_dequantize(h->w.type, (const char *)h->w.data + in_rb * (size_t)src_row(h, r), f, 1, K);
        if (h->out == LM_DTYPE_F32) memcpy(o, f, out_rb);
        for (int k = 0; k < K && h->out != LM_DTYPE_F32; k++) {
            uint16_t v = h->out == LM_DTYPE_F16 ? lm_f32_to_f16(f[k]) : lm_f32_to_bf16(f[k]);
            memcpy(o + 2 * k, &v, 2);
        }
    }
    free(f);
    return s;
}

static lm_dtype dtype_of(lm_qtype t) { return t == LM_QT_F16 ? LM_DTYPE_F16 : t == LM_QT_BF16 ? LM_DTYPE_BF16 : LM_DTYPE_F32; }

/* Adds a tensor of 1 or 2 dims: borrowed from the model when it is
 * already what the file needs, else made at write time. */
static lm_status add(lm_st_writer *sw, keep_list *k, const char *name, const lm_weight *w, int ndim, lm_dtype out,
                     int permute_heads) {
    if (!w->data) return lm_error(LM_ERR_UNSUPPORTED, "hf export: tensor '%s' has no data (save a random model as GGUF first)", name);
    char *nm = keep(k, strdup(name));
    if (!nm) return LM_ERR_NOMEM;
    int64_t shape[2] = {ndim == 1 ? (int64_t)w->rows * w->cols : w->rows, w->cols};
    if (!permute_heads && (w->type == LM_QT_F32 || w->type == LM_QT_F16 || w->type == LM_QT_BF16) && dtype_of(w->type) == out)
        return lm_st_writer_add(sw, nm, out, ndim, shape, w->data);
    hf_src *h = keep(k, malloc(sizeof *h));
    if (!h) return LM_ERR_NOMEM;
    *h = (hf_src){.w = *w, .out = out, .permute_heads = permute_heads};
    return lm_st_writer_add_fn(sw, nm, out, ndim, shape, fill_tensor, h);
}

static lm_weight column(const float *v, int n) { return (lm_weight){.data = v, .type = LM_QT_F32, .rows = n, .cols = 1}; }
static lm_weight row(const float *v, int n) { return (lm_weight){.data = v, .type = LM_QT_F32, .rows = 1, .cols = n}; }

static lm_status add_tensors(const lm_llama_model *m, lm_st_writer *sw, keep_list *k, int type, lm_dtype vec_t) {
    const lm_llama_config *c = &m->cfg;
    int pq = c->rope_neox ? 0 : c->n_heads, pk = c->rope_neox ? 0 : c->n_kv_heads;
    int Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    /* quantized matrices become F32 unless a type was asked for */
#define MT(w) dtype_of(type >= 0 ? (lm_qtype)type : (w).type)
    LM_TRY(add(sw, k, "model.embed_tokens.weight", &m->tok_emb, 2, MT(m->tok_emb), 0));
    for (int l = 0; l < c->n_layers; l++) {
        const lm_llama_layer *ly = &m->layers[l];
        char n[128];
        lm_weight v;
#define N(x) (snprintf(n, sizeof n, "model.layers.%d.%s", l, x), n)
        LM_TRY(add(sw, k, N("input_layernorm.weight"), (v = row(ly->attn_norm, c->dim), &v), 1, vec_t, 0));
        LM_TRY(add(sw, k, N("self_attn.q_proj.weight"), &ly->wq, 2, MT(ly->wq), pq));
        LM_TRY(add(sw, k, N("self_attn.k_proj.weight"), &ly->wk, 2, MT(ly->wk), pk));
        LM_TRY(add(sw, k, N("self_attn.v_proj.weight"), &ly->wv, 2, MT(ly->wv), 0));
        LM_TRY(add(sw, k, N("self_attn.o_proj.weight"), &ly->wo, 2, MT(ly->wo), 0));
        if (ly->bq) {
            LM_TRY(add(sw, k, N("self_attn.q_proj.bias"), (v = column(ly->bq, Q), &v), 1, vec_t, pq));
            LM_TRY(add(sw, k, N("self_attn.k_proj.bias"), (v = column(ly->bk, KV), &v), 1, vec_t, pk));
            LM_TRY(add(sw, k, N("self_attn.v_proj.bias"), (v = column(ly->bv, KV), &v), 1, vec_t, 0));
        }
        LM_TRY(add(sw, k, N("post_attention_layernorm.weight"), (v = row(ly->ffn_norm, c->dim), &v), 1, vec_t, 0));
        LM_TRY(add(sw, k, N("mlp.gate_proj.weight"), &ly->w_gate, 2, MT(ly->w_gate), 0));
        LM_TRY(add(sw, k, N("mlp.up_proj.weight"), &ly->w_up, 2, MT(ly->w_up), 0));
        LM_TRY(add(sw, k, N("mlp.down_proj.weight"), &ly->w_down, 2, MT(ly->w_down), 0));
#undef N
    }
    lm_weight v = row(m->out_norm, c->dim);
    LM_TRY(add(sw, k, "model.norm.weight", &v, 1, vec_t, 0));
    if (m->output.data != m->tok_emb.data) LM_TRY(add(sw, k, "lm_head.weight", &m->output, 2, MT(m->output), 0));
#undef MT
    return LM_OK;
}

/* ---------------- config.json ---------------- */

/* The decimal a float was written as (1e-06, not 9.99999997e-07): the
 * shortest that reads back as the same float. */
static double float_dec(float f) {
    char buf[32];
    for (int p = 1; p < 10; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

/* LLaMA 3 scaling from a GGUF's rope_freqs.weight (per-frequency
 * divisors), which is all llama.cpp's converter keeps of it. The divisors
 * fix the factor and, between the two wavelength bounds, a line in
 * 1 / wavelength; they depend on low_freq_factor, high_freq_factor and
 * original_max_position_embeddings only through their ratios, so
 * low_freq_factor is taken as 1 (every LLaMA 3.x) and, when fewer than two
 * divisors lie between the bounds, high_freq_factor as 4 (likewise).
 * Whatever is chosen must reproduce every divisor, or it is refused. */
static lm_status llama3_from_freqs(const lm_llama_model *m, lm_llama_config *c) {
    int n = c->head_dim / 2, mid[2] = {-1, -1};
    const float *ff = m->rope_freq_factors;
    float f = 1;
    for (int j = 0; j < n; j++) f = ff[j] > f ? ff[j] : f;
    if (f == 1) return LM_OK; /* all ones: no scaling */
    double x[2] = {0}, sm[2] = {0}, lo = 1, hi = 4, orig = 8192;
    for (int j = 0; j < n; j++)
        if (ff[j] > 1 + 1e-4 && ff[j] < f * (1 - 1e-4)) mid[mid[0] < 0 ? 0 : 1] = j;
    for (int i = 0; i < 2; i++) {
        if (mid[i] < 0) continue;
        x[i] = pow((double)c->rope_theta, -2.0 * mid[i] / c->head_dim) / (LM_TWO_PI); /* 1 / wavelength */
        sm[i] = (1.0 / ff[mid[i]] - 1.0 / f) / (1 - 1.0 / f);
    }
    if (mid[1] >= 0) { /* sm = (orig * x - lo) / (hi - lo): a line through both points */
        double a = (sm[1] - sm[0]) / (x[1] - x[0]), b = sm[0] - a * x[0];
        hi = lo - lo / b, orig = a * (hi - lo);
    } else if (mid[0] >= 0) {
        orig = (sm[0] * (hi - lo) + lo) / x[0];
    } else {
        /* a step: orig / hi above every kept wavelength, orig / lo below every scaled one */
        double kept = 0, scaled = INFINITY;
        for (int j = 0; j < n; j++) {
            double wl = LM_TWO_PI / pow((double)c->rope_theta, -2.0 * j / c->head_dim);
            if (ff[j] == 1) kept = wl > kept ? wl : kept;
            else scaled = wl < scaled ? wl : scaled;
        }
        if (!(orig / hi > kept && orig / lo < scaled)) orig = ceil(kept * hi + 1e-6);
    }
    c->rope_factor = f, c->rope_low_freq_factor = (float)lo, c->rope_high_freq_factor = (float)(round(hi * 1e4) / 1e4);
    c->rope_orig_ctx = (int)lround(orig);
    float *got = malloc(sizeof(float) * (size_t)n);
    if (!got) return lm_error(LM_ERR_NOMEM, "out of memory");
    lm_llama_rope_freq_factors(c, got);
    int same = c->rope_orig_ctx >= 1;
    for (int j = 0; j < n; j++) same &= fabsf(got[j] - ff[j]) <= 1e-4f * ff[j];
    free(got);
    if (!same) return lm_error(LM_ERR_UNSUPPORTED, "hf export: rope_freqs.weight is not a LLaMA 3 rope scaling (no config.json form)");
    return LM_OK;
}

/* torch_dtype names: "float32", not safetensors' "F32". */
static const char *torch_name(lm_dtype t) { return t == LM_DTYPE_F16 ? "float16" : t == LM_DTYPE_BF16 ? "bfloat16" : "float32"; }

static json_t *token_id(int id) { return id >= 0 ? json_integer(id) : json_null(); }

static lm_status write_config(const lm_llama_model *m, const char *path, lm_dtype dt) {
    lm_llama_config c = m->cfg;
    if (c.rope_factor == 0 && m->rope_freq_factors) LM_TRY(llama3_from_freqs(m, &c));
    if (c.qkv_bias && c.sliding_window)
        return lm_error(LM_ERR_UNSUPPORTED, "hf export: q/k/v biases with a sliding window (Qwen2's is not the same)");
    const lm_llama_arch *a = lm_llama_arch_of(&c);
    const char *type = a->name, *arch = a->hf_class;
    json_t *rs = json_null();
    if (c.rope_factor > 0)
        rs = json_pack("{s:s, s:f, s:f, s:f, s:i}", "rope_type", "llama3", "factor", float_dec(c.rope_factor), "low_freq_factor",
                       float_dec(c.rope_low_freq_factor), "high_freq_factor", float_dec(c.rope_high_freq_factor),
                       "original_max_position_embeddings", c.rope_orig_ctx);
    /* transformers 4.x keys (rope_theta, rope_scaling, torch_dtype), which 5.x reads too */
    json_t *j = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:o, s:b, s:o, s:o, s:s, s:s}",
                          "architectures", arch, "model_type", type, "hidden_size", c.dim, "intermediate_size", c.hidden_dim,
                          "num_hidden_layers", c.n_layers, "num_attention_heads", c.n_heads, "num_key_value_heads", c.n_kv_heads,
                          "head_dim", c.head_dim, "vocab_size", c.vocab_size, "max_position_embeddings", c.max_seq_len,
                          "rms_norm_eps", float_dec(c.rms_eps), "rope_theta", float_dec(c.rope_theta), "rope_scaling", rs,
                          "tie_word_embeddings", m->output.data == m->tok_emb.data, "bos_token_id", token_id(c.bos_id),
                          "eos_token_id", token_id(c.eos_id), "hidden_act", "silu", "torch_dtype", torch_name(dt));
    /* each class's own switches, set to what lmkit computes */
    if (j && a->sliding_window)
        json_object_set_new(j, "sliding_window", c.sliding_window > 0 ? json_integer(c.sliding_window) : json_null());
    if (j && a->qkv_bias) { /* Qwen2: biases always, its window off */
        json_object_set_new(j, "sliding_window", json_null());
        json_object_set_new(j, "use_sliding_window", json_false());
    }
    if (j && !a->qkv_bias && !a->sliding_window) {
        json_object_set_new(j, "attention_bias", json_false());
        json_object_set_new(j, "mlp_bias", json_false());
    }
    return lm_json_save(j, path);
}

/* ---------------- the directory ---------------- */

static const char *const written[] = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                                      "special_tokens_map.json", "tokenizer.model", "vocab.txt"};

/* Removes the staging directory: only the names this file writes. */
static void remove_stage(const char *stage) {
    for (size_t i = 0; i < sizeof written / sizeof *written; i++) {
        char *p = lm_path_join(stage, written[i]);
        if (p) unlink(p);
        free(p);
    }
    rmdir(stage);
}

/* Whether dir can take the checkpoint: absent, or an empty directory
 * (which the rename replaces). */
static lm_status check_out(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0) return errno == ENOENT ? LM_OK : lm_error(LM_ERR_IO, "%s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return lm_error(LM_ERR_ARG, "%s exists and is not a directory (an OUT without .gguf or .bin is a Hugging Face directory)", dir);
    DIR *d = opendir(dir);
    if (!d) return lm_error(LM_ERR_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d))) empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    return empty ? LM_OK : lm_error(LM_ERR_ARG, "%s exists and is not empty (a Hugging Face directory is written only into a new or empty one)", dir);
}

static lm_status write_files(const lm_llama_model *m, const char *stage, int type, const lm_tokenizer *tok) {
    /* norms and biases: the requested type, else the embedding's when it
     * is a float type (HF checkpoints keep one dtype), else F32 */
    lm_dtype vec_t = dtype_of(type >= 0 ? (lm_qtype)type : m->tok_emb.type);
    char *p = lm_path_join(stage, "config.json");
    lm_status s = p ? write_config(m, p, vec_t) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(p);
    LM_TRY(s);
    lm_st_writer sw;
    keep_list k = {0};
    lm_st_writer_init(&sw);
    s = add_tensors(m, &sw, &k, type, vec_t);
    if (s == LM_OK) s = lm_st_writer_meta(&sw, "format", "pt"); /* transformers requires it */
    p = lm_path_join(stage, "model.safetensors");
    if (s == LM_OK) s = p ? lm_st_writer_save(&sw, p) : lm_error(LM_ERR_NOMEM, "out of memory");
    free(p);
    lm_st_writer_free(&sw);
    for (int i = 0; i < k.n; i++) free(k.bufs[i]);
    free(k.bufs);
    LM_TRY(s);
    if (!tok) return m->source_dir ? lm_copy_tokenizer_files(m->source_dir, stage) : LM_OK;
    char *tmpl = NULL;
    if (m->gguf && lm_gguf_find(m->gguf, "tokenizer.chat_template")) LM_TRY(lm_gguf_get_str(m->gguf, "tokenizer.chat_template", &tmpl));
    char *tj = lm_path_join(stage, "tokenizer.json"), *tc = lm_path_join(stage, "tokenizer_config.json");
    s = tj && tc ? lm_tokenizer_save(tok, tj) : lm_error(LM_ERR_NOMEM, "out of memory");
    if (s == LM_OK) s = lm_tokenizer_save_model_config(tok, tc, m->cfg.max_seq_len, tmpl);
    free(tj);
    free(tc);
    free(tmpl);
    return s;
}

lm_status lm_llama_save_hf(const lm_llama_model *m, const char *dir, int type, const lm_tokenizer *tok) {
    if (type >= 0 && type != LM_QT_F32 && type != LM_QT_F16 && type != LM_QT_BF16)
        return lm_error(LM_ERR_ARG, "hf export: type %s (expected f32, f16 or bf16)", lm_qtype_name((lm_qtype)type));
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    char *out = malloc(n + 32), *stage = malloc(n + 32);
    if (!out || !stage) {
        free(out);
        free(stage);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    snprintf(out, n + 1, "%s", dir);
    snprintf(stage, n + 32, "%s.partial.%d", out, (int)getpid());
    lm_status s = check_out(out);
    if (s == LM_OK && mkdir(stage, 0777) != 0) s = lm_error(LM_ERR_IO, "%s: cannot create directory: %s", out, strerror(errno));
    else if (s == LM_OK) {
        /* an interrupt removes the stage: its files, then it */
        enum { N_WRITTEN = sizeof written / sizeof *written };
        int slots[N_WRITTEN + 1];
        for (int i = 0; i < N_WRITTEN; i++) {
            char *p = lm_path_join(stage, written[i]);
            slots[i] = p ? lm_temp_register(p, 0) : -1;
            free(p);
        }
        slots[N_WRITTEN] = lm_temp_register(stage, 1);
        s = write_files(m, stage, type, tok);
        if (s == LM_OK) s = lm_fsync_dir(stage);
        if (s == LM_OK && rename(stage, out) != 0) s = lm_error(LM_ERR_IO, "%s: rename failed: %s", out, strerror(errno));
        if (s != LM_OK) remove_stage(stage);
        for (int i = 0; i <= N_WRITTEN; i++) lm_temp_unregister(slots[i]);
    }
    if (s == LM_OK) {
        /* the parent, so the rename survives a crash */
        char *slash = strrchr(out, '/');
        if (slash && slash > out) *slash = 0;
        lm_fsync_dir(slash && slash > out ? out : ".");
    }
    free(out);
    free(stage);
    return s;
}

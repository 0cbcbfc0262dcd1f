/* Hugging Face LLaMA-family checkpoints (llama, mistral, qwen2): the
 * config.json fields transformers 4.x and 5.x write, and the safetensors
 * tensor names, mapped onto lm_llama_model without copying the matrices. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"
#include "model/llama_internal.h"

/* An integer field; `dflt` when absent or null (required fields pass
 * INT32_MIN and get an error instead). */
static lm_status cfg_int(json_t *root, const char *key, int dflt, int *out) {
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (dflt == INT32_MIN) return lm_error(LM_ERR_FORMAT, "config.json: missing field '%s'", key);
        *out = dflt;
        return LM_OK;
    }
    if (!json_is_integer(v)) return lm_error(LM_ERR_FORMAT, "config.json: field '%s' must be an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < -1 || x > (1 << 30)) return lm_error(LM_ERR_FORMAT, "config.json: field '%s' = %lld out of range", key, (long long)x);
    *out = (int)x;
    return LM_OK;
}

static lm_status cfg_num(json_t *obj, const char *key, double dflt, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return LM_OK;
    }
    if (!json_is_number(v)) return lm_error(LM_ERR_FORMAT, "config.json: field '%s' must be a number", key);
    *out = json_number_value(v);
    return LM_OK;
}

static int cfg_true(json_t *root, const char *key) { return json_is_true(json_object_get(root, key)); }

/* bos/eos ids may be an integer, null, or a list (LLaMA 3.1 lists several
 * EOS ids; the first is the one generation stops on here). */
static lm_status cfg_token(json_t *root, const char *key, int *out) {
    json_t *v = json_object_get(root, key);
    if (json_is_array(v)) v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    if (!v || json_is_null(v)) {
        *out = -1;
        return LM_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 22))
        return lm_error(LM_ERR_FORMAT, "config.json: field '%s' must be a token id", key);
    *out = (int)json_integer_value(v);
    return LM_OK;
}

/* RoPE: transformers 5 writes everything under "rope_parameters"; 4.x has
 * a top-level rope_theta and an optional "rope_scaling" dict whose kind is
 * "rope_type" (or the older "type"). */
static lm_status cfg_rope(json_t *root, lm_llama_config *c) {
    json_t *rp = json_object_get(root, "rope_parameters");
    json_t *sc = json_is_object(rp) ? rp : json_object_get(root, "rope_scaling");
    double theta = 10000.0;
    LM_TRY(cfg_num(root, "rope_theta", 10000.0, &theta));
    if (json_is_object(rp)) LM_TRY(cfg_num(rp, "rope_theta", theta, &theta));
    if (!(theta > 0 && theta < 1e30)) /* a float, and RoPE divides by powers of it */
        return lm_error(LM_ERR_FORMAT, "config.json: rope_theta %g must be in (0, 1e30)", theta);
    c->rope_theta = (float)theta;
    if (!json_is_object(sc)) return LM_OK;
    json_t *kind = json_object_get(sc, "rope_type");
    if (!json_is_string(kind)) kind = json_object_get(sc, "type");
    const char *k = json_is_string(kind) ? json_string_value(kind) : "default";
    if (!strcmp(k, "default")) return LM_OK;
    if (strcmp(k, "llama3"))
        return lm_error(LM_ERR_UNSUPPORTED, "config.json: rope type '%s' (supported: default, llama3)", k);
    double f = 0, lo = 0, hi = 0, orig = 0;
    LM_TRY(cfg_num(sc, "factor", 8.0, &f));
    LM_TRY(cfg_num(sc, "low_freq_factor", 1.0, &lo));
    LM_TRY(cfg_num(sc, "high_freq_factor", 4.0, &hi));
    LM_TRY(cfg_num(sc, "original_max_position_embeddings", 8192, &orig));
    if (!(f > 0 && f < 1e6 && lo > 0 && hi > lo && hi < 1e6 && orig >= 1 && orig <= (1 << 24)))
        return lm_error(LM_ERR_FORMAT, "config.json: llama3 rope scaling needs 0 < factor < 1e6, 0 < low_freq_factor < "
                                       "high_freq_factor < 1e6 and original_max_position_embeddings in [1, 2^24]");
    c->rope_factor = (float)f, c->rope_low_freq_factor = (float)lo, c->rope_high_freq_factor = (float)hi;
    c->rope_orig_ctx = (int)orig;
    return LM_OK;
}

static lm_status parse_config(json_t *root, lm_llama_config *c) {
    memset(c, 0, sizeof *c);
    json_t *mt = json_object_get(root, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : "";
    const lm_llama_arch *arch = lm_llama_arch_find(type);
    if (!arch) {
        char names[128];
        lm_llama_arch_names(names, sizeof names);
        return lm_error(LM_ERR_UNSUPPORTED, "config.json: model_type '%s' (supported: %s)", type, names);
    }
    c->arch = arch;
    json_t *act = json_object_get(root, "hidden_act");
    if (act && !(json_is_string(act) && !strcmp(json_string_value(act), "silu")))
        return lm_error(LM_ERR_UNSUPPORTED, "config.json: hidden_act must be 'silu'");
    if (cfg_true(root, "mlp_bias")) return lm_error(LM_ERR_UNSUPPORTED, "config.json: mlp_bias is not supported");
    /* LLaMA's attention_bias also puts a bias on o_proj, which the engine
     * does not have; Qwen2 has q/k/v biases only. */
    if (!arch->qkv_bias && cfg_true(root, "attention_bias"))
        return lm_error(LM_ERR_UNSUPPORTED, "config.json: attention_bias is not supported for %s", type);
    c->qkv_bias = arch->qkv_bias;
    c->rope_neox = 1;
    LM_TRY(cfg_int(root, "hidden_size", INT32_MIN, &c->dim));
    LM_TRY(cfg_int(root, "intermediate_size", INT32_MIN, &c->hidden_dim));
    LM_TRY(cfg_int(root, "num_hidden_layers", INT32_MIN, &c->n_layers));
    LM_TRY(cfg_int(root, "num_attention_heads", INT32_MIN, &c->n_heads));
    LM_TRY(cfg_int(root, "num_key_value_heads", c->n_heads, &c->n_kv_heads));
    LM_TRY(cfg_int(root, "head_dim", c->n_heads > 0 ? c->dim / c->n_heads : 0, &c->head_dim));
    LM_TRY(cfg_int(root, "vocab_size", INT32_MIN, &c->vocab_size));
    LM_TRY(cfg_int(root, "max_position_embeddings", 2048, &c->max_seq_len));
    double eps = 1e-6;
    LM_TRY(cfg_num(root, "rms_norm_eps", 1e-6, &eps));
    c->rms_eps = (float)eps;
    LM_TRY(cfg_rope(root, c));
    /* Only classes that apply sliding_window read it: Qwen2 lists one but
     * applies it only with use_sliding_window, and then only to some
     * layers; LLaMA's class ignores it. */
    if (!arch->sliding_window && cfg_true(root, "use_sliding_window"))
        return lm_error(LM_ERR_UNSUPPORTED, "config.json: %s use_sliding_window is not supported", type);
    if (arch->sliding_window) LM_TRY(cfg_int(root, "sliding_window", 0, &c->sliding_window));
    if (c->sliding_window < 0) c->sliding_window = 0;
    LM_TRY(cfg_token(root, "bos_token_id", &c->bos_id));
    LM_TRY(cfg_token(root, "eos_token_id", &c->eos_id));
    return lm_llama_config_check(c);
}

/* ---------------- tensors ---------------- */

static lm_status find(const lm_safetensors *st, const char *name, const lm_st_tensor **t) {
    if (!(*t = lm_safetensors_find(st, name))) return lm_error(LM_ERR_FORMAT, "safetensors: missing tensor '%s'", name);
    return LM_OK;
}

static lm_status hf_mat(const lm_safetensors *st, const char *name, int rows, int cols, lm_weight *w) {
    const lm_st_tensor *t;
    LM_TRY(find(st, name, &t));
    if (t->ndim != 2 || t->shape[0] != rows || t->shape[1] != cols)
        return lm_error(LM_ERR_FORMAT, "safetensors: tensor '%s' has %d dims [%lld, %lld] (expected [%d, %d])", name, t->ndim,
                        (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 0), rows, cols);
    switch (t->dtype) {
    case LM_DTYPE_F32: w->type = LM_QT_F32; break;
    case LM_DTYPE_F16: w->type = LM_QT_F16; break;
    case LM_DTYPE_BF16: w->type = LM_QT_BF16; break;
    default: return lm_error(LM_ERR_UNSUPPORTED, "safetensors: tensor '%s' is %s (expected F32, F16 or BF16)", name, lm_dtype_name(t->dtype));
    }
    w->data = t->data, w->rows = rows, w->cols = cols;
    return LM_OK;
}

/* Norm gains and biases are used as F32: in place when stored so and
 * 4-byte aligned, else converted into an owned buffer. */
static lm_status hf_vec(lm_llama_model *m, const char *name, int n, const float **out) {
    const lm_st_tensor *t;
    LM_TRY(find(m->st, name, &t));
    if (t->ndim != 1 || t->shape[0] != n)
        return lm_error(LM_ERR_FORMAT, "safetensors: tensor '%s' has shape [%lld...] (expected [%d])", name, (long long)t->shape[0], n);
    if (t->dtype == LM_DTYPE_F32 && ((uintptr_t)t->data & 3) == 0) {
        *out = t->data;
        return LM_OK;
    }
    float *buf = malloc(sizeof(float) * (size_t)n);
    if (!buf) return lm_error(LM_ERR_NOMEM, "out of memory");
    LM_TRY(lm_llama_own(m, buf));
    LM_TRY(lm_st_tensor_to_f32(t, buf, n));
    *out = buf;
    return LM_OK;
}

static lm_status map_weights(lm_llama_model *m) {
    const lm_llama_config *c = &m->cfg;
    const lm_safetensors *st = m->st;
    int D = c->dim, H = c->hidden_dim, Q = c->n_heads * c->head_dim, KV = c->n_kv_heads * c->head_dim;
    LM_TRY(hf_mat(st, "model.embed_tokens.weight", c->vocab_size, D, &m->tok_emb));
    /* tie_word_embeddings decides, but a present lm_head wins: some
     * exports keep a copy of the embedding under that name. */
    if (lm_safetensors_find(st, "lm_head.weight")) LM_TRY(hf_mat(st, "lm_head.weight", c->vocab_size, D, &m->output));
    else m->output = m->tok_emb;
    LM_TRY(hf_vec(m, "model.norm.weight", D, &m->out_norm));
    if (!(m->layers = calloc((size_t)c->n_layers, sizeof *m->layers))) return lm_error(LM_ERR_NOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        lm_llama_layer *ly = &m->layers[l];
        char n[128];
#define N(x) (snprintf(n, sizeof n, "model.layers.%d.%s", l, x), n)
        LM_TRY(hf_vec(m, N("input_layernorm.weight"), D, &ly->attn_norm));
        LM_TRY(hf_vec(m, N("post_attention_layernorm.weight"), D, &ly->ffn_norm));
        LM_TRY(hf_mat(st, N("self_attn.q_proj.weight"), Q, D, &ly->wq));
        LM_TRY(hf_mat(st, N("self_attn.k_proj.weight"), KV, D, &ly->wk));
        LM_TRY(hf_mat(st, N("self_attn.v_proj.weight"), KV, D, &ly->wv));
        LM_TRY(hf_mat(st, N("self_attn.o_proj.weight"), D, Q, &ly->wo));
        LM_TRY(hf_mat(st, N("mlp.gate_proj.weight"), H, D, &ly->w_gate));
        LM_TRY(hf_mat(st, N("mlp.up_proj.weight"), H, D, &ly->w_up));
        LM_TRY(hf_mat(st, N("mlp.down_proj.weight"), D, H, &ly->w_down));
        if (c->qkv_bias) {
            LM_TRY(hf_vec(m, N("self_attn.q_proj.bias"), Q, &ly->bq));
            LM_TRY(hf_vec(m, N("self_attn.k_proj.bias"), KV, &ly->bk));
            LM_TRY(hf_vec(m, N("self_attn.v_proj.bias"), KV, &ly->bv));
        }
#undef N
    }
    for (int i = 0; i < st->n_tensors; i++) m->weight_bytes += st->tensors[i].nbytes;
    return LM_OK;
}

static lm_status load_hf(const char *dir, lm_llama_model *m) {
    char *cfg_path = lm_path_join(dir, "config.json");
    if (!cfg_path) return lm_error(LM_ERR_NOMEM, "out of memory");
    json_error_t jerr;
    json_t *root = json_load_file(cfg_path, 0, &jerr);
    free(cfg_path);
    if (!root) return lm_error(LM_ERR_FORMAT, "config.json: %s (line %d)", jerr.text, jerr.line);
    lm_status s = parse_config(root, &m->cfg);
    json_decref(root);
    LM_TRY(s);
    if (!(m->st = calloc(1, sizeof *m->st))) return lm_error(LM_ERR_NOMEM, "out of memory");
    LM_TRY(lm_safetensors_open(dir, m->st));
    return map_weights(m);
}

lm_status lm_llama_load_hf(const char *dir, lm_llama_model *m) {
    double t0 = lm_now_seconds();
    memset(m, 0, sizeof *m);
    lm_status s = load_hf(dir, m);
    if (s != LM_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", lm_last_error());
        lm_llama_free(m);
        return lm_error(s, "%s: %s", dir, msg);
    }
    if (!(m->source_dir = strdup(dir))) {
        lm_llama_free(m);
        return lm_error(LM_ERR_NOMEM, "out of memory");
    }
    m->load_seconds = lm_now_seconds() - t0;
    return LM_OK;
}

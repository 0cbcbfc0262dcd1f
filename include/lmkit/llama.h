/* LLaMA-family models (LLaMA 1/2/3, Mistral, Qwen2): configuration and
 * weights, loaded from llama2.c .bin (legacy and v1 headers) or GGUF, with
 * the weights left in the file's memory map in whatever type the file
 * stores them (F32/F16/BF16/Q8_0/Q4_0/Q4_K/Q6_K). */
#ifndef LMKIT_LLAMA_H
#define LMKIT_LLAMA_H

#include <stdint.h>

#include "lmkit/base.h"
#include "lmkit/gguf.h"
#include "lmkit/quant.h"
#include "lmkit/safetensors.h"

/* The LLaMA-family architectures, one row each in llama_arch.c: what sets
 * each apart from LLaMA. Loaders and writers ask this table instead of
 * naming architectures, so a LLaMA-like architecture is one table entry
 * (and one that computes differently, one file for that plus the entry). */
typedef struct {
    const char *name;       /* HF config.json model_type; GGUF general.architecture */
    const char *hf_class;   /* its transformers class, config.json "architectures" */
    const char *gguf_arch;  /* the general.architecture a GGUF export names */
    int qkv_bias;           /* q/k/v projections carry biases (and nothing else does) */
    int sliding_window;     /* its transformers class applies config.json's sliding_window */
    int gguf_half_rotation; /* its GGUF keeps HF's half-rotation q/k rows (else pairs) */
    int add_bos;            /* its tokenizers start a text with BOS */
} lm_llama_arch;

/* The entry named `name`, or NULL. */
const lm_llama_arch *lm_llama_arch_find(const char *name);
/* The names, for messages: "llama, mistral, qwen2". */
void lm_llama_arch_names(char *buf, size_t cap);

typedef struct {
    /* The architecture the model was read as (NULL: derived from the
     * fields below, see lm_llama_arch_of). */
    const lm_llama_arch *arch;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, head_dim, vocab_size, max_seq_len;
    float rope_theta, rms_eps;
    /* 1: rotate the two halves of each head (HF checkpoints, Qwen2 GGUF);
     * 0: rotate adjacent pairs (Meta, llama2.c, llama.cpp's llama GGUF). */
    int rope_neox;
    /* LLaMA 3.1 frequency scaling (factor 0 = off). */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_orig_ctx;
    int sliding_window; /* 0: full attention */
    int qkv_bias;
    int bos_id, eos_id; /* -1: none */
} lm_llama_config;

/* A [rows, cols] matrix (or a vector with rows = 1) of any lm_qtype. */
typedef struct {
    const void *data;
    lm_qtype type;
    int rows, cols;
} lm_weight;

typedef struct {
    const float *attn_norm, *ffn_norm;
    lm_weight wq, wk, wv, wo, w_gate, w_down, w_up;
    const float *bq, *bk, *bv; /* NULL unless qkv_bias */
} lm_llama_layer;

typedef struct {
    lm_llama_config cfg;
    lm_weight tok_emb, output; /* output aliases tok_emb when tied */
    const float *out_norm;
    /* Per-frequency RoPE divisors (GGUF rope_freqs.weight, LLaMA 3), or NULL. */
    const float *rope_freq_factors;
    lm_llama_layer *layers;
    /* Vocabulary when the file carries one (GGUF tokenizer.ggml.*). */
    int n_vocab_strings;
    char **vocab;
    float *vocab_scores;
    /* Owned storage: the mapping, a parsed GGUF, converted small tensors. */
    lm_mmap map;
    lm_gguf *gguf;
    lm_safetensors *st; /* HF directory: the mapped weight files */
    char *source_dir;   /* HF directory: where it was loaded from (its tokenizer goes into a GGUF) */
    void **owned;
    int n_owned;
    uint64_t random_seed; /* nonzero: NULL matrices are drawn at save (lm_llama_init_random) */
    double load_seconds;
    size_t weight_bytes;
} lm_llama_model;

/* Loads a model: a Hugging Face directory (config.json + safetensors), or
 * a file chosen by its first bytes (GGUF, llama2.c v1 "ak42", else
 * llama2.c legacy). Free with lm_llama_free. */
lm_status lm_llama_load(const char *path, lm_llama_model *m);
/* A Hugging Face LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM
 * directory: config.json (transformers 4.x rope_theta/rope_scaling or 5.x
 * rope_parameters; llama3 scaling; sliding_window; tied embeddings) and
 * model.safetensors or a sharded index. 2-D weights stay in the map in
 * their stored type (F32/F16/BF16); RoPE is the half-rotation layout. */
lm_status lm_llama_load_hf(const char *dir, lm_llama_model *m);
lm_status lm_llama_load_llama2c(const char *path, lm_llama_model *m);
lm_status lm_llama_load_gguf(const char *path, lm_llama_model *m);
/* The same, over a buffer the caller keeps alive (fuzzing, tests). */
lm_status lm_llama_parse_llama2c(const void *data, size_t size, lm_llama_model *m);
lm_status lm_llama_from_gguf(lm_gguf *g, lm_llama_model *m); /* takes ownership of nothing */
void lm_llama_free(lm_llama_model *m);

/* Weight bytes one decode step reads: every tensor once, except that of
 * an embedding table with its own output matrix only the token's row is
 * read (with tied embeddings the output matmul reads it all). This is
 * the numerator of the decode bandwidth bound; weight_bytes counts the
 * file's tensors. */
size_t lm_llama_decode_bytes(const lm_llama_model *m);

/* The architecture a configuration is written as: its own when that
 * covers its features, else the first entry that does (q/k/v biases
 * alike; a sliding window applied). */
const lm_llama_arch *lm_llama_arch_of(const lm_llama_config *c);

/* Validates a configuration (dims, heads divide, ranges); names the field. */
lm_status lm_llama_config_check(const lm_llama_config *c);

/* Writes m as a llama-architecture GGUF (qwen2 when it has q/k/v biases),
 * converting every 2-D weight to
 * `type` (pass -1 to keep each tensor's type). Weights whose row length is
 * not a multiple of the block size fall back to Q8_0, then F16 (as
 * llama.cpp does). vocab/scores may be NULL. */
lm_status lm_llama_save_gguf(const lm_llama_model *m, const char *path, int type, char *const *vocab,
                             const float *scores, int n_vocab);

/* Writes m as a llama2.c checkpoint in the legacy (version 0) layout that
 * llama2.c's run.c reads: a header of 7 int32 (vocab_size negative when
 * the classifier is not the embedding), then every weight as float32
 * (quantized and F16/BF16 ones dequantized) in run.c's order, with the
 * freq_cis tables export.py writes. Half-rotation q/k rows (rope_neox) are
 * permuted to llama2.c's pair layout. LM_ERR_UNSUPPORTED naming the
 * feature, and nothing written, for what llama2.c cannot run: q/k/v
 * biases, a sliding window shorter than the context, llama3 RoPE scaling,
 * rope_theta other than 10000, head_dim other than dim / n_heads. run.c
 * fixes rms_eps at 1e-5: another value is not kept. Written to a temp
 * file and renamed. */
lm_status lm_llama_save_llama2c(const lm_llama_model *m, const char *path);

/* Writes m as a Hugging Face checkpoint directory `dir` (absent or empty,
 * else LM_ERR_ARG): config.json (LlamaForCausalLM, MistralForCausalLM
 * with a sliding window, Qwen2ForCausalLM with q/k/v biases) and
 * model.safetensors with transformers' names, q/k rows in its
 * half-rotation layout. `type` LM_QT_F32/F16/BF16 converts every tensor;
 * -1 keeps float types and dequantizes the others to F32. tok, when not
 * NULL, is written as tokenizer.json and tokenizer_config.json (with the
 * source GGUF's chat template); NULL copies an HF source's tokenizer
 * files, if any. Written as dir.partial.PID and renamed whole. */
typedef struct lm_tokenizer lm_tokenizer;
lm_status lm_llama_save_hf(const lm_llama_model *m, const char *dir, int type, const lm_tokenizer *tok);

/* RoPE inverse frequencies, head_dim / 2 of them (after llama3 scaling
 * and GGUF rope_freqs divisors), and the llama3 divisors alone (all 1
 * without scaling) as GGUF's rope_freqs.weight stores them. */
void lm_llama_rope_inv_freq(const lm_llama_model *m, float *inv);
void lm_llama_rope_freq_factors(const lm_llama_config *c, float *ff);

/* Named configurations: "stories260K-shape", "1B" (TinyLlama-1.1B shape),
 * "7B" (LLaMA-2-7B shape). */
lm_status lm_llama_preset(const char *name, lm_llama_config *c);
/* A model of shape c whose matrices are drawn from N(0, 0.02) (norms 1)
 * when it is saved: the matrices have data NULL and lm_llama_save_gguf
 * generates and converts them tensor by tensor, so a 7B model is written
 * without its 27 GB of F32 weights in memory. Save, then load to run. */
lm_status lm_llama_init_random(const lm_llama_config *c, uint64_t seed, lm_llama_model *m);
/* A stand-in SentencePiece vocabulary of n pieces (<unk>, <s>, </s>, the
 * 256 byte pieces, then unique words) so random models carry the
 * tokenizer metadata llama.cpp requires. Free with the function below. */
lm_status lm_llama_vocab_synthetic(int n, char ***pieces, float **scores);
void lm_llama_vocab_synthetic_free(char **pieces, float *scores, int n);

/* llama2.c tokenizer.bin: vocab_size pieces with scores. */
typedef struct {
    int n, max_token_length;
    char **pieces;
    float *scores;
} lm_llama2c_vocab;
lm_status lm_llama2c_vocab_load(const char *path, int vocab_size, lm_llama2c_vocab *v);
lm_status lm_llama2c_vocab_parse(const void *data, size_t size, int vocab_size, lm_llama2c_vocab *v);
void lm_llama2c_vocab_free(lm_llama2c_vocab *v);
/* Writes n SentencePiece pieces and scores (NULL: all 0) as a llama2.c
 * tokenizer.bin, in llama2.c's spelling: a space as ' ' (GGUF's U+2581 is
 * converted) and the pieces at bos_id / eos_id (-1: none) as "\n<s>\n" /
 * "\n</s>\n"; pieces already spelled so stay as they are. Atomic. */
lm_status lm_llama2c_vocab_save(const char *path, char *const *pieces, const float *scores, int n, int bos_id, int eos_id);
/* The text of token `tok` following token `prev`, as llama2.c prints it
 * (leading space dropped after BOS, "<0xNN>" pieces as raw bytes). */
const char *lm_llama2c_vocab_piece(const lm_llama2c_vocab *v, int prev, int tok, char buf[2]);

#endif

/* Open any causal language model lmkit runs — a GPT-2 checkpoint
 * directory, a LLaMA-family GGUF or llama2.c .bin — together with its
 * tokenizer, ready for generation. The commands that generate text
 * (generate, chat, serve) start here. */
#ifndef LMKIT_CAUSAL_LM_H
#define LMKIT_CAUSAL_LM_H

#include "lmkit/engine.h"
#include "lmkit/generate.h"
#include "lmkit/llama.h"
#include "lmkit/model.h"
#include "lmkit/tokenizer.h"

typedef struct {
    const char *kind; /* "gpt2" or "llama" */
    lm_gpt2 *gpt2;
    lm_llama_model *llama;
    lm_engine *engine;
    lm_tokenizer *tok;
    lm_decoder decoder;
    int add_bos; /* prompts start with BOS (LLaMA) */
} lm_causal_lm;

/* path: a directory with config.json (model_type gpt2), a .gguf file or a
 * llama2.c .bin. tokenizer: NULL to use the model's own (the directory's
 * tokenizer.json, a GGUF's tokenizer.ggml.*, or tokenizer.bin /
 * tokenizer.json beside the file),
 * else any spec lm_tokenizer_load accepts. Free with lm_causal_lm_close. */
lm_status lm_causal_lm_open(const char *path, const char *tokenizer, lm_causal_lm *lm);
/* The tokenizer that travels with a model file (not a directory):
 * X.tokenizer.bin beside X.bin, else tokenizer.json or tokenizer.bin in
 * its directory; NULL if none. The caller frees it. */
char *lm_causal_lm_sibling_tokenizer(const char *path);
void lm_causal_lm_close(lm_causal_lm *lm);
/* Encodes a prompt as the model expects it (BOS first for LLaMA). */
lm_status lm_causal_lm_encode(const lm_causal_lm *lm, const char *text, int32_t **ids, size_t *n);
/* The same with BOS chosen by the caller: 1 put the BOS id first (when
 * the model or tokenizer has one), 0 never, -1 as lm_causal_lm_encode.
 * Chat prompts need this: the template writes BOS itself, as text. */
lm_status lm_causal_lm_encode_ex(const lm_causal_lm *lm, const char *text, int add_bos, int32_t **ids, size_t *n);
/* The same for len bytes of text, which may hold NUL bytes (a file). */
lm_status lm_causal_lm_encode_n(const lm_causal_lm *lm, const char *text, size_t len, int add_bos, int32_t **ids, size_t *n);
/* The BOS id prompts start with, or -1. */
int32_t lm_causal_lm_bos_id(const lm_causal_lm *lm);

#endif

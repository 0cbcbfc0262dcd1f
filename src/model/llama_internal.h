/* Shared between the LLaMA loaders (not public). */
#ifndef LMKIT_LLAMA_INTERNAL_H
#define LMKIT_LLAMA_INTERNAL_H

#include "lmkit/llama.h"

/* Registers a malloc'd buffer that lm_llama_free releases (frees p and
 * fails if the list cannot grow). */
lm_status lm_llama_own(lm_llama_model *m, void *p);

/* Writers to the pair-rotation RoPE layout (llama GGUF, llama2.c) permute
 * the rows of a half-rotation q/k projection of `rows` rows and n_heads
 * heads: row r of the result is this row of the source (within each head,
 * source row s*half + j becomes row 2*j + s). */
int lm_llama_pair_row(int rows, int n_heads, int r);

#endif

/* Shared between the LLaMA loaders (not public). */
#ifndef LMKIT_LLAMA_INTERNAL_H
#define LMKIT_LLAMA_INTERNAL_H

#include "lmkit/llama.h"

/* Registers a malloc'd buffer that lm_llama_free releases (frees p and
 * fails if the list cannot grow). */
lm_status lm_llama_own(lm_llama_model *m, void *p);

#endif

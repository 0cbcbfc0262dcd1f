/* The LLaMA-family architecture table (see lm_llama_arch in llama.h).
 *
 * Mistral is LLaMA with a sliding window; Qwen2 is LLaMA with q/k/v
 * biases, no BOS, and GGUF files that keep HF's rotation layout. Mistral
 * GGUFs are written as "llama" with a sliding-window key, as llama.cpp's
 * converter writes them. */
#include <stdio.h>
#include <string.h>

#include "lmkit/llama.h"

static const lm_llama_arch lm_llama_archs[] = {
    /* name      transformers class    GGUF     bias window half-rot BOS */
    {"llama", "LlamaForCausalLM", "llama", 0, 0, 0, 1},
    {"mistral", "MistralForCausalLM", "llama", 0, 1, 0, 1},
    {"qwen2", "Qwen2ForCausalLM", "qwen2", 1, 0, 1, 0},
};
#define LM_N_ARCHS (int)(sizeof lm_llama_archs / sizeof lm_llama_archs[0])

const lm_llama_arch *lm_llama_arch_find(const char *name) {
    for (int i = 0; name && i < LM_N_ARCHS; i++)
        if (!strcmp(lm_llama_archs[i].name, name)) return &lm_llama_archs[i];
    return NULL;
}

void lm_llama_arch_names(char *buf, size_t cap) {
    size_t n = 0;
    if (cap) buf[0] = 0;
    for (int i = 0; i < LM_N_ARCHS && n < cap; i++) {
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", lm_llama_archs[i].name);
        if (w < 0) break;
        n += (size_t)w;
    }
}

static int covers(const lm_llama_arch *a, const lm_llama_config *c) {
    return a->qkv_bias == (c->qkv_bias != 0) && (c->sliding_window <= 0 || a->sliding_window);
}

const lm_llama_arch *lm_llama_arch_of(const lm_llama_config *c) {
    if (c->arch && covers(c->arch, c)) return c->arch;
    for (int i = 0; i < LM_N_ARCHS; i++)
        if (covers(&lm_llama_archs[i], c)) return &lm_llama_archs[i];
    return &lm_llama_archs[0];
}

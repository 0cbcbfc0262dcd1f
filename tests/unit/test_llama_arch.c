/* The LLaMA-family architecture table (llama_arch.c): lookups, the
 * message listing, and which entry a configuration is written as. The
 * loaders and writers that consult it are covered by test_llama_hf
 * (HF and GGUF round trips of llama, llama3, mistral and qwen2) and
 * test_llama_save_hf. */
#include "lmkit/llama.h"
#include "test.h"

#include <unistd.h>

int main(void) {
    const lm_llama_arch *llama = lm_llama_arch_find("llama"), *mistral = lm_llama_arch_find("mistral"),
                        *qwen2 = lm_llama_arch_find("qwen2");
    CHECK(llama && mistral && qwen2);
    CHECK(!lm_llama_arch_find("gemma") && !lm_llama_arch_find("") && !lm_llama_arch_find(NULL));
    if (!llama || !mistral || !qwen2) TEST_MAIN_END();
    CHECK(!strcmp(qwen2->hf_class, "Qwen2ForCausalLM") && qwen2->qkv_bias && qwen2->gguf_half_rotation && !qwen2->add_bos);
    CHECK(mistral->sliding_window && !strcmp(mistral->gguf_arch, "llama") && mistral->add_bos);
    char names[128];
    lm_llama_arch_names(names, sizeof names);
    CHECK_MSG(!strcmp(names, "llama, mistral, qwen2"), "names '%s'", names);
    lm_llama_arch_names(names, 8); /* cut short, still terminated */
    CHECK(strlen(names) < 8);

    lm_llama_config c = {0};
    CHECK(lm_llama_arch_of(&c) == llama);
    c.sliding_window = 4;
    CHECK(lm_llama_arch_of(&c) == mistral); /* LLaMA's class ignores a window: written as Mistral */
    c.arch = llama;
    CHECK(lm_llama_arch_of(&c) == mistral);
    c.sliding_window = 0, c.qkv_bias = 1;
    CHECK(lm_llama_arch_of(&c) == qwen2);
    c.arch = mistral, c.qkv_bias = 0;
    CHECK(lm_llama_arch_of(&c) == mistral); /* its own, when it covers the config */

    /* a model_type outside the table is refused, naming the table */
    lm_llama_model m;
    char dir[] = "/tmp/lmkit_arch_XXXXXX", cfg[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "w");
    CHECK(f != NULL);
    if (f) fputs("{\"model_type\": \"gemma\", \"hidden_size\": 8}", f), fclose(f);
    CHECK(lm_llama_load_hf(dir, &m) == LM_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(lm_last_error(), "model_type 'gemma' (supported: llama, mistral, qwen2)") != NULL, "%s", lm_last_error());
    unlink(cfg), rmdir(dir);
    TEST_MAIN_END();
}

/* libFuzzer target: Hugging Face checkpoint files, the safetensors reader
 * and the LLaMA-family directory loader (config.json + model.safetensors)
 * on top. Both read files by path (the weights are mapped), so the input
 * is written to a fresh temporary directory first.
 *
 * Input: byte 0 picks the mode.
 * - even: the rest is one .safetensors file; every tensor small enough is
 *   also converted to f32 (lm_st_tensor_to_f32 reads all of its bytes).
 * - odd: bytes 1-2 (little-endian) are the length L of config.json, the
 *   next L bytes config.json, the rest model.safetensors, loaded as a
 *   LLaMA / Mistral / Qwen2 directory.
 * Any input must give LM_OK or a clean error: no crash, leak or UB. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lmkit/llama.h"
#include "lmkit/safetensors.h"

static int write_file(const char *path, const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

static void check_safetensors(const char *path) {
    lm_safetensors st;
    if (lm_safetensors_open(path, &st) != LM_OK) return;
    for (int i = 0; i < st.n_tensors; i++) {
        const lm_st_tensor *t = &st.tensors[i];
        if (lm_safetensors_find(&st, t->name) != t) abort(); /* names are unique and sorted */
        if (t->numel > (1 << 16)) continue;
        float *f = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        if (f) lm_st_tensor_to_f32(t, f, t->numel);
        free(f);
    }
    lm_safetensors_close(&st);
}

static void check_llama_dir(const char *dir) {
    lm_llama_model m;
    memset(&m, 0, sizeof m);
    /* LM_OK must mean a whole model (see fuzz_gguf.c) */
    if (lm_llama_load_hf(dir, &m) == LM_OK &&
        (lm_llama_config_check(&m.cfg) != LM_OK || !m.layers || !m.tok_emb.data || !m.output.data || !m.out_norm))
        abort();
    lm_llama_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    char dir[] = "/tmp/lmkit_fuzz_hf_XXXXXX", config[64], weights[64];
    if (!mkdtemp(dir)) return 0;
    snprintf(config, sizeof config, "%s/config.json", dir);
    snprintf(weights, sizeof weights, "%s/model.safetensors", dir);
    if (!(data[0] & 1)) {
        if (write_file(weights, data + 1, size - 1)) check_safetensors(weights);
    } else if (size >= 3) {
        size_t L = (size_t)data[1] | (size_t)data[2] << 8;
        if (L > size - 3) L = size - 3;
        if (write_file(config, data + 3, L) && write_file(weights, data + 3 + L, size - 3 - L)) check_llama_dir(dir);
    }
    unlink(config);
    unlink(weights);
    rmdir(dir);
    return 0;
}

/* libFuzzer target: GGUF parsing and the LLaMA model mapping on top. Any
 * input must give LM_OK or a clean error: no crash, leak or UB. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/gguf.h"
#include "lmkit/llama.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An aligned private copy: the parser hands out typed pointers. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    lm_gguf g;
    if (lm_gguf_parse(buf, size, &g) == LM_OK) {
        lm_llama_model m;
        memset(&m, 0, sizeof m);
        /* LM_OK must mean a whole model: a loader that returned OK with a
         * half-built one crashed only later, in whatever used it. */
        if (lm_llama_from_gguf(&g, &m) == LM_OK && (lm_llama_config_check(&m.cfg) != LM_OK || !m.layers ||
                                                    !m.tok_emb.data || !m.output.data || !m.out_norm))
            abort();
        lm_llama_free(&m);
        lm_gguf_close(&g);
    }
    free(buf);
    return 0;
}

/* libFuzzer target: GGUF parsing, the LLaMA model mapping and the
 * tokenizer (tokenizer.ggml.*) on top. Any
 * input must give LM_OK or a clean error: no crash, leak or UB. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/gguf.h"
#include "lmkit/llama.h"
#include "lmkit/tokenizer.h"

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
        /* and the tokenizer it may carry (tokenizer.ggml.*) */
        lm_tokenizer *t = NULL;
        if (lm_tokenizer_from_gguf(&g, "fuzz", &t) == LM_OK) {
            int32_t *ids = NULL;
            size_t n = 0;
            static const char text[] = "Hello world, 12 h\xC3\xA9llo! <s>";
            if (lm_tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &n) == LM_OK) free(ids);
            lm_tokenizer_free(t);
        }
        lm_gguf_close(&g);
    }
    free(buf);
    return 0;
}

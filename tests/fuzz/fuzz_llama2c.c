/* libFuzzer target: llama2.c checkpoint headers and tokenizer.bin. The
 * first byte picks the parser (and the tokenizer's vocab size). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmkit/llama.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t *buf = malloc(size);
    if (!buf) return 0;
    memcpy(buf, data + 1, size - 1);
    if (data[0] & 1) {
        lm_llama2c_vocab v;
        if (lm_llama2c_vocab_parse(buf, size - 1, 1 + data[0] / 2, &v) == LM_OK) lm_llama2c_vocab_free(&v);
    } else {
        lm_llama_model m;
        lm_llama_parse_llama2c(buf, size - 1, &m);
        lm_llama_free(&m);
    }
    free(buf);
    return 0;
}

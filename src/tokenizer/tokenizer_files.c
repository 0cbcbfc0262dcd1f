/* Copying a model's tokenizer files into a run or model directory. */
#include "tokenizer/tokenizer_files.h"

#include <stdlib.h>

lm_status lm_copy_tokenizer_files(const char *from, const char *to) {
    static const char *const files[] = {"tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                                         "tokenizer.model"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char *src = lm_path_join(from, files[i]), *dst = lm_path_join(to, files[i]);
        lm_status s = src && dst ? LM_OK : lm_error(LM_ERR_NOMEM, "out of memory");
        if (s == LM_OK && lm_file_exists(src)) {
            char *buf = NULL;
            size_t n = 0;
            s = lm_read_file(src, &buf, &n);
            if (s == LM_OK) s = lm_write_file_atomic(dst, buf, n);
            free(buf);
        }
        free(src);
        free(dst);
        LM_TRY(s);
    }
    return LM_OK;
}

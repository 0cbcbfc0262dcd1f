/* Internal: the tokenizer files that travel with a checkpoint. */
#ifndef LMKIT_TOKENIZER_FILES_H
#define LMKIT_TOKENIZER_FILES_H

#include "lmkit/base.h"

/* Copies (atomically) whichever of tokenizer.json, vocab.txt,
 * tokenizer_config.json, special_tokens_map.json and tokenizer.model
 * (SentencePiece) exist in `from` into `to`, so a run or model directory
 * loads in transformers with its tokenizer. */
lm_status lm_copy_tokenizer_files(const char *from, const char *to);

#endif

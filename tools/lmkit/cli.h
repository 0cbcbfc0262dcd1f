/* The subcommands of the lmkit tool; each lives in cmd_<name>.c. */
#ifndef LMKIT_CLI_H
#define LMKIT_CLI_H

int lm_cmd_prepare(int argc, char **argv);
int lm_cmd_train(int argc, char **argv);
int lm_cmd_eval(int argc, char **argv);
int lm_cmd_generate(int argc, char **argv);
int lm_cmd_chat(int argc, char **argv);
int lm_cmd_bench(int argc, char **argv);
int lm_cmd_quantize(int argc, char **argv);
int lm_cmd_convert(int argc, char **argv);
int lm_cmd_init(int argc, char **argv);
int lm_cmd_tokenize(int argc, char **argv);
int lm_cmd_train_tokenizer(int argc, char **argv);
int lm_cmd_finetune(int argc, char **argv);
int lm_cmd_classify(int argc, char **argv);
int lm_cmd_embed(int argc, char **argv);
int lm_cmd_fill_mask(int argc, char **argv);

/* Shared by the commands that generate or score text (cmd_generate.c). */
#include "lmkit/sample.h"

/* Checks the sampling flags before any work (no model loaded, nothing
 * printed yet); an invalid one is an error naming the flag as typed:
 * "generate: --top-p 0 must be in (0, 1]". Returns 0 or lm_fail's 1. */
int lm_cli_check_sampling(const char *cmd, const lm_sample_params *sp);

#include "lmkit/tokenizer.h"
#include <stddef.h>
#include <stdint.h>

/* Refuses text with a character the tokenizer would silently drop (a
 * character-level vocabulary has no fallback for characters its corpus
 * lacked): "eval: in.txt: line 3, column 5: character 'Ω' (U+03A9) is
 * not in the model's vocabulary". source names the text ("--prompt", a
 * file). Returns 0, or 1 after printing the error. */
int lm_cli_check_encodable(const char *cmd, const char *source, const lm_tokenizer *tok, const char *text, size_t len);
/* The same test, for callers that go on (chat skips the message): 1 and
 * "line 1, column 5: character ..." in msg when a character would be
 * dropped, 0 when none is, -1 on an error (its text in msg). */
int lm_cli_find_unencodable(const lm_tokenizer *tok, const char *text, size_t len, char *msg, size_t cap);
/* The first byte of text that is not valid UTF-8: 1 with its byte offset,
 * line and column (characters, from 1), or 0 when the text is valid. */
int lm_cli_utf8_locate(const char *text, size_t len, size_t *offset, size_t *line, size_t *col);

#endif

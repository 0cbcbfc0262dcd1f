/* Shared by the encoder commands (classify, embed, fill-mask, eval
 * --data): open a model directory with its tokenizer, and gather input
 * texts from arguments or a file. */
#ifndef LMKIT_BERT_CLI_H
#define LMKIT_BERT_CLI_H

#include "lmkit/finetune.h"
#include "lmkit/mlm.h"

/* Opens DIR as a BERT model (head as its config says) and its tokenizer;
 * prints the error and returns non-zero on failure. */
int lm_cli_open_bert(const char *dir, lm_bert **m, lm_tokenizer **tok);

/* Texts from positional args, or from FILE: .tsv/.csv/.jsonl through the
 * dataset reader (text_column), anything else one text per line. The
 * dataset (when used) owns the strings; *texts is malloc'd. */
int lm_cli_gather_texts(char **pos, int npos, const char *file, const char *text_column, lm_text_dataset *ds, char ***texts, int *n);

/* lmkit eval --data FILE: prints the metrics; returns the exit code. */
int lm_cli_eval_data(const char *model_dir, const char *data, const char *text_column, const char *label_column, int no_header,
                     int max_len, int batch, int json);

/* lmkit train --arch bert --objective mlm. */
int lm_cli_train_mlm(const lm_mlm_options *o);

#endif

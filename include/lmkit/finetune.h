/* lmkit fine-tuning of encoders: labelled text datasets (TSV / CSV /
 * JSONL), label maps, classification and regression metrics, and the
 * fine-tuning loop (full or LoRA) that writes a Hugging Face run directory
 * (config.json with id2label/label2id, model.safetensors, tokenizer.json). */
#ifndef LMKIT_FINETUNE_H
#define LMKIT_FINETUNE_H

#include "lmkit/base.h"
#include "lmkit/bert.h"
#include "lmkit/tokenizer.h"

/* ---- datasets ----
 * Format from the extension: .jsonl/.json (one object per line), .csv
 * (RFC 4180 quoting), anything else tab-separated. A header row names the
 * columns (JSONL: keys) unless no_header, where columns are 0-based
 * indices. Default columns: text = "text" or "sentence" (index 0), label =
 * "label" (index 1). Blank lines are skipped and counted. */
typedef struct {
    const char *text_column, *label_column; /* NULL: defaults */
    int no_header;
    int need_labels; /* a row without a label is an error */
} lm_text_dataset_options;

typedef struct {
    int n;
    char **texts;
    char **labels; /* raw label strings (NULL entries when absent) */
    int *lines;    /* 1-based source line of each row */
    int blank_lines, first_blank_line;
    char *path;
} lm_text_dataset;

lm_status lm_text_dataset_load(const char *path, const lm_text_dataset_options *o, lm_text_dataset *d);
void lm_text_dataset_free(lm_text_dataset *d);

/* Label names found in a dataset, sorted (numerically when all are
 * integers, else by bytes). *names is malloc'd; free with lm_labels_free. */
lm_status lm_dataset_label_names(const lm_text_dataset *d, char ***names, int *n);
void lm_labels_free(char **names, int n);
/* Maps every row's label to an id of `names`; an unknown label is an
 * error naming the file, line and label. */
lm_status lm_dataset_label_ids(const lm_text_dataset *d, char *const *names, int n, int32_t *ids);
/* Parses every row's label as a number (regression). */
lm_status lm_dataset_label_values(const lm_text_dataset *d, float *values);

/* ---- tokenized examples with dynamic padding ---- */
typedef struct {
    int n;
    int32_t **ids; /* per row, with [CLS] ... [SEP] */
    int *len;
    int truncated; /* rows cut to max_len */
    int max_len;
} lm_text_examples;

/* Tokenizes with truncation to max_len (the tokenizer's own
 * truncation/padding settings are ignored: padding is per batch). */
lm_status lm_text_examples_build(const lm_tokenizer *tok, const lm_text_dataset *d, int max_len, lm_text_examples *ex);
void lm_text_examples_free(lm_text_examples *ex);
/* Fills a padded batch of rows order[0..B) (T = longest row); ids, mask
 * hold B*T. Returns T. */
int lm_text_examples_batch(const lm_text_examples *ex, const int *order, int B, int pad_id, int32_t *ids, int32_t *mask);

/* ---- metrics ---- */
typedef struct {
    int n;
    double loss;
    double accuracy, macro_f1;   /* classification */
    double rmse, pearson;        /* regression */
} lm_cls_metrics;

/* Runs the model over a dataset (labels as ids or values by problem
 * type) and computes the metrics; predictions (may be NULL) receive the
 * argmax id (classification) per row. */
lm_status lm_bert_evaluate(lm_bert *m, const lm_text_examples *ex, const int32_t *ids, const float *values, int batch,
                           lm_cls_metrics *out, int32_t *predictions);

/* ---- the fine-tuning loop ---- */
typedef struct {
    const char *model_dir, *train_path, *eval_path, *out_dir;
    lm_text_dataset_options data;
    lm_problem problem; /* SINGLE_LABEL (classify) or REGRESSION (regress) */
    int epochs, batch, max_len; /* max_len 0: 128 or the model's limit */
    float lr, weight_decay, clip;
    long warmup;     /* steps of linear warmup */
    long eval_every; /* 0: once per epoch */
    int early_stop;  /* evaluations without improvement before stopping; 0: never */
    int lora_rank;   /* 0: full fine-tuning */
    float lora_alpha;
    float dropout; /* hidden, attention-probability and classifier dropout; < 0: the model config's */
    uint64_t seed;
} lm_finetune_options;

void lm_finetune_options_default(lm_finetune_options *o);

typedef struct {
    int kind; /* 0: a training step, 1: an evaluation, 2: a note (text) */
    long step, total_steps;
    int epoch;
    float loss, lr;
    double elapsed_s, eta_s, rows_per_sec;
    lm_cls_metrics eval;
    int best; /* this evaluation is the best so far (saved) */
    const char *text;
} lm_finetune_event;

typedef void (*lm_finetune_callback)(const lm_finetune_event *ev, void *user);

/* Validates both datasets completely before writing anything, then trains
 * and keeps the best evaluation's weights in out_dir (LoRA: merged weights
 * in out_dir, the adapters alone in out_dir/adapter). */
lm_status lm_finetune_run(const lm_finetune_options *o, lm_finetune_callback cb, void *user);

#endif

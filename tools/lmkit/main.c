/* lmkit: one command, one subcommand per stage of a model's life. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} lm_command;

static const lm_command lm_commands[] = {
    {"prepare", lm_cmd_prepare, "tokenize text files into train/val token shards"},
    {"train", lm_cmd_train, "pretrain a GPT-2 from token shards (or --resume a run)"},
    {"eval", lm_cmd_eval, "perplexity of a model over a text file"},
    {"generate", lm_cmd_generate, "continue a prompt, streaming tokens"},
    {"chat", lm_cmd_chat, "interactive chat with a model's chat template (stdin lines; /reset, /exit)"},
    {"convert", lm_cmd_convert, "convert a LLaMA model (HF dir, GGUF, llama2.c .bin) to GGUF, llama2.c .bin or an HF dir"},
    {"quantize", lm_cmd_quantize, "quantize a LLaMA model to GGUF q8_0/q4_0/q4_k/q6_k"},
    {"init", lm_cmd_init, "write a randomly initialized model of a preset shape"},
    {"tokenize", lm_cmd_tokenize, "encode text lines to ids / tokens, or decode lines of ids"},
    {"train-tokenizer", lm_cmd_train_tokenizer, "train a byte-level BPE or WordPiece tokenizer.json from text"},
    {"finetune", lm_cmd_finetune, "fine-tune a BERT encoder for classification/regression (full or LoRA)"},
    {"classify", lm_cmd_classify, "label texts with a fine-tuned classification model"},
    {"embed", lm_cmd_embed, "sentence embeddings (mean-pooled, normalised) as JSON"},
    {"fill-mask", lm_cmd_fill_mask, "top-k tokens for each [MASK] with a masked-LM model"},
    {"bench", lm_cmd_bench, "benchmarks: train (step time, GFLOP/s), generate (prefill/decode tok/s)"},
    {NULL, NULL, NULL},
};

static void lm_usage(FILE *out) {
    fprintf(out, "usage: lmkit <command> [options]\n\ncommands:\n");
    for (const lm_command *c = lm_commands; c->name; c++) fprintf(out, "  %-16s %s\n", c->name, c->summary);
    fprintf(out, "\nRun 'lmkit <command> --help' for a command's options.\n");
}

int main(int argc, char **argv) {
    lm_remove_temps_on_signals(); /* Ctrl-C leaves no half-written temp files */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        lm_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const lm_command *c = lm_commands; c->name; c++)
        if (!strcmp(c->name, argv[1])) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "lmkit: error: unknown command '%s' (see lmkit --help)\n", argv[1]);
    return 2;
}

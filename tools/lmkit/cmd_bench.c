/* lmkit bench: performance figures; one subcommand per workload. */
#include "args.h"
#include "bench.h"
#include "cli.h"

#include <stdio.h>
#include <string.h>

int lm_cmd_bench(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(int, char **);
        const char *summary;
    } benches[] = {
        {"train", lm_bench_train, "time a training step (forward, backward, AdamW)"},
        {"generate", lm_bench_generate, "prefill and decode tokens/s of a LLaMA-family model"},
        {"tokenize", lm_bench_tokenize, "encode MB/s of a tokenizer over a text file"},
    };
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        printf("usage: lmkit bench <workload> [options]\n\nworkloads:\n");
        for (size_t i = 0; i < sizeof benches / sizeof *benches; i++) printf("  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof benches / sizeof *benches; i++)
        if (!strcmp(argv[1], benches[i].name)) {
            /* The workload's argv[0] names the whole command, so that its
             * errors say "bench train: ..." and point at its --help. */
            char name[32];
            snprintf(name, sizeof name, "bench %s", benches[i].name);
            char *saved = argv[1];
            argv[1] = name;
            int rc = benches[i].run(argc - 1, argv + 1);
            argv[1] = saved;
            return rc;
        }
    return lm_fail("bench: unknown workload '%s' (see lmkit bench --help)", argv[1]);
}

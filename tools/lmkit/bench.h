/* Benchmark workloads behind `lmkit bench`. */
#ifndef LMKIT_BENCH_H
#define LMKIT_BENCH_H

int lm_bench_train(int argc, char **argv);
int lm_bench_generate(int argc, char **argv);
int lm_bench_tokenize(int argc, char **argv);

#endif

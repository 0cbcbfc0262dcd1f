#!/usr/bin/env python3
"""Side-by-side tokenizer encode speed: lmkit vs tiktoken vs HF tokenizers.

Corpus (~10 MB): data/tinyshakespeare/input.txt (1.1 MB) + tests/golden/tokenizer/zh_songci.txt
(Chinese, 56 KB), the pair repeated until the file reaches 10 MB, written to /tmp/lmkit_tok_corpus.txt.
Each peer: single thread, best of 3, whole corpus in one call (HF: encode_batch over lines,
RAYON_NUM_THREADS=1). Usage: python3 bench/tokenizer_peers.py build/lmkit
"""
import json, os, subprocess, sys, time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
import tiktoken, tiktoken.load, tiktoken_ext.openai_public as oai
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

lmkit = sys.argv[1] if len(sys.argv) > 1 else "build/lmkit"
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
src = open(f"{root}/data/tinyshakespeare/input.txt", encoding="utf-8").read() + \
    open(f"{root}/tests/golden/tokenizer/zh_songci.txt", encoding="utf-8").read()
corpus = src * (10_000_000 // len(src.encode()) + 1)
path = "/tmp/lmkit_tok_corpus.txt"
open(path, "w", encoding="utf-8").write(corpus)
mb = len(corpus.encode()) / 1e6
lines = corpus.split("\n")


def best(f, n=3):
    b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b


def lm(spec, threads):
    out = subprocess.run([lmkit, "bench", "tokenize", "--tokenizer", spec, "--input", path, "--threads", str(threads),
                          "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["mb_per_s"]


# every peer reads the repo's copies (data/tokenizers/, see data/PROVENANCE.md)
g2 = f"{root}/data/tokenizers/gpt2"
gpt2 = tiktoken.Encoding("gpt2", pat_str=oai.r50k_pat_str,
                         mergeable_ranks=tiktoken.load.data_gym_to_mergeable_bpe_ranks(f"{g2}/vocab.bpe",
                                                                                       f"{g2}/encoder.json"),
                         special_tokens={"<|endoftext|>": 50256})
cl = tiktoken.Encoding("cl100k_base", pat_str=oai.cl100k_base.__code__ and
                       r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
                       mergeable_ranks=tiktoken.load.load_tiktoken_bpe(f"{root}/data/tokenizers/tiktoken/cl100k_base.tiktoken"),
                       special_tokens={})
hf = Tokenizer(models.BPE.from_file(f"{g2}/encoder.json", f"{g2}/vocab.bpe"))
hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
hf.decoder = decoders.ByteLevel()
hf.no_truncation()
rows = []
rows.append(("gpt2", "lmkit 1 thread", lm("gpt2", 1)))
rows.append(("gpt2", "lmkit 2 threads", lm("gpt2", 2)))
rows.append(("gpt2", "tiktoken 1 thread", mb / best(lambda: gpt2.encode_ordinary(corpus))))
rows.append(("gpt2", "HF tokenizers encode_batch 1 thread", mb / best(lambda: hf.encode_batch(lines, add_special_tokens=False), 1)))
rows.append(("cl100k_base", "lmkit 1 thread", lm(f"{root}/data/tokenizers/tiktoken/cl100k_base.tiktoken", 1)))
rows.append(("cl100k_base", "lmkit 2 threads", lm(f"{root}/data/tokenizers/tiktoken/cl100k_base.tiktoken", 2)))
rows.append(("cl100k_base", "tiktoken 1 thread", mb / best(lambda: cl.encode_ordinary(corpus))))
print(f"corpus {mb:.1f} MB")
for tok, who, v in rows:
    print(f"| {tok} | {who} | {v:.2f} MB/s |")

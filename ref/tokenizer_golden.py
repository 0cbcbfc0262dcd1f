#!/usr/bin/env python3
"""Writes golden token ids for lmkit's tokenizer tests.

Peers: OpenAI tiktoken (gpt2 = r50k_base, cl100k_base) and HF `tokenizers`.
Run from the repository root:  python3 ref/tokenizer_golden.py [--shared /work/shared/data]
Outputs go to tests/golden/tokenizer/ (C tests read only those committed files).
"""
import argparse, json, os, random, sys

import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as oai

OUT = "tests/golden/tokenizer"


def tiktoken_enc(name, path):
    ranks = tiktoken.load.load_tiktoken_bpe(path)
    if name == "gpt2":
        return tiktoken.Encoding("gpt2", pat_str=oai.r50k_pat_str, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
    pat = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    return tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                                             "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                                             "<|endofprompt|>": 100276})


def zh_sample(shared):
    lines = []
    for f in ("zh/songci_300.json",):
        for poem in json.load(open(os.path.join(shared, f), encoding="utf-8")):
            lines.append(poem.get("rhythmic", ""))
            lines.extend(poem["paragraphs"])
    return "\n".join(lines)[:20000] + "\n"


def write_ids(path, ids):
    with open(path, "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    shakes = open(os.path.join(a.shared, "tinyshakespeare/input.txt"), "rb").read()[:100000].decode("utf-8")
    zh = zh_sample(a.shared)
    with open(f"{OUT}/shakespeare_100k.txt", "w", encoding="utf-8", newline="") as f:
        f.write(shakes)
    with open(f"{OUT}/zh_songci.txt", "w", encoding="utf-8", newline="") as f:
        f.write(zh)
    gpt2 = tiktoken_enc("gpt2", os.path.join(a.shared, "tokenizers/gpt2/r50k_base.tiktoken"))
    write_ids(f"{OUT}/shakespeare_100k.gpt2.ids", gpt2.encode_ordinary(shakes))
    write_ids(f"{OUT}/zh_songci.gpt2.ids", gpt2.encode_ordinary(zh))
    cl = tiktoken_enc("cl100k_base", os.path.join(a.shared, "tokenizers/tiktoken/cl100k_base.tiktoken"))
    write_ids(f"{OUT}/shakespeare_100k.cl100k.ids", cl.encode_ordinary(shakes))
    write_ids(f"{OUT}/zh_songci.cl100k.ids", cl.encode_ordinary(zh))
    print("wrote", OUT)


if __name__ == "__main__":
    main()

"""Stress goldens for tokenizer parity: random strings weighted to the
hard parts of Unicode (combining marks and their reordering, Hangul jamo,
compatibility forms, format/control/private-use and unassigned code
points, CJK next to marks) run through HF `tokenizers` for every
tokenizer.json committed in tests/golden/tokenizer/. Writes
<name>.stress.golden.json beside them (same layout as tokenizer_golden.py).

    python3 ref/tokenizer_stress_golden.py [--n 300] [--seed 7] [--out DIR]
"""
import argparse
import json
import os
import random

from tokenizers import Tokenizer

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden", "tokenizer")
NAMES = ["llama3_style", "qwen2_style", "llama2_style", "metaspace_style", "bert_uncased", "bert_cased",
         "wordpiece_misc", "unigram"]
POOLS = [(0x20, 0x7E), (0x0, 0x1F), (0x80, 0x24F), (0x300, 0x36F), (0x483, 0x489), (0x591, 0x5C7),
         (0x900, 0x97F), (0x1100, 0x11FF), (0xAC00, 0xD7A3), (0x1DC0, 0x1DFF), (0x2000, 0x206F),
         (0x20D0, 0x20FF), (0x2100, 0x24FF), (0x3000, 0x30FF), (0x3300, 0x33FF), (0x4E00, 0x4E80),
         (0xE000, 0xE010), (0xF900, 0xFAFF), (0xFB00, 0xFDFF), (0xFE00, 0xFFFF), (0x1D15E, 0x1D1AA),
         (0x1F000, 0x1FAFF), (0x2B800, 0x2B9FF), (0xE0000, 0xE007F), (0x10FFF0, 0x10FFFF), (0x0, 0x10FFFF)]


def texts(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = []
        for _ in range(rng.randint(1, 30)):
            r = rng.random()
            if r < 0.12:
                s.append(rng.choice(" \n\t \u00a0"))
            else:
                lo, hi = rng.choice(POOLS)
                c = rng.randint(lo, hi)
                s.append(chr(c) if not 0xD800 <= c < 0xE000 else "x")
        out.append("".join(s))
    return out


def char_to_byte(text, offs):
    b = [0]
    for ch in text:
        b.append(b[-1] + len(ch.encode()))
    return [[b[s], b[e]] for s, e in offs]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=HERE)
    a = ap.parse_args()
    ts = texts(a.n, a.seed)
    for name in NAMES:
        tok = Tokenizer.from_file(os.path.join(HERE, name + ".json"))
        tok.no_truncation()
        tok.no_padding()
        cases = []
        for t in ts:
            e = tok.encode(t, add_special_tokens=True)
            cases.append({"hex": t.encode().hex(), "ids": e.ids, "offsets": char_to_byte(t, e.offsets),
                          "decoded_hex": tok.decode(e.ids, skip_special_tokens=False).encode().hex()})
        path = "tests/golden/tokenizer/%s.json" % name
        json.dump({"tokenizer": path, "cases": cases}, open(os.path.join(a.out, name + ".stress.golden.json"), "w"))
    print("wrote stress goldens for", len(NAMES), "tokenizers,", a.n, "cases each")


if __name__ == "__main__":
    main()

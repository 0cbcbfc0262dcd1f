#!/usr/bin/env python3
"""Golden for `lmkit eval --perplexity`: the strided-window loop of the transformers
perplexity guide (https://huggingface.co/docs/transformers/perplexity), run on the tiny
GPT-2 of tests/golden/gpt2_tiny (n_positions 32) over 300 fixed token ids, at strides
16, 11 and 32.

Run from the repo root:  python3 ref/perplexity_golden.py
Writes tests/golden/gpt2_tiny/perplexity.json: the ids, and per stride the summed negative
log-likelihood, the number of scored tokens and windows.

The guide's windows: inputs [begin, end) with end = min(begin + n_positions, len); the last
end - prev_end tokens are targets (the first token of the text is never one). The guide then
averages window means weighted by (targets - 1), which undercounts every window after the
first by one token; here the loss is summed per scored token instead, which is what lmkit
reports (nll_sum / tokens).
"""
import json
import os

import torch
from transformers import GPT2LMHeadModel

DIR = os.path.join("tests", "golden", "gpt2_tiny")
model = GPT2LMHeadModel.from_pretrained(os.path.join(DIR, "model")).eval()
ctx, V = model.config.n_positions, model.config.vocab_size
g = torch.Generator().manual_seed(7)
ids = torch.randint(0, V, (1, 300), generator=g)

out = {"ids": ids[0].tolist(), "n_positions": ctx, "strides": {}}
for stride in (16, 11, 32):
    nll, tokens, windows, prev_end = 0.0, 0, 0, 0
    for begin in range(0, ids.size(1), stride):
        end = min(begin + ctx, ids.size(1))
        trg_len = end - prev_end
        window = ids[:, begin:end]
        with torch.no_grad():
            logits = model(window).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        # position p of the window predicts token begin + p + 1; targets are the last trg_len
        for t in range(max(end - trg_len, begin + 1), end):
            nll -= logp[t - begin - 1, ids[0, t]].item()
            tokens += 1
        windows += 1
        prev_end = end
        if end == ids.size(1):
            break
    out["strides"][str(stride)] = {"nll_sum": nll, "tokens": tokens, "windows": windows}
with open(os.path.join(DIR, "perplexity.json"), "w") as f:
    json.dump(out, f, indent=1)
print({k: (v["nll_sum"] / v["tokens"], v["tokens"], v["windows"]) for k, v in out["strides"].items()})

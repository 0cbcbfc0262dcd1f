"""Checks that an lmkit GPT-2 run directory loads in transformers and gives
the same logits as lmkit.

    python3 ref/check_hf_roundtrip.py RUN_DIR [--lmkit build/lmkit]

Loads RUN_DIR with transformers.GPT2LMHeadModel.from_pretrained and
AutoTokenizer (tokenizer.json), scores a text with both transformers and
`lmkit eval --json`, and compares the mean loss (they must agree to 1e-4
relative). Also compares greedy continuations token by token. Prints one
JSON line with the figures; exits 1 on a mismatch.
"""
import argparse
import json
import math
import subprocess
import sys
import tempfile

import torch
from transformers import AutoTokenizer, GPT2LMHeadModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--lmkit", default="build/lmkit")
    ap.add_argument("--text", default="data/tinyshakespeare/input.txt")
    ap.add_argument("--chars", type=int, default=2000)
    args = ap.parse_args()

    model = GPT2LMHeadModel.from_pretrained(args.run).eval()
    tok = AutoTokenizer.from_pretrained(args.run)
    text = open(args.text, encoding="utf-8").read()[: args.chars]
    ids = tok(text)["input_ids"]
    ctx = model.config.n_positions
    stride = ctx // 2
    # Same windows as lmkit eval (docs/formats.md): inputs [b, e) predict b+1..e,
    # each token scored once.
    nll, count, scored_until = 0.0, 0, 0
    with torch.no_grad():
        b = 0
        while b < len(ids) - 1:
            e = min(b + ctx, len(ids) - 1)
            x = torch.tensor([ids[b:e]])
            logits = model(x).logits[0]
            logp = torch.log_softmax(logits.double(), -1)
            for i in range(e - b):
                t = b + 1 + i
                if t > scored_until:
                    nll -= logp[i, ids[t]].item()
                    count += 1
            scored_until = e
            if e == len(ids) - 1:
                break
            b += stride
    hf_loss = nll / count
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        out = subprocess.run([args.lmkit, "eval", "--model", args.run, "--perplexity", f.name, "--json"],
                             capture_output=True, text=True, check=True).stdout
    lm = json.loads(out)
    prompt = text[:20]
    pids = tok(prompt)["input_ids"]
    n_new = min(30, ctx - len(pids))
    gen = model.generate(torch.tensor([pids]), max_new_tokens=n_new, do_sample=False,
                         pad_token_id=0, eos_token_id=None)[0].tolist()
    hf_text = tok.decode(gen)
    lm_text = subprocess.run([args.lmkit, "generate", "--model", args.run, "--prompt", prompt, "--max-tokens", str(n_new),
                              "--temperature", "0"], capture_output=True, text=True, check=True).stdout[:-1]  # lmkit ends with one newline
    rel = abs(lm["loss"] - hf_loss) / hf_loss
    result = {"transformers_loss": hf_loss, "lmkit_loss": lm["loss"], "rel_err": rel, "tokens": count,
              "lmkit_tokens": lm["tokens"], "greedy_identical": hf_text == lm_text}
    print(json.dumps(result))
    ok = rel <= 1e-4 and count == lm["tokens"] and hf_text == lm_text
    if hf_text != lm_text:
        print("transformers:", repr(hf_text), "\nlmkit:       ", repr(lm_text), file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

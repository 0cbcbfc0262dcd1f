"""Checks that a Hugging Face directory written by `lmkit convert IN OUTDIR`
loads in transformers and tokenizers and agrees with lmkit on the input.

    python3 ref/check_llama_hf_export.py [--lmkit build/lmkit]
        [--model data/models/stories260K/stories260K.bin]
        [--vocab data/models/stories260K/tok512.bin]

Converts MODEL (with --vocab, a llama2.c tokenizer.bin) to a temporary
directory, then:
  - tokenizers.Tokenizer.from_file(tokenizer.json) and
    transformers.AutoTokenizer encode test texts to the ids
    `lmkit tokenize --tokenizer VOCAB` gives;
  - transformers.AutoModelForCausalLM runs the prompt plus lmkit's greedy
    continuation of it (`lmkit generate --logprobs 20` on MODEL itself):
    every step's argmax is lmkit's token and the 20 top log-probabilities
    agree to 1e-4 (log-probabilities are the logits less one constant per
    step, so this bounds the logits' differences).
And for each transformers-written tiny model in tests/golden/*_tiny/model
(LLaMA, LLaMA 3 scaling, Mistral, Qwen2), HF -> GGUF -> HF with lmkit loads
in transformers with the original's logits (to 1e-5): the config.json it
writes (rope scaling recovered from GGUF's rope_freqs) means the same.
Prints one JSON line with the figures; exits 1 on a mismatch. Not in CI
(no torch there).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
from tokenizers import Tokenizer
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXTS = [
    "Once upon a time, there was a little girl named Lily.",
    "  two  spaces and trailing ",
    "unknown bytes: \u00e9t\u00e9 \u2603 \U0001F600",
    "Tom said, \"Let's go to the park!\" 123 4567",
    "<s> special-looking text </s>",
]


def lmkit_ids(lmkit, vocab, texts, tmp):
    path = os.path.join(tmp, "texts.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(texts) + "\n")
    out = subprocess.run([lmkit, "tokenize", "--tokenizer", vocab, path], check=True, capture_output=True, text=True).stdout
    return [[int(x) for x in line.split()] for line in out.splitlines()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lmkit", default="build/lmkit")
    ap.add_argument("--model", default="data/models/stories260K/stories260K.bin")
    ap.add_argument("--vocab", default="data/models/stories260K/tok512.bin")
    ap.add_argument("--prompt", default="Once upon a time, there was a")
    ap.add_argument("--tokens", type=int, default=48)
    args = ap.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "hf")
        subprocess.run([args.lmkit, "convert", args.model, out, "--vocab", args.vocab], check=True, capture_output=True)

        want = lmkit_ids(args.lmkit, args.vocab, TEXTS, tmp)
        tk = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
        auto = AutoTokenizer.from_pretrained(out)
        tok_same = sum(tk.encode(t).ids == w for t, w in zip(TEXTS, want))
        auto_same = sum(auto(t)["input_ids"] == w for t, w in zip(TEXTS, want))
        for t, w in zip(TEXTS, want):
            if tk.encode(t).ids != w:
                print(f"tokenizers: {t!r}: {tk.encode(t).ids} vs lmkit {w}", file=sys.stderr)
            if auto(t)["input_ids"] != w:
                print(f"AutoTokenizer: {t!r}: {auto(t)['input_ids']} vs lmkit {w}", file=sys.stderr)
        ok &= tok_same == len(TEXTS) and auto_same == len(TEXTS)

        gen = subprocess.run([args.lmkit, "generate", "--model", args.model, "--tokenizer", args.vocab, "--prompt", args.prompt,
                              "--temperature", "0", "--max-tokens", str(args.tokens), "--logprobs", "20"],
                             check=True, capture_output=True, text=True)
        steps = [json.loads(line) for line in gen.stderr.splitlines() if line.startswith("{")]
        prompt = lmkit_ids(args.lmkit, args.vocab, [args.prompt], tmp)[0]
        ids = prompt + [s["id"] for s in steps]

        model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
        with torch.no_grad():
            logits = model(torch.tensor([ids[:-1]])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        worst, argmax_same = 0.0, 0
        for i, s in enumerate(steps):
            row = logp[len(prompt) - 1 + i]
            argmax_same += int(row.argmax()) == s["id"]
            for t in s["top"]:
                worst = max(worst, abs(float(row[t["id"]]) - t["logprob"]))
        ok &= argmax_same == len(steps) and worst <= 1e-4

        golden = {}
        for name in ["llama_tiny", "llama3_tiny", "mistral_tiny", "qwen2_tiny"]:
            src = os.path.join("tests/golden", name, "model")
            gguf, back = os.path.join(tmp, name + ".gguf"), os.path.join(tmp, name)
            subprocess.run([args.lmkit, "convert", src, gguf], check=True, capture_output=True)
            subprocess.run([args.lmkit, "convert", gguf, back], check=True, capture_output=True)
            x = torch.arange(40).reshape(2, 20) * 7 % 97
            with torch.no_grad():
                a = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32).eval()(x).logits
                b = AutoModelForCausalLM.from_pretrained(back, dtype=torch.float32).eval()(x).logits
            golden[name] = float((a - b).abs().max() / a.abs().max())
            ok &= golden[name] <= 1e-5
    print(json.dumps({"model": args.model, "tokenizers_same": f"{tok_same}/{len(TEXTS)}",
                      "auto_tokenizer_same": f"{auto_same}/{len(TEXTS)}", "steps": len(steps),
                      "greedy_same": f"{argmax_same}/{len(steps)}", "max_logprob_diff": worst, "tiny_hf_gguf_hf_rel_err": golden,
                      "ok": bool(ok)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Trains data/models/shakespeare_llama_tiny: a small LLaMA whose matrix rows
are multiples of 256, so Q4_K's 256-element super-blocks fit every layer
matrix (stories260K's 64/172-wide rows fit none), and writes the perplexity
golden the quantization test (tests/unit/test_llama_ppl_q4k.c) checks lmkit
against.

Run from the repo root (about 5 minutes on 2 CPU threads):
    python3 ref/train_tiny_llama.py [--lmkit build/lmkit]
Needs torch, transformers, safetensors, sentencepiece (`pip install
sentencepiece`), tokenizers, and the SentencePiece original of tok512
(--spm, by default ../shared/data/models/stories260K/tok512.model; the repo
carries only its llama2.c export data/models/stories260K/tok512.bin).

Data: data/tinyshakespeare/input.txt. The first 90% (cut at a line end)
trains; of the last 10%, the final ~8 KB (from a blank line, so it starts
at a speech) is the held-out text the golden scores, and the rest is the
validation set whose loss is printed. Training windows are BOS followed by
255 tokens starting at a random position of the training text.

Writes:
  data/models/shakespeare_llama_tiny/config.json, model.safetensors
      (save_pretrained in float16: F16 keeps 10 mantissa bits, BF16 7, and
      the weights are small enough that F16's range is no concern)
  data/models/shakespeare_llama_tiny/tokenizer.json, tokenizer_config.json
      (with --lmkit: `lmkit convert` of the new directory with
      --vocab tok512.bin, so `lmkit eval` and transformers find a tokenizer
      beside the model; checked here to encode the held-out text to
      SentencePiece's ids)
  tests/golden/shakespeare_llama_tiny/perplexity.json
      (transformers, the saved F16 weights run in float64: the held-out
      ids and the summed NLL over lmkit's strided windows, for all ids and
      for the first quarter, which the sanitizer builds score)
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

import sentencepiece
import tokenizers
import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

SEED = 1234
CTX = 256
BATCH = 16
STEPS = 600
LR, LR_MIN, WARMUP = 3e-3, 3e-4, 20
EVAL_BYTES = 8000
STRIDE = 128  # lmkit's windows: ctx 256 every 128 tokens, each token scored once

OUT = os.path.join("data", "models", "shakespeare_llama_tiny")
GOLDEN = os.path.join("tests", "golden", "shakespeare_llama_tiny")


def split_text(text):
    """(train, validation, held-out eval, eval's byte offset)."""
    cut = text.index("\n", int(len(text) * 0.9)) + 1
    ev = text.index("\n\n", len(text) - EVAL_BYTES) + 2
    return text[:cut], text[cut:ev], text[ev:], ev


def strided_nll(model, ids, ctx, stride):
    """lmkit's lm_engine_perplexity (src/infer/perplexity.c): windows of
    inputs [b, e) with e = min(b + ctx, n) - 1 every `stride`, each target
    b+1..e scored by the first window that predicts it."""
    n, nll, tokens, windows, scored = len(ids), 0.0, 0, 0, 0
    for b in range(0, n - 1, stride):
        e = min(b + ctx, n) - 1
        with torch.no_grad():
            logits = model(torch.tensor([ids[b:e]])).logits[0].double()
        logp = torch.log_softmax(logits, -1)
        for t in range(max(b + 1, scored + 1), e + 1):
            nll -= logp[t - b - 1, ids[t]].item()
            tokens += 1
        windows += 1
        scored = e
        if e == n - 1:
            break
    return {"nll_sum": nll, "tokens": tokens, "windows": windows, "ppl": math.exp(nll / tokens)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spm", default=os.path.join("..", "shared", "data", "models", "stories260K", "tok512.model"))
    ap.add_argument("--lmkit", default=os.path.join("build", "lmkit"), help="writes tokenizer.json beside the model; '' skips")
    args = ap.parse_args()

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    sp = sentencepiece.SentencePieceProcessor(model_file=args.spm)
    text = open(os.path.join("data", "tinyshakespeare", "input.txt"), encoding="utf-8").read()
    train_text, val_text, eval_text, eval_offset = split_text(text)
    bos = sp.bos_id()
    train_ids = torch.tensor(sp.encode(train_text))
    val_ids = torch.tensor(sp.encode(val_text))
    eval_ids = [bos] + sp.encode(eval_text)
    print(f"tokens: train {len(train_ids)}, validation {len(val_ids)}, held-out {len(eval_ids)} ({len(eval_text)} bytes)")

    cfg = LlamaConfig(vocab_size=sp.vocab_size(), hidden_size=256, intermediate_size=512, num_hidden_layers=4,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=CTX, rms_norm_eps=1e-5,
                      rope_theta=10000.0, tie_word_embeddings=False, bos_token_id=bos, eos_token_id=sp.eos_id(),
                      initializer_range=0.02)
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / WARMUP if s < WARMUP else
        (LR_MIN + 0.5 * (LR - LR_MIN) * (1 + math.cos(math.pi * (s - WARMUP) / (STEPS - WARMUP)))) / LR)
    g = torch.Generator().manual_seed(SEED)

    def batch(ids, starts):
        x = torch.stack([torch.cat([torch.tensor([bos]), ids[s:s + CTX - 1]]) for s in starts])
        return x

    # fixed validation windows: BOS + 255 tokens every 255 tokens
    val_starts = list(range(0, len(val_ids) - CTX, CTX - 1))

    def val_loss():
        model.eval()
        tot = 0.0
        with torch.no_grad():
            for i in range(0, len(val_starts), BATCH):
                x = batch(val_ids, val_starts[i:i + BATCH])
                tot += model(x, labels=x).loss.item() * len(x)
        model.train()
        return tot / len(val_starts)

    print(f"{n_params} parameters; validation loss at init {val_loss():.4f} (ln 512 = {math.log(512):.4f})")
    t0 = time.time()
    for step in range(STEPS):
        starts = torch.randint(0, len(train_ids) - CTX, (BATCH,), generator=g).tolist()
        x = batch(train_ids, starts)
        loss = model(x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == STEPS - 1:
            msg = f"step {step:4d} loss {loss.item():.4f} lr {sched.get_last_lr()[0]:.2e} {time.time() - t0:6.1f}s"
            if step % 200 == 0 or step == STEPS - 1:
                msg += f" val {val_loss():.4f}"
            print(msg, flush=True)

    final_val = val_loss()
    # save in float16, then score what was saved, upcast exactly to float64
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    model.to(torch.float16).save_pretrained(OUT)
    for extra in ("generation_config.json",):  # transformers' generate defaults: nothing lmkit or the test needs
        if os.path.exists(os.path.join(OUT, extra)):
            os.remove(os.path.join(OUT, extra))
    saved = LlamaForCausalLM.from_pretrained(OUT, dtype=torch.float64, attn_implementation="eager").eval()
    full = strided_nll(saved, eval_ids, CTX, STRIDE)
    quarter = len(eval_ids) // 4
    short = strided_nll(saved, eval_ids[:quarter], CTX, STRIDE)
    print(f"held-out perplexity (F16 weights, float64): {full['ppl']:.4f} over {full['tokens']} tokens; "
          f"first quarter {short['ppl']:.4f}")

    if args.lmkit:
        with tempfile.TemporaryDirectory() as tmp:
            conv = os.path.join(tmp, "hf")
            vocab = os.path.join("data", "models", "stories260K", "tok512.bin")
            subprocess.run([args.lmkit, "convert", OUT, conv, "--vocab", vocab], check=True)
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(conv, f), os.path.join(OUT, f))
        got = tokenizers.Tokenizer.from_file(os.path.join(OUT, "tokenizer.json")).encode(eval_text).ids
        if got != eval_ids:
            sys.exit("tokenizer.json does not encode the held-out text to SentencePiece's ids")

    os.makedirs(GOLDEN, exist_ok=True)
    golden = {
        "text": "data/tinyshakespeare/input.txt", "text_offset": len(text[:eval_offset].encode()),
        "text_bytes": len(eval_text.encode()), "bos_prefixed": True, "ctx": CTX, "stride": STRIDE,
        "ids": eval_ids, "full": full, "first_quarter": dict(short, n_ids=quarter),
        "train": {"seed": SEED, "steps": STEPS, "batch": BATCH, "params": n_params, "final_val_loss": final_val},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "sentencepiece": sentencepiece.__version__, "python": sys.version.split()[0]},
    }
    with open(os.path.join(GOLDEN, "perplexity.json"), "w") as f:
        json.dump(golden, f, indent=None, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch peer for `lmkit bench train` (issue 2 "Speed"): time one GPT-2 training step on CPU.

Usage:  python3 bench/torch_train_step.py [--threads 2] [--batch 4] [--seq-len 64] [--steps 5]
                                          [--preset 124M|tiny]
Model: transformers.GPT2LMHeadModel, 124M preset (n_layer 12, n_head 12, n_embd 768,
n_positions 1024, vocab 50257), dropout 0, float32, tied embeddings, default HF init.
Step: forward on a random token batch, cross-entropy on random targets (mean), backward,
torch.optim.AdamW step (lr 6e-4, betas (0.9, 0.95), wd 0.1), zero_grad.
One warm-up step, then the median of --steps timed steps.
Prints one JSON line: {"ms_per_step", "tokens_per_sec", "threads", ...}.
`--preset tiny` (2 layers, 64 wide) exists only to smoke-test the script quickly.
"""
import argparse
import json
import statistics
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

PRESETS = {
    "124M": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, vocab_size=50257),
    "tiny": dict(n_layer=2, n_head=2, n_embd=64, n_positions=1024, vocab_size=50257),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--preset", default="124M", choices=sorted(PRESETS))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    cfg = GPT2Config(**PRESETS[a.preset], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                     tie_word_embeddings=True)
    model = GPT2LMHeadModel(cfg).float()
    model.train()
    V = cfg.vocab_size
    x = torch.randint(0, V, (a.batch, a.seq_len))
    y = torch.randint(0, V, (a.batch, a.seq_len))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=6e-4, betas=(0.9, 0.95), eps=1e-8)

    def step():
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, V), y.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    step()  # warm-up
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ms = statistics.median(times) * 1e3
    print(json.dumps({
        "peer": "pytorch", "ms_per_step": round(ms, 3),
        "tokens_per_sec": round(a.batch * a.seq_len / (ms / 1e3), 2),
        "threads": a.threads, "batch": a.batch, "seq_len": a.seq_len, "steps": a.steps,
        "preset": a.preset, "n_params": sum(p.numel() for p in params),
        "torch": torch.__version__, "transformers": transformers.__version__,
    }))


if __name__ == "__main__":
    main()

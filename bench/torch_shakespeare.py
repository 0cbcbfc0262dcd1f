#!/usr/bin/env python3
"""PyTorch peer for lmkit's char-level Shakespeare training (nanoGPT's CPU recipe, re-implemented).

Usage:  python3 bench/torch_shakespeare.py [--iters 2000] [--threads 2] [--eval-batches 200]
                                           [--data data/tinyshakespeare/input.txt] [--seed S] [--no-bias]
                                           [--exact-gelu] [--chars]
Recipe (nanoGPT README, "shakespeare_char" on CPU): GPT with n_layer 4, n_head 4, n_embd 128,
block_size 64, batch 12, dropout 0, biases as GPT-2 has them (--no-bias: none, nanoGPT's default),
GPT-2's tanh GELU (--exact-gelu: erf, nanoGPT's), tied embeddings; AdamW lr 1e-3, betas (0.9, 0.99),
weight decay 0.1 on matrices/embeddings only, grad-norm clip 1.0; LR: linear warmup 100 iters to
1e-3 then cosine decay to 1e-4 at --iters (lr_decay_iters = iters).
Data: the raw bytes of input.txt (byte-level vocab 256; --chars: its 65 distinct characters, as
nanoGPT's prepare.py), first 90% train, last 10% val.
Training batches: random windows from a generator seeded with --seed.
Eval: mean val loss over --eval-batches random val batches (batch 12, block 64) drawn from a
separately seeded generator, after training. Init: N(0, 0.02), residual projections
N(0, 0.02/sqrt(2*n_layer)), biases 0, LayerNorm 1/0.
Prints one JSON line {"val_loss", "wall_s" (training time only), "iters", ...}.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, H, bias, gelu):
        super().__init__()
        self.H, self.gelu = H, gelu
        self.ln_1 = nn.LayerNorm(C, bias=bias)
        self.qkv = nn.Linear(C, 3 * C, bias=bias)
        self.attn_proj = nn.Linear(C, C, bias=bias)
        self.ln_2 = nn.LayerNorm(C, bias=bias)
        self.fc = nn.Linear(C, 4 * C, bias=bias)
        self.mlp_proj = nn.Linear(4 * C, C, bias=bias)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(a.transpose(1, 2).reshape(B, T, C))
        x = x + self.mlp_proj(F.gelu(self.fc(self.ln_2(x)), approximate=self.gelu))
        return x


class GPT(nn.Module):
    def __init__(self, V, T, C, L, H, bias=True, gelu="tanh"):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.blocks = nn.ModuleList(Block(C, H, bias, gelu) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, bias=bias)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
            elif p.dim() >= 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif ".ln_" in name or name.startswith("ln_f"):
                nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.ln_f(x) @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-batches", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--data", default=None)
    ap.add_argument("--no-bias", action="store_true",
                    help="no biases in Linear and LayerNorm (nanoGPT's default; GPT-2, and lmkit, have them)")
    ap.add_argument("--exact-gelu", action="store_true",
                    help="erf GELU (nanoGPT's nn.GELU()) instead of GPT-2's tanh approximation")
    ap.add_argument("--chars", action="store_true",
                    help="vocabulary of the text's distinct characters (nanoGPT's shakespeare_char, 65 symbols) "
                         "instead of 256 bytes")
    a = ap.parse_args()

    L, H, C, BLOCK, BATCH = 4, 4, 128, 64, 12
    MAX_LR, MIN_LR, WARMUP, WD, CLIP = 1e-3, 1e-4, 100, 0.1, 1.0
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    path = a.data
    if path is None:
        path = "data/tinyshakespeare/input.txt"
        if not os.path.exists(path):
            path = "/work/shared/data/tinyshakespeare/input.txt"
    raw = open(path, "rb").read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    vocab = 256
    if a.chars:  # the text is ASCII, so its bytes are its characters
        symbols = sorted(set(raw))
        lut = torch.zeros(256, dtype=torch.long)
        lut[torch.tensor(symbols)] = torch.arange(len(symbols))
        data, vocab = lut[data], len(symbols)
    n = int(0.9 * len(data))
    train, val = data[:n], data[n:]

    def batch(split, gen):
        d = train if split == "train" else val
        ix = torch.randint(len(d) - BLOCK - 1, (BATCH,), generator=gen)
        x = torch.stack([d[i:i + BLOCK] for i in ix])
        y = torch.stack([d[i + 1:i + 1 + BLOCK] for i in ix])
        return x, y

    model = GPT(vocab, BLOCK, C, L, H, bias=not a.no_bias, gelu="none" if a.exact_gelu else "tanh")
    params = list(model.parameters())
    opt = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": WD},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=MAX_LR, betas=(0.9, 0.99), eps=1e-8)

    def lr_at(it):
        if it < WARMUP:
            return MAX_LR * (it + 1) / (WARMUP + 1)
        if it > a.iters:
            return MIN_LR
        ratio = (it - WARMUP) / max(1, a.iters - WARMUP)
        return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (MAX_LR - MIN_LR)

    gtrain = torch.Generator().manual_seed(a.seed)
    model.train()
    t0 = time.perf_counter()
    last = float("nan")
    for it in range(a.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = batch("train", gtrain)
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, CLIP)
        opt.step()
        last = loss.item()
    wall = time.perf_counter() - t0

    model.eval()
    geval = torch.Generator().manual_seed(a.seed + 1)
    with torch.no_grad():
        losses = [model(*batch("val", geval)).item() for _ in range(a.eval_batches)]
    print(json.dumps({
        "peer": "pytorch-nanogpt-shakespeare", "val_loss": round(sum(losses) / len(losses), 4),
        "train_loss_last": round(last, 4), "wall_s": round(wall, 2), "iters": a.iters,
        "ms_per_iter": round(wall / max(1, a.iters) * 1e3, 3), "threads": a.threads,
        "eval_batches": a.eval_batches, "n_params": sum(p.numel() for p in params),
        "torch": torch.__version__,
    }))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""GPT-2 training-parity golden files for lmkit's C GPT-2 (forward, backward, AdamW, generate).

Run from the repo root:  python3 ref/gpt2_golden.py
Writes (deterministically, fp32, CPU):
  tests/golden/gpt2_tiny/model/config.json, model.safetensors   (HF save_pretrained of a tiny
      random GPT2LMHeadModel: V=101, T=32, C=48, L=2, H=4, gelu_new, tied embeddings)
  tests/golden/gpt2_tiny/golden.safetensors   input_ids, targets, logits, loss, grad.<name>,
      step3.<name> (parameters after 3 AdamW steps with clipping and the cosine LR schedule)
  tests/golden/gpt2_tiny/golden.json          hyperparameters + per-step loss / grad norm / lr
  tests/golden/gpt2_tiny/generate.json        greedy model.generate of 10 tokens from 5 ids
Why: the C model must reproduce HF transformers' GPT-2 logits, loss, every gradient (incl. the
tied wte = embedding + LM head), one AdamW trajectory and KV-cache greedy decoding exactly
(up to fp32 rounding). The format is described in tests/golden/gpt2_tiny/README.md.
"""
import json
import math
import os
import sys

import torch
import transformers
import safetensors
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel

OUT = os.path.join("tests", "golden", "gpt2_tiny")
B, T = 3, 16
MAX_LR, MIN_LR, WARMUP, TOTAL = 1e-2, 1e-3, 2, 3
BETAS, EPS, WD, CLIP = (0.9, 0.95), 1e-8, 0.1, 1.0
STEPS = 3


def lr_at(s):
    if s < WARMUP:
        return MAX_LR * (s + 1) / WARMUP
    if s >= TOTAL:
        return MIN_LR
    ratio = (s - WARMUP) / (TOTAL - WARMUP)
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))
    return MIN_LR + coeff * (MAX_LR - MIN_LR)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    os.makedirs(os.path.join(OUT, "model"), exist_ok=True)

    cfg = GPT2Config(
        vocab_size=101, n_positions=32, n_embd=48, n_layer=2, n_head=4,
        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        layer_norm_epsilon=1e-5, tie_word_embeddings=True,
        bos_token_id=None, eos_token_id=None,
    )
    model = GPT2LMHeadModel(cfg).float()
    model.eval()  # dropout is 0 anyway; eval() just makes that explicit

    # Larger-than-default random init so gradients are non-trivial.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if (".ln_" in name) and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * noise)       # LayerNorm gain around 1
            else:
                p.copy_(0.1 * noise)             # weights and biases around 0
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "not tied"

    model.save_pretrained(os.path.join(OUT, "model"), safe_serialization=True)
    st_path = os.path.join(OUT, "model", "model.safetensors")
    with safe_open(st_path, "pt") as f:
        stored = {k: tuple(f.get_tensor(k).shape) for k in f.keys()}
    params = dict(model.named_parameters())  # deduplicated: tied lm_head.weight is not listed

    def stored_name(pname):
        if pname in stored:
            return pname
        raise SystemExit(f"parameter {pname} not found in saved model.safetensors: {sorted(stored)}")

    for n, p in params.items():
        assert stored[stored_name(n)] == tuple(p.shape), n

    # Batch: random ids and an independent random target tensor (all valid, no -100).
    gb = torch.Generator().manual_seed(1234)
    input_ids = torch.randint(0, cfg.vocab_size, (B, T), generator=gb)
    targets = torch.randint(0, cfg.vocab_size, (B, T), generator=gb)

    def loss_fn():
        logits = model(input_ids=input_ids).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, cfg.vocab_size), targets.view(-1))
        return logits, loss

    model.zero_grad(set_to_none=True)
    logits, loss = loss_fn()
    loss.backward()
    out = {
        "input_ids": input_ids.to(torch.int32).contiguous(),
        "targets": targets.to(torch.int32).contiguous(),
        "logits": logits.detach().float().contiguous(),
        "loss": loss.detach().float().reshape(1).contiguous(),
    }
    for n, p in params.items():
        out["grad." + stored_name(n)] = p.grad.detach().clone().contiguous()
    model.zero_grad(set_to_none=True)

    # 3 AdamW steps on the same batch.
    decay = [p for n, p in params.items() if p.dim() >= 2]
    no_decay = [p for n, p in params.items() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
        lr=MAX_LR, betas=BETAS, eps=EPS, foreach=False, fused=False,
    )
    steps = []
    for s in range(STEPS):
        lr = lr_at(s)
        for grp in opt.param_groups:
            grp["lr"] = lr
        opt.zero_grad(set_to_none=True)
        _, l = loss_fn()
        l.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=CLIP)
        opt.step()
        steps.append({"step": s, "lr": lr, "loss": float(l.item()), "grad_norm": float(norm.item()),
                      "clipped": bool(norm.item() > CLIP)})
    with torch.no_grad():
        _, final_loss = loss_fn()
    for n, p in params.items():
        out["step3." + stored_name(n)] = p.detach().clone().contiguous()
    save_file(out, os.path.join(OUT, "golden.safetensors"))

    if not any(st["clipped"] for st in steps):
        sys.exit("grad norm never exceeded the clip threshold; clipping not exercised")

    versions = {"torch": torch.__version__, "transformers": transformers.__version__,
                "safetensors": safetensors.__version__}
    meta = {
        "config": {"vocab_size": 101, "n_positions": 32, "n_embd": 48, "n_layer": 2, "n_head": 4,
                   "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
                   "tie_word_embeddings": True},
        "B": B, "T": T,
        "loss": float(loss.item()),
        "optimizer": {"type": "AdamW", "betas": list(BETAS), "eps": EPS, "weight_decay": WD,
                      "weight_decay_applies_to": "parameters with dim >= 2 (wte, wpe, all weight matrices)",
                      "grad_clip_max_norm": CLIP,
                      "lr_schedule": {"max_lr": MAX_LR, "min_lr": MIN_LR, "warmup_steps": WARMUP,
                                      "total_steps": TOTAL}},
        "steps": steps,
        "loss_after_step3": float(final_loss.item()),
        "stored_tensors": {k: list(v) for k, v in sorted(stored.items())},
        "versions": versions,
    }
    with open(os.path.join(OUT, "golden.json"), "w") as f:
        json.dump(meta, f, indent=1)

    # Greedy generation (reload from disk to prove the saved checkpoint is what is tested).
    gen_model = GPT2LMHeadModel.from_pretrained(os.path.join(OUT, "model"), dtype=torch.float32)
    gen_model.eval()
    gp = torch.Generator().manual_seed(100)  # chosen: smallest top-2 logit gap 0.02
    prompt = torch.randint(0, cfg.vocab_size, (1, 5), generator=gp)
    gen_model.generation_config.eos_token_id = None
    gen_model.generation_config.pad_token_id = None
    with torch.no_grad():
        res = gen_model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                 max_new_tokens=10, min_new_tokens=0, num_beams=1, use_cache=True)
        # cross-check with a cache-free argmax loop
        ids = prompt.clone()
        margin = float("inf")
        for _ in range(10):
            last = gen_model(input_ids=ids, use_cache=False).logits[:, -1]
            top2 = last.topk(2, dim=-1).values
            margin = min(margin, (top2[:, 0] - top2[:, 1]).min().item())
            ids = torch.cat([ids, last.argmax(-1, keepdim=True)], 1)
    assert res.shape == (1, 15), res.shape
    assert torch.equal(res, ids), (res, ids)
    with open(os.path.join(OUT, "generate.json"), "w") as f:
        json.dump({"prompt": prompt[0].tolist(), "max_new_tokens": 10, "do_sample": False,
                   "output": res[0].tolist(), "new_tokens": res[0, 5:].tolist(),
                   "min_top2_logit_margin": margin,
                   "note": "output = prompt + 10 greedy tokens; no EOS stopping"}, f, indent=1)

    print("loss", float(loss.item()), "steps", steps, "after", float(final_loss.item()))
    print("generate", res[0].tolist())


if __name__ == "__main__":
    main()

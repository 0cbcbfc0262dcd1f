#!/usr/bin/env python3
"""BERT parity goldens (issue 4): masked-LM and sequence-classification heads, forward + backward.

Run from the repo root:  python3 ref/bert_golden.py
Writes (deterministic, fp32, CPU, eager attention):
  tests/golden/bert_tiny/model/      save_pretrained of a tiny random BertForMaskedLM
  tests/golden/bert_tiny/golden.safetensors   input_ids, token_type_ids, attention_mask, labels,
      hidden, logits, loss, grad.<name>
  tests/golden/bert_tiny/golden.json
  tests/golden/bert_cls_tiny/model/  save_pretrained of a tiny random BertForSequenceClassification
  tests/golden/bert_cls_tiny/golden.safetensors   same inputs, labels [B], hidden, pooled, logits,
      loss, grad.<name>
  tests/golden/bert_cls_tiny/golden.json
Why: the C BERT encoder, its MLM head (tied decoder) and its classifier head (pooler + linear)
must match transformers exactly, including the padding mask and the -100 ignored labels.
Formats: tests/golden/bert_tiny/README.md.
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

import golden_util as gu

B, T = 3, 12
LENGTHS = [12, 9, 7]  # valid tokens per row; the rest is padding (attention_mask 0, id 0)
STD = 0.1

CFG = dict(vocab_size=103, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=37, max_position_embeddings=40, type_vocab_size=2, hidden_act="gelu",
           hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, layer_norm_eps=1e-12,
           pad_token_id=0)


def make_inputs():
    g = torch.Generator().manual_seed(4321)
    ids = torch.randint(5, 103, (B, T), generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    tt = torch.zeros(B, T, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        ids[b, n:] = 0                # [PAD] = 0
        tt[b, n // 2:n] = 1           # second segment
    # MLM labels: ~1/3 of the valid positions (at least 2 per row), others -100.
    labels = torch.full((B, T), -100, dtype=torch.long)
    for b, n in enumerate(LENGTHS):
        pick = torch.randperm(n, generator=g)[:max(2, n // 3)]
        labels[b, pick] = ids[b, pick]
        ids[b, pick[0]] = 4           # one of them replaced by a "[MASK]" id, like real MLM
    cls_labels = torch.tensor([0, 2, 1])
    return ids, tt, mask, labels, cls_labels


def run(model, ids, tt, mask):
    return model(input_ids=ids, token_type_ids=tt, attention_mask=mask, output_hidden_states=True)


def build(cls, outdir, seed, extra_cfg):
    cfg = BertConfig(**CFG, **extra_cfg)
    torch.manual_seed(seed)
    model = cls(cfg).float()
    model.set_attn_implementation("eager")
    model.eval()
    gu.scaled_init(model, STD, seed)
    os.makedirs(os.path.join(outdir, "model"), exist_ok=True)
    model.save_pretrained(os.path.join(outdir, "model"), safe_serialization=True)
    stored = gu.stored_shapes(os.path.join(outdir, "model", "model.safetensors"))
    gu.check_params_stored(model, stored)
    return model, stored


def check_sdpa_and_reload(cls, outdir, ids, tt, mask, ref_logits, valid_rows_mask):
    m2 = cls.from_pretrained(os.path.join(outdir, "model"), attn_implementation="sdpa",
                             dtype=torch.float32).eval()
    with torch.no_grad():
        l2 = m2(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
    diff = (l2 - ref_logits)[valid_rows_mask].abs().max().item()
    assert diff < 1e-4, f"reload/sdpa differs from eager golden by {diff}"
    return diff


def mlm(ids, tt, mask, labels):
    out_dir = os.path.join("tests", "golden", "bert_tiny")
    model, stored = build(BertForMaskedLM, out_dir, 10, {})
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    model.zero_grad(set_to_none=True)
    out = run(model, ids, tt, mask)
    V = model.config.vocab_size
    loss = F.cross_entropy(out.logits.view(-1, V), labels.view(-1), ignore_index=-100)
    with torch.no_grad():
        hf = model(input_ids=ids, token_type_ids=tt, attention_mask=mask, labels=labels).loss
    assert abs(hf.item() - loss.item()) < 1e-6, (hf.item(), loss.item())
    loss.backward()
    g = {
        "input_ids": ids.to(torch.int32), "token_type_ids": tt.to(torch.int32),
        "attention_mask": mask.to(torch.int32), "labels": labels.to(torch.int32),
        "hidden": out.hidden_states[-1].detach(), "logits": out.logits.detach(),
        "loss": loss.detach().reshape(1),
    }
    for n, p in model.named_parameters():
        g["grad." + n] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in g.items()}, os.path.join(out_dir, "golden.safetensors"))
    valid = mask.bool()
    diff = check_sdpa_and_reload(BertForMaskedLM, out_dir, ids, tt, mask, out.logits.detach(), valid)
    gu.write_json(os.path.join(out_dir, "golden.json"), {
        "config": CFG, "B": B, "T": T, "lengths": LENGTHS, "init_std": STD,
        "loss": loss.item(), "n_labels_counted": int((labels != -100).sum()),
        "attn_implementation": "eager", "max_abs_diff_vs_sdpa_reload_valid_positions": diff,
        "stored_tensors": dict(sorted(stored.items())), "versions": gu.versions(),
    })
    print("mlm loss", loss.item(), "sdpa diff", diff)


def seqcls(ids, tt, mask, cls_labels):
    out_dir = os.path.join("tests", "golden", "bert_cls_tiny")
    extra = {"num_labels": 3, "problem_type": "single_label_classification"}
    model, stored = build(BertForSequenceClassification, out_dir, 11, extra)
    model.zero_grad(set_to_none=True)
    bert_out = model.bert(input_ids=ids, token_type_ids=tt, attention_mask=mask)
    pooled = bert_out.pooler_output
    logits = model.classifier(pooled)
    with torch.no_grad():
        hf = model(input_ids=ids, token_type_ids=tt, attention_mask=mask, labels=cls_labels)
    assert torch.allclose(hf.logits, logits, atol=0, rtol=0) or (hf.logits - logits).abs().max() < 1e-6
    loss = F.cross_entropy(logits, cls_labels)
    assert abs(hf.loss.item() - loss.item()) < 1e-6
    loss.backward()
    g = {
        "input_ids": ids.to(torch.int32), "token_type_ids": tt.to(torch.int32),
        "attention_mask": mask.to(torch.int32), "labels": cls_labels.to(torch.int32),
        "hidden": bert_out.last_hidden_state.detach(), "pooled": pooled.detach(),
        "logits": logits.detach(), "loss": loss.detach().reshape(1),
    }
    for n, p in model.named_parameters():
        g["grad." + n] = p.grad.detach().clone()
    save_file({k: v.contiguous() for k, v in g.items()}, os.path.join(out_dir, "golden.safetensors"))
    diff = check_sdpa_and_reload(BertForSequenceClassification, out_dir, ids, tt, mask,
                                 logits.detach(), torch.ones(B, dtype=torch.bool))
    gu.write_json(os.path.join(out_dir, "golden.json"), {
        "config": {**CFG, **extra}, "B": B, "T": T, "lengths": LENGTHS, "init_std": STD,
        "loss": loss.item(), "attn_implementation": "eager",
        "max_abs_diff_vs_sdpa_reload": diff,
        "stored_tensors": dict(sorted(stored.items())), "versions": gu.versions(),
    })
    print("cls loss", loss.item(), "sdpa diff", diff)


def main():
    gu.setup()
    ids, tt, mask, labels, cls_labels = make_inputs()
    mlm(ids, tt, mask, labels)
    seqcls(ids, tt, mask, cls_labels)


if __name__ == "__main__":
    main()

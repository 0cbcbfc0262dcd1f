#!/usr/bin/env python3
"""Checks that an `lmkit finetune` run directory loads in transformers
(AutoModelForSequenceClassification + AutoTokenizer) and predicts what
`lmkit classify` predicts on the first N rows of a TSV (header, text first).

  python3 ref/check_bert_run.py RUN data.tsv [N] [path/to/lmkit]
Prints one JSON line: rows, label agreement, max |prob difference|."""
import json
import subprocess
import sys

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

run, data = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 200
lmkit = sys.argv[4] if len(sys.argv) > 4 else "build/lmkit"
torch.set_num_threads(2)
texts = [l.rsplit("\t", 1)[0] for l in open(data, encoding="utf-8").read().split("\n")[1:] if l.strip()][:n]
tok = AutoTokenizer.from_pretrained(run)
model = AutoModelForSequenceClassification.from_pretrained(run).eval()
with torch.no_grad():
    enc = tok(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    probs = torch.softmax(model(**enc).logits, -1)
hf_labels = [model.config.id2label[int(i)] for i in probs.argmax(-1)]
hf_best = probs.max(-1).values.tolist()
with open("/tmp/check_bert_run_inputs.txt", "w", encoding="utf-8") as f:
    f.write("\n".join(texts) + "\n")
out = subprocess.run([lmkit, "classify", "--model", run, "--file", "/tmp/check_bert_run_inputs.txt", "--json"], capture_output=True,
                     text=True, check=True).stdout.strip().split("\n")
mine = [json.loads(l) for l in out]
agree = sum(a == m["label"] for a, m in zip(hf_labels, mine))
maxdiff = max(abs(p - m["score"]) for p, m, a in zip(hf_best, mine, hf_labels) if m["label"] == a) if agree else None
print(json.dumps({"run": run, "rows": len(texts), "label_agreement": agree / len(texts), "max_abs_prob_diff": maxdiff,
                  "id2label": model.config.id2label}))

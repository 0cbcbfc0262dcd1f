#!/usr/bin/env python3
"""Writes golden token ids for lmkit's tokenizer tests.

Peers: OpenAI tiktoken (gpt2 = r50k_base, cl100k_base) and HF `tokenizers`.
Run from the repository root:  python3 ref/tokenizer_golden.py [--shared /work/shared/data]
Outputs go to tests/golden/tokenizer/ (C tests read only those committed files).
"""
import argparse, json, os, random, sys

import tiktoken
import tiktoken.load
import tiktoken_ext.openai_public as oai

OUT = "tests/golden/tokenizer"


def tiktoken_enc(name, path):
    ranks = tiktoken.load.load_tiktoken_bpe(path)
    if name == "gpt2":
        return tiktoken.Encoding("gpt2", pat_str=oai.r50k_pat_str, mergeable_ranks=ranks,
                                 special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)
    pat = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
    return tiktoken.Encoding(name, pat_str=pat, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                                             "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                                             "<|endofprompt|>": 100276})


def zh_sample(shared):
    lines = []
    for f in ("zh/songci_300.json",):
        for poem in json.load(open(os.path.join(shared, f), encoding="utf-8")):
            lines.append(poem.get("rhythmic", ""))
            lines.extend(poem["paragraphs"])
    return "\n".join(lines)[:20000] + "\n"


def write_ids(path, ids):
    with open(path, "w") as f:
        f.write("\n".join(map(str, ids)) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="/work/shared/data")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    shakes = open(os.path.join(a.shared, "tinyshakespeare/input.txt"), "rb").read()[:100000].decode("utf-8")
    zh = zh_sample(a.shared)
    with open(f"{OUT}/shakespeare_100k.txt", "w", encoding="utf-8", newline="") as f:
        f.write(shakes)
    with open(f"{OUT}/zh_songci.txt", "w", encoding="utf-8", newline="") as f:
        f.write(zh)
    gpt2 = tiktoken_enc("gpt2", os.path.join(a.shared, "tokenizers/gpt2/r50k_base.tiktoken"))
    write_ids(f"{OUT}/shakespeare_100k.gpt2.ids", gpt2.encode_ordinary(shakes))
    write_ids(f"{OUT}/zh_songci.gpt2.ids", gpt2.encode_ordinary(zh))
    cl = tiktoken_enc("cl100k_base", os.path.join(a.shared, "tokenizers/tiktoken/cl100k_base.tiktoken"))
    write_ids(f"{OUT}/shakespeare_100k.cl100k.ids", cl.encode_ordinary(shakes))
    write_ids(f"{OUT}/zh_songci.cl100k.ids", cl.encode_ordinary(zh))
    print("wrote", OUT)


if __name__ == "__main__":
    main()


# ---------------------------------------------------------------------------
# HF tokenizers parity: small tokenizer.json files built from documented
# configurations (LLaMA-3, Qwen2, LLaMA-2, BERT, Unigram) + golden encodings.
# ---------------------------------------------------------------------------
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, decoders, processors, trainers, Regex, AddedToken

LLAMA3_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_PAT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""


def training_text(shared):
    en = open(os.path.join(shared, "tinyshakespeare/input.txt"), encoding="utf-8").read()[:300000]
    zh = zh_sample(shared)
    return [en, zh, "def f(x):\n    return x + 1  # ünïcödé 😀 café"]


def bytelevel_bpe(shared, pat, vocab, specials, norm=None):
    tok = Tokenizer(models.BPE(ignore_merges=True))
    tok.normalizer = norm
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(pat), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(training_text(shared), tr)
    return tok


def make_tokenizers(shared):
    out = {}
    # LLaMA-3 style: tiktoken-like regex, BOS added by a template
    t = bytelevel_bpe(shared, LLAMA3_PAT, 1200, ["<|begin_of_text|>", "<|end_of_text|>"])
    t.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", t.token_to_id("<|begin_of_text|>"))])])
    out["llama3_style"] = t
    # Qwen2 style: NFC, single digits, chat specials, no BOS
    t = bytelevel_bpe(shared, QWEN2_PAT, 1200, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], normalizers.NFC())
    out["qwen2_style"] = t
    # LLaMA-2 style SentencePiece BPE with byte fallback (the layout of HF's LLaMA conversion)
    bytes_toks = ["<0x%02X>" % b for b in range(256)]
    t = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    t.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    t.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                   decoders.Strip(" ", 1, 0)])
    tr = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"] + bytes_toks,
                             show_progress=False, limit_alphabet=200)
    t.train_from_iterator(training_text(shared), tr)
    t.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                     special_tokens=[("<s>", 1)])
    out["llama2_style"] = t
    # Mistral-style: the same model behind a Metaspace pre-tokenizer
    m = Tokenizer.from_str(t.to_str())
    m.normalizer = None
    m.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    m.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(replacement="▁", prepend_scheme="first")])
    out["metaspace_style"] = m
    # BERT uncased (real vocabulary)
    vocab = {}
    for i, line in enumerate(open(os.path.join(shared, "tokenizers/bert-base-uncased/vocab.txt"), encoding="utf-8")):
        vocab[line.rstrip("\n")] = i
    t = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    t.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    t.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    t.decoder = decoders.WordPiece("##")
    t.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    out["bert_uncased"] = t
    # BERT cased, trained small; Chinese chars split, accents kept
    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    t.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tr = trainers.WordPieceTrainer(vocab_size=1500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
                                   show_progress=False)
    t.train_from_iterator(training_text(shared), tr)
    t.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                     special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    t.decoder = decoders.WordPiece()
    out["bert_cased"] = t
    # Other normalizers / pre-tokenizers over a WordPiece model
    w = Tokenizer.from_str(t.to_str())
    w.normalizer = normalizers.Sequence([normalizers.NFKD(), normalizers.StripAccents(), normalizers.Lowercase(),
                                         normalizers.Replace(Regex(r"\s+"), " "), normalizers.Strip()])
    w.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True),
                                               pre_tokenizers.Punctuation()])
    out["wordpiece_misc"] = w
    # Unigram (SentencePiece style) with NFKC and Metaspace
    t = Tokenizer(models.Unigram())
    t.normalizer = normalizers.NFKC()
    t.pre_tokenizer = pre_tokenizers.Metaspace()
    t.decoder = decoders.Metaspace()
    tr = trainers.UnigramTrainer(vocab_size=4000, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>",
                                 show_progress=False)
    t.train_from_iterator(training_text(shared), tr)
    out["unigram"] = t
    return out


def test_texts(shared):
    en = open(os.path.join(shared, "tinyshakespeare/input.txt"), encoding="utf-8").read().split("\n")
    zh = zh_sample(shared).split("\n")
    texts = [s.encode() for s in en[200:240] + zh[100:130]]
    texts += [s.encode() for s in [
        "", " ", "   ", "\n\n\n", "\t \t x", "Hello   world  ", "a  \n  b\r\n\r\nc", "   leading and trailing   ",
        "def encode(self, text: str) -> list[int]:\n    return [ord(c) for c in text]  # 😀🚀👍🏽",
        "中文English混合mixed 123456789 ٣٤٥ 1,234.56", "emoji 👨‍👩‍👧‍👦 family, flags 🇫🇷🇯🇵", "café naïve résumé Ångström",
        "e\u0301 a\u0308\u0304 \u0915\u094d\u0937 combining: ǹ ǹ", "ＡＢＣ①②③ ﬁ ㎏ ™ Ⅻ", "İstanbul ΣΑΣ ß ẞ",
        "I'm you're he'll they've she'd IT'S", "<|endoftext|> inside <s> text [CLS] [MASK]",
        "x" * 3000, "ab" * 700 + " " + "中" * 500, "!!!!!!!!!!......,,,,,;;;;" * 20, " " * 200 + "a",
        "tab\tsep\tvalues\n", "URL: https://example.com/a?b=c&d=e#f", "\u00a0nbsp\u2009thin\u3000ideo",
        "\u200bzero\u200dwidth\ufeffbom", "control \x01\x02\x7f chars", "Привет мир! مرحبا بالعالم",
    ]]
    texts += [b"invalid \xff\xfe bytes", b"cut \xe4\xb8", b"\xc3\x28 bad cont", b"\xed\xa0\x80 surrogate",
              b"ok \xf0\x9f\x98 cut emoji", b"\x80\x80\x80"]
    rng = random.Random(1234)
    pools = [(0x20, 0x7e), (0x20, 0x7e), (0xa0, 0x17f), (0x300, 0x36f), (0x391, 0x3c9), (0x410, 0x44f),
             (0x4e00, 0x9fff), (0x3040, 0x30ff), (0xac00, 0xd7a3), (0x1f600, 0x1f64f), (0x2000, 0x206f)]
    for _ in range(150):
        n = rng.randint(1, 40)
        s = []
        for _ in range(n):
            r = rng.random()
            if r < 0.15:
                s.append(rng.choice(" \n\t  "))
            elif r < 0.2:
                s.append(rng.choice("0123456789"))
            else:
                lo, hi = rng.choice(pools)
                s.append(chr(rng.randint(lo, hi)))
        texts.append("".join(s).encode())
    return texts


def char_to_byte(text, offs):
    b = [0]
    for ch in text:
        b.append(b[-1] + len(ch.encode()))
    return [[b[s], b[e]] for s, e in offs]


def golden_hf(name, tok, texts, path_for_c):
    tok.no_truncation()
    tok.no_padding()
    cases = []
    for raw in texts:
        valid = True
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            valid = False
            text = raw.decode("utf-8", errors="replace")
        enc = tok.encode(text, add_special_tokens=True)
        dec = tok.decode(enc.ids, skip_special_tokens=False)
        cases.append({"hex": raw.hex(), "ids": enc.ids,
                      "offsets": char_to_byte(text, enc.offsets) if valid else None,
                      "decoded_hex": dec.encode().hex()})
    json.dump({"tokenizer": path_for_c, "cases": cases}, open(f"{OUT}/{name}.golden.json", "w"))


def hf_main(shared):
    texts = test_texts(shared)
    toks = make_tokenizers(shared)
    for name, tok in toks.items():
        path = f"{OUT}/{name}.json"
        if name != "bert_uncased":
            tok.save(path)
            golden_hf(name, Tokenizer.from_file(path), texts, path)
        else:
            tok.save(path)
            golden_hf(name, Tokenizer.from_file(path), texts, path)
    # real tokenizers: GPT-2 (HF json == encoder.json + vocab.bpe) and LLaMA-2 (TinyLlama json == llama2.c tokenizer.bin)
    g = Tokenizer.from_file(os.path.join(shared, "tokenizers/gpt2/tokenizer.json"))
    golden_hf("hf_gpt2", g, texts, "data/tokenizers/gpt2")
    l2 = Tokenizer.from_file(os.path.join(shared, "tokenizers/tinyllama/tokenizer.json"))
    golden_hf("hf_llama2", l2, texts, "data/tokenizers/llama2/tokenizer.bin")
    print("wrote HF goldens")


if __name__ == "__main__" and os.environ.get("LMKIT_HF_GOLDEN", "1") == "1":
    hf_main(argparse.ArgumentParser().parse_known_args()[0].__dict__.get("shared", "/work/shared/data"))

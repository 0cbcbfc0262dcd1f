#!/usr/bin/env python3
"""Writes tests/data/bert_tiny_tok/tokenizer.json: a 103-token BERT-style
WordPiece tokenizer (BertNormalizer lowercase, BertPreTokenizer,
[CLS] $A [SEP]) whose ids fit the tiny BERT goldens (vocab_size 103), so
CLI tests can run the whole text pipeline on tests/golden/bert_*tiny models.
Deterministic: the vocabulary is listed here."""
import os
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, decoders

special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
words = ("the a an is was it this that movie film good great bad awful love hate fun boring and but not very "
         "really best worst acting plot story i you we they of to in on for with , . ! ? "
         "nice poor fine terrible excellent amazing dull happy sad funny long short time day "
         "phone food service place book music song game work well so too much more less").split()
pieces = ["##s", "##ed", "##ing", "##ly", "##er", "##est", "##y", "##n", "##t", "##e", "##a", "##o"]
letters = list("bcdefghjklmnopqrstuvwxyz")
vocab = special + words + pieces + letters
vocab = list(dict.fromkeys(vocab))[:103]
assert len(vocab) == 103, len(vocab)
tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100))
tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True)
tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
                                                   special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
tok.decoder = decoders.WordPiece()
for t in special:
    tok.add_special_tokens([t])
out = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "bert_tiny_tok", "tokenizer.json")
tok.save(out)
print(out, tok.encode("This movie was really GOOD!").tokens)

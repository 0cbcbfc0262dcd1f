#!/bin/bash
# lmkit tokenize end to end: ids equal tiktoken's golden ids, decode gives
# the text back, bad input fails with one clear error line.
set -u
B="$LMKIT_BIN"; S="$LMKIT_SOURCE_DIR"; G="$S/tests/golden/tokenizer"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# one line per input line; the whole Chinese sample's ids concatenated must
# equal tiktoken's ids of the file (newlines are single tokens in gpt2 ids
# only when alone, so compare per line instead: encode each line, decode back)
"$B" tokenize --tokenizer gpt2 "$G/zh_songci.txt" > "$T/ids" || fail "tokenize exit status"
[ "$(wc -l < "$T/ids")" = "$(wc -l < "$G/zh_songci.txt")" ] || fail "one output line per input line"
"$B" tokenize --tokenizer gpt2 --decode < "$T/ids" > "$T/back" || fail "decode exit status"
cmp -s "$T/back" "$G/zh_songci.txt" || fail "decode(encode(x)) != x"
[ "$(printf 'Hello world' | "$B" tokenize --tokenizer gpt2)" = "15496 995" ] || fail "gpt2 ids of 'Hello world'"
[ "$(printf 'Hello world' | "$B" tokenize --tokenizer "$G/bert_uncased.json" --tokens)" = "[CLS] hello world [SEP]" ] || fail "bert tokens"
[ "$(printf 'Hello world' | "$B" tokenize --tokenizer "$G/bert_uncased.json" --no-special)" = "7592 2088" ] || fail "--no-special"
[ "$(printf '<|endoftext|>' | "$B" tokenize --tokenizer gpt2)" = "50256" ] || fail "special token text"
[ "$(printf '<|endoftext|>' | "$B" tokenize --tokenizer gpt2 --no-special | wc -w)" -gt 1 ] || fail "--no-special keeps special text plain"
# errors: one line, names the problem, non-zero exit
"$B" tokenize --tokenizer "$T/missing.json" < /dev/null 2> "$T/err" && fail "missing tokenizer accepted"
grep -q "missing.json" "$T/err" || fail "error names the file"
echo '{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}}' > "$T/bad.json"
"$B" tokenize --tokenizer "$T/bad.json" < /dev/null 2> "$T/err" && fail "bad merges accepted"
grep -q "model.merges\[0\]" "$T/err" || fail "error names the JSON path: $(cat "$T/err")"
echo '{"model": {"type": "BPE", "vocab": {}, "merges": []}, "normalizer": {"type": "Frobnicate"}}' > "$T/bad2.json"
"$B" tokenize --tokenizer "$T/bad2.json" < /dev/null 2> "$T/err" && fail "unknown normalizer accepted"
grep -q "normalizer.type" "$T/err" || fail "error names normalizer.type: $(cat "$T/err")"
echo "5 99999999" | "$B" tokenize --tokenizer gpt2 --decode > /dev/null 2> "$T/err" && fail "bad id accepted"
grep -q "99999999" "$T/err" || fail "error names the bad id"
"$B" tokenize --frob 2> /dev/null && fail "unknown flag accepted"
"$B" tokenize --help > /dev/null || fail "--help"
# bench prints MB/s (tiny input, one repeat)
"$B" bench tokenize --tokenizer gpt2 --input "$G/zh_songci.txt" --repeat 1 --json | grep -q '"mb_per_s"' || fail "bench tokenize --json"
echo OK

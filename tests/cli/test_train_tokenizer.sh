#!/bin/bash
# lmkit train-tokenizer: trains, writes a tokenizer.json lmkit loads back, rejects bad input.
. "$(dirname "$0")/lib.sh"
CORPUS="$SRC/data/tinyshakespeare/input.txt"
expect_ok "train bpe" "$LMKIT" train-tokenizer --type bpe --vocab-size 600 --special "<|endoftext|>" \
    --out "$TMP/bpe.json" --quiet "$CORPUS"
expect_ok "tokenize with it" "$LMKIT" tokenize --tokenizer "$TMP/bpe.json" --tokens "$CORPUS"
if [ "$(wc -l <"$TMP/out")" -gt 1000 ]; then ok; else bad "trained bpe tokenized too few lines"; fi
expect_ok "train wordpiece" "$LMKIT" train-tokenizer --type wordpiece --lowercase --vocab-size 800 \
    --special "[UNK]" "[CLS]" "[SEP]" --out "$TMP/wp.json" --quiet "$CORPUS"
echo "To be, or not to be" >"$TMP/line.txt"
expect_ok "tokenize wordpiece" "$LMKIT" tokenize --tokenizer "$TMP/wp.json" --tokens "$TMP/line.txt"
if grep -q "^\[CLS\] to be , or not to be \[SEP\]$" "$TMP/out"; then ok; else bad "wordpiece tokens: $(cat "$TMP/out")"; fi
expect_error "no [UNK]" "WordPiece needs \[UNK\]" "$LMKIT" train-tokenizer --type wordpiece --vocab-size 800 \
    --out "$TMP/x.json" "$CORPUS"
expect_error "bad type" "must be bpe or wordpiece" "$LMKIT" train-tokenizer --type spm --vocab-size 800 \
    --out "$TMP/x.json" "$CORPUS"
expect_error "no files" "required" "$LMKIT" train-tokenizer --type bpe --vocab-size 800 --out "$TMP/x.json"
expect_error "missing file" "nope" "$LMKIT" train-tokenizer --type bpe --vocab-size 800 --out "$TMP/x.json" "$TMP/nope"
finish

#!/bin/bash
# A GGUF's own tokenizer (tokenizer.ggml.*): generate, eval and tokenize use
# it with no --tokenizer, and it gives the same ids and text as the
# tokenizer.bin it was written from; a GGUF without one is a clear error.
source "$(dirname "$0")/lib.sh"
M="$SRC/data/models/stories260K"

expect_ok "convert with vocab" "$LMKIT" convert "$M/stories260K.bin" "$TMP/s.gguf" --vocab "$M/tok512.bin"
expect_ok "convert without vocab" "$LMKIT" convert "$M/stories260K.bin" "$TMP/bare.gguf"

text="Once upon a time, there was a little girl named Lily. She loved to play outside in the park."
printf '%s\n' "$text" >"$TMP/text.txt"
expect_ok "tokenize with the GGUF" "$LMKIT" tokenize --tokenizer "$TMP/s.gguf" --ids "$TMP/text.txt"
cp "$TMP/out" "$TMP/ids_gguf"
expect_ok "tokenize with tokenizer.bin" "$LMKIT" tokenize --tokenizer "$M/tok512.bin" --ids "$TMP/text.txt"
if cmp -s "$TMP/out" "$TMP/ids_gguf" && [ -s "$TMP/out" ]; then ok; else bad "GGUF ids differ: $(cat "$TMP/ids_gguf") vs $(cat "$TMP/out")"; fi

# Greedy generation: the embedded tokenizer and the explicit one print the same.
expect_ok "generate, embedded tokenizer" "$LMKIT" generate --model "$TMP/s.gguf" --prompt "Once upon a time" \
    --max-tokens 40 --temperature 0
cp "$TMP/out" "$TMP/gen_gguf"
expect_ok "generate, --tokenizer" "$LMKIT" generate --model "$TMP/s.gguf" --tokenizer "$M/tok512.bin" \
    --prompt "Once upon a time" --max-tokens 40 --temperature 0
if cmp -s "$TMP/out" "$TMP/gen_gguf" && grep -q "Once upon a time" "$TMP/out"; then ok; else
    bad "generated text differs: '$(cat "$TMP/gen_gguf")' vs '$(cat "$TMP/out")'"; fi

expect_ok "eval with the embedded tokenizer" "$LMKIT" eval --model "$TMP/s.gguf" --perplexity "$TMP/text.txt" --json
if grep -q '"perplexity"' "$TMP/out"; then ok; else bad "eval printed no perplexity: $(cat "$TMP/out")"; fi

# No tokenizer inside and none beside it.
mkdir -p "$TMP/alone" && cp "$TMP/bare.gguf" "$TMP/alone/m.gguf"
expect_error "GGUF without a tokenizer" "no tokenizer found" "$LMKIT" generate --model "$TMP/alone/m.gguf" --prompt hi
expect_error "tokenize with a tokenizer-less GGUF" "carries no tokenizer" "$LMKIT" tokenize --tokenizer "$TMP/alone/m.gguf" \
    --ids "$TMP/text.txt"

finish

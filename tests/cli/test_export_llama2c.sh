#!/bin/bash
# lmkit convert IN OUT.bin: a llama2.c checkpoint and its tokenizer.bin
# (test_llama2c_export checks the bytes and the logits in the library).
. "$LMKIT_SOURCE_DIR/tests/cli/lib.sh"
M="$SRC/data/models/stories260K/stories260K.bin"; V="$SRC/data/models/stories260K/tok512.bin"; G="$SRC/tests/golden"

# stories260K -> GGUF -> .bin: the tokenizer comes back as tok512.bin, the
# checkpoint has the original's size and header, and generates as it does.
expect_ok "convert to gguf" "$LMKIT" convert "$M" "$TMP/s.gguf" --vocab "$V"
expect_ok "convert gguf to bin" "$LMKIT" convert "$TMP/s.gguf" "$TMP/s.bin"
if cmp -s "$TMP/s.tokenizer.bin" "$V"; then ok; else bad "s.tokenizer.bin differs from tok512.bin"; fi
if cmp -s -n 28 "$TMP/s.bin" "$M" && [ "$(stat -c %s "$TMP/s.bin")" = "$(stat -c %s "$M")" ]; then ok; else bad "s.bin header or size differs"; fi
gen() { "$LMKIT" generate --model "$1" --tokenizer "$2" --prompt "Once upon a time" --max-tokens 40 --temperature 0 2>/dev/null; }
a=$(gen "$M" "$V"); b=$(gen "$TMP/s.bin" "$TMP/s.tokenizer.bin")
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else bad "greedy text differs: '$a' vs '$b'"; fi
# generate finds s.tokenizer.bin beside s.bin by itself
c=$("$LMKIT" generate --model "$TMP/s.bin" --prompt "Once upon a time" --max-tokens 40 --temperature 0 2>/dev/null)
if [ "$a" = "$c" ]; then ok; else bad "without --tokenizer: '$c'"; fi

# An HF directory: written (own classifier: negative vocab_size), with a
# note that its tokenizer.json is not converted, and one for rms_eps.
expect_ok "convert HF dir to bin" "$LMKIT" convert "$G/llama_tiny/model" "$TMP/hf.bin"
if grep -q "no tokenizer.bin written" "$TMP/err" && grep -q "rms_norm_eps" "$TMP/err" && [ ! -e "$TMP/hf.tokenizer.bin" ]; then ok
else bad "HF notes: $(cat "$TMP/err")"; fi
vs=$(od -An -t d4 -j 20 -N 4 "$TMP/hf.bin" | tr -d ' ')
if [ "$vs" = "-97" ]; then ok; else bad "HF header vocab_size $vs, want -97"; fi

# An HF directory whose tokenizer.json is SentencePiece-style: its
# tokenizer.bin comes back as tok512.bin (which it was made from), and the
# .bin generates the directory's text.
S="$SRC/data/models/shakespeare_llama_tiny"
expect_ok "convert HF dir with tokenizer.json to bin" "$LMKIT" convert "$S" "$TMP/sh.bin"
if cmp -s "$TMP/sh.tokenizer.bin" "$V"; then ok; else bad "sh.tokenizer.bin differs from tok512.bin"; fi
a=$("$LMKIT" generate --model "$S" --prompt "ROMEO:" --max-tokens 30 --temperature 0 2>/dev/null)
b=$("$LMKIT" generate --model "$TMP/sh.bin" --prompt "ROMEO:" --max-tokens 30 --temperature 0 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ]; then ok; else bad "HF dir vs .bin greedy text: '$a' vs '$b'"; fi

# The tokenizer beside a .bin goes along into the next conversion (GGUF,
# HF), as generate finds it there.
expect_ok "bin with its tokenizer to gguf" "$LMKIT" convert "$TMP/sh.bin" "$TMP/sh2.gguf"
c=$("$LMKIT" generate --model "$TMP/sh2.gguf" --prompt "ROMEO:" --max-tokens 30 --temperature 0 2>/dev/null)
if [ "$a" = "$c" ]; then ok; else bad "sh2.gguf lost the tokenizer: '$c'"; fi
expect_ok "bin with its tokenizer to HF" "$LMKIT" convert "$TMP/sh.bin" "$TMP/sh_hf"
[ -f "$TMP/sh_hf/tokenizer.json" ] && ok || bad "sh_hf has no tokenizer.json"
# a .bin replaced by one without a tokenizer loses the old tokenizer.bin
cp "$TMP/sh.bin" "$TMP/st.bin"; cp "$TMP/sh.tokenizer.bin" "$TMP/st.tokenizer.bin"
expect_ok "replace a .bin with a tokenizer-less one" "$LMKIT" convert "$G/llama_tiny/model" "$TMP/st.bin"
[ ! -e "$TMP/st.tokenizer.bin" ] && grep -q "removed" "$TMP/err" && ok || bad "stale st.tokenizer.bin kept"
# --vocab must fit the model; a SentencePiece-style tokenizer.json does
expect_error "--vocab too long for .bin" "exactly the model's 97 pieces" "$LMKIT" convert "$G/llama_tiny/model" "$TMP/v1.bin" --vocab "$V"
expect_error "--vocab too long for HF" "more than the model's vocabulary of 97" "$LMKIT" convert "$G/llama_tiny/model" "$TMP/v1_hf" --vocab "$V"
expect_ok "--vocab tokenizer.json for .bin" "$LMKIT" convert "$S" "$TMP/vj.bin" --vocab "$S/tokenizer.json"
if cmp -s "$TMP/vj.tokenizer.bin" "$V"; then ok; else bad "vj.tokenizer.bin differs from tok512.bin"; fi
# output paths: a directory named .bin is refused up front; missing parents
# are made; extensions in any case
mkdir "$TMP/dd.bin"
expect_error "a directory named .bin" "is a directory" "$LMKIT" convert "$S" "$TMP/dd.bin"
expect_ok "missing parents" "$LMKIT" convert "$S" "$TMP/p/q/out.bin"
[ -f "$TMP/p/q/out.bin" ] && [ -f "$TMP/p/q/out.tokenizer.bin" ] && ok || bad "missing parents: nothing written"
expect_ok "upper-case .BIN" "$LMKIT" convert "$S" "$TMP/UP.BIN"
[ -f "$TMP/UP.BIN" ] && ok || bad "UP.BIN was not written as a file"
d=$("$LMKIT" generate --model "$TMP/UP.BIN" --prompt "ROMEO:" --max-tokens 30 --temperature 0 2>/dev/null)
if [ "$a" = "$d" ]; then ok; else bad "UP.BIN: '$d'"; fi

# What llama2.c cannot run: one error line, nothing left behind.
expect_error "qwen2 refused" "q/k/v biases" "$LMKIT" convert "$G/qwen2_tiny/model" "$TMP/q.bin"
expect_error "mistral refused" "sliding-window" "$LMKIT" convert "$G/mistral_tiny/model" "$TMP/w.bin"
expect_error "--type with .bin" "always f32" "$LMKIT" convert --type q8_0 "$M" "$TMP/t.bin"
expect_error "quantize to .bin" "only .gguf" "$LMKIT" quantize --type q8_0 "$M" "$TMP/u.bin"
left=$(ls "$TMP" | grep -E '^(q|w|t|u)\.' || true)
if [ -z "$left" ]; then ok; else bad "files left after refusals: $left"; fi
finish

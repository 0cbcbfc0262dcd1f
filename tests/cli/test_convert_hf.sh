#!/bin/bash
# lmkit convert IN OUTDIR: a Hugging Face directory (the library test,
# test_llama_save_hf, checks tensors, config and logits); here the command:
# what it writes, and the refusals, which write nothing.
. "$(dirname "$0")/lib.sh"
M="$SRC/data/models/stories260K/stories260K.bin"; V="$SRC/data/models/stories260K/tok512.bin"

expect_ok "convert .bin -> HF dir" "$LMKIT" convert "$M" "$TMP/hf" --vocab "$V"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -s "$TMP/hf/$f" ] && ok || bad "missing $f"
done
grep -q '"LlamaForCausalLM"' "$TMP/hf/config.json" && ok || bad "config.json architectures"
# the written directory is a model lmkit runs, with its own tokenizer
expect_ok "generate from HF dir" "$LMKIT" generate --model "$TMP/hf" --prompt "Once upon a time" --temperature 0 --max-tokens 8
want=$("$LMKIT" generate --model "$M" --tokenizer "$V" --prompt "Once upon a time" --temperature 0 --max-tokens 8 2>/dev/null)
[ "$(cat "$TMP/out")" = "$want" ] && ok || bad "HF dir generates '$(cat "$TMP/out")', .bin '$want'"
# HF -> GGUF -> HF keeps the tokenizer (GGUF's SentencePiece vocabulary rebuilt as tokenizer.json)
expect_ok "convert HF dir -> gguf" "$LMKIT" convert "$TMP/hf" "$TMP/m.gguf"
expect_ok "convert gguf -> HF dir" "$LMKIT" convert "$TMP/m.gguf" "$TMP/hf2/" --type bf16
grep -q '"bfloat16"' "$TMP/hf2/config.json" && ok || bad "--type bf16 torch_dtype"
printf 'Once upon a time, Lily saw a cat.\n  Two spaces \xc3\xa9\n' > "$TMP/text"
a=$("$LMKIT" tokenize --tokenizer "$TMP/hf2" "$TMP/text") || bad "tokenize with the written tokenizer.json"
b=$("$LMKIT" tokenize --tokenizer "$V" "$TMP/text")
[ -n "$a" ] && [ "$a" = "$b" ] && ok || bad "tokenizer after HF -> GGUF -> HF: '$a' vs '$b'"
# HF -> HF copies the tokenizer files
expect_ok "convert HF dir -> HF dir" "$LMKIT" convert "$TMP/hf" "$TMP/hf3"
cmp -s "$TMP/hf/tokenizer.json" "$TMP/hf3/tokenizer.json" && cmp -s "$TMP/hf/tokenizer_config.json" "$TMP/hf3/tokenizer_config.json" &&
  ok || bad "HF -> HF tokenizer files not copied"
# an empty directory is fine
mkdir "$TMP/empty"
expect_ok "convert into an empty dir" "$LMKIT" convert "$M" "$TMP/empty"

# missing parent directories are made, as save_pretrained does
expect_ok "convert into a new nested dir" "$LMKIT" convert "$M" "$TMP/a/b/c"
[ -f "$TMP/a/b/c/config.json" ] && ok || bad "nested target has no config.json"

# refusals: one line, non-zero exit, nothing written
before=$(ls -la "$TMP/hf" | md5sum)
expect_error "non-empty target" "exists and is not empty" "$LMKIT" convert "$M" "$TMP/hf"
[ "$(ls -la "$TMP/hf" | md5sum)" = "$before" ] && ok || bad "non-empty target was changed"
ls -d "$TMP"/hf.partial.* >/dev/null 2>&1 && bad "staging directory left behind" || ok
touch "$TMP/file"
expect_error "target is a file" "not a directory" "$LMKIT" convert "$M" "$TMP/file"
expect_error "quantized type for HF" "f32, f16 or bf16" "$LMKIT" convert --type q8_0 "$M" "$TMP/q"
[ -e "$TMP/q" ] && bad "refused --type wrote $TMP/q" || ok
expect_error "quantize to a dir" "only .gguf output" "$LMKIT" quantize --type q8_0 "$M" "$TMP/qdir"
expect_error "empty output path" "output path is empty" "$LMKIT" convert "$M" ""
finish

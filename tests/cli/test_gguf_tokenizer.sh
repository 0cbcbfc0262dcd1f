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

# An HF directory converted to GGUF carries its tokenizer.json (as
# tokenizer.ggml.*, padded to the model's 97 rows) and chat template.
hf="$TMP/hf" && mkdir -p "$hf" && cp "$SRC/tests/golden/llama_tiny/model/"*.json "$SRC/tests/golden/llama_tiny/model/model.safetensors" "$hf/"
{
    # a byte-level BPE of letters, digits, a little punctuation and "Ġ" (the space)
    printf '{"version":"1.0","added_tokens":[{"id":74,"content":"<|endoftext|>","single_word":false,"lstrip":false,'
    printf '"rstrip":false,"normalized":false,"special":true}],"normalizer":null,'
    printf '"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},'
    printf '"post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},'
    printf '"model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,'
    printf '"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,"vocab":{'
    id=0
    for c in a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N O P Q R S T U V W X Y Z \
        0 1 2 3 4 5 6 7 8 9 . , '!' '?' "'" 'Ġ' 'Ġt' he 'Ġa' 'Ġthe' in; do
        printf '"%s":%d,' "$c" $id; id=$((id + 1))
    done
    printf '"ed":%d},"merges":["Ġ t","h e","Ġ a","Ġt he","i n","e d"]}}' $id
} >"$hf/tokenizer.json"
printf '{"bos_token":null,"eos_token":"<|endoftext|>","chat_template":"{%% for m in messages %%}<{{ m.role }}>{{ m.content }}{%% endfor %%}<assistant>"}' \
    >"$hf/tokenizer_config.json"
expect_ok "convert an HF directory" "$LMKIT" convert "$hf" "$TMP/hf.gguf"
printf 'the cat sat in the hat, and he nodded!\n' >"$TMP/hf.txt"
expect_ok "tokenize with the HF tokenizer.json" "$LMKIT" tokenize --tokenizer "$hf/tokenizer.json" --ids "$TMP/hf.txt"
cp "$TMP/out" "$TMP/ids_hf"
expect_ok "tokenize with the converted GGUF" "$LMKIT" tokenize --tokenizer "$TMP/hf.gguf" --ids "$TMP/hf.txt"
if cmp -s "$TMP/out" "$TMP/ids_hf" && grep -q ' 71 ' "$TMP/out"; then ok; else
    bad "converted GGUF ids differ: $(cat "$TMP/out") vs $(cat "$TMP/ids_hf")"; fi
expect_ok "generate from the converted GGUF alone" "$LMKIT" generate --model "$TMP/hf.gguf" --prompt "the cat" --max-tokens 4 --temperature 0
printf 'hi\n' | "$LMKIT" chat --model "$TMP/hf.gguf" --max-tokens 2 >"$TMP/out" 2>"$TMP/err"
if [ $? -eq 0 ] && ! grep -q "no chat template" "$TMP/err"; then ok; else bad "chat ignored the GGUF's template: $(cat "$TMP/err")"; fi

finish

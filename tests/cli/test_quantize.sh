#!/bin/bash
# lmkit quantize / convert / init / bench generate end to end on stories260K.
set -u
B="$LMKIT_BIN"; S="$LMKIT_SOURCE_DIR"; T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
M="$S/data/models/stories260K/stories260K.bin"; V="$S/data/models/stories260K/tok512.bin"
for t in q8_0 q4_0 q4_k q6_k f16 bf16; do
  "$B" quantize --type $t "$M" "$T/m_$t.gguf" --vocab "$V" >/dev/null || fail "quantize $t"
  out=$("$B" bench generate --model "$T/m_$t.gguf" --prompt-tokens 20 --gen-tokens 8 --parallel 2) || fail "bench $t"
  echo "$out" | grep -q "decode:  2 x 8 tokens" || fail "bench output $t: $out"
done
# The summary says what was stored: on this shape no row length is a
# multiple of 256, so q4_k writes no q4_k tensor at all.
out=$("$B" quantize --type q4_k "$M" "$T/k.gguf" 2>&1) || fail "quantize q4_k"
echo "$out" | grep -q "q4_k requested: 0 matrices q4_k, 31 q8_0 fallback (row length not a multiple of 256), 5 f16 fallback (row length not a multiple of 32), 11 f32 vectors kept" ||
  fail "q4_k summary: $out"
out=$("$B" quantize --type q8_0 "$M" "$T/q.gguf" 2>&1) || fail "quantize q8_0"
echo "$out" | grep -q "q8_0 requested: 31 matrices q8_0, 5 f16 fallback" || fail "q8_0 summary: $out"
"$B" convert "$M" "$T/m.gguf" >/dev/null || fail convert
"$B" convert "$T/m.gguf" "$T/m2.gguf" >/dev/null || fail "convert gguf->gguf"
cmp -s "$T/m.gguf" "$T/m2.gguf" || fail "gguf -> gguf conversion is not byte-identical"
"$B" init --arch llama --preset stories260K-shape --type q8_0 --out "$T/r.gguf" >/dev/null || fail init
"$B" bench generate --model "$T/r.gguf" --prompt-tokens 4 --gen-tokens 2 >/dev/null || fail "bench init model"
out=$("$B" bench generate --model "$T/r.gguf" --prompt-tokens 4 --gen-tokens 3 --parallel 2 --json) || fail "bench --json"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d["decode_tok_s"] > 0 and d["prefill_tok_s"] > 0
    and d["parallel"] == 2 and d["gen_tokens"] == 3 and d["kv_cache"] == "f16"))' || fail "bench --json output: $out"
# eval --perplexity on a LLaMA model: the model scores its own stories, so
# the perplexity is a few (test_llama_ppl checks the figure in the library).
out=$("$B" eval --model "$M" --tokenizer "$V" --perplexity "$S/tests/golden/llama2c_stories260K/eval_stories.txt" --json) || fail "eval llama"
echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (1.5 < d["perplexity"] < 8 and d["tokens"] > 3000))' ||
    fail "eval llama output: $out"
# A Hugging Face directory converts to GGUF and quantizes from there.
H="$S/tests/golden/llama_tiny/model"
"$B" convert "$H" "$T/hf.gguf" >/dev/null || fail "convert HF dir"
"$B" quantize --type q8_0 "$T/hf.gguf" "$T/hf_q8.gguf" >/dev/null || fail "quantize converted HF model"
"$B" bench generate --model "$T/hf_q8.gguf" --prompt-tokens 8 --gen-tokens 4 >/dev/null || fail "bench HF-converted model"
# Errors: one line, names the culprit, non-zero exit.
err=$("$B" quantize --type q5_1 "$M" "$T/x.gguf" 2>&1) && fail "bad type accepted"
echo "$err" | grep -q "^lmkit: error: --type 'q5_1'" || fail "bad type message: $err"
head -c 3000 "$T/m.gguf" > "$T/trunc.gguf"
err=$("$B" convert "$T/trunc.gguf" "$T/y.gguf" 2>&1) && fail "truncated gguf accepted"
echo "$err" | grep -q "^lmkit: error: .*trunc.gguf: gguf:" || fail "truncated message: $err"
err=$("$B" bench generate --model "$M" --bogus 2>&1) && fail "unknown flag accepted"
echo "$err" | grep -q "bench generate: unknown option '--bogus'" || fail "unknown flag message: $err"
echo ok

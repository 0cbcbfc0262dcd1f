#!/bin/bash
# Robustness of the inference-side commands (generate, eval, chat,
# tokenize, prepare, init/convert/quantize): flags are checked before any
# work with messages that name them, text the model's vocabulary cannot
# encode is refused instead of silently shortened, and status lines go to
# stderr while stdout carries only the product.
. "$LMKIT_SOURCE_DIR/tests/cli/lib.sh"
M="$SRC/data/models/stories260K/stories260K.bin"
V="$SRC/data/models/stories260K/tok512.bin"

# A character-level GPT-2 (vocabulary: the characters of 60 kB of
# Shakespeare), trained 10 steps: enough to run, fast to build.
head -c 60000 "$SRC/data/tinyshakespeare/input.txt" >"$TMP/corpus.txt"
"$LMKIT" prepare "$TMP/corpus.txt" --tokenizer chars --out "$TMP/chars" 2>/dev/null || bad "prepare chars fixture"
"$LMKIT" train --data "$TMP/chars" --n-layer 2 --n-head 2 --n-embd 32 --seq-len 64 --batch 4 --steps 10 --threads 2 \
    --out "$TMP/run" >/dev/null 2>&1 || bad "train fixture"
R="$TMP/run"

# --- flag parsing: a missing value, out-of-range numbers, exclusive modes
expect_error "init --preset without value" "init: --preset needs a value" "$LMKIT" init --preset
expect_error "quantize --type without value" "quantize: --type needs a value" "$LMKIT" quantize --type
expect_error "convert --vocab without value" "convert: --vocab needs a value" "$LMKIT" convert --vocab
expect_error "tokenize --tokenizer without value" "tokenize: --tokenizer needs a value" "$LMKIT" tokenize --tokenizer
expect_error "value missing before the next flag" "--temperature needs a value" "$LMKIT" generate --model "$R" --prompt hi --temperature --top-k 3
expect_error "int out of range" "--max-tokens: 2147483648 is out of range (-2147483648..2147483647)" \
    "$LMKIT" generate --model "$R" --prompt hi --max-tokens 2147483648
expect_error "not an integer" "--max-tokens: '12x' is not an integer" "$LMKIT" generate --model "$R" --prompt hi --max-tokens 12x
expect_error "float out of range" "--temperature: 1e40 is out of range" "$LMKIT" generate --model "$R" --prompt hi --temperature 1e40
# inf/nan parse (each command range-checks its values) and are refused there.
expect_error "nan" "generate: --temperature nan must be finite and >= 0" "$LMKIT" generate --model "$R" --prompt hi --temperature nan
expect_error "inf" "generate: --temperature inf must be finite and >= 0" "$LMKIT" generate --model "$R" --prompt hi --temperature inf
expect_error "tokenize --ids --decode" "mutually exclusive" "$LMKIT" tokenize --tokenizer gpt2 --ids --decode

# --- sampling flags are checked before the model loads or anything is
# printed, and the message names the flag as typed
gen_bad() { # FLAGS... NEEDLE is the last argument
    local needle="${@: -1}"
    expect_error "generate ${*:1:$#-1}" "$needle" "$LMKIT" generate --model "$R" --prompt "ROMEO:" --max-tokens 4 "${@:1:$#-1}"
    [ -s "$TMP/out" ] && bad "generate ${*:1:$#-1} printed to stdout before failing: $(cat "$TMP/out")" || ok
}
gen_bad --top-p 0 "generate: --top-p 0 must be in (0, 1]"
gen_bad --top-p 1.5 "--top-p 1.5 must be in (0, 1]"
gen_bad --top-k -1 "--top-k -1 must be >= 0"
gen_bad --temperature -1 "--temperature -1 must be finite and >= 0"
gen_bad --min-p 2 "--min-p 2 must be in \[0, 1)"
gen_bad --repeat-penalty 0 "--repeat-penalty 0 must be > 0"
# chat refuses before reading a line (stdin would block a terminal) and
# prints nothing on stdout
printf 'hi\n' | expect_error "chat --top-p 0" "chat: --top-p 0 must be in (0, 1]" "$LMKIT" chat --model "$R" --template chatml --top-p 0
[ -s "$TMP/out" ] && bad "chat --top-p 0 wrote to stdout" || ok

# --- eval scores the whole file: a NUL byte no longer ends the text
# (bits_per_byte divided by bytes never scored). stories260K has byte
# fallback, so the NUL is one more token.
printf 'hello world\0 and more text after the nul byte here' >"$TMP/nul.txt"
printf 'hello world and more text after the nul byte here' >"$TMP/nonul.txt"
ev() { "$LMKIT" eval --model "$M" --tokenizer "$V" --perplexity "$1" --json; }
a=$(ev "$TMP/nul.txt") && b=$(ev "$TMP/nonul.txt") || bad "eval of a file with NUL failed"
python3 - "$a" "$b" <<'P' && ok || bad "eval with NUL: $a vs $b"
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.exit(not (a["bytes"] == 50 and a["tokens"] == b["tokens"] + 1))
P

# --- a character the vocabulary lacks is an error naming it and where,
# not silently dropped (the chars model knows only Shakespeare's characters)
expect_error "eval: NUL unknown to a chars vocabulary" "eval: $TMP/nul.txt: line 1, column 12: control character U+0000 is not in the model's vocabulary" \
    "$LMKIT" eval --model "$R" --perplexity "$TMP/nul.txt"
printf 'ROMEO:\nWhat \xff is this' >"$TMP/badutf.txt"
expect_error "eval: invalid UTF-8" "line 2, column 6: invalid UTF-8 byte 0xFF" "$LMKIT" eval --model "$R" --perplexity "$TMP/badutf.txt" --json
[ -s "$TMP/out" ] && bad "eval printed a result for text it could not encode" || ok
# Any tokenizer reads invalid UTF-8 as U+FFFD: the bytes scored would not
# be the file's, so a byte-fallback vocabulary refuses it too.
expect_error "eval: invalid UTF-8, byte fallback" "eval: $TMP/badutf.txt: line 2, column 6: invalid UTF-8 byte 0xFF" \
    "$LMKIT" eval --model "$M" --tokenizer "$V" --perplexity "$TMP/badutf.txt"
expect_error "generate: unknown character" "generate: --prompt: line 1, column 5: character 'Ω' (U+03A9) is not in the model's vocabulary" \
    "$LMKIT" generate --model "$R" --prompt "ROMEΩO:" --max-tokens 4
[ -s "$TMP/out" ] && bad "generate echoed a prompt it could not encode" || ok
expect_error "generate: only unknown characters" "column 1: character 'Ω'" "$LMKIT" generate --model "$R" --prompt "Ωé" --max-tokens 4
# Byte-level and byte-fallback vocabularies encode anything: no error.
expect_ok "generate: byte fallback" "$LMKIT" generate --model "$M" --tokenizer "$V" --prompt "ROMEΩO:" --max-tokens 2
expect_ok "generate: known characters" "$LMKIT" generate --model "$R" --prompt "ROMEO:" --max-tokens 2

# --- prepare: which side of the split a fraction starves, the file with
# invalid UTF-8 for the chars tokenizer, and the fraction as given
head -c 20000 "$TMP/corpus.txt" >"$TMP/c20k.txt"
expect_error "prepare: tiny --val-fraction" "--val-fraction 1e-09 leaves 1 of the 20000 tokens for validation; at least 2 are needed (a fraction of at least 0.0001)" \
    "$LMKIT" prepare "$TMP/c20k.txt" --tokenizer chars --val-fraction 1e-9 --out "$TMP/p1"
expect_error "prepare: huge --val-fraction" "leaves 1 of the 20000 tokens for training" \
    "$LMKIT" prepare "$TMP/c20k.txt" --tokenizer chars --val-fraction 0.99995 --out "$TMP/p1"
[ -e "$TMP/p1" ] && bad "a failed prepare left $TMP/p1 behind" || ok
printf 'ab\ncd\xffx' >"$TMP/bad.txt"
expect_error "prepare chars: invalid UTF-8 names the file" "prepare: $TMP/bad.txt: line 2: invalid UTF-8 byte 0xFF at byte offset 5" \
    "$LMKIT" prepare "$TMP/c20k.txt" "$TMP/bad.txt" --tokenizer chars --out "$TMP/p1"
expect_ok "prepare --val-fraction 0.1" "$LMKIT" prepare "$TMP/c20k.txt" --tokenizer chars --val-fraction 0.1 --out "$TMP/p2"
grep -q '"val_fraction": 0.1,' "$TMP/p2/meta.json" && ok || bad "meta.json val_fraction: $(grep val_fraction "$TMP/p2/meta.json")"
grep -q '"val_tokens": 2000,' "$TMP/p2/meta.json" && ok || bad "0.1 of 20000 tokens should be 2000: $(grep val_tokens "$TMP/p2/meta.json")"

# --- status lines go to stderr; stdout is only for a command's product
quiet_stdout() { # DESCRIPTION NEEDLE CMD...: exit 0, nothing on stdout, NEEDLE on stderr
    local what="$1" needle="$2"; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err" || { bad "$what failed: $(cat "$TMP/err")"; return; }
    [ -s "$TMP/out" ] && { bad "$what wrote to stdout: $(cat "$TMP/out")"; return; }
    grep -q "$needle" "$TMP/err" && ok || bad "$what: no '$needle' on stderr: $(cat "$TMP/err")"
}
quiet_stdout "init" "^wrote $TMP/i.gguf" "$LMKIT" init --preset stories260K-shape --type f32 --out "$TMP/i.gguf"
quiet_stdout "convert" "^wrote $TMP/c.gguf (types kept" "$LMKIT" convert "$M" "$TMP/c.gguf"
quiet_stdout "quantize" "^wrote $TMP/q.gguf (q8_0 requested" "$LMKIT" quantize --type q8_0 "$M" "$TMP/q.gguf"
quiet_stdout "prepare" "^prepared $TMP/p3" "$LMKIT" prepare "$TMP/c20k.txt" --tokenizer chars --out "$TMP/p3"

# --logprobs N: one JSON line per generated token on stderr; greedy picks
# the most likely token, so its log-probability is the first of the top N,
# and the top N come sorted, each <= 0, their probabilities summing <= 1.
"$LMKIT" generate --model "$SRC/data/models/stories260K/stories260K.bin" --tokenizer "$SRC/data/models/stories260K/tok512.bin" \
    --prompt "Once upon a time" --max-tokens 6 --temperature 0 --logprobs 3 >"$TMP/lp.out" 2>"$TMP/lp.err" && ok || bad "generate --logprobs failed: $(cat "$TMP/lp.err")"
python3 - "$TMP/lp.err" <<'PY' && ok || bad "logprobs lines wrong: $(head -3 "$TMP/lp.err")"
import json, math, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(rows) == 6, len(rows)
for r in rows:
    top = r["top"]
    assert len(top) == 3 and r["id"] == top[0]["id"] and abs(r["logprob"] - top[0]["logprob"]) < 1e-6, r
    assert all(a["logprob"] >= b["logprob"] for a, b in zip(top, top[1:])) and top[0]["logprob"] <= 0, r
    assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-5, r
PY
expect_error "--logprobs out of range" "--logprobs 21 must be in \\[0, 20\\]" "$LMKIT" generate --model "$SRC/data/models/stories260K/stories260K.bin" \
    --tokenizer "$SRC/data/models/stories260K/tok512.bin" --prompt hi --logprobs 21

finish

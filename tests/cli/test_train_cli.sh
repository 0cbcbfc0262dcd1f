#!/usr/bin/env bash
# End to end: prepare -> train -> resume (bit-identical) -> eval -> generate,
# and the bad inputs of each step.
. "$(dirname "$0")/lib.sh"

head -c 60000 "$SRC/data/tinyshakespeare/input.txt" > "$TMP/corpus.txt"
expect_ok "prepare bytes" "$LMKIT" prepare "$TMP/corpus.txt" --tokenizer bytes --val-fraction 0.1 --out "$TMP/data"
for f in train.bin val.bin meta.json tokenizer.json; do
    [ -s "$TMP/data/$f" ] && ok || bad "prepare did not write $f"
done

# Character-level vocabulary: one id per distinct character, in code-point order.
expect_ok "prepare chars" "$LMKIT" prepare "$TMP/corpus.txt" --tokenizer chars --out "$TMP/chars"
distinct=$(python3 -c 'import sys; print(len(set(open(sys.argv[1], encoding="utf-8").read())))' "$TMP/corpus.txt")
grep -q "\"vocab_size\": $distinct," "$TMP/chars/meta.json" && ok || bad "chars vocab should be $distinct: $(grep vocab "$TMP/chars/meta.json")"
printf 'ROMEO:\n' | "$LMKIT" tokenize --tokenizer "$TMP/chars/tokenizer.json" --ids > "$TMP/ids" && ok || bad "tokenize with chars"
"$LMKIT" tokenize --tokenizer "$TMP/chars/tokenizer.json" --decode < "$TMP/ids" | grep -qx "ROMEO:" && ok || bad "chars round trip"

TRAIN=(--data "$TMP/data" --n-layer 2 --n-head 2 --n-embd 32 --seq-len 32 --batch 4 --lr 3e-3 --warmup 2 --eval-every 4 --eval-batches 2 --threads 2)
expect_ok "train 8 steps" "$LMKIT" train "${TRAIN[@]}" --steps 8 --out "$TMP/runA"
for f in config.json model.safetensors tokenizer.json metrics.jsonl loss.svg latest_checkpoint; do
    [ -s "$TMP/runA/$f" ] && ok || bad "train did not write $f"
done
[ "$(wc -l < "$TMP/runA/metrics.jsonl")" -eq 8 ] && ok || bad "metrics.jsonl should have 8 lines"
grep -q '"val_loss"' "$TMP/runA/metrics.jsonl" && ok || bad "metrics.jsonl lacks val_loss"
grep -q '"tokens_per_sec"' "$TMP/runA/metrics.jsonl" && ok || bad "metrics.jsonl lacks tokens_per_sec"
# loss must go down from the first step
first=$(head -1 "$TMP/runA/metrics.jsonl" | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
last=$(tail -1 "$TMP/runA/metrics.jsonl" | sed 's/.*"loss": \([0-9.e+-]*\).*/\1/')
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && ok || bad "loss did not decrease ($first -> $last)"

# Interrupted at step 4, then resumed to 8: identical losses, bit for bit.
# Width 32 on 2 threads trains data parallel (2 batch slices); the run
# keeps that count, so a resume on 1 thread sums in the same order.
expect_ok "train stop at 4" "$LMKIT" train "${TRAIN[@]}" --steps 8 --stop-at 4 --out "$TMP/runB"
[ "$(wc -l < "$TMP/runB/metrics.jsonl")" -eq 4 ] && ok || bad "stopped run should have 4 metric lines"
grep -q '"data_parallel": 2' "$TMP/runB/checkpoint-4/trainer_state.json" && ok || bad "trainer state should record 2 data-parallel parts"
expect_ok "resume" "$LMKIT" train --resume "$TMP/runB" --threads 1
strip() { sed 's/"tokens_per_sec": [0-9.]*, "elapsed_s": [0-9.]*//' "$1"; }
# A run started with a relative --data resumes from another directory: the
# run stores the data directory's absolute path.
(cd "$TMP" && "$LMKIT" train --data data --n-layer 1 --n-head 1 --n-embd 16 --seq-len 16 --batch 2 --steps 4 --stop-at 2 \
    --eval-every 2 --eval-batches 1 --out runR >/dev/null 2>&1) && ok || bad "relative --data run failed"
(cd / && "$LMKIT" train --resume "$TMP/runR" >/dev/null 2>"$TMP/resR.err") && ok || bad "resume from / with a relative --data: $(cat "$TMP/resR.err")"
if diff <(strip "$TMP/runA/metrics.jsonl") <(strip "$TMP/runB/metrics.jsonl") >/dev/null; then ok; else bad "resumed losses differ from the uninterrupted run"; fi
cmp -s "$TMP/runA/model.safetensors" "$TMP/runB/model.safetensors" && ok || bad "resumed weights differ"
expect_error "resume finished run" "already at step 8" "$LMKIT" train --resume "$TMP/runB"

# A save killed midway leaves the previous checkpoint usable: simulate the
# leftovers of a killed save (a half-written temp dir) and resume past them.
mkdir -p "$TMP/runB/checkpoint-9.tmp" && head -c 100 "$TMP/runB/model.safetensors" > "$TMP/runB/checkpoint-9.tmp/model.safetensors"
expect_ok "resume after torn save" "$LMKIT" train --resume "$TMP/runB" --steps 10 --threads 2
[ -d "$TMP/runB/checkpoint-10" ] && [ ! -e "$TMP/runB/checkpoint-9.tmp" ] && ok || bad "torn checkpoint not cleaned up"

head -c 3000 "$TMP/corpus.txt" > "$TMP/small.txt"
# A real kill: SIGKILL a run that checkpoints every step, at some moment
# mid-save or mid-step; whatever it left must resume and load.
"$LMKIT" train "${TRAIN[@]}" --steps 100000 --save-every 1 --eval-every 0 --out "$TMP/runK" >/dev/null 2>&1 &
kpid=$!
for i in $(seq 1 100); do [ -e "$TMP/runK/latest_checkpoint" ] && break; sleep 0.05; done
sleep 0.3
kill -9 $kpid 2>/dev/null; wait $kpid 2>/dev/null
[ -e "$TMP/runK/latest_checkpoint" ] && ok || bad "killed run left no checkpoint"
killed_at=$(sed 's/checkpoint-//' "$TMP/runK/latest_checkpoint")
expect_ok "resume after SIGKILL" "$LMKIT" train --resume "$TMP/runK" --steps $((killed_at + 2)) --threads 2
expect_ok "killed run loads" "$LMKIT" generate --model "$TMP/runK" --prompt "A" --max-tokens 3

expect_ok "eval json" "$LMKIT" eval --model "$TMP/runA" --perplexity "$TMP/small.txt" --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert {"loss","perplexity","tokens"} <= d.keys() and d["tokens"] > 0' "$TMP/out" 2>/dev/null && ok || bad "eval --json output: $(cat "$TMP/out")"
expect_ok "generate" "$LMKIT" generate --model "$TMP/runA" --prompt "ROMEO:" --max-tokens 20 --seed 3
out1=$(cat "$TMP/out")
"$LMKIT" generate --model "$TMP/runA" --prompt "ROMEO:" --max-tokens 20 --seed 3 > "$TMP/out2" 2>/dev/null
[ "$out1" = "$(cat "$TMP/out2")" ] && ok || bad "same seed gave different text"
case "$out1" in ROMEO:*) ok ;; *) bad "generate output does not start with the prompt" ;; esac

# Past the 32-token context: shifting keeps going, --no-context-shift stops.
expect_ok "generate past context" "$LMKIT" generate --model "$TMP/runA" --prompt "RO" --max-tokens 80 --temperature 0 --stats
grep -q "generated 80 tokens" "$TMP/err" && ok || bad "context shift: $(cat "$TMP/err")"
expect_ok "generate no shift" "$LMKIT" generate --model "$TMP/runA" --prompt "RO" --max-tokens 80 --no-context-shift
grep -q "stopped at the model's context length" "$TMP/err" && ok || bad "no-context-shift did not stop"

# The training-step benchmark: one JSON object with the step and its phases
expect_ok "bench train" "$LMKIT" bench train --preset tiny --batch 2 --seq-len 16 --steps 2 --threads 2 --json
for key in ms_per_step gflops forward_ms backward_ms optimizer_ms data_parallel; do
    grep -q "\"$key\": [0-9]" "$TMP/out" && ok || bad "bench train --json lacks $key: $(cat "$TMP/out")"
done
[ "$(wc -l < "$TMP/out")" -eq 1 ] && ok || bad "bench train --json printed more than one line"
expect_error "bench train preset" "unknown --preset 'huge'" "$LMKIT" bench train --preset huge

# Bad input
expect_error "unknown flag" "unknown option '--bogus'" "$LMKIT" train --bogus 1
expect_error "bad number" "'abc' is not an integer" "$LMKIT" train --steps abc
expect_error "bad data parallel" "--data-parallel -1 must be in" "$LMKIT" train --data "$TMP/data" --out "$TMP/x" --data-parallel -1
expect_error "too many parts" "--data-parallel 99 must be in" "$LMKIT" train "${TRAIN[@]}" --out "$TMP/x99" --data-parallel 99
[ ! -e "$TMP/x99" ] && ok || bad "a rejected --data-parallel left a run directory"
expect_error "missing data" "train.bin" "$LMKIT" train --data "$TMP/nope" --out "$TMP/x" --steps 1
: > "$TMP/empty.txt"
expect_error "empty corpus" "corpus is empty" "$LMKIT" prepare "$TMP/empty.txt" --tokenizer bytes --out "$TMP/d2"
[ ! -e "$TMP/d2/train.bin" ] && ok || bad "empty corpus left a shard behind"
expect_error "missing text" "cannot open" "$LMKIT" prepare "$TMP/none.txt" --tokenizer bytes --out "$TMP/d3"
cp -r "$TMP/data" "$TMP/trunc" && head -c 1000 "$TMP/data/train.bin" > "$TMP/trunc/train.bin"
expect_error "truncated shard" "train.bin: header says" "$LMKIT" train --data "$TMP/trunc" --out "$TMP/x2" --steps 1
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' > "$TMP/trunc/train.bin"
expect_error "corrupt shard" "bad magic" "$LMKIT" train --data "$TMP/trunc" --out "$TMP/x2" --steps 1
cp -r "$TMP/runA" "$TMP/broken"
rm -f "$TMP/broken/model.safetensors"; head -c 5000 "$TMP/runA/checkpoint-8/model.safetensors" > "$TMP/broken/model.safetensors"
expect_error "truncated safetensors" "model.safetensors" "$LMKIT" generate --model "$TMP/broken" --prompt hi
sed 's/"n_embd": 32/"n_embd": 64/' "$TMP/runA/config.json" > "$TMP/broken/config.json"
cp "$TMP/runA/model.safetensors" "$TMP/broken/model.safetensors"
expect_error "shape mismatch" "has shape" "$LMKIT" generate --model "$TMP/broken" --prompt hi
# A config claiming a far larger model than its weights fails before any
# allocation; one whose sizes overflow an int is refused by range; a
# failed validation reads as one clean message.
sed 's/"vocab_size": 256/"vocab_size": 2097152/; s/"n_embd": 32/"n_embd": 1024/' "$TMP/runA/config.json" > "$TMP/broken/config.json"
expect_error "inflated config" "config.json declares [0-9]* parameters" "$LMKIT" generate --model "$TMP/broken" --prompt hi
sed 's/"n_embd": 32/"n_embd": 1073741824/' "$TMP/runA/config.json" > "$TMP/broken/config.json"
expect_error "n_embd past int" "n_embd 1073741824 out of range" "$LMKIT" generate --model "$TMP/broken" --prompt hi
sed 's/"n_head": [0-9]*/"n_head": 5/' "$TMP/runA/config.json" > "$TMP/broken/config.json"
expect_error "n_head not dividing" "broken/config.json: config: n_embd 32 is not divisible by n_head 5" "$LMKIT" generate --model "$TMP/broken" --prompt hi
long=$(head -c 200 "$TMP/corpus.txt")
expect_error "prompt too long" "longer than the model's context" "$LMKIT" generate --model "$TMP/runA" --prompt "$long"
expect_error "missing model" "config.json" "$LMKIT" eval --model "$TMP/nomodel" --perplexity "$TMP/corpus.txt"
finish

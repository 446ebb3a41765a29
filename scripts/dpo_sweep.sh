#!/usr/bin/env bash
# Reproduce the DPO section of docs/RESULTS.md: post-train an SFT checkpoint with `lsrec dpo` for each
# beta (ROUNDS self-play rounds; every round's model is kept under runs/<name>/round-<r>/checkpoint),
# evaluate the SFT model and every round's model on the validation and the test split, then choose on
# validation and write the table and the NDCG@10-vs-Div@10 plot (scripts/dpo_table.py).
# Usage: scripts/dpo_sweep.sh [extra `lsrec dpo` flags, e.g. --learning-rate 2e-4]
#   SFT=checkpoints/lsrec-medium-mt  BETAS="0.1 0.5"  ROUNDS=3  TAG=""  OUT=docs/results/dpo
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
SFT=${SFT:-checkpoints/lsrec-medium-mt}
BETAS=${BETAS:-"0.1 0.5"}
ROUNDS=${ROUNDS:-3}
TAG=${TAG:-}
OUT=${OUT:-docs/results/dpo}
mkdir -p "$OUT"
sft=$(basename "$SFT")
for split in valid test; do
  [ -f "$OUT/$sft-$split.json" ] || lsrec eval "$SFT" --split "$split" --json "$OUT/$sft-$split.json"
done
for beta in $BETAS; do
  name="$sft-dpo$TAG-b$beta"
  lsrec dpo "$SFT" --beta "$beta" --rounds "$ROUNDS" --name "$name" "$@"
  for r in $(seq 1 "$ROUNDS"); do
    for split in valid test; do
      lsrec eval "runs/$name/round-$r/checkpoint" --split "$split" --json "$OUT/$name-round$r-$split.json"
    done
  done
done
python scripts/dpo_table.py --sft "$sft" --plot "$OUT/tradeoff.png" "$OUT"

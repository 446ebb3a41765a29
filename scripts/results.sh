#!/usr/bin/env bash
# Reproduce the ML-100K tables of docs/RESULTS.md: popularity and LSRec small/medium/large,
# single-task and multi-task, each trained with the given flags and evaluated on the test split.
# Usage: scripts/results.sh [extra `lsrec train` flags]
#   RECIPE_FLAGS (default: the flags of those rows, the recipe once called `full`; set it empty for what
#   `lsrec train` runs by default);  PRESETS="small medium large";  MODES="single-task multitask"
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
RECIPE_FLAGS=${RECIPE_FLAGS-"--init normal --learning-rate 0.002 --warmup-ratio 0.02 --weight-decay 0.01 --adam-beta2 0.999 --batch-size 64 --start-copies 0 --patience 10"}
PRESETS=${PRESETS:-"small medium large"}
MODES=${MODES:-"single-task multitask"}
[ -f data/ml-100k/manifest.json ] || lsrec data prepare --output data/ml-100k
mkdir -p docs/results
[ -f docs/results/popularity.json ] || lsrec eval --baseline popularity --data data/ml-100k --json docs/results/popularity.json
for preset in $PRESETS; do
  for mt in $MODES; do
    flag=--no-multitask; suffix=""
    [ "$mt" = multitask ] && flag=--multitask && suffix=-mt
    name="lsrec-$preset$suffix"
    lsrec train --data data/ml-100k --preset "$preset" $flag $RECIPE_FLAGS --name "$name" "$@"
    lsrec eval "checkpoints/$name" --json "docs/results/$name.json"
  done
done
python scripts/results_table.py docs/results/popularity.json docs/results/lsrec-*.json

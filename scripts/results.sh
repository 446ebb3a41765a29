#!/usr/bin/env bash
# Reproduce the ML-100K tables of docs/RESULTS.md: popularity and LSRec small/medium/large,
# single-task and multi-task, each trained with the given recipe and evaluated on the test split.
# Usage: scripts/results.sh [extra `lsrec train` flags]   (RECIPE=full by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
RECIPE=${RECIPE:-full}
PRESETS=${PRESETS:-"small medium large"}
[ -f data/ml-100k/manifest.json ] || lsrec data prepare --output data/ml-100k
mkdir -p docs/results
lsrec eval --baseline popularity --data data/ml-100k --json docs/results/popularity.json
for preset in $PRESETS; do
  for mt in single-task multitask; do
    flag=--no-multitask; suffix=""
    [ "$mt" = multitask ] && flag=--multitask && suffix=-mt
    name="lsrec-$preset$suffix"
    lsrec train --data data/ml-100k --preset "$preset" $flag --recipe "$RECIPE" --name "$name" "$@"
    lsrec eval "checkpoints/$name" --json "docs/results/$name.json"
  done
done
python scripts/results_table.py docs/results/popularity.json docs/results/lsrec-*.json

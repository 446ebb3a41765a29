#!/usr/bin/env bash
# One epoch of `lsrec train` (default recipe, ML-100K) at an older revision and at this checkout,
# interleaved, ROUNDS times; prints each run's epoch seconds (training plus the validation ranking).
#   bash scripts/epoch_time.sh 4e1209d [ROUNDS] [extra lsrec train flags for this checkout's runs]
# The old revision runs from a git worktree (scripts/at_revision.sh), in this checkout's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?an older revision}; rounds=${2:-2}; shift $(( $# < 2 ? $# : 2 ))
source scripts/at_revision.sh
at_revision "$old"
for round in $(seq "$rounds"); do
  for side in old new; do
    path=""; flags=()
    [ "$side" = old ] && path="$OLD_PYTHONPATH" || flags=("$@")
    PYTHONPATH=$path .venv/bin/python -m lsrec.cli train --max-epochs 1 --name "epoch-time-$side" \
      --output-dir "$SCRATCH/ckpt" --runs-dir "$SCRATCH/runs" --no-resume "${flags[@]}" > "$SCRATCH/log" 2>&1
    echo "$side round $round: $(grep -o 'epoch 1: valid.*' "$SCRATCH/log")"
  done
done

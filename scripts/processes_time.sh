#!/usr/bin/env bash
# One epoch of `lsrec train` (default recipe, ML-100K) in one process and in N torchrun ranks,
# interleaved, ROUNDS times; prints each run's epoch seconds (training plus the validation ranking).
#   bash scripts/processes_time.sh [N] [ROUNDS] [extra lsrec train flags for both]
# torchrun gives each rank one OpenMP thread; the single process uses every core.
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}; rounds=${2:-2}; shift $(( $# < 2 ? $# : 2 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for round in $(seq "$rounds"); do
  for side in 1 "$ranks"; do
    launch=(.venv/bin/python -m lsrec.cli)
    [ "$side" = 1 ] || launch=(.venv/bin/python -m torch.distributed.run --standalone --nproc_per_node "$side" -m lsrec.cli)
    "${launch[@]}" train --max-epochs 1 --name "processes-time-$side" --output-dir "$work/ckpt" \
      --runs-dir "$work/runs" --no-resume "$@" > "$work/log" 2>&1
    echo "$side process(es), round $round: $(grep -o 'epoch 1: valid.*' "$work/log")"
  done
done

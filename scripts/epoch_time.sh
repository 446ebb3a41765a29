#!/usr/bin/env bash
# One epoch of `lsrec train` (default recipe, ML-100K) at an older revision and at this checkout,
# interleaved, ROUNDS times; prints each run's epoch seconds (training plus the validation ranking).
#   bash scripts/epoch_time.sh 4e1209d [ROUNDS] [extra lsrec train flags for this checkout's runs]
# The old revision runs from a git worktree mapped onto the `lsrec` package names (pyproject's
# package-dir) through PYTHONPATH, in this checkout's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
old=${1:?an older revision}; rounds=${2:-2}; shift $(( $# < 2 ? $# : 2 ))
work=$(mktemp -d)
trap 'git worktree remove --force "$work/old" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add --detach -f "$work/old" "$old" >/dev/null 2>&1
mkdir -p "$work/pkg/lsrec" && touch "$work/pkg/lsrec/__init__.py"
for pair in tokenizer:tokenizer models:models serve:lsrec_serve bench:benchmarks train:train cli:cli; do
  [ -d "$work/old/${pair#*:}" ] && ln -s "$work/old/${pair#*:}" "$work/pkg/lsrec/${pair%%:*}"
done
for round in $(seq "$rounds"); do
  for side in old new; do
    path=""; flags=()
    [ "$side" = old ] && path="$work/pkg" || flags=("$@")
    PYTHONPATH=$path .venv/bin/python -m lsrec.cli train --max-epochs 1 --name "epoch-time-$side" \
      --output-dir "$work/ckpt" --runs-dir "$work/runs" --no-resume "${flags[@]}" > "$work/log" 2>&1
    echo "$side round $round: $(grep -o 'epoch 1: valid.*' "$work/log")"
  done
done

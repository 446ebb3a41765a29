#!/usr/bin/env bash
# Prompt layouts side by side (issue 19): LSRec-medium-mt trained in the task-first and the history-first
# (paper Table 2) layout with the same recipe and seeds, then `lsrec tables` with a paired bootstrap of
# history-first - task-first over the test users. A finished run is not trained again (a killed one resumes).
#   bash scripts/layout_compare.sh                      # ML-100K, seeds 42 1 2, the main job's settings
# Env: DATA (data/ml-100k), SEEDS ("42 1 2"), FLAGS (the main job's: --attention-dropout 0 --batch-size 64
# --max-epochs 18), OUT (checkpoints/layout). Run from the repo root, as `OMP_NUM_THREADS=1 ... &` twice to
# use two cores.
set -euo pipefail
export PATH="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin:$PATH"
DATA=${DATA:-data/ml-100k}
SEEDS=${SEEDS:-"42 1 2"}
FLAGS=${FLAGS:-"--attention-dropout 0 --batch-size 64 --max-epochs 18"}
OUT=${OUT:-checkpoints/layout}
read -r FIRST_SEED _ <<< "$SEEDS"
for seed in $SEEDS; do
  for layout in task-first history-first; do
    name=$layout; [ "$seed" = "$FIRST_SEED" ] || name=$layout-seed$seed
    lsrec train --data "$DATA" --preset medium --multitask --prompt-layout "$layout" --seed "$seed" $FLAGS \
      --name "$name" --output-dir "$OUT" --runs-dir "runs/layout"
    [ -f "$OUT/$name/eval_test.json" ] || lsrec eval "$OUT/$name"
  done
done
mkdir -p docs/results
lsrec tables --data "$DATA" --checkpoints "$OUT" --rows popularity,task-first,history-first \
  --compare history-first:task-first --output docs/results/tables-layout

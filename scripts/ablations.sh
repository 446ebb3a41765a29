#!/usr/bin/env bash
# Which Llama component drives the gain? SASRec trained with full-softmax cross-entropy and 2 heads
# (the base), then one Llama component swapped in at a time, all of them at once (with the pre-norm
# residual layout, `prenorm`, also available alone), and the original
# sampled-BCE loss; every variant with the same data, split, trainer, early stopping and metrics.
# Usage: scripts/ablations.sh            (SEEDS="1 2 3" VARIANTS="base rope ..." DATA=data/ml-100k)
# Finished runs are skipped, so two instances with different SEEDS can share the cores.
# MAX_LEN (default 50, the most recent 50 items) keeps a run to minutes on 2 CPU cores; every variant
# sees the same MAX_LEN, so the comparison stays one component at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
DATA=${DATA:-data/ml-100k}
OUT=${OUT:-checkpoints/ablations}
SEEDS=${SEEDS:-"1 2 3"}
MAX_LEN=${MAX_LEN:-50}
VARIANTS=${VARIANTS:-"base rope rmsnorm gated-silu one-kv-head all-llama bce"}
COMMON=(--data "$DATA" --loss ce --hidden 64 --blocks 2 --heads 2 --max-len "$MAX_LEN" --patience 10 --output-dir "$OUT")
flags() {
  case $1 in
    base) ;;
    rope) echo --positions rope ;;
    rmsnorm) echo --norm rms ;;
    gated-silu) echo --mlp gated_silu ;;
    one-kv-head) echo --kv-heads 1 ;;
    prenorm) echo --block prenorm ;;
    all-llama) echo --positions rope --norm rms --mlp gated_silu --kv-heads 1 --block prenorm ;;
    bce) echo --loss bce --patience 20 ;;  # sampled BCE learns more slowly: more patience
    *) echo "unknown variant $1" >&2; exit 1 ;;
  esac
}
for seed in $SEEDS; do
  for v in $VARIANTS; do
    name="ablation-$v-seed$seed"
    # A finished run has its whole validation history in lsrec.json; a cut-off one is trained again.
    if grep -qs '"history"' "$OUT/$name/lsrec.json"; then continue; fi
    lsrec baseline sasrec "${COMMON[@]}" $(flags "$v") --seed "$seed" --name "$name"
  done
done
rows=$(for v in $VARIANTS; do printf 'ablation-%s,' "$v"; done)
pairs=$(for v in $VARIANTS; do [ "$v" = base ] || printf 'ablation-%s:ablation-base,' "$v"; done)
lsrec tables --data "$DATA" --checkpoints "$OUT" --rows "${rows%,}" --compare "${pairs%,}" --output docs/results/ablations

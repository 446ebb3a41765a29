#!/usr/bin/env bash
# A command at an older revision, in this checkout's .venv, to time or profile old code beside new:
#   bash scripts/at_revision.sh 02f2c59 .venv/bin/python -m lsrec.cli train-speed --steps 14
#   bash scripts/at_revision.sh 02f2c59 .venv/bin/python scripts/profile_step.py   # this checkout's script
# Sourced (scripts/epoch_time.sh), it defines `at_revision REV`: REV checked out in a temporary git
# worktree, OLD_PYTHONPATH mapping it onto the `lsrec` package names (pyproject's package-dir), and
# SCRATCH, an empty folder; both are removed when the calling script exits.
at_revision() {
  _work=$(mktemp -d)
  trap 'git worktree remove --force "$_work/old" >/dev/null 2>&1 || true; rm -rf "$_work"' EXIT
  git worktree add --detach -f "$_work/old" "$1" >/dev/null 2>&1
  mkdir -p "$_work/pkg/lsrec" && touch "$_work/pkg/lsrec/__init__.py"
  for pair in tokenizer:tokenizer models:models serve:lsrec_serve bench:benchmarks train:train cli:cli; do
    [ -d "$_work/old/${pair#*:}" ] && ln -s "$_work/old/${pair#*:}" "$_work/pkg/lsrec/${pair%%:*}"
  done
  OLD_PYTHONPATH="$_work/pkg"
  SCRATCH="$_work/scratch" && mkdir -p "$SCRATCH"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  cd "$(dirname "$0")/.."
  at_revision "${1:?a revision}"
  shift
  PYTHONPATH=$OLD_PYTHONPATH "$@"
fi

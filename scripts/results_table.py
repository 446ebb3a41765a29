"""Collect `lsrec eval` JSON files into the Markdown table of docs/RESULTS.md.

Usage: python scripts/results_table.py EVAL.json...   (popularity first, if wanted)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lsrec.bench.metrics import TABLE3, TABLE4


def row(result: dict) -> str:
    cells = [result["model"]]
    cells += [f"{result['all_users'][m]:.4f}" for m in TABLE3]
    cells += [f"{result['sampled_users'][m]:.4f}" for m in TABLE4]
    training = result.get("training")
    if training:
        cells += [f"{training['parameters'] / 1e6:.2f}M", f"{training['best_epoch']}/{training['epochs_run']}",
                  f"{training['train_seconds'] / 60:.1f}"]
    else:
        cells += ["-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+", help="JSON files written by `lsrec eval --json`")
    args = parser.parse_args()
    header = ["model", *TABLE3, *(f"{m} (1k users)" for m in TABLE4), "params", "best/last epoch", "train min"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for path in args.results:
        print(row(json.loads(Path(path).read_text())))


if __name__ == "__main__":
    main()

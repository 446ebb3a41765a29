"""Collect eval_test.json and lsrec.json of checkpoints into the Markdown tables of docs/RESULTS.md.

Usage: python scripts/results_table.py CHECKPOINT... [--popularity FILE.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TABLE3 = ["HR@1", "HR@10", "HR@20", "NDCG@10", "NDCG@20", "Div@1", "Div@10", "Div@20"]
TABLE4 = ["NDCG@5", "HR@5", "Div@5"]


def row(name: str, result: dict, meta: dict | None) -> str:
    cells = [name]
    cells += [f"{result['all_users'][m]:.4f}" for m in TABLE3]
    cells += [f"{result['sampled_users'][m]:.4f}" for m in TABLE4]
    if meta:
        from lsrec.train.presets import count_parameters

        history = meta["history"]
        params = count_parameters(meta["preset"], sum(b - a for a, b in meta["vocabulary"]["families"].values()))
        cells += [f"{params / 1e6:.2f}M", f"{meta['best_epoch']}/{history[-1]['epoch']}",
                  f"{history[-1]['seconds'] / 60:.1f}"]
    else:
        cells += ["-", "-", "-"]
    return "| " + " | ".join(cells) + " |"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoints", nargs="*")
    parser.add_argument("--popularity", help="eval JSON of the popularity baseline")
    args = parser.parse_args()
    header = ["model", *TABLE3, *(f"{m} (1k users)" for m in TABLE4), "params", "best/last epoch", "train min"]
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    if args.popularity:
        print(row("popularity", json.loads(Path(args.popularity).read_text()), None))
    for folder in args.checkpoints:
        meta = json.loads((Path(folder) / "lsrec.json").read_text())
        result = json.loads((Path(folder) / "eval_test.json").read_text())
        print(row(meta["name"], result, meta))


if __name__ == "__main__":
    main()

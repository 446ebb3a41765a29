"""Print LSRec parameter counts (tied embeddings counted once) for the ML-100K and ML-10M vocabularies.

Usage: python scripts/param_counts.py [--data data/ml-100k]
"""

from __future__ import annotations

import argparse

from lsrec.tokenizer.vocab import SPECIAL_TOKENS, TASKS
from lsrec.models.llama import PRESETS, count_parameters

PAPER = {"small": "768.3k", "medium": "2.2M"}  # paper Table 1, ML-10M


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default="data/ml-100k", help="a prepared dataset (for its vocabulary size)")
    args = parser.parse_args()
    from lsrec.tokenizer.dataset import load

    fixed = len(SPECIAL_TOKENS) + len(TASKS)
    ml100k = len(load(args.data).vocab)
    # ML-10M: 10,681 items, 19 genres (18 + IMAX), 10 half-star ratings
    ml10m = 10_681 + 19 + 10 + fixed
    print(f"| preset | ML-100K ({ml100k:,} tokens) | ML-10M ({ml10m:,} tokens) | paper (ML-10M) |")
    print("| --- | --- | --- | --- |")
    for preset in PRESETS:
        a, b = count_parameters(preset, ml100k), count_parameters(preset, ml10m)
        paper = PAPER.get(preset, "-")
        print(f"| {preset} | {a:,} | {b:,} | {paper} |")


if __name__ == "__main__":
    main()

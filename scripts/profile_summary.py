"""Summarise a py-spy raw profile (`py-spy record --format raw`): the share of samples per leaf frame
(self) and per frame anywhere on the stack (inclusive).

Usage: python scripts/profile_summary.py docs/bench/profile/engine-core.txt [--top 15]
"""

from __future__ import annotations

import argparse
from collections import Counter


def summarise(path: str, top: int) -> str:
    own, anywhere, total = Counter(), Counter(), 0
    for line in open(path):
        if not line.strip():
            continue
        stack, count = line.rstrip().rsplit(" ", 1)
        frames, n = stack.split(";"), int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            anywhere[frame] += n
    lines = [f"{path}: {total} samples", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["inclusive:"] + [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in anywhere.most_common(top)]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()

"""One evaluation for early stopping, offline eval and (later) served eval.

A ranker maps histories to ranked item lists with the history excluded; `evaluate` turns those
lists into metrics. Protocols: "all" users (paper Table 3) and "sample" (1,000 seeded users, K=5,
paper Table 4).
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Protocol

from lsrec.tokenizer.dataset import PreparedData
from lsrec.tokenizer.errors import LSRecError

from .metrics import all_metrics

SPLIT_OFFSETS = {"test": 1, "valid": 2, "train": 3}  # target = items[-offset]
MAX_K = 20


@dataclass
class Case:
    user: str
    history: list[str]  # item ids, oldest first
    target: str


def split_cases(data: PreparedData, split: str = "test", users: list[str] | None = None) -> list[Case]:
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"split must be one of {list(SPLIT_OFFSETS)}")
    offset = SPLIT_OFFSETS[split]
    chosen = set(users) if users is not None else None
    return [
        Case(s.user, s.items[: len(s.items) - offset], s.items[-offset])
        for s in data.sequences if chosen is None or s.user in chosen
    ]


def sample_users(data: PreparedData, n: int = 1000, seed: int = 0) -> list[str]:
    """Paper Table 4: a seeded random subset of users (all of them when there are fewer)."""
    users = [s.user for s in data.sequences]
    if len(users) <= n:
        return users
    return random.Random(seed).sample(users, n)


class Ranker(Protocol):
    def rank(self, histories: list[list[str]], k: int) -> list[list[tuple[str, float]]]:
        """Top-k (item, score) per history, best first, history items excluded."""


class PopularityRanker:
    """Most interacted items in the histories visible at evaluation time."""

    def __init__(self, histories: list[list[str]]):
        counts = Counter(item for h in histories for item in h)
        self.order = [(item, float(c)) for item, c in counts.most_common()]

    def rank(self, histories, k):
        out = []
        for history in histories:
            seen = set(history)
            out.append([(i, c) for i, c in self.order if i not in seen][:k])
        return out


def evaluate(ranker: Ranker, cases: list[Case], n_items: int) -> dict[str, float]:
    if not cases:
        raise LSRecError("no users to evaluate")
    tops = ranker.rank([c.history for c in cases], MAX_K)
    top_items = [[item for item, _ in top] for top in tops]
    # Item popularity for the bias figures: interactions in the histories visible at evaluation time
    # (what the popularity baseline ranks by).
    popularity = Counter(item for c in cases for item in c.history)
    metrics = all_metrics(top_items, [c.target for c in cases], n_items, popularity=popularity)
    metrics["users"] = len(cases)
    return metrics


def evaluate_protocols(ranker: Ranker, data: PreparedData, split: str = "test", sample_size: int = 1000,
                       seed: int = 0) -> dict[str, dict[str, float]]:
    """Paper Table 3 (all users) and Table 4 (seeded sample, K=5)."""
    n_items = len(data.vocab.items)
    everyone = evaluate(ranker, split_cases(data, split), n_items)
    sample = evaluate(ranker, split_cases(data, split, sample_users(data, sample_size, seed)), n_items)
    table4 = {k: sample[k] for k in ("NDCG@5", "HR@5", "Div@5", "users")}
    return {"all_users": everyone, "sampled_users": table4}

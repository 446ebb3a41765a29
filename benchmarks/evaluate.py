"""One evaluation for early stopping, offline eval, served eval and the paper's tables.

A ranker maps histories to ranked item lists with the history excluded; `score` turns those lists
into metrics. Protocols: "all" users (paper Table 3) and "sample" (1,000 seeded users, K=5, paper
Table 4), both read from one ranking of the split.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Protocol

from lsrec.tokenizer.dataset import Case, PreparedData, split_cases
from lsrec.tokenizer.errors import LSRecError

from .metrics import TABLE4, all_metrics, ndcg_per_user, target_ranks

MAX_K = 20


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


def rank_cases(ranker: Ranker, cases: list[Case]) -> list[list[str]]:
    """Each case's top MAX_K items, best first."""
    if not cases:
        raise LSRecError("no users to evaluate")
    return [[item for item, _ in top] for top in ranker.rank([c.history for c in cases], MAX_K)]


def score(top_items: list[list[str]], cases: list[Case], n_items: int) -> dict[str, float]:
    """HR, NDCG, Div and the popularity-bias figures of ranked lists against the cases' targets."""
    # Item popularity for the bias figures: interactions in the histories visible at evaluation time
    # (what the popularity baseline ranks by).
    popularity = Counter(item for c in cases for item in c.history)
    metrics = all_metrics(top_items, [c.target for c in cases], n_items, popularity=popularity)
    metrics["users"] = len(cases)
    return metrics


def evaluate(ranker: Ranker, cases: list[Case], n_items: int) -> dict[str, float]:
    return score(rank_cases(ranker, cases), cases, n_items)


def evaluate_protocols(ranker: Ranker, data: PreparedData, split: str = "test", sample_size: int = 1000,
                       seed: int = 0, per_user: bool = False) -> dict:
    """Paper Table 3 (all users) and Table 4 (seeded sample, K=5) from one ranking of the split; with
    `per_user`, also each user's NDCG@10 (for a paired bootstrap between models)."""
    n_items = len(data.vocab.items)
    cases = split_cases(data, split)
    tops = rank_cases(ranker, cases)
    chosen = set(sample_users(data, sample_size, seed))
    sampled = [i for i, c in enumerate(cases) if c.user in chosen]
    sample = score([tops[i] for i in sampled], [cases[i] for i in sampled], n_items)
    out = {"all_users": score(tops, cases, n_items),
           "sampled_users": {k: sample[k] for k in (*TABLE4, "users")}}
    if per_user:
        out["ndcg10_per_user"] = ndcg_per_user(target_ranks(tops, [c.target for c in cases]), 10)
    return out

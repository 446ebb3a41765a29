"""Full-ranking metrics. `ranks[u]` is the 0-based position of user u's target in its ranked list
(None when the target is not in the list). Lists exclude the user's history."""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r < k) / len(ranks)


def ndcg(ranks: Sequence[int | None], k: int) -> float:
    # One relevant item per user, so the ideal DCG is 1.
    return sum(1.0 / math.log2(r + 2) for r in ranks if r is not None and r < k) / len(ranks)


def diversity(top_lists: Sequence[Sequence], k: int, n_items: int) -> float:
    """Unique items recommended in the top-k of all evaluated users, over the catalogue size."""
    return len({item for top in top_lists for item in top[:k]}) / n_items


def target_ranks(top_lists: Sequence[Sequence], targets: Sequence) -> list[int | None]:
    ranks = []
    for top, target in zip(top_lists, targets, strict=True):
        top = list(top)
        ranks.append(top.index(target) if target in top else None)
    return ranks


def all_metrics(top_lists, targets, n_items: int, hr_ks=(1, 5, 10, 20), ndcg_ks=(5, 10, 20),
                div_ks=(1, 5, 10, 20)) -> dict[str, float]:
    ranks = target_ranks(top_lists, targets)
    out = {f"HR@{k}": hit_rate(ranks, k) for k in hr_ks}
    out |= {f"NDCG@{k}": ndcg(ranks, k) for k in ndcg_ks}
    out |= {f"Div@{k}": diversity(top_lists, k, n_items) for k in div_ks}
    return out

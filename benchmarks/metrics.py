"""Full-ranking metrics. `ranks[u]` is the 0-based position of user u's target in its ranked list
(None when the target is not in the list). Lists exclude the user's history."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence

# The paper's columns: Table 3 (all users) and Table 4 (1,000 seeded users, K=5).
TABLE3 = ["HR@1", "HR@10", "HR@20", "NDCG@10", "NDCG@20", "Div@1", "Div@10", "Div@20"]
TABLE4 = ["NDCG@5", "HR@5", "Div@5"]


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    return sum(1 for r in ranks if r is not None and r < k) / len(ranks)


def ndcg_per_user(ranks: Sequence[int | None], k: int) -> list[float]:
    """Each user's NDCG@k: one relevant item per user, so the ideal DCG is 1 (what the bootstrap resamples)."""
    return [1.0 / math.log2(r + 2) if r is not None and r < k else 0.0 for r in ranks]


def ndcg(ranks: Sequence[int | None], k: int) -> float:
    return sum(ndcg_per_user(ranks, k)) / len(ranks)


def diversity(top_lists: Sequence[Sequence], k: int, n_items: int) -> float:
    """Unique items recommended in the top-k of all evaluated users, over the catalogue size."""
    return len({item for top in top_lists for item in top[:k]}) / n_items


def target_ranks(top_lists: Sequence[Sequence], targets: Sequence) -> list[int | None]:
    ranks = []
    for top, target in zip(top_lists, targets, strict=True):
        top = list(top)
        ranks.append(top.index(target) if target in top else None)
    return ranks


def popularity_percentile(popularity: Mapping, n_items: int) -> dict[int, float]:
    """Interaction count -> the share of the catalogue less popular than an item with that count, ties
    counting half (midrank), in [0, 1]. Catalogue items absent from `popularity` count 0, so over the
    whole catalogue the percentiles average 0.5."""
    by_count = Counter(c for c in popularity.values() if c > 0)
    by_count[0] += n_items - sum(by_count.values())
    below, out = 0, {}
    for count in sorted(by_count):
        out[count] = (below + 0.5 * by_count[count]) / n_items
        below += by_count[count]
    return out


def mean_popularity_percentile(top_lists: Sequence[Sequence], k: int, popularity: Mapping, n_items: int) -> float:
    """Mean popularity percentile over every top-k slot of every user: 0.5 for a recommender blind to
    popularity, near 1 for one that recommends the most popular items."""
    percentile = popularity_percentile(popularity, n_items)
    values = [percentile[popularity.get(item, 0)] for top in top_lists for item in top[:k]]
    return sum(values) / len(values) if values else 0.0


def gini(top_lists: Sequence[Sequence], k: int, n_items: int) -> float:
    """Gini index of how often each catalogue item appears in the top-k lists (never-recommended items
    count 0): 0 when every item is recommended equally often, near 1 when a few items take every slot."""
    counts = Counter(item for top in top_lists for item in top[:k])
    values = sorted([0] * (n_items - len(counts)) + list(counts.values()))
    total = sum(values)
    if total == 0:
        return 0.0
    n = len(values)
    return sum((2 * i - n - 1) * x for i, x in enumerate(values, 1)) / (n * total)


def all_metrics(top_lists, targets, n_items: int, hr_ks=(1, 5, 10, 20), ndcg_ks=(5, 10, 20),
                div_ks=(1, 5, 10, 20), popularity: Mapping | None = None) -> dict[str, float]:
    """HR, NDCG and Div; with `popularity` (item -> interaction count), also the popularity-bias
    figures PopPct@k (mean popularity percentile of recommended items) and Gini@k at every Div k."""
    ranks = target_ranks(top_lists, targets)
    out = {f"HR@{k}": hit_rate(ranks, k) for k in hr_ks}
    out |= {f"NDCG@{k}": ndcg(ranks, k) for k in ndcg_ks}
    out |= {f"Div@{k}": diversity(top_lists, k, n_items) for k in div_ks}
    if popularity is not None:
        out |= {f"PopPct@{k}": mean_popularity_percentile(top_lists, k, popularity, n_items) for k in div_ks}
        out |= {f"Gini@{k}": gini(top_lists, k, n_items) for k in div_ks}
    return out

"""Seeded synthetic interaction logs of any catalogue size, shaped like MovieLens-100K: for measuring
speed and memory at 10k to 1M items, not quality (there is no sequential signal beyond popularity).

The shape, fitted on ML-100K as `lsrec data prepare` reads it (943 users, 1,682 items, 100,000 ratings):
- Item popularity: the item at rank fraction x = (rank - 0.5) / items gets a share proportional to
  exp(-POPULARITY_K * x ** POPULARITY_B), fitted to ML-100K's Lorenz curve (largest gap 1.5 points;
  Gini 0.62 against ML-100K's 0.63, top 20% of items 66% of interactions against 65%). Each item's
  count is its share of the total, rounded, and at least 1, so every item is in the catalogue.
- History lengths: lognormal with ML-100K's mean and deviation of log length (LENGTH_LOG_MEAN,
  LENGTH_LOG_SD), clipped to its range [LENGTH_MIN, LENGTH_MAX] (median 65 and mean 106 there).
- Ratings: drawn with ML-100K's frequencies of 1 to 5 stars.
Item ids are a random permutation of ranks, and each user's items are drawn without order from the
pool of all counts, so popularity is the only structure (a popular item can repeat within a history).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import LSRecError

POPULARITY_K, POPULARITY_B = 4.8, 0.76
LENGTH_LOG_MEAN, LENGTH_LOG_SD = 4.274, 0.878
LENGTH_MIN, LENGTH_MAX = 20, 737
RATING_SHARES = {1: 6110, 2: 11370, 3: 27145, 4: 34174, 5: 21201}  # ML-100K's counts
ML100K_USERS, USERS_PER_ITEM = 943, 1 / 30


@dataclass
class SyntheticConfig:
    items: int
    output: str
    users: int = 0  # 0: max(943, items / 30), about 3.5 interactions per item at 1M items
    seed: int = 0

    def __post_init__(self):
        if self.items < 2:
            raise LSRecError(f"items must be at least 2 (got {self.items})")
        if self.users < 0:
            raise LSRecError(f"users must be 0 (the default scale) or more (got {self.users})")
        if not self.users:
            self.users = max(ML100K_USERS, round(self.items * USERS_PER_ITEM))


def popularity_shares(items: int):
    """Each rank's share of all interactions (rank 1 first)."""
    import numpy as np

    x = (np.arange(items) + 0.5) / items
    weights = np.exp(-POPULARITY_K * x ** POPULARITY_B)
    return weights / weights.sum()


def generate(cfg: SyntheticConfig):
    """The interactions as a DataFrame (user, item, timestamp, rating), deterministic in the config."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(cfg.seed)
    lengths = np.clip(np.rint(rng.lognormal(LENGTH_LOG_MEAN, LENGTH_LOG_SD, cfg.users)), LENGTH_MIN, LENGTH_MAX)
    lengths = lengths.astype(np.int64)
    total = int(lengths.sum())
    counts = np.maximum(1, np.rint(popularity_shares(cfg.items) * total)).astype(np.int64)
    # Rounding and the floor of 1 move the sum; the most popular item absorbs the difference, and if
    # the floor alone needs more than `total`, the users' histories grow instead.
    counts[0] = max(1, counts[0] + total - int(counts.sum()))
    extra = int(counts.sum()) - total
    if extra > 0:
        np.add.at(lengths, rng.integers(0, cfg.users, extra), 1)
    ids = rng.permutation(cfg.items) + 1
    pool = rng.permutation(np.repeat(ids, counts))
    users = np.repeat(np.arange(1, cfg.users + 1), lengths)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    step = np.arange(len(pool)) - starts  # position within the user's history
    ratings = rng.choice(list(RATING_SHARES), len(pool), p=np.array(list(RATING_SHARES.values())) / sum(RATING_SHARES.values()))
    timestamps = 880_000_000 + users * 1_000 + step * 60  # strictly increasing per user
    return pd.DataFrame({"user": users, "item": pool, "timestamp": timestamps, "rating": ratings})


def write(cfg: SyntheticConfig) -> dict:
    """Write the CSV `lsrec data prepare` reads; return its counts and popularity statistics."""
    import numpy as np

    path = Path(cfg.output)
    if path.suffix != ".csv":
        raise LSRecError(f"{path}: the synthetic log is written as CSV; name the file *.csv")
    frame = generate(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    frame.to_csv(tmp, index=False)
    tmp.replace(path)
    counts = np.sort(frame["item"].value_counts().to_numpy())[::-1]
    return {"users": cfg.users, "items": int(len(counts)), "interactions": int(len(frame)),
            "gini": gini(counts), "top_20_percent_share": float(counts[: max(1, len(counts) // 5)].sum() / counts.sum()),
            "single_interaction_items": float((counts == 1).mean())}


def gini(counts) -> float:
    """Gini coefficient of interaction counts per item (0: all equal; 1: one item has all)."""
    import numpy as np

    c = np.sort(np.asarray(counts, dtype=float))
    n = len(c)
    return float((2 * np.arange(1, n + 1) - n - 1).dot(c) / (n * c.sum()))

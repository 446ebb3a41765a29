"""Preference pairs for the DPO stage, from the training split only.

For each user the prompt is the SFT RECOMMEND prompt of the training target (the training split's
history), the chosen answer is the training target, and each rejected answer is an item the user
never interacted with:
  - "self-play" (SPRec): the model's own top-1 for that prompt, history masked, kept only when it is
    wrong. The user's later items (the validation and test targets) are masked too, as for any
    negative sampled from items a user never consumed, so they never become a rejected answer.
  - "popularity": `num_negatives` distinct items drawn with probability proportional to their
    interaction count in the training split (every user's items up to the training target).
  - "both": the self-play pair plus the popularity pairs.
Answers are one item token then [EOS], exactly as in the SFT examples (train/tasks.py).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

from lsrec.tokenizer.dataset import PreparedData
from lsrec.tokenizer.prompts import prompt_ids

NEGATIVES = ("self-play", "popularity", "both")


def training_popularity(data: PreparedData) -> Counter:
    """Interactions per item in the training split: every user's history and training target."""
    counts = Counter()
    for seq in data.sequences:
        history, target = seq.split("train")
        counts.update([*history, target])
    return counts


def build_preferences(data: PreparedData, ranker, negatives: str = "self-play", num_negatives: int = 1,
                      seed: int = 0, tok=None) -> list[dict]:
    """One row per (user, rejected item): {"user", "kind", "prompt_ids", "chosen_ids", "rejected_ids"}.
    `ranker` is an LSRecRanker (only needed for self-play negatives)."""
    import numpy as np

    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}")
    tok = tok or data.tokenizer  # the model's tokenizer: prompts in its layout
    users = []
    for seq in data.sequences:
        history, target = seq.split("train")
        history = [tok.item_id(i) for i in history]
        later = [tok.item_id(seq.split(split)[1]) for split in ("valid", "test")]  # never seen here
        users.append((seq.user, prompt_ids(tok, "RECOMMEND", history), tok.item_id(target),
                      set(history) | set(later)))
    rows = []

    def pair(user, prompt, chosen, rejected, kind):
        rows.append({"user": user, "kind": kind, "prompt_ids": prompt, "chosen_ids": [chosen, tok.eos_id],
                     "rejected_ids": [rejected, tok.eos_id]})

    self_play = {}
    if negatives in ("self-play", "both"):
        # The same rule as evaluation (answer_rule): item tokens only, prompt items masked; later items
        # go in as extra exclusions.
        tops = ranker.rank_ids([p for _, p, _, _ in users], [sorted(seen) for *_, seen in users], k=1)
        self_play = {u[0]: top[0][0] for u, top in zip(users, tops) if top}
    popularity = training_popularity(data)
    item_ids = np.array([tok.item_id(i) for i in popularity])
    weights = np.array(list(popularity.values()), dtype=float)
    rng = np.random.default_rng(seed)
    for user, prompt, chosen, seen in users:
        if user in self_play and self_play[user] != chosen:  # a right top-1 teaches nothing to reject
            pair(user, prompt, chosen, self_play[user], "self-play")
        if negatives in ("popularity", "both"):
            p = np.where(np.isin(item_ids, [*seen, chosen]), 0.0, weights)
            n = min(num_negatives, int((p > 0).sum()))
            if n:
                for rejected in rng.choice(item_ids, size=n, replace=False, p=p / p.sum()):
                    pair(user, prompt, chosen, int(rejected), "popularity")
    return rows


def to_text(tok, ids: list[int]) -> str:
    """Token ids as the space-separated token string the HF tokenizer reads back into the same ids."""
    return " ".join(tok.id_to_token[i] for i in ids)


def write_preferences(rows: list[dict], path: Path) -> str:
    """JSON lines, written atomically; returns the file's SHA-256 (recorded in the checkpoint)."""
    text = "".join(json.dumps(r) + "\n" for r in rows)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return hashlib.sha256(text.encode()).hexdigest()


def read_preferences(path: Path) -> tuple[list[dict], str]:
    text = path.read_text()
    return [json.loads(line) for line in text.splitlines()], hashlib.sha256(text.encode()).hexdigest()

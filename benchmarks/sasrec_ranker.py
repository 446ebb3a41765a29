"""Rank items with a SASRec baseline model in-process (lsrec.models.sasrec)."""

from __future__ import annotations

from pathlib import Path

from lsrec.models.sasrec import load_sasrec


class SASRecRanker:
    """The evaluation's Ranker for a SASRec model: scores are the dot products, history masked."""

    def __init__(self, model, items: list[str], max_len: int, batch_size: int = 256, meta=None):
        self.model, self.items, self.max_len, self.batch_size, self.meta = model, items, max_len, batch_size, meta
        self.index = {item: i + 1 for i, item in enumerate(items)}

    @classmethod
    def from_checkpoint(cls, folder: str | Path, **kwargs) -> "SASRecRanker":
        model, meta = load_sasrec(folder)
        return cls(model, meta.vocab.items, meta.raw["train_config"]["max_len"], meta=meta, **kwargs)

    def indices(self, histories: list[list[str]]):
        import torch

        rows = [[self.index[i] for i in history[-self.max_len:]] for history in histories]
        batch = torch.zeros(len(rows), max(1, max(map(len, rows))), dtype=torch.long)
        for row, ids in enumerate(rows):
            if ids:
                batch[row, -len(ids):] = torch.tensor(ids)
        return batch

    def rank(self, histories: list[list[str]], k: int) -> list[list[tuple[str, float]]]:
        import torch

        was_training = self.model.training
        self.model.eval()
        out: list = [None] * len(histories)
        order = sorted(range(len(histories)), key=lambda i: len(histories[i]))  # little padding per batch
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                scores = self.model.scores(self.model(self.indices([histories[i] for i in chunk]))[:, -1])
                for row, i in enumerate(chunk):
                    seen = [self.index[item] - 1 for item in histories[i]]
                    if seen:
                        scores[row, seen] = float("-inf")
                top = torch.topk(scores, min(k, scores.shape[1]), dim=-1)
                for row, i in enumerate(chunk):
                    out[i] = [(self.items[int(j)], float(s)) for j, s in zip(top.indices[row], top.values[row])
                              if s > float("-inf")]
        self.model.train(was_training)
        return out

"""Early stopping on validation NDCG@10, shared by every trainer (LSRec through TRL, SASRec's own loop).

After each epoch the model is ranked on the validation split with the one evaluation of
lsrec.bench.evaluate; the trainer saves the model when `update` says it improved, and stops once
`patience` epochs have passed without a better one.
"""

from __future__ import annotations

import time

from lsrec.bench.evaluate import evaluate
from lsrec.tokenizer.dataset import PreparedData, split_cases


class EarlyStopping:
    def __init__(self, data: PreparedData, patience: int, history: list[dict] | None = None):
        self.valid_cases = split_cases(data, "valid")
        self.n_items = len(data.vocab.items)
        self.patience = patience
        self.history: list[dict] = list(history or [])  # one entry per epoch, restored on resume
        # Seconds count on from a restored history, so a resumed run reports its whole training time.
        self.started = time.time() - (self.history[-1]["seconds"] if self.history else 0)

    @property
    def best(self) -> dict | None:
        return max(self.history, key=lambda h: h["valid"]["NDCG@10"], default=None)

    def update(self, ranker, epoch: int, train_loss: float | None) -> bool:
        """Validate after `epoch`; record it; True when it is the best epoch so far (save the model)."""
        metrics = evaluate(ranker, self.valid_cases, self.n_items)
        previous = self.best
        self.history.append({"epoch": epoch, "valid": metrics, "train_loss": train_loss,
                             "seconds": round(time.time() - self.started, 1)})
        return previous is None or metrics["NDCG@10"] > previous["valid"]["NDCG@10"]

    def should_stop(self, epoch: int) -> bool:
        return epoch - self.best["epoch"] >= self.patience

    def describe(self, improved: bool) -> str:
        last, best = self.history[-1], self.best
        return (f"epoch {last['epoch']}: valid NDCG@10 {last['valid']['NDCG@10']:.4f} HR@10 {last['valid']['HR@10']:.4f} "
                f"(best {best['valid']['NDCG@10']:.4f} at epoch {best['epoch']}), {last['seconds']:.0f} s"
                f"{', saved' if improved else ''}")

"""Offline recommendations from a checkpoint folder, for any of the five tasks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.prompts import ANSWER_FAMILY, prompt_ids
from lsrec.tokenizer.vocab import TASKS


@dataclass
class Recommendation:
    item: str  # item id, genre name or rating value, by task
    title: str
    score: float  # log-probability among the allowed answers


class OfflineRecommender:
    def __init__(self, folder: str | Path):
        from lsrec.bench.lsrec_ranker import LSRecRanker

        self.ranker = LSRecRanker.from_checkpoint(folder)
        self.meta = self.ranker.meta
        self.tok = self.ranker.tok

    def recommend(self, history: list[str], k: int = 10, task: str = "RECOMMEND", genre: str | None = None,
                  rating: float | None = None, item: str | None = None, exclude: list[str] = ()) -> list[Recommendation]:
        tok = self.tok
        if task not in TASKS:
            raise LSRecError(f"unknown task {task!r}; tasks: {', '.join(TASKS)}")
        if not history:
            raise LSRecError("the history is empty: give at least one item id")
        if k < 1:
            raise LSRecError(f"k must be at least 1 (got {k})")
        history_ids = [tok.item_id(i) for i in history]
        argument = None
        if task == "MOVIE_BY_GENRE":
            argument = tok.genre_id(_required(genre, "genre", task))
        elif task == "RECOMMEND_RATING":
            argument = tok.rating_id(_required(rating, "rating", task))
        elif task == "RATE_MOVIE":
            argument = tok.item_id(_required(item, "item", task))
        exclude_ids = history_ids + [tok.item_id(i) for i in exclude]
        prompt = prompt_ids(tok, task, history_ids, argument)
        family = ANSWER_FAMILY[task]
        [top] = self.ranker.rank_ids([prompt], [exclude_ids], k, family)
        out = []
        for token_id, score in top:
            if family == "items":
                item_id = tok.item_of(token_id)
                out.append(Recommendation(item_id, self.meta.title(item_id), score))
            elif family == "genres":
                out.append(Recommendation(tok.genre_of(token_id), "", score))
            else:
                out.append(Recommendation(f"{tok.rating_of(token_id):g}", "", score))
        return out


def _required(value, name: str, task: str):
    if value is None:
        raise LSRecError(f"task {task} needs --{name}")
    return value

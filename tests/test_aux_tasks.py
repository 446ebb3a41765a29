"""The auxiliary tasks' metrics (lsrec.bench.aux_tasks): an oracle scores perfectly, a model that
ignores the task's argument scores what its baseline scores, and `lsrec eval` reports them."""

from __future__ import annotations

import math

import pytest

from lsrec.bench.aux_tasks import aux_task_metrics
from lsrec.tokenizer.prompts import parse_prompt


class Oracle:
    """Answers every prompt from the split itself: the held-out item's genre, its rating, items of the
    asked genre (the held-out item first); `blind` ignores the task and argument and answers like
    RECOMMEND with the held-out item first."""

    def __init__(self, data, tok, blind=False):
        self.tok, self.blind, self.data = tok, blind, data
        self.target = {tuple(seq.split("test")[0]): seq for seq in data.sequences}

    def rank_ids(self, prompts, excludes, k):
        tok, out = self.tok, []
        for ids in prompts:
            parsed = parse_prompt(tok, ids)
            seq = self.target[tuple(tok.item_of(i) for i in parsed.history)]
            target = seq.split("test")[1]
            genres = self.data.catalogue[target].get("genres") or []
            task = "RECOMMEND" if self.blind and parsed.task != "RATE_MOVIE" and parsed.task != "RECOMMEND_GENRE" \
                else parsed.task
            if task == "RECOMMEND_GENRE":
                out.append([(tok.genre_id(genres[0] if not self.blind else self.data.vocab.genres[-1]), 0.0)])
            elif task == "RATE_MOVIE":
                out.append([(tok.rating_id(seq.target_rating("test")), 0.0)])
            else:
                wanted = tok.genre_of(parsed.argument) if task == "MOVIE_BY_GENRE" else None
                pool = [i for i in self.data.vocab.items if i != target and i not in parsed.history
                        and (wanted is None or wanted in (self.data.catalogue.get(i, {}).get("genres") or []))]
                out.append([(tok.item_id(i), -float(r)) for r, i in enumerate([target, *pool][:k])])
        return out


def test_an_oracle_scores_perfectly_and_baselines_are_computed(prepared_ml100k):
    _, data = prepared_ml100k
    tok = data.tokenizer
    tasks = ["MOVIE_BY_GENRE", "RECOMMEND_GENRE", "RATE_MOVIE", "RECOMMEND_RATING"]
    result = aux_task_metrics(Oracle(data, tok), data, tasks)
    assert set(result) == set(tasks)
    users = len(data.sequences)
    assert result["RECOMMEND_GENRE"]["accuracy@1"] == 1.0
    assert result["RATE_MOVIE"]["MAE"] == 0.0 and result["RATE_MOVIE"]["RMSE"] == 0.0
    assert result["RATE_MOVIE"]["users"] == users
    assert result["MOVIE_BY_GENRE"]["HR@10"] == 1.0 and result["RECOMMEND_RATING"]["NDCG@10"] == 1.0
    # every item the oracle lists carries the asked genre (lists are short where the genre is rare)
    from lsrec.tokenizer.prompts import prompt_ids

    oracle = Oracle(data, tok)
    lengths = []
    for seq in data.sequences:
        history, target = seq.split("test")
        genre = tok.genre_id(data.catalogue[target]["genres"][0])
        [top] = oracle.rank_ids([prompt_ids(tok, "MOVIE_BY_GENRE", [tok.item_id(i) for i in history], genre)], [[]], 10)
        lengths.append(len(top))
    assert result["MOVIE_BY_GENRE"]["genre_precision@10"] == pytest.approx(sum(lengths) / 10 / users)
    # the mean-rating baseline predicts one constant, the mean of the histories' ratings
    ratings = [r for seq in data.sequences for r in seq.ratings[: len(seq.split("test")[0])]]
    mean = result["RATE_MOVIE"]["baseline_mean_rating"]
    assert mean["rating"] == pytest.approx(sum(ratings) / len(ratings))
    truth = [seq.target_rating("test") for seq in data.sequences]
    assert mean["MAE"] == pytest.approx(sum(abs(t - mean["rating"]) for t in truth) / users)
    assert mean["RMSE"] == pytest.approx(math.sqrt(sum((t - mean["rating"]) ** 2 for t in truth) / users))


def test_a_model_that_ignores_the_argument_scores_its_baseline(prepared_ml100k):
    _, data = prepared_ml100k
    tok = data.tokenizer
    result = aux_task_metrics(Oracle(data, tok, blind=True), data, ["MOVIE_BY_GENRE", "RECOMMEND_RATING"])
    for task in ("MOVIE_BY_GENRE", "RECOMMEND_RATING"):
        baseline = result[task]["baseline"]
        assert {m: result[task][m] for m in baseline if m != "model"} == {m: v for m, v in baseline.items() if m != "model"}

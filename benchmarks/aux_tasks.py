"""The four auxiliary tasks of paper Table 2, measured on a split beside a simple baseline each.

Every user's held-out item of the split (the same one RECOMMEND is scored on) gives one question per
task, asked with the user's history before it, in the model's own prompt layout:

- MOVIE_BY_GENRE, asked for the item's first genre: the share of the top-10 items that carry that
  genre (genre precision@10) and HR@10 / NDCG@10 of the item; baseline: the same figures of the
  RECOMMEND top-10, which ignores the genre.
- RECOMMEND_GENRE: top-1 accuracy (the top genre is one of the item's genres); baseline: the genre
  most frequent in the user's history.
- RATE_MOVIE, asked for the item: the expected rating under the model's distribution, MAE and RMSE
  against the user's rating; baselines: the mean rating of all histories, and the user's own mean.
- RECOMMEND_RATING, asked for the rating the user gave the item: HR@10 / NDCG@10 of the item;
  baseline: the RECOMMEND top-10.
"""

from __future__ import annotations

import math
from collections import Counter

from lsrec.tokenizer.dataset import PreparedData
from lsrec.tokenizer.prompts import prompt_ids

from .metrics import hit_rate, ndcg, target_ranks

K = 10
AUX_TASKS = ("MOVIE_BY_GENRE", "RECOMMEND_GENRE", "RATE_MOVIE", "RECOMMEND_RATING")


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def aux_task_metrics(ranker, data: PreparedData, tasks, split: str = "test") -> dict:
    """Metrics of each auxiliary task in `tasks` that the data can ask (genres, ratings), with its
    baseline. `ranker` is an LSRecRanker (its tokenizer sets the prompt layout)."""
    tok = ranker.tok
    genres_of = {item: entry.get("genres") or [] for item, entry in data.catalogue.items()}
    # one question per user: (history, held-out item, its rating, the history's ratings)
    users = []
    for seq in data.sequences:
        history, target = seq.split(split)
        users.append((history, target, seq.target_rating(split), seq.ratings[: len(history)] if seq.ratings else []))
    with_genre = [u for u, row in enumerate(users) if genres_of.get(row[1]) and data.vocab.genres]
    rated = [u for u, row in enumerate(users) if row[2] is not None and data.vocab.ratings]
    out: dict[str, dict] = {}

    def top_items(task: str, chosen: list[int], argument_of=lambda row: None, k: int = K):
        prompts = [prompt_ids(tok, task, [tok.item_id(i) for i in users[u][0]], argument_of(users[u])) for u in chosen]
        return ranker.rank_ids(prompts, [[] for _ in chosen], k)

    def items(tops):
        return [[tok.item_of(i) for i, _ in top] for top in tops]

    def ranking(lists, chosen) -> dict:
        ranks = target_ranks(lists, [users[u][1] for u in chosen])
        return {f"HR@{K}": hit_rate(ranks, K), f"NDCG@{K}": ndcg(ranks, K)}

    recommend = {}
    if {"MOVIE_BY_GENRE", "RECOMMEND_RATING"} & set(tasks):
        recommend = dict(zip(range(len(users)), items(top_items("RECOMMEND", list(range(len(users)))))))

    if "MOVIE_BY_GENRE" in tasks and with_genre:
        asked = [genres_of[users[u][1]][0] for u in with_genre]
        tops = items(top_items("MOVIE_BY_GENRE", with_genre, lambda row: tok.genre_id(genres_of[row[1]][0])))
        plain = [recommend[u] for u in with_genre]

        def precision(lists):
            return _mean(sum(g in genres_of.get(i, []) for i in top) / K for top, g in zip(lists, asked))

        out["MOVIE_BY_GENRE"] = {"users": len(with_genre), f"genre_precision@{K}": precision(tops),
                                 **ranking(tops, with_genre),
                                 "baseline": {"model": "RECOMMEND top-10 (genre ignored)",
                                              f"genre_precision@{K}": precision(plain), **ranking(plain, with_genre)}}

    if "RECOMMEND_GENRE" in tasks and with_genre:
        predicted = [tok.genre_of(top[0][0]) for top in top_items("RECOMMEND_GENRE", with_genre, k=1)]
        favourite = [Counter(g for i in users[u][0] for g in genres_of.get(i, [])).most_common(1) for u in with_genre]
        truth = [genres_of[users[u][1]] for u in with_genre]
        out["RECOMMEND_GENRE"] = {"users": len(with_genre),
                                  "accuracy@1": _mean(p in t for p, t in zip(predicted, truth)),
                                  "baseline": {"model": "the user's most frequent history genre",
                                               "accuracy@1": _mean(bool(f) and f[0][0] in t
                                                                   for f, t in zip(favourite, truth))}}

    if "RATE_MOVIE" in tasks and rated:
        tops = top_items("RATE_MOVIE", rated, lambda row: tok.item_id(row[1]), k=len(data.vocab.ratings))
        expected = [sum(math.exp(lp) * tok.rating_of(i) for i, lp in top) for top in tops]
        truth = [users[u][2] for u in rated]
        overall = _mean(r for u in rated for r in users[u][3])
        own = [_mean(users[u][3]) if users[u][3] else overall for u in rated]

        def errors(predicted) -> dict:
            return {"MAE": _mean(abs(p - t) for p, t in zip(predicted, truth)),
                    "RMSE": math.sqrt(_mean((p - t) ** 2 for p, t in zip(predicted, truth)))}

        out["RATE_MOVIE"] = {"users": len(rated), "predicted": "expected rating under the model's distribution",
                             **errors(expected),
                             "baseline_mean_rating": {"rating": overall, **errors([overall] * len(rated))},
                             "baseline_user_mean": errors(own)}

    if "RECOMMEND_RATING" in tasks and rated:
        tops = items(top_items("RECOMMEND_RATING", rated, lambda row: tok.rating_id(row[2])))
        out["RECOMMEND_RATING"] = {"users": len(rated), **ranking(tops, rated),
                                   "baseline": {"model": "RECOMMEND top-10 (rating ignored)",
                                                **ranking([recommend[u] for u in rated], rated)}}
    return out

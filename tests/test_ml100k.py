"""Slow tests on the real MovieLens-100K from the recbole wheel."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from lsrec.bench.evaluate import PopularityRanker, evaluate
from lsrec.tokenizer.dataset import split_cases
from lsrec.tokenizer.dataset import DataConfig, prepare
from lsrec.tokenizer.formats import embedded_ml100k_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    return prepare(DataConfig(output=str(tmp_path_factory.mktemp("data") / "ml-100k")))


def test_counts_and_vocabulary(ml100k):
    counts = ml100k.manifest["counts"]
    assert counts == {"interactions_read": 100_000, "users": 943, "items": 1682, "interactions_kept": 100_000}
    assert len(ml100k.vocab.genres) == 19 and ml100k.vocab.ratings == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert ml100k.catalogue["1"]["title"] == "Toy Story (1995)"
    assert ml100k.catalogue["1"]["genres"] == ["Animation", "Children's", "Comedy"]


def test_preparing_twice_gives_the_same_hash(ml100k, tmp_path):
    again = prepare(DataConfig(output=str(tmp_path / "again")))
    assert again.split_hash == ml100k.split_hash


def test_split_matches_an_independent_reading_of_the_raw_file(ml100k):
    """Re-derive every user's last three items straight from ml-100k.inter (stable sort by time)."""
    rows = [line.split("\t") for line in (embedded_ml100k_dir() / "ml-100k.inter").read_text().splitlines()[1:]]
    by_user: dict[str, list[tuple[int, int, str]]] = {}
    for order, (user, item, _rating, ts) in enumerate(rows):
        by_user.setdefault(user, []).append((int(float(ts)), order, item))
    expected = {u: [item for _, _, item in sorted(events)] for u, events in by_user.items()}
    for seq in ml100k.sequences:
        assert seq.items == expected[seq.user]
    test = {c.user: c.target for c in split_cases(ml100k, "test")}
    valid = {c.user: c.target for c in split_cases(ml100k, "valid")}
    assert all(test[u] == expected[u][-1] and valid[u] == expected[u][-2] for u in expected)


def test_popularity_ndcg_matches_a_direct_computation(ml100k):
    cases = split_cases(ml100k, "test")
    metrics = evaluate(PopularityRanker([c.history for c in cases]), cases, 1682)
    counts = Counter(i for c in cases for i in c.history)
    order = [i for i, _ in counts.most_common()]
    total = 0.0
    for c in cases:
        seen = set(c.history)
        top = [i for i in order if i not in seen][:10]
        if c.target in top:
            total += 1 / math.log2(top.index(c.target) + 2)
    assert metrics["NDCG@10"] == pytest.approx(total / len(cases), abs=1e-12)
    assert 0.03 < metrics["NDCG@10"] < 0.06  # a popularity baseline on ML-100K, not a broken one


def test_a_few_epochs_of_lsrec_small_beat_popularity(ml100k, tmp_path):
    """Training works on real data: LSRec-small after 6 epochs ranks better than popularity."""
    from lsrec.bench.offline import evaluate_checkpoint, evaluate_popularity
    from lsrec.train.config import TrainConfig
    from lsrec.train.trainer import train

    cfg = TrainConfig(data=str(ml100k.folder), preset="small", multitask=False, max_epochs=6, patience=6,
                      output_dir=str(tmp_path / "ck"), runs_dir=str(tmp_path / "runs"), learning_rate=5e-3)
    folder = train(cfg, log=lambda *_: None)
    lsrec = evaluate_checkpoint(folder, split="valid")["all_users"]["NDCG@10"]
    popularity = evaluate_popularity(str(ml100k.folder), split="valid")["all_users"]["NDCG@10"]
    assert lsrec > 1.2 * popularity, (lsrec, popularity)

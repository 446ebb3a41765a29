"""Metric functions (lsrec.bench.metrics) and evaluation helpers (lsrec.bench.evaluate), by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from lsrec.bench.evaluate import PopularityRanker, evaluate, sample_users
from lsrec.tokenizer.dataset import Case, split_cases
from lsrec.bench.metrics import all_metrics, diversity, hit_rate, ndcg, target_ranks
from lsrec.tokenizer.dataset import PreparedData, UserSequence
from lsrec.tokenizer.vocab import Vocabulary

RANKS = [0, 2, None, 9]


@pytest.mark.parametrize("k, expected", [(1, 0.25), (2, 0.25), (3, 0.5), (5, 0.5), (9, 0.5), (10, 0.75), (20, 0.75)])
def test_hit_rate_by_hand(k, expected):
    assert hit_rate(RANKS, k) == pytest.approx(expected)


@pytest.mark.parametrize("k, expected", [
    (1, 0.25),                  # 1/log2(2) = 1, over 4 users
    (3, 0.375),                 # (1 + 1/log2(4)) / 4 = 1.5 / 4
    (5, 0.375),
    (10, 0.447266206579472),    # (1 + 0.5 + 1/log2(11)) / 4, 1/log2(11) = 0.28906482631788782
    (20, 0.447266206579472),
])
def test_ndcg_by_hand(k, expected):
    assert ndcg(RANKS, k) == pytest.approx(expected, abs=1e-12)


def test_ndcg_single_user_positions():
    assert ndcg([1], 5) == pytest.approx(0.6309297535714575)  # 1/log2(3)
    assert ndcg([4], 5) == pytest.approx(0.38685280723454163)  # 1/log2(6)
    assert ndcg([5], 5) == 0.0  # rank 5 is the sixth place: outside the top 5
    assert ndcg([None, None], 10) == 0.0
    assert hit_rate([None, 4], 5) == 0.5 and hit_rate([None, 5], 5) == 0.0


def test_target_ranks():
    tops = [["a", "b", "c"], ["c", "d"], ["x"], []]
    assert target_ranks(tops, ["a", "d", "y", "a"]) == [0, 1, None, None]
    with pytest.raises(ValueError):
        target_ranks(tops, ["a"])  # lists and targets must pair up


def test_diversity_small_lists():
    tops = [["a", "b", "c"], ["a", "d", "e"], ["b", "a", "f"]]
    assert diversity(tops, 1, 10) == pytest.approx(0.2)  # {a, b}
    assert diversity(tops, 2, 10) == pytest.approx(0.3)  # a,b | a,d | b,a -> {a, b, d}
    assert diversity(tops, 3, 10) == pytest.approx(0.6)  # {a, b, c, d, e, f}
    assert diversity(tops, 3, 6) == pytest.approx(1.0)
    assert diversity([["a"], ["a"]], 5, 4) == pytest.approx(0.25)


def test_all_metrics_by_hand():
    tops = [["t1", "x", "y"], ["x", "y", "t2"], ["x", "z", "y"]]
    out = all_metrics(tops, ["t1", "t2", "t3"], n_items=8, hr_ks=(1, 3), ndcg_ks=(3,), div_ks=(1, 3))
    assert out == pytest.approx({
        "HR@1": 1 / 3,
        "HR@3": 2 / 3,
        "NDCG@3": (1 + 0.5) / 3,
        "Div@1": 2 / 8,   # {t1, x}
        "Div@3": 5 / 8,   # {t1, x, y, t2, z}
    })


def _data(sequences: dict[str, list[str]]) -> PreparedData:
    items = sorted({i for s in sequences.values() for i in s})
    seqs = [UserSequence(u, s, None) for u, s in sequences.items()]
    return PreparedData(Path("."), {"sha256": "0" * 64}, seqs, {}, Vocabulary(items, [], []))


def test_split_cases_targets_and_histories():
    data = _data({"1": ["a", "b", "c", "d", "e"], "2": ["f", "g", "h", "i", "j", "k"]})
    test = split_cases(data, "test")
    assert test == [Case("1", ["a", "b", "c", "d"], "e"), Case("2", ["f", "g", "h", "i", "j"], "k")]
    valid = split_cases(data, "valid")
    assert valid == [Case("1", ["a", "b", "c"], "d"), Case("2", ["f", "g", "h", "i"], "j")]
    train = split_cases(data, "train")
    assert train == [Case("1", ["a", "b"], "c"), Case("2", ["f", "g", "h"], "i")]
    assert split_cases(data, "test", users=["2"]) == [Case("2", ["f", "g", "h", "i", "j"], "k")]
    assert split_cases(data) == test
    with pytest.raises(ValueError):
        split_cases(data, "validation")


def test_split_cases_on_prepared_data(prepared_ml100k):
    synthetic, data = prepared_ml100k
    expected = synthetic.expected_sequences()
    cases = split_cases(data, "test")
    assert len(cases) == len(expected)
    for case in cases:
        items, _ = expected[case.user]
        assert case.target == items[-1]
        assert case.history == items[:-1]
    for case in split_cases(data, "valid"):
        items, _ = expected[case.user]
        assert (case.history, case.target) == (items[:-2], items[-2])


def test_popularity_ranker_orders_by_count_and_excludes_history():
    histories = [["a", "b", "c"], ["b", "c"], ["c", "d"], ["c", "b", "e"]]
    # counts: c=4, b=3, a=1, d=1, e=1
    ranker = PopularityRanker(histories)
    assert [i for i, _ in ranker.order[:2]] == ["c", "b"]
    assert ranker.order[0] == ("c", 4.0) and ranker.order[1] == ("b", 3.0)
    out = ranker.rank([["c"], ["b", "c", "a"], [], ["x"]], k=3)
    assert [i for i, _ in out[0]][:1] == ["b"] and "c" not in [i for i, _ in out[0]]
    assert out[0][0] == ("b", 3.0)
    assert sorted(i for i, _ in out[1]) == ["d", "e"]  # only two unseen items are left
    assert [s for _, s in out[1]] == [1.0, 1.0]
    assert [i for i, _ in out[2]][:2] == ["c", "b"] and len(out[2]) == 3
    assert [s for _, s in out[2]] == [4.0, 3.0, 1.0]
    assert [i for i, _ in out[3]][:2] == ["c", "b"]
    for history, top in zip([["c"], ["b", "c", "a"], [], ["x"]], out):
        assert not set(history) & {i for i, _ in top}


def test_evaluate_with_popularity():
    cases = [Case("1", ["a", "b"], "c"), Case("2", ["c"], "a"), Case("3", ["a", "c"], "z")]
    ranker = PopularityRanker([c.history for c in cases])  # a=2, c=2, b=1
    out = evaluate(ranker, cases, n_items=4)
    # user 1: [c] -> rank 0; user 2: [a, b] -> rank 0; user 3: [b] -> miss
    assert out["users"] == 3
    assert out["HR@1"] == pytest.approx(2 / 3)
    assert out["NDCG@5"] == pytest.approx(2 / 3)
    assert out["Div@1"] == pytest.approx(3 / 4)  # {c, a, b}


def test_sample_users_is_seeded_subset():
    data = _data({str(u): ["a", "b", "c"] for u in range(50)})
    a = sample_users(data, 10, seed=3)
    assert a == sample_users(data, 10, seed=3)
    assert len(a) == len(set(a)) == 10 and set(a) <= {str(u) for u in range(50)}
    assert a != sample_users(data, 10, seed=4)
    assert sample_users(data, 100) == [str(u) for u in range(50)]


# Popularity bias (lsrec.bench.metrics): a=3, b=1, c=1 interactions, d never; catalogue of 4.
POPULARITY = {"a": 3, "b": 1, "c": 1}
BIAS_TOPS = [["a", "b"], ["a", "d"], ["c", "a"]]


def test_popularity_percentile_by_hand():
    from lsrec.bench.metrics import popularity_percentile

    # midrank: count 0 -> (0 + 0.5*1)/4, count 1 -> (1 + 0.5*2)/4, count 3 -> (3 + 0.5*1)/4
    assert popularity_percentile(POPULARITY, 4) == pytest.approx({0: 0.125, 1: 0.5, 3: 0.875})


@pytest.mark.parametrize("k, expected", [
    (1, (0.875 + 0.875 + 0.5) / 3),                                 # a, a, c
    (2, (0.875 + 0.5 + 0.875 + 0.125 + 0.5 + 0.875) / 6),           # a b | a d | c a  = 0.625
])
def test_mean_popularity_percentile_by_hand(k, expected):
    from lsrec.bench.metrics import mean_popularity_percentile

    assert mean_popularity_percentile(BIAS_TOPS, k, POPULARITY, 4) == pytest.approx(expected)
    # Recommending every catalogue item once gives exactly 0.5.
    assert mean_popularity_percentile([["a", "b", "c", "d"]], 4, POPULARITY, 4) == pytest.approx(0.5)


@pytest.mark.parametrize("tops, k, n_items, expected", [
    (BIAS_TOPS, 1, 4, 7 / 12),        # counts [0, 0, 1, 2]: sum |xi - xj| over ordered pairs 14 / (2 * 16 * 0.75)
    (BIAS_TOPS, 2, 4, 0.25),          # counts [1, 1, 1, 3]: 12 / (2 * 16 * 1.5)
    ([["a"], ["b"], ["c"], ["d"]], 1, 4, 0.0),   # every item equally often
    ([["a"], ["a"]], 1, 4, 0.75),     # one item takes every slot: (n - 1) / n
    ([["a"], ["a"]], 1, 8, 0.875),    # ... of a larger catalogue
    ([[], []], 5, 4, 0.0),            # nothing recommended
])
def test_gini_by_hand(tops, k, n_items, expected):
    from lsrec.bench.metrics import gini

    assert gini(tops, k, n_items) == pytest.approx(expected)


def test_all_metrics_adds_bias_figures_only_with_popularity():
    tops = [["t1", "x", "y"], ["x", "y", "t2"], ["x", "z", "y"]]
    plain = all_metrics(tops, ["t1", "t2", "t3"], n_items=8, hr_ks=(1,), ndcg_ks=(3,), div_ks=(1, 3))
    assert not any(key.startswith(("PopPct", "Gini")) for key in plain)
    out = all_metrics(tops, ["t1", "t2", "t3"], n_items=8, hr_ks=(1,), ndcg_ks=(3,), div_ks=(1, 3),
                      popularity={"x": 5, "y": 2, "t1": 1})
    assert {k: out[k] for k in plain} == plain  # the existing keys are unchanged
    # 8 items: 5 with count 0 -> 2.5/8; t1 (1) -> 5.5/8; y (2) -> 6.5/8; x (5) -> 7.5/8
    assert out["PopPct@1"] == pytest.approx((5.5 + 7.5 + 7.5) / 8 / 3)
    assert out["PopPct@3"] == pytest.approx((5.5 + 7.5 * 3 + 6.5 * 3 + 2.5 * 2) / 8 / 9)
    # Gini = sum over unordered pairs |xi - xj| / (n * total).
    # @1: counts [0]*6 + [1, 2]: 6*1 + 6*2 + 1 = 19, total 3
    assert out["Gini@1"] == pytest.approx(19 / (8 * 3))
    # @3: t1 1, x 3, y 3, t2 1, z 1 -> [0, 0, 0, 1, 1, 1, 3, 3]: 3*3*1 + 3*2*3 + 3*2*2 = 39, total 9
    assert out["Gini@3"] == pytest.approx(39 / (8 * 9))


def test_evaluate_reports_bias_from_visible_histories():
    cases = [Case("1", ["a", "b"], "c"), Case("2", ["c"], "a"), Case("3", ["a", "c"], "z")]
    ranker = PopularityRanker([c.history for c in cases])  # a=2, c=2, b=1; d never
    out = evaluate(ranker, cases, n_items=4)
    # top-1: c, a, b. Percentiles: d 0.5/4, b (1 + 0.5)/4, a and c (2 + 1)/4.
    assert out["PopPct@1"] == pytest.approx((0.75 + 0.75 + 0.375) / 3)
    assert out["Gini@1"] == pytest.approx(3 / (4 * 3))  # counts [0, 1, 1, 1]: pairs 3 * 1, total 3

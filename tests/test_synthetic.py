"""The synthetic-log generator: seeded, every item in the catalogue, ML-100K's shape, and read by
`lsrec data prepare` like any CSV."""

from __future__ import annotations

import numpy as np
import pytest

from lsrec.tokenizer.dataset import DataConfig, prepare
from lsrec.tokenizer.errors import LSRecError
from lsrec.tokenizer.synthetic import LENGTH_MAX, LENGTH_MIN, SyntheticConfig, generate, gini, write


def test_same_seed_same_log_and_ml100k_shape():
    cfg = SyntheticConfig(items=1682, output="unused.csv")
    frame = generate(cfg)
    assert frame.equals(generate(SyntheticConfig(items=1682, output="unused.csv")))
    assert not frame.equals(generate(SyntheticConfig(items=1682, output="unused.csv", seed=1)))
    assert cfg.users == 943
    lengths = frame.groupby("user").size()
    assert lengths.min() >= LENGTH_MIN and lengths.max() <= LENGTH_MAX + 5  # + the floor's few extra rows
    assert 80 <= lengths.mean() <= 125 and 50 <= lengths.median() <= 80  # ML-100K: 106 and 65
    counts = frame["item"].value_counts().to_numpy()
    assert len(counts) == 1682 and counts.min() >= 1
    assert gini(counts) == pytest.approx(0.63, abs=0.03)  # ML-100K's
    top = np.sort(counts)[::-1][: 1682 // 5].sum() / counts.sum()
    assert top == pytest.approx(0.65, abs=0.03)
    assert set(frame["rating"]) == {1, 2, 3, 4, 5}


def test_gini_by_hand():
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 4]) == pytest.approx(0.75)  # (n - 1) / n for one item holding everything


def test_every_item_reaches_the_prepared_catalogue(tmp_path):
    path = tmp_path / "synthetic.csv"
    stats = write(SyntheticConfig(items=5000, output=str(path), users=100, seed=3))
    assert stats["items"] == 5000 and stats["users"] == 100
    data = prepare(DataConfig(source=str(path), output=str(tmp_path / "prepared")))
    assert len(data.vocab.items) == 5000 and len(data.sequences) == 100
    assert data.manifest["counts"]["interactions_kept"] == stats["interactions"]


def test_bad_settings_are_one_clear_error(tmp_path):
    with pytest.raises(LSRecError, match="items must be at least 2"):
        SyntheticConfig(items=1, output="x.csv")
    with pytest.raises(LSRecError, match="name the file"):
        write(SyntheticConfig(items=10, output=str(tmp_path / "x.parquet")))

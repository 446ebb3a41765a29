"""`lsrec tables`: runs grouped by row and seed, mean ± std, the paired bootstrap on known inputs,
and the whole command on tiny synthetic data."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from lsrec.bench.metrics import ndcg_per_user
from lsrec.bench.tables import TablesConfig, find_runs, markdown, paired_bootstrap
from lsrec.tokenizer.errors import LSRecError


def test_ndcg_per_user_on_known_ranks():
    assert ndcg_per_user([0, 1, None, 9, 10], 10) == [1.0, 1 / math.log2(3), 0.0, 1 / math.log2(11), 0.0]


def test_bootstrap_of_a_constant_difference_is_exact():
    b = [0.1, 0.2, 0.0, 0.4] * 25
    a = [x + 0.05 for x in b]
    out = paired_bootstrap(a, b, resamples=500, seed=0)
    assert out["mean_diff"] == pytest.approx(0.05)
    assert out["diff_95"] == pytest.approx([0.05, 0.05])
    assert out["share_of_resamples_a_better"] == 1.0
    assert out["relative"] == pytest.approx(0.05 / 0.175)


def test_bootstrap_interval_covers_zero_for_a_coin_flip_and_not_for_a_clear_win():
    import random

    rng = random.Random(0)
    noise_a = [rng.random() for _ in range(400)]
    noise_b = [rng.random() for _ in range(400)]
    lo, hi = paired_bootstrap(noise_a, noise_b, 2000, 0)["diff_95"]
    assert lo < 0 < hi
    lo, hi = paired_bootstrap([x + 0.2 for x in noise_b], noise_b, 2000, 0)["diff_95"]
    assert 0.19 < lo <= hi < 0.21


def test_find_runs_groups_seeds_and_skips_other_splits_and_names(tmp_path):
    def fake(name, sha):
        (tmp_path / name).mkdir()
        (tmp_path / name / "lsrec.json").write_text(json.dumps(
            {"format": "lsrec-checkpoint/1", "split": {"sha256": sha}}))

    for name in ("sasrec-ce", "sasrec-ce-seed1", "sasrec-ce-seed2", "sasrec-ce-dropout0.5", "lsrec-small"):
        fake(name, "abc")
    fake("lsrec-small-seed3", "other-split")
    (tmp_path / "notes").mkdir()
    runs = find_runs(tmp_path, ["sasrec-ce", "lsrec-small", "lsrec-large"], "abc")
    assert [p.name for p in runs["sasrec-ce"]] == ["sasrec-ce", "sasrec-ce-seed1", "sasrec-ce-seed2"]
    assert [p.name for p in runs["lsrec-small"]] == ["lsrec-small"]
    assert runs["lsrec-large"] == []


def test_markdown_shows_mean_and_std_only_with_several_runs():
    cell = lambda values: {"mean": sum(values) / len(values), "std": 0.01 if len(values) > 1 else None, "runs": values}
    metrics = {f"all_users/{m}": cell([0.1]) for m in ("HR@1", "HR@10", "HR@20", "NDCG@10", "NDCG@20", "Div@1", "Div@10", "Div@20")}
    metrics |= {f"sampled_users/{m}": cell([0.2]) for m in ("NDCG@5", "HR@5", "Div@5")}
    many = {**metrics, "all_users/NDCG@10": cell([0.1, 0.12])}
    result = {"data": "data/x", "split_sha256": "f" * 64, "test_users": 5, "sampled_users": 5, "comparisons": [],
              "rows": {"one": {"runs": [], "metrics": metrics}, "three": {"runs": [{"parameters": 2_000_000}] * 3, "metrics": many}}}
    text = markdown(result)
    assert "| one | 1 | - | 0.1000 |" in text
    assert "| three | 3 | 2.00M | 0.1000 | 0.1000 | 0.1000 | 0.1100 ± 0.0100 |" in text


def test_config_errors():
    with pytest.raises(LSRecError, match="compare takes pairs of rows A:B"):
        TablesConfig(compare="lsrec-medium-mt,sasrec-ce")
    assert TablesConfig(compare="a:b, c:d").pairs == [["a", "b"], ["c", "d"]]


def test_tables_command_end_to_end(tmp_path):
    from test_sasrec import write_chain

    from lsrec.tokenizer.dataset import DataConfig, prepare

    data = prepare(DataConfig(source=str(write_chain(tmp_path)), output=str(tmp_path / "data")))
    cli = [sys.executable, "-m", "lsrec.cli"]
    for seed in (1, 2):
        subprocess.run([*cli, "baseline", "sasrec", "--data", str(data.folder), "--hidden", "8", "--max-epochs", "3",
                        "--output-dir", str(tmp_path / "ck"), "--name", f"sasrec-ce-seed{seed}", "--seed", str(seed)],
                       check=True, capture_output=True)
    subprocess.run([*cli, "baseline", "sasrec", "--data", str(data.folder), "--hidden", "8", "--max-epochs", "3",
                    "--loss", "bce", "--output-dir", str(tmp_path / "ck")], check=True, capture_output=True)
    out = tmp_path / "tables"
    proc = subprocess.run([*cli, "tables", "--data", str(data.folder), "--checkpoints", str(tmp_path / "ck"),
                           "--rows", "popularity,sasrec-bce,sasrec-ce,lsrec-small", "--compare", "sasrec-ce:popularity,sasrec-bce:lsrec-small",
                           "--bootstrap", "200", "--output", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(out.with_suffix(".json").read_text())
    assert list(result["rows"]) == ["popularity", "sasrec-bce", "sasrec-ce"]  # lsrec-small: not trained
    assert "lsrec-small: no checkpoint" in proc.stdout
    ce = result["rows"]["sasrec-ce"]
    assert [r["seed"] for r in ce["runs"]] == [1, 2]
    ndcg = ce["metrics"]["all_users/NDCG@10"]
    assert ndcg["mean"] == pytest.approx(sum(ndcg["runs"]) / 2) and ndcg["std"] is not None
    [comparison] = result["comparisons"]  # the pair with an untrained row is skipped
    assert comparison["a"] == "sasrec-ce" and comparison["users"] == result["test_users"]
    assert "comparison sasrec-bce vs lsrec-small skipped" in proc.stdout
    assert "± " in out.with_suffix(".md").read_text()

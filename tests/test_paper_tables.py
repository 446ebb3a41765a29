"""The documented one-command reproduction of the paper's tables, on a tiny file in ML-1M's format
(`::`-separated ratings.dat and movies.dat), as a user with a downloaded ML-1M or ML-10M would run it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "paper_tables.sh"


def write_ml1m(folder: Path, users=30, items=40, seed=0) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    lines, t = [], 978_300_000
    for u in range(1, users + 1):
        pos = rng.randrange(items)
        for _ in range(rng.randint(6, 14)):
            pos = (pos + rng.choice([1, 1, 2])) % items
            t += rng.randint(1, 100)
            lines.append(f"{u}::{pos + 1}::{rng.randint(1, 5)}::{t}")
    (folder / "ratings.dat").write_text("\n".join(lines) + "\n")
    genres = ["Action", "Comedy", "Drama"]
    (folder / "movies.dat").write_text("".join(
        f"{i}::Movie {i} ({1990 + i % 10})::{genres[i % 3]}|{genres[(i + 1) % 3]}\n" for i in range(1, items + 1)))


@pytest.mark.slow
def test_paper_tables_script_on_an_ml1m_format_folder(tmp_path):
    write_ml1m(tmp_path / "ml-1m")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "PRESETS": "small",
           "SEEDED_PRESET": "small", "SEEDS": "42 1", "RECIPE": "copies",
           "TRAIN_FLAGS": "--max-epochs 1 --batch-size 8 --eval-batch-size 16",
           "SASREC_FLAGS": "--max-epochs 2 --hidden 8 --max-len 20"}
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "ml-1m")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "data" / "ml-1m" / "manifest.json").read_text())
    assert manifest["format"] == "ml-1m"
    result = json.loads((tmp_path / "docs" / "results" / "tables-ml-1m.json").read_text())
    assert list(result["rows"]) == ["popularity", "sasrec-bce", "sasrec-ce", "lsrec-small", "lsrec-small-mt"]
    assert len(result["rows"]["sasrec-ce"]["runs"]) == 2 and len(result["rows"]["lsrec-small-mt"]["runs"]) == 2
    assert len(result["rows"]["lsrec-small"]["runs"]) == 1
    [comparison] = result["comparisons"]
    assert comparison["a"] == "lsrec-small-mt" and comparison["b"] == "sasrec-ce"
    assert (tmp_path / "docs" / "results" / "tables-ml-1m.md").read_text().startswith("Test split")

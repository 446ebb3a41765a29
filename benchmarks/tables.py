"""The paper's Tables 3 and 4 for any prepared dataset, from the checkpoints trained on it.

One row per model. A row's runs are the checkpoints named `<row>` or `<row>-seed<N>` whose split hash
matches the data; with several runs a cell is the mean and standard deviation over them. Every run is
ranked once on the test split through the shared evaluation: Table 3 uses all users, Table 4 the
seeded user sample at K=5. A paired bootstrap over users gives a 95% interval for the NDCG@10
difference between two rows (each user's NDCG@10 averaged over the row's runs).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lsrec.tokenizer.checkpoint import CHECKPOINTS
from lsrec.tokenizer.errors import LSRecError

from .metrics import TABLE3, TABLE4
DEFAULT_ROWS = ("popularity,sasrec-bce,sasrec-ce,lsrec-small,lsrec-small-mt,lsrec-medium,lsrec-medium-mt,"
                "lsrec-large,lsrec-large-mt")
SEEDED = re.compile(r"^(?P<row>.+)-seed(?P<seed>\d+)$")


@dataclass
class TablesConfig:
    data: str = field(default="data/ml-100k", metadata={"help": "prepared dataset folder"})
    checkpoints: str = field(default=CHECKPOINTS, metadata={"help": "folder holding the trained checkpoints"})
    rows: str = field(default=DEFAULT_ROWS, metadata={"help": "comma-separated rows, in order (popularity needs no checkpoint)"})
    compare: str = field(default="lsrec-medium-mt:sasrec-ce", metadata={"help": "pairs A:B, comma-separated: bootstrap "
                                                                       "interval of NDCG@10 A - B over users"})
    bootstrap: int = field(default=10000, metadata={"help": "bootstrap resamples"})
    sample_size: int = field(default=1000, metadata={"help": "users in the seeded sample (paper Table 4)"})
    seed: int = field(default=0, metadata={"help": "seed of the user sample and of the bootstrap"})
    output: str = field(default="docs/results/tables", metadata={"help": "writes <output>.json, <output>.md and "
                                                                 "<output>-valid-curves.png"})

    def __post_init__(self):
        if any(len(pair) != 2 for pair in self.pairs):
            raise LSRecError(f"compare takes pairs of rows A:B, comma-separated (got {self.compare!r})")
        if self.bootstrap < 100:
            raise LSRecError(f"bootstrap must be at least 100 resamples (got {self.bootstrap})")

    @property
    def pairs(self) -> list[list[str]]:
        return [[r.strip() for r in pair.split(":")] for pair in self.compare.split(",") if pair.strip()]

    def to_dict(self) -> dict:
        return asdict(self)


def find_runs(folder: str | Path, rows: list[str], split_hash: str) -> dict[str, list[Path]]:
    """Checkpoints named <row> or <row>-seed<N>, trained on the split with this hash."""
    from lsrec.tokenizer.checkpoint import is_checkpoint

    found: dict[str, list[Path]] = {row: [] for row in rows}
    for path in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else []:
        if not is_checkpoint(path):
            continue
        match = SEEDED.match(path.name)
        row = match["row"] if match else path.name
        if row in found and json.loads((path / "lsrec.json").read_text())["split"]["sha256"] == split_hash:
            found[row].append(path)
    return found


def paired_bootstrap(a: list[float], b: list[float], resamples: int, seed: int) -> dict:
    """95% percentile interval of mean(a - b) and of mean(a) / mean(b) - 1, users resampled with replacement."""
    import numpy as np

    a, b = np.asarray(a), np.asarray(b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(resamples, len(a)))
    diffs = (a[idx] - b[idx]).mean(1)
    rel = a[idx].mean(1) / np.maximum(b[idx].mean(1), 1e-12) - 1
    return {"users": len(a), "resamples": resamples, "mean_diff": float((a - b).mean()),
            "diff_95": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))],
            "relative": float(a.mean() / b.mean() - 1),
            "relative_95": [float(np.percentile(rel, 2.5)), float(np.percentile(rel, 97.5))],
            "share_of_resamples_a_better": float((diffs > 0).mean())}


def build_tables(cfg: TablesConfig, log=print) -> dict:
    import statistics

    from lsrec.tokenizer import dataset as prepared
    from lsrec.tokenizer.checkpoint import load_metadata
    from lsrec.tokenizer.dataset import split_cases

    from .evaluate import PopularityRanker, evaluate_protocols, sample_users
    from .offline import load_ranker

    data = prepared.load(cfg.data)
    rows = [r.strip() for r in cfg.rows.split(",") if r.strip()]
    cases = split_cases(data, "test")
    sampled_users = len(set(sample_users(data, cfg.sample_size, cfg.seed)))
    runs = find_runs(cfg.checkpoints, rows, data.split_hash)
    results: dict[str, dict] = {}

    def score_run(ranker) -> dict:
        return evaluate_protocols(ranker, data, "test", cfg.sample_size, cfg.seed, per_user=True)

    for row in rows:
        if row == "popularity":
            scored = [(None, score_run(PopularityRanker([c.history for c in cases])), {})]
        elif not runs[row]:
            log(f"{row}: no checkpoint in {cfg.checkpoints} for this split; row left out")
            continue
        else:
            scored = []
            for path in runs[row]:
                log(f"{row}: ranking {len(cases)} test users with {path}")
                ranker = load_ranker(path)
                meta = load_metadata(path).raw
                history = meta.get("history", [])
                info = {"checkpoint": str(path), "seed": (meta.get("train_config") or {}).get("seed"),
                        "parameters": sum(p.numel() for p in ranker.model.parameters()),
                        "best_epoch": meta.get("best_epoch"),
                        "epochs_run": history[-1]["epoch"] if history else None,
                        "train_minutes": round(history[-1]["seconds"] / 60, 1) if history else None,
                        "valid_ndcg10_by_epoch": [[h["epoch"], h["valid"]["NDCG@10"]] for h in history]}
                scored.append((path, score_run(ranker), info))
        per_user = [sum(vals) / len(vals) for vals in zip(*(s["ndcg10_per_user"] for _, s, _ in scored))]
        cells = {}
        for table in ("all_users", "sampled_users"):
            for metric in scored[0][1][table]:
                if metric == "users":
                    continue
                values = [s[table][metric] for _, s, _ in scored]
                cells[f"{table}/{metric}"] = {"mean": statistics.fmean(values),
                                              "std": statistics.stdev(values) if len(values) > 1 else None,
                                              "runs": values}
        results[row] = {"runs": [info for _, _, info in scored], "metrics": cells, "ndcg10_per_user": per_user}
    comparisons = []
    for a, b in cfg.pairs:
        if a in results and b in results:
            comparisons.append({"a": a, "b": b, **paired_bootstrap(
                results[a]["ndcg10_per_user"], results[b]["ndcg10_per_user"], cfg.bootstrap, cfg.seed)})
        else:
            log(f"comparison {a} vs {b} skipped: {', '.join(r for r in (a, b) if r not in results)} missing")
    for row in results.values():
        row.pop("ndcg10_per_user")
    return {"data": str(data.folder), "split_sha256": data.split_hash, "test_users": len(cases),
            "sampled_users": sampled_users, "config": cfg.to_dict(), "rows": results, "comparisons": comparisons}


def _cell(cell: dict) -> str:
    if cell["std"] is None:
        return f"{cell['mean']:.4f}"
    return f"{cell['mean']:.4f} ± {cell['std']:.4f}"


def markdown(result: dict) -> str:
    lines = [f"Test split of `{result['data']}` (sha256 {result['split_sha256'][:12]}), full ranking, history "
             f"excluded. Cells with ± are mean ± standard deviation over the runs (seeds).", "",
             f"**Table 3** (all {result['test_users']} users)", "",
             "| model | runs | params | " + " | ".join(TABLE3) + " |", "|" + " --- |" * (len(TABLE3) + 3)]
    for name, row in result["rows"].items():
        runs = row["runs"]
        params = f"{runs[0]['parameters'] / 1e6:.2f}M" if runs and runs[0].get("parameters") else "-"
        cells = [_cell(row["metrics"][f"all_users/{m}"]) for m in TABLE3]
        lines.append(f"| {name} | {len(runs) or 1} | {params} | " + " | ".join(cells) + " |")
    lines += ["", f"**Table 4** ({result['sampled_users']} seeded users, K=5)", "",
              "| model | " + " | ".join(TABLE4) + " |", "|" + " --- |" * (len(TABLE4) + 1)]
    for name, row in result["rows"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(row["metrics"][f"sampled_users/{m}"]) for m in TABLE4) + " |")
    if result["comparisons"]:
        lines += ["", "**Paired bootstrap** of NDCG@10 over users (each user's NDCG@10 averaged over a row's runs):", ""]
    for c in result["comparisons"]:
        lines += [f"- **{c['a']} vs {c['b']}** over {c['users']} users, {c['resamples']} resamples: "
                  f"difference {c['mean_diff']:+.4f} (95% interval {c['diff_95'][0]:+.4f} to {c['diff_95'][1]:+.4f}); relative "
                  f"{c['relative']:+.1%} ({c['relative_95'][0]:+.1%} to {c['relative_95'][1]:+.1%}); "
                  f"{c['a']} better in {c['share_of_resamples_a_better']:.1%} of resamples."]
    return "\n".join(lines) + "\n"


def plot_curves(result: dict, path: str | Path) -> bool:
    """Validation NDCG@10 per epoch, one line per run. False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, row in result["rows"].items():
        for i, run in enumerate(row["runs"]):
            curve = run.get("valid_ndcg10_by_epoch") or []
            if curve:
                ax.plot(*zip(*curve), label=name if i == 0 else None,
                        color=f"C{list(result['rows']).index(name) % 10}", alpha=1.0 if i == 0 else 0.45)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation NDCG@10")
    ax.set_title(f"Validation NDCG@10 per epoch ({Path(result['data']).name}; faint lines: other seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True

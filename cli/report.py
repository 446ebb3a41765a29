"""Readable tables for metrics and recommendations (rich), kept apart from the commands."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from lsrec.bench.metrics import TABLE4

console = Console()

ACCURACY = ("HR@", "NDCG@", "Div@")  # every cut-off of these is shown, in the order the metrics come
BIAS = ["PopPct@10", "Gini@10"]  # popularity bias; absent from results written before they existed


def metrics_table(title: str, results: dict[str, dict]) -> Table:
    """One column per model, one row per metric (narrow enough for any terminal).
    results: model name -> {"all_users": {...}, "sampled_users": {...}}"""
    table = Table(title=title)
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    shown = [m for m in next(iter(results.values()))["all_users"] if m.startswith(ACCURACY)]
    for metric in shown:
        table.add_row(metric, *[f"{res['all_users'][metric]:.4f}" for res in results.values()])
    for metric in BIAS:
        if all(metric in res["all_users"] for res in results.values()):
            table.add_row(metric, *[f"{res['all_users'][metric]:.4f}" for res in results.values()])
    users = next(iter(results.values()))["sampled_users"]["users"]
    for i, metric in enumerate(TABLE4):
        table.add_row(f"{metric} ({users} sampled users)", *[f"{res['sampled_users'][metric]:.4f}"
                                                             for res in results.values()],
                      end_section=False)
    return table


def recommendations_table(title: str, rows: list[tuple[str, str, float]]) -> Table:
    table = Table(title=title)
    table.add_column("rank", justify="right")
    table.add_column("item", justify="right")
    table.add_column("title")
    table.add_column("logprob", justify="right")
    for rank, (item, name, score) in enumerate(rows, 1):
        table.add_row(str(rank), item, name, f"{score:.3f}")
    return table


def aux_tasks_table(results: dict[str, dict]) -> Table:
    """One row per auxiliary-task metric: the model's value and its baseline's (lsrec.bench.aux_tasks)."""
    table = Table(title="auxiliary tasks (test split)")
    for column in ("task", "metric", "model", "baseline"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for task, res in results.items():
        baselines = {name: value for name, value in res.items() if name.startswith("baseline")}
        for metric, value in res.items():
            if not isinstance(value, float):
                continue
            for name, baseline in baselines.items():
                if metric in baseline:
                    label = baseline.get("model") or name.removeprefix("baseline_").replace("_", " ")
                    table.add_row(task, metric, f"{value:.4f}", f"{baseline[metric]:.4f} ({label})")
    return table

"""`lsrec eval`, `lsrec tables` and `lsrec bench`: measuring models, offline, served and under load."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .options import given, register
from .report import aux_tasks_table, console, metrics_table


def eval_command(
    checkpoint: Optional[str] = typer.Argument(None, help="checkpoint folder"),
    baseline: Optional[str] = typer.Option(None, help="evaluate a baseline instead: popularity"),
    data: Optional[str] = typer.Option(None, help="prepared dataset (default: the one the checkpoint records)"),
    split: str = typer.Option("test", help="test or valid"),
    sample_size: int = typer.Option(1000, help="users in the seeded sample (paper Table 4)"),
    seed: int = typer.Option(0, help="seed of the user sample"),
    output: Optional[str] = typer.Option(None, "--json", help="write the metrics as JSON here "
                                         "(default: <checkpoint>/eval_<split>.json)"),
    served: Optional[str] = typer.Option(None, help="rank through a running server at this URL instead of "
                                         "in-process (same split, masking rule and metrics)"),
    parity: bool = typer.Option(False, help="with --served: also rank in-process and report how many users' "
                                "top-10 lists agree exactly and the largest score and metric differences"),
    aux_tasks: bool = typer.Option(True, help="also measure the auxiliary tasks the model was trained on, each "
                                   "beside a simple baseline (in-process)"),
):
    """Full ranking over all items, history excluded: all users (Table 3) and 1,000 seeded users (Table 4)."""
    from lsrec.bench.offline import evaluate_checkpoint, evaluate_popularity, served_parity, write_json
    from lsrec.tokenizer.errors import LSRecError

    if split not in ("test", "valid"):
        raise LSRecError(f"split must be test or valid (got {split!r})")
    if baseline is not None:
        if baseline != "popularity":
            raise LSRecError(f"unknown baseline {baseline!r}; available: popularity")
        result = evaluate_popularity(data or "data/ml-100k", split, sample_size, seed)
    elif checkpoint is None:
        raise LSRecError("give a checkpoint folder, or --baseline popularity")
    elif parity:
        if not served:
            raise LSRecError("--parity compares with a server: give --served URL")
        with console.status(f"ranking every {split} user in-process and through {served}"):
            result = served_parity(checkpoint, served, data, split)
        console.print(f"{result['identical_top10']} of {result['users']} users have the same top-10 in the same "
                      f"order; largest logprob difference {result['max_abs_logprob_diff_top10']:.2e}; "
                      f"largest metric difference {result['max_abs_metric_diff']:.2e}")
        if output:
            write_json(result, output)
            console.print(f"written to {output}")
        return
    else:
        where = f" through {served}" if served else ""
        with console.status(f"ranking all items for every user ({split} split){where}"):
            result = evaluate_checkpoint(checkpoint, data, split, sample_size, seed, served=served,
                                         aux_tasks=aux_tasks)
        output = output or str(Path(checkpoint) / f"eval_{split}{'_served' if served else ''}.json")
    console.print(metrics_table(f"{result['model']} on the {split} split", {result["model"]: result}))
    if result.get("aux_tasks"):
        console.print(aux_tasks_table(result["aux_tasks"]))
    if output:
        write_json(result, output)
        console.print(f"metrics written to {output}")


def tables_command(**options):
    """Paper Tables 3 and 4 for a prepared dataset from its trained checkpoints (seeds as mean ± std),
    a paired bootstrap interval of an NDCG@10 difference, and validation curves as a PNG."""
    from lsrec.bench.offline import write_json
    from lsrec.bench.tables import TablesConfig, build_tables, markdown, plot_curves

    cfg = TablesConfig(**given(options))
    result = build_tables(cfg, log=console.print)
    text = markdown(result)
    write_json(result, f"{cfg.output}.json")
    Path(f"{cfg.output}.md").write_text(text)
    console.print(text)
    written = [f"{cfg.output}.json", f"{cfg.output}.md"]
    if plot_curves(result, f"{cfg.output}-valid-curves.png"):
        written.append(f"{cfg.output}-valid-curves.png")
    else:
        console.print("no plot: matplotlib is not installed (pip install 'lsrec[bench]')")
    console.print("written: " + ", ".join(written))


def bench_command(checkpoint: str = typer.Argument(..., help="checkpoint folder (its split gives the requests' "
                                                   "histories)"),
                  server_args: Optional[list[str]] = typer.Argument(None, help="after --: vLLM flags for a server "
                                                                    "this command starts"),
                  **options):
    """Sweep concurrency levels against an LSRec endpoint; report requests/s, items/s, latency
    percentiles and errors, with the references measured in the same run."""
    from lsrec.bench.bench import BenchConfig, run_bench

    run_bench(BenchConfig(checkpoint=checkpoint, server_args=list(server_args or []), **given(options)), console)


def add_commands(app: typer.Typer) -> None:
    from lsrec.bench.bench import BenchConfig
    from lsrec.bench.tables import TablesConfig

    app.command("eval")(eval_command)
    register(app, "tables", tables_command, TablesConfig)
    register(app, "bench", bench_command, BenchConfig, skip=("checkpoint", "server_args"))

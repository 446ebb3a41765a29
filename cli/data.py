"""`lsrec data`: raw interactions -> a prepared dataset (the split and the tokenizer)."""

from __future__ import annotations

from typing import Optional

import typer

from .report import console

data_app = typer.Typer(help="Prepare interaction data.", no_args_is_help=True)


@data_app.command("prepare")
def data_prepare(
    source: Optional[str] = typer.Argument(None, help="MovieLens folder (ml-100k, ml-1m, ml-10m, ml-20m...), CSV or "
                                           "Parquet of user,item,timestamp[,rating], or a packaged release by name: "
                                           "ml-100k (the default) or ml-1m"),
    items: Optional[str] = typer.Option(None, help="items file (item,title,genres) for a CSV/Parquet source"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="folder for the prepared dataset "
                                         "\\[default: data/<source name>]", show_default=False),
    min_interactions: int = typer.Option(5, help="drop users with fewer interactions (paper: 5)"),
    overwrite: bool = typer.Option(False, help="replace an existing prepared folder"),
):
    """Order each user's interactions by time, drop short users, write the split and the tokenizer."""
    from lsrec.tokenizer.dataset import DataConfig, prepare

    cfg = DataConfig(source=source, items=items, output=output, min_interactions=min_interactions,
                     overwrite=overwrite)
    with console.status(f"preparing {source or 'ml-100k'}"):
        data = prepare(cfg)
    c = data.manifest["counts"]
    console.print(f"[green]prepared[/] {data.folder}: {c['users']:,} users, {c['items']:,} items, "
                  f"{c['interactions_kept']:,} interactions (sha256 {data.split_hash[:12]})")


@data_app.command("synthetic")
def data_synthetic(
    items: int = typer.Option(..., help="catalogue size (every item gets at least one interaction)"),
    output: str = typer.Option(..., "--output", "-o", help="CSV file to write (user,item,timestamp,rating)"),
    users: int = typer.Option(0, help="users (0: max(943, items / 30))"),
    seed: int = typer.Option(0, help="random seed; the same seed writes the same file"),
):
    """Write a seeded synthetic log shaped like ML-100K (popularity skew, history lengths, ratings) at any
    catalogue size, for speed and memory measurements; `lsrec data prepare FILE` reads it."""
    from lsrec.tokenizer.synthetic import SyntheticConfig, write

    cfg = SyntheticConfig(items=items, output=output, users=users, seed=seed)
    with console.status(f"writing {cfg.items:,} items, {cfg.users:,} users"):
        stats = write(cfg)
    console.print(f"[green]written[/] {output}: {stats['users']:,} users, {stats['items']:,} items, "
                  f"{stats['interactions']:,} interactions; Gini {stats['gini']:.2f}, top 20% of items "
                  f"{stats['top_20_percent_share']:.0%} of interactions, {stats['single_interaction_items']:.0%} "
                  f"of items seen once")


def add_commands(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")

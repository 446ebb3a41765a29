class LSRecError(Exception):
    """A problem with the user's input or setup. The CLI prints it as one line and exits 1."""


def run_cli(app) -> None:
    """The one error boundary of our commands: an LSRecError prints one red line and exits 1
    (LSREC_DEBUG=1 shows the traceback instead)."""
    import os
    import sys

    try:
        app()
    except LSRecError as exc:
        if os.environ.get("LSREC_DEBUG"):
            raise
        from rich.console import Console

        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)

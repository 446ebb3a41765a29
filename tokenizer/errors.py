class LSRecError(Exception):
    """A problem with the user's input or setup. The CLI prints it as one line and exits 1."""


def require_at_least_one(config, *names: str) -> None:
    """The config check every run config shares: each named field must be 1 or more; the error names it."""
    for name in names:
        if getattr(config, name) < 1:
            raise LSRecError(f"{name} must be at least 1 (got {getattr(config, name)})")

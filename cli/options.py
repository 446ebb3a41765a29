"""typer options generated from a config dataclass, so the dataclass stays the single source of truth:
one flag per field, its help text, default and short flags (metadata "short") from the field."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Optional

import typer


def options_from(config_cls, skip=()) -> list[inspect.Parameter]:
    """One keyword parameter per field of `config_cls` (but `skip`). Every default is None, meaning
    "not given", so a recipe can fill the rest; the help shows the field's default."""
    params = []
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        kind = {"bool": bool, "int": int, "float": float}.get(str(f.type).split(" | ")[0], str)
        flag = "--" + f.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag, *f.metadata.get("short", ())]
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f" \\[default: {'on' if default is True else 'off' if default is False else default}]"
        option = typer.Option(None, *decls, help=f.metadata.get("help", "") + shown, show_default=False)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=Optional[kind]))
    return params


def register(typer_app: typer.Typer, name: str, command, config_cls, skip=(), own_options=None) -> None:
    """Register `command` with one flag per field of `config_cls` (but `skip`) after its own parameters;
    `own_options` replaces the typer.Option of some of those own parameters."""
    own = [p.replace(default=(own_options or {}).get(p.name, p.default))
           for p in inspect.signature(command).parameters.values() if p.kind != p.VAR_KEYWORD]
    command.__signature__ = inspect.Signature([*own, *options_from(config_cls, skip)])
    typer_app.command(name)(command)


def given(values: dict) -> dict:
    """The options the user gave (typer passes None for the others)."""
    return {k: v for k, v in values.items() if v is not None}

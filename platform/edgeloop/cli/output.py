"""Rendering results as tables or JSON, progress and error lines.

Results go to stdout (so ``--output json`` pipes cleanly); progress, warnings
and errors go to stderr.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table


@dataclass
class State:
    """Options shared by every command (set by the root callback)."""

    output: str = "table"
    quiet: bool = False
    verbose: int = 0


def state(ctx: typer.Context) -> State:
    """The shared options, with defaults when a command runs without the root."""
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def stderr() -> Console:
    """Console for progress and messages.

    Bound to the stderr of the moment it is made: long runs redirect
    ``sys.stderr`` into a log file, and progress must still reach the user.
    """
    return Console(file=sys.stderr, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """One readable error line on stderr."""
    first = " ".join(str(message).split("\n")[0].split())
    typer.echo(f"error: {first}", err=True)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def emit(ctx: typer.Context, data: Any, title: str | None = None) -> None:
    """Print a result: a list of dicts as a table, a dict as key/value rows."""
    if state(ctx).output == "json":
        typer.echo(json.dumps(data, indent=2, default=str, sort_keys=True))
        return
    console = Console(highlight=False, soft_wrap=True)
    if isinstance(data, list):
        columns = list(dict.fromkeys(k for row in data for k in row))
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in data:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        if not data:
            console.print(f"{title or 'result'}: none")
            return
        console.print(table)
        return
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        table.add_row(str(key), _cell(value))
    console.print(table)

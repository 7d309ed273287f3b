"""Rendering results as tables or JSON, progress and error lines.

Results go to stdout (so ``--output json`` pipes cleanly); progress, warnings
and errors go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table


@dataclass
class State:
    """Options shared by every command (set by the root callback)."""

    output: str = "table"
    quiet: bool = False
    verbose: int = 0
    wide: bool = False
    """Tables show every cell in full (``-o wide`` or ``--wide``)."""


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


@contextmanager
def progress_bar(
    ctx: typer.Context, what: str
) -> Iterator[Callable[[int, int, str], None]]:
    """A live progress bar on stderr for long work; silent off a terminal, with -q or -o json.

    Yields ``update(done, total, detail)``.
    """
    console = stderr()
    options = state(ctx)
    quiet = options.quiet or options.output == "json" or not console.is_terminal
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}", style="dim"),
        console=console,
        disable=quiet,
        transient=False,
    ) as bar:
        task = bar.add_task(what, total=None, detail="")

        def update(done: int, total: int, detail: str) -> None:
            bar.update(task, completed=done, total=total, detail=detail)

        yield update


def error_line(message: str) -> None:
    """One readable error line on stderr."""
    first = " ".join(str(message).split("\n")[0].split())
    typer.echo(f"error: {first}", err=True)


NARROW_CELL = 36
"""Longest cell of a table before it is elided in the middle (not with ``--wide``)."""


def elide(text: str, limit: int = NARROW_CELL) -> str:
    """``text`` cut in the middle to ``limit`` characters: names keep both ends."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _cell(value: Any) -> str:
    """A value as one table cell: nested data as ``key=value`` pairs, never JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, dict) for v in value):
            return f"{len(value)} items"
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in flatten(value).items())
    return str(value)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists of mappings as ``key[i].field``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{name}."))
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, dict) for v in value)
        ):
            for i, item in enumerate(value):
                out.update(flatten(item, f"{name}[{i}]."))
        else:
            out[name] = value
    return out


def emit(ctx: typer.Context, data: Any, title: str | None = None) -> None:
    """Print a result: a list of dicts as a table, a dict as key/value rows.

    Tables stay readable at 80 columns: nested data is flattened into dotted
    keys (key/value tables) or ``key=value`` pairs (row tables), never JSON in
    a cell; long names (no spaces) are elided in the middle unless ``--wide``,
    sentences wrap.
    """
    options = state(ctx)
    if options.output == "json":
        typer.echo(json.dumps(data, indent=2, default=str, sort_keys=True))
        return
    wide = options.wide or options.output == "wide"

    def cell(value: Any) -> str:
        # names, hashes, URIs and nested data are cut in the middle (all of it
        # with --wide or -o json); prose wraps instead
        text = _cell(value)
        if wide or (any(c.isspace() for c in text) and not isinstance(value, dict)):
            return text
        return elide(text)

    console = Console(highlight=False, soft_wrap=wide)
    if isinstance(data, list):
        if not data:
            console.print(f"{title or 'result'}: none")
            return
        columns = list(dict.fromkeys(k for row in data for k in row))
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in data:
            table.add_row(*(cell(row.get(c)) for c in columns))
        console.print(table)
        return
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold", overflow="fold")
    table.add_column("value", overflow="fold")
    for key, value in flatten(data).items():
        table.add_row(str(key), cell(value))
    console.print(table)

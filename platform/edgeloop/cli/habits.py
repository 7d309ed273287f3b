"""kubectl habits for the root command: global flags anywhere, one-line usage errors.

``edgeloop models list -o json`` works like ``edgeloop -o json models list``:
the root's own flags (``-o/--output``, ``-v``, ``-q``) are moved in front of
the noun before click parses, as kubectl accepts ``kubectl get pods -o json``.
Nothing after ``--`` moves. Usage errors are one line and a hint, like every
other error, instead of click's boxed usage block.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from typing import Any

import typer

from edgeloop.cli.output import error_line

# Typer vendors click (typer._click): its exceptions, found without naming the
# private module
_exceptions = sys.modules[typer.BadParameter.__module__]
_USAGE: type[Exception] = _exceptions.UsageError
_CLICK: type[Exception] = _exceptions.ClickException
_NO_ARGS: type[Exception] = _exceptions.NoArgsIsHelpError

_FLAGS = {"-q", "--quiet", "--verbose", "--wide"}
_VERBOSE = re.compile(r"^-v+$")
_WITH_VALUE = {"-o", "--output"}


def hoist_global_options(args: Sequence[str]) -> list[str]:
    """The root's flags moved to the front, in order; everything else untouched.

    Raises:
        ValueError: ``-o``/``--output`` is the last word, with no value.
    """
    front: list[str] = []
    rest: list[str] = []
    items = list(args)
    i = 0
    while i < len(items):
        arg = items[i]
        if arg == "--":
            rest.extend(items[i:])
            break
        if arg in _WITH_VALUE:
            if i + 1 == len(items) or items[i + 1] == "--":
                raise ValueError(f"option '{arg}' needs a value: table, wide or json")
            front.extend(items[i : i + 2])
            i += 2
            continue
        joined = arg.startswith("--output=") or (arg.startswith("-o") and len(arg) > 2)
        if joined or arg in _FLAGS or _VERBOSE.match(arg):
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def run_main(group: Any, main: Any, args: Sequence[str] | None, **kw: Any) -> Any:
    """Run click's ``main`` non-standalone; usage errors become one line (exit 2)."""
    try:
        argv = hoist_global_options(sys.argv[1:] if args is None else args)
    except ValueError as exc:
        error_line(f"{exc} (see 'edgeloop --help')")
        sys.exit(2)
    standalone = kw.pop("standalone_mode", True)
    if not standalone:
        return main(argv, standalone_mode=False, **kw)
    try:
        outcome = main(argv, standalone_mode=False, **kw)
    except _NO_ARGS as exc:  # a bare noun: its help, as before
        ctx = getattr(exc, "ctx", None)
        typer.echo(ctx.get_help() if ctx else str(exc))
        sys.exit(0)
    except _USAGE as exc:
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx else "edgeloop"
        message = exc.format_message().replace("Value error, ", "")  # type: ignore[attr-defined]
        error_line(f"{message} (see '{where} --help')")
        sys.exit(getattr(exc, "exit_code", 2))
    except _CLICK as exc:
        error_line(exc.format_message())  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 1))
    except typer.Abort:
        error_line("aborted")
        sys.exit(1)
    sys.exit(outcome if isinstance(outcome, int) else 0)

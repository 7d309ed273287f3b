"""The ``edgeloop`` command line: one Typer sub-app per noun.

Commands parse arguments, call a service function and render its result with
``--output table|json`` (accepted after the verb too: :mod:`.habits`). Every
error the platform raises on purpose reaches the user as one line on stderr and
exit code 1; usage errors are one line with a hint and exit 2.
"""

from __future__ import annotations

import logging
import sys
from enum import StrEnum
from typing import Any

import typer
from typer.core import TyperGroup

from edgeloop.cli import (
    alarms,
    audit,
    data,
    demo,
    intake,
    labels,
    loop,
    models,
    monitor,
    pipeline,
    rollouts,
    triggers,
)
from edgeloop.cli.output import State, error_line
from edgeloop.core.errors import EdgeloopError


class OutputFormat(StrEnum):
    """How results are printed."""

    table = "table"
    wide = "wide"
    json = "json"


def click_exceptions() -> type[BaseException]:
    """Usage errors and the like: Typer prints those itself."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Group(TyperGroup):
    """Root group that turns our errors into one readable line and exit code 1."""

    def main(self, args: Any = None, *rest: Any, **kw: Any) -> Any:
        """Global flags anywhere (``models list -o json``), usage errors as one line."""
        from edgeloop.cli.habits import run_main

        def click_main(argv: list[str], **options: Any) -> Any:
            return super(_Group, self).main(argv, *rest, **options)

        return run_main(self, click_main, args, **kw)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except EdgeloopError as exc:
            error_line(str(exc))
            raise typer.Exit(code=1) from exc
        except OSError as exc:
            error_line(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
            raise typer.Exit(code=1) from exc
        except KeyboardInterrupt as exc:
            error_line("interrupted; every process this command started was stopped")
            raise typer.Exit(code=130) from exc
        except (typer.Exit, typer.Abort, click_exceptions()):
            raise
        except Exception as exc:  # a bug: one line, the traceback only when asked
            if getattr(ctx.obj, "verbose", 0) >= 2:
                raise
            error_line(
                f"internal error ({type(exc).__name__}: {exc}); this is a bug, "
                "rerun with -vv for the traceback"
            )
            raise typer.Exit(code=1) from exc


app = typer.Typer(
    cls=_Group,
    help="edgeloop: train, gate, roll out, score offline, watch drift, retrain.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # --install-completion / --show-completion for bash, zsh, fish, powershell
    add_completion=True,
)
app.add_typer(data.app, name="data")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(models.app, name="models")
app.add_typer(rollouts.app, name="rollout")
app.add_typer(rollouts.controller_app, name="controller")
app.add_typer(intake.app, name="intake")
app.add_typer(triggers.app, name="triggers")
app.add_typer(monitor.app, name="monitor")
app.add_typer(labels.app, name="labels")
app.add_typer(audit.app, name="audit")
app.add_typer(loop.app, name="loop")
app.add_typer(alarms.app, name="alarms")
app.command("retrain")(triggers.retrain)
app.command("demo")(demo.demo)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"edgeloop {version('edgeloop')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    output: OutputFormat = typer.Option(
        OutputFormat.table, "--output", "-o", help="Result format."
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output (-vv for debug)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only results and errors."),
    wide: bool = typer.Option(
        False, "--wide", help="Tables show every cell in full (same as -o wide)."
    ),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print edgeloop's version and exit.",
    ),
) -> None:
    """Configure logging and the output format once for every command."""
    level = (
        logging.ERROR
        if quiet
        else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = State(output=output.value, quiet=quiet, verbose=verbose, wide=wide)


def main() -> None:
    """Console-script entry point."""
    app()

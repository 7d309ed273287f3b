"""``edgeloop intake``: run the intake service, issue per-node tokens."""

from __future__ import annotations

import typer

from edgeloop.cli.output import emit

app = typer.Typer(help="Intake of agent reports: serve, token.", no_args_is_help=True)
token_app = typer.Typer(help="Per-node bearer tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.command()
def serve(
    host: str | None = typer.Option(
        None, help="Bind address (default from EDGELOOP_INTAKE__HOST)."
    ),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port (default from EDGELOOP_INTAKE__PORT)."
    ),
) -> None:
    """Serve POST /v1/reports and GET /v1/fleet."""
    import uvicorn

    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.app import create_app

    settings = load_settings()
    uvicorn.run(
        create_app(settings),
        host=host or settings.intake.host,
        port=port or settings.intake.port,
        log_level="info",
        access_log=False,
    )


@token_app.command("create")
def create(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="Node name the token is for."),
) -> None:
    """Create (or replace) a node's token and print it once; only its hash is stored."""
    from edgeloop.core.errors import UsageError
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    if not node or len(node) > 253 or any(c.isspace() for c in node):
        raise UsageError(f"invalid node name {node!r}")
    token = IntakeStore.from_settings(load_settings()).create_token(node)
    emit(ctx, {"node": node, "token": token})

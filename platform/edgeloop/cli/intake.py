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
    from edgeloop_agent.contracts.asgi_limits import guarded_http_protocol

    settings = load_settings()

    uvicorn.run(
        create_app(settings),
        host=host or settings.intake.host,
        port=port or settings.intake.port,
        log_level="info",
        access_log=False,
        http=guarded_http_protocol(settings.intake.header_timeout_s),
        limit_concurrency=settings.intake.max_connections,
    )


@token_app.command("create")
def create(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="Node name the token is for."),
    site: str = typer.Option(
        "", "--site", help="Pin the node's site (else its first report pins it)."
    ),
    cohort: str = typer.Option("", "--cohort", help="Pin the node's cohort."),
    reader: bool = typer.Option(
        False,
        "--reader",
        help="A reader token (GET /v1/fleet, /v1/cohorts) for NAME, not a node token.",
    ),
) -> None:
    """Create (or replace) a node's token and print it once; only its hash is stored."""
    from edgeloop.core.errors import UsageError
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    _check_node(node)
    store = IntakeStore.from_settings(load_settings())
    if reader and (site or cohort):
        raise UsageError("--site and --cohort are for node tokens, not --reader")
    token = store.create_token(node, site, cohort, "reader" if reader else "node")
    if reader:
        emit(ctx, {"reader": node, "token": token})
        return
    emit(ctx, {"node": node, "token": token, "site": site or "(first report)"})


@token_app.command("rotate")
def rotate(
    ctx: typer.Context,
    node: str = typer.Argument(..., help="Node whose token to rotate."),
    window_hours: float = typer.Option(
        24.0, "--window-hours", min=0, help="How long the old token stays valid."
    ),
) -> None:
    """Issue a new token; the old one keeps working for --window-hours (then stops)."""
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    _check_node(node)
    store = IntakeStore.from_settings(load_settings())
    token, until = store.rotate_token(node, window_hours * 3600)
    emit(
        ctx, {"node": node, "token": token, "old_token_valid_until": until.isoformat()}
    )


def _check_node(node: str) -> None:
    from edgeloop.core.errors import UsageError

    if not node or len(node) > 253 or any(c.isspace() for c in node):
        raise UsageError(f"invalid node name {node!r}")

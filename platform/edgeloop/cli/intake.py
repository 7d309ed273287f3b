"""``edgeloop intake``: run the intake service, issue per-node tokens."""

from __future__ import annotations

from pathlib import Path

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
    import gc
    import sys

    import uvicorn

    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.app import create_app
    from edgeloop_agent.contracts.asgi_limits import guarded_http_protocol

    settings = load_settings()
    app = create_app(settings)
    # what the imports and the app built lives as long as the process: out of
    # the collector's way, so a full collection walks only what requests made
    # (its pauses are in /healthz's p99 while a fleet onboards)
    gc.freeze()
    sys.setswitchinterval(settings.intake.switch_interval_ms / 1000)
    uvicorn.run(
        app,
        host=host or settings.intake.host,
        port=port or settings.intake.port,
        log_level="info",
        access_log=False,
        http=guarded_http_protocol(settings.intake.header_timeout_s),
        limit_concurrency=settings.intake.max_connections,
    )


@app.command()
def prune(ctx: typer.Context) -> None:
    """Apply the retention policy once (EDGELOOP_INTAKE__RETENTION__*).

    A serving intake does this every retention.interval_s; run it from a
    CronJob instead when that is 0.
    """
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    settings = load_settings()
    store = IntakeStore.existing(settings)
    if store is None:
        emit(ctx, {"removed": 0, "note": "no intake database yet"})
        return
    result = store.prune()
    emit(
        ctx,
        {
            "removed": result.total(),
            **{f"removed_{kind}": n for kind, n in sorted(result.removed.items())},
            "heartbeat_days_summarised": result.heartbeat_days,
            "partitions_compacted": result.compacted,
            "partitions_expired": result.expired,
        },
    )


@token_app.command("create")
def create(
    ctx: typer.Context,
    node: str | None = typer.Argument(
        None, help="Node name the token is for (or --inventory for many)."
    ),
    site: str = typer.Option(
        "", "--site", help="Pin the node's site (else its first report pins it)."
    ),
    cohort: str = typer.Option("", "--cohort", help="Pin the node's cohort."),
    reader: bool = typer.Option(
        False,
        "--reader",
        help="A reader token (GET /v1/fleet, /v1/cohorts) for NAME, not a node token.",
    ),
    inventory: Path | None = typer.Option(
        None,
        "--inventory",
        help="Every node of a fleet: CSV (node,site[,cohort]) or YAML/JSON list.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="With --inventory: DIR/<site>/<node> token files and DIR/secrets/*.yaml.",
    ),
    reissue: bool = typer.Option(
        False, "--reissue", help="With --inventory: replace tokens that exist."
    ),
) -> None:
    """Create (or replace) a node's token and print it once; only its hash is stored.

    With --inventory, every node without a token gets one in one transaction;
    re-running is idempotent (existing tokens are kept unless --reissue).
    """
    from edgeloop.core.errors import UsageError
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore

    if inventory is not None:
        if node is not None or site or cohort or reader:
            raise UsageError(
                "--inventory takes node, site and cohort from the file; give no NODE, --site, --cohort or --reader"
            )
        if out is None:
            raise UsageError("--inventory needs --out DIR for the token files")
        _create_from_inventory(ctx, inventory, out, reissue)
        return
    if node is None:
        raise UsageError("give a NODE name, or --inventory FILE --out DIR")
    if out is not None or reissue:
        raise UsageError("--out and --reissue go with --inventory")
    _check_node(node)
    store = IntakeStore.from_settings(load_settings())
    if reader and (site or cohort):
        raise UsageError("--site and --cohort are for node tokens, not --reader")
    token = store.create_token(node, site, cohort, "reader" if reader else "node")
    if reader:
        emit(ctx, {"reader": node, "token": token})
        return
    emit(ctx, {"node": node, "token": token, "site": site or "(first report)"})


def _create_from_inventory(
    ctx: typer.Context, inventory: Path, out: Path, reissue: bool
) -> None:
    from edgeloop.cli.output import stderr
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake import inventory as fleet
    from edgeloop.monitor.intake.store import IntakeStore

    nodes = fleet.read_inventory(inventory)
    store = IntakeStore.from_settings(load_settings())
    issued = fleet.issue(store.engine, nodes, reissue)
    manifests = fleet.write_tokens(out, nodes, issued)
    missing = fleet.missing_files(out, nodes, issued)
    if missing:
        stderr().print(
            f"warning: {len(missing)} node(s) kept a token issued elsewhere and have no file in "
            f"{out} (first: {missing[0]}); their Secret lacks them: --reissue to replace them"
        )
    emit(
        ctx,
        {
            "nodes": len(nodes),
            "issued": len(issued.tokens),
            "kept": len(issued.kept),
            "sites": len(manifests),
            "secrets": str(out / "secrets"),
        },
    )


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

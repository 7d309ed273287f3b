"""``edgeloop models``: list, show, promote, lineage, export registered models."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from edgeloop.cli.output import emit, stderr

if TYPE_CHECKING:
    from edgeloop.provenance.registry import Registry

app = typer.Typer(
    help="Registered models: list, show, promote, lineage, export.",
    no_args_is_help=True,
)


def _registry() -> Registry:
    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.registry import Registry

    return Registry(load_settings().tracking_uri())


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every registered model with its versions and aliases."""
    emit(ctx, _registry().list_models(), title="models")


@app.command()
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
) -> None:
    """One version: aliases, bundle location and sha256, each gate with its detail, metrics."""
    from edgeloop.cli import model_view
    from edgeloop.provenance.registry import parse_ref

    registry = _registry()
    info = registry.show(parse_ref(ref))
    info["created"] = model_view.readable_time(int(info["created"]))
    extra = model_view.details(registry, info["name"], int(info["version"]))
    summary = {k: v for k, v in info.items() if k not in ("metrics", "lineage")}
    model_view.show(ctx, summary, {**extra, "lineage": info["lineage"]})


@app.command()
def promote(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME:VERSION."),
    alias: str = typer.Option("champion", "--alias", help="Alias to move."),
) -> None:
    """Point an alias (default champion) at a version."""
    from edgeloop.provenance.registry import parse_ref

    emit(ctx, _registry().promote(parse_ref(ref), alias))


@app.command()
def lineage(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
) -> None:
    """The whole chain: data partitions, run and its trigger, bundle, rollout waves, nodes, drift, next version."""
    from edgeloop.core.settings import load_settings
    from edgeloop.monitor.intake.store import IntakeStore
    from edgeloop.provenance.lineage import chain
    from edgeloop.provenance.registry import parse_ref

    settings = load_settings()
    fleet = IntakeStore.existing(settings)
    emit(
        ctx, chain(settings, _registry(), parse_ref(ref), fleet).model_dump(mode="json")
    )


@app.command()
def export(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="NAME, NAME@ALIAS or NAME:VERSION."),
    out: Path | None = typer.Option(
        None, "--out", help="New or empty directory for the bundle files."
    ),
    to: str = typer.Option(
        "",
        "--to",
        help="Push as an OCI artifact instead: oci://REGISTRY/REPO:TAG.",
    ),
    plain_http: list[str] = typer.Option(
        [],
        "--plain-http",
        help="Registry HOST:PORT reached over plain HTTP (loopback always is).",
    ),
) -> None:
    """Write the bundle as files with SHA256SUMS (--out), or push it to a registry (--to)."""
    from edgeloop.core.errors import UsageError
    from edgeloop.provenance.registry import parse_ref

    if (out is None) == (not to):
        raise UsageError(
            "give exactly one of --out DIR or --to oci://REGISTRY/REPO:TAG"
        )
    model = parse_ref(ref)
    if to:
        with stderr().status(f"pushing {ref} to {to}"):
            result = _registry().push_oci(model, to, tuple(plain_http))
    else:
        assert out is not None
        with stderr().status(f"exporting {ref}"):
            result = _registry().export(model, out)
    emit(ctx, result)

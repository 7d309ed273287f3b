"""``edgeloop data``: simulate a pump fleet, validate any dataset against its schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import typer

from edgeloop.cli.output import emit, error_line, state, stderr
from edgeloop.core.errors import UsageError

app = typer.Typer(help="Fleet data: simulate, validate.", no_args_is_help=True)

_PERTURB = re.compile(
    r"^(?P<kind>[a-z_]+)(?:@(?P<sites>[\w,\-]+))?(?::(?P<start>[0-9.]+))?$"
)


def parse_perturbation(text: str) -> dict[str, object]:
    """``KIND[@SITE,SITE][:START]`` -> Perturbation fields."""
    from edgeloop.demo.simulator.config import PERTURBATIONS

    match = _PERTURB.match(text)
    if not match or match["kind"] not in PERTURBATIONS:
        raise UsageError(
            f"invalid --perturb {text!r}: use KIND[@SITE,...][:START] with KIND one of {', '.join(PERTURBATIONS)}"
        )
    fields: dict[str, object] = {"kind": match["kind"]}
    if match["sites"]:
        fields["sites"] = tuple(match["sites"].split(","))
    if match["start"]:
        try:
            start = float(match["start"])
        except ValueError as exc:
            raise UsageError(
                f"invalid --perturb {text!r}: START must be a number in 0..1"
            ) from exc
        if not 0 <= start <= 1:
            raise UsageError(f"invalid --perturb {text!r}: START must be in 0..1")
        fields["start_fraction"] = start
    return fields


@app.command()
def simulate(
    ctx: typer.Context,
    out: Path = typer.Option(
        ..., "--out", help="Directory to write readings, maintenance log and schema."
    ),
    sites: int = typer.Option(3, min=1, max=500, help="Number of sites."),
    pumps_per_site: int = typer.Option(4, min=1, max=500, help="Pumps per site."),
    days: float = typer.Option(30.0, min=0.1, max=3650, help="Simulated days."),
    seed: int = typer.Option(0, help="Random seed; same seed, same data."),
    cadence_minutes: int = typer.Option(
        10, min=1, max=1440, help="Minutes between readings."
    ),
    perturb: list[str] = typer.Option(
        [],
        "--perturb",
        help="KIND[@SITE,...][:START]: ambient_shift, new_pump_type, regime_change, sensor_faults.",
    ),
) -> None:
    """Write a deterministic pump-fleet dataset (Parquet readings, CSV work orders, schema.yaml).

    Long: most lines are Typer option declarations, which Typer needs per command.
    """
    from pydantic import ValidationError

    from edgeloop.demo.simulator import config as cfg
    from edgeloop.demo.simulator import generate

    try:
        config = cfg.SimulationConfig(
            sites=sites,
            pumps_per_site=pumps_per_site,
            days=days,
            seed=seed,
            cadence_minutes=cadence_minutes,
            perturbations=tuple(
                cfg.Perturbation(**parse_perturbation(p)) for p in perturb
            ),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from exc
    unknown = {s for p in config.perturbations for s in p.sites} - set(
        config.site_names()
    )
    if unknown:
        raise UsageError(
            f"unknown site(s) {', '.join(sorted(unknown))}; sites are {', '.join(config.site_names())}"
        )
    console = stderr()
    with console.status("simulating") as status:
        fleet = generate.simulate(
            config, lambda done, total: status.update(f"simulating pump {done}/{total}")
        )
        paths = generate.write_fleet(fleet, out)
    if not state(ctx).quiet:
        console.print(
            f"wrote {len(fleet.readings):,} readings and {len(fleet.maintenance)} work orders to {out}"
        )
    emit(
        ctx,
        {
            "out": str(out),
            "readings": len(fleet.readings),
            "pumps": int(fleet.readings["pump_id"].nunique()),
            "sites": config.sites,
            "failures": len(fleet.maintenance),
            "files": [p.name for p in paths],
        },
    )


def _refuse(exc: Any) -> NoReturn:
    """Every broken rule of a DataValidationError: the first as the error line, then the rest."""
    error_line(str(exc))
    for line in exc.violations[1:]:
        typer.echo(f"  also: {line}", err=True)
    raise typer.Exit(code=1) from exc


@app.command()
def validate(
    ctx: typer.Context,
    path: str = typer.Argument(
        ...,
        help="Dataset directory (with schema.yaml) or a readings file: a path, "
        "file://, s3:// (endpoint from AWS_ENDPOINT_URL) or http(s):// URI.",
    ),
    schema: str | None = typer.Option(
        None,
        "--schema",
        help="Schema file, path or URI (default: schema.yaml beside the data).",
    ),
    labels: str | None = typer.Option(
        None,
        "--labels",
        help="Failure log, path or URI (default: the schema's label.path).",
    ),
) -> None:
    """Check a dataset against its schema; exit 1 naming every broken rule."""
    import shutil
    import tempfile

    from edgeloop_components import uris, validation
    from edgeloop_components.errors import DataValidationError

    scratch = Path(tempfile.mkdtemp(prefix="edgeloop-validate-"))
    try:
        data, schema_file, labels_file = uris.stage_dataset(
            path, schema or "", labels or "", scratch
        )
        report, parsed = validation.check(data, schema_file, labels_file)
    except DataValidationError as exc:
        _refuse(exc)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for warning in report.warnings:
        stderr().print(f"warning: {warning}")
    emit(
        ctx,
        {
            "path": path if uris.is_remote(path) else str(report.path),
            "schema": parsed.name,
            "rows": report.rows,
            "entities": report.entities,
            "positive_share": None
            if report.positive_share is None
            else round(report.positive_share, 4),
            "data_hash": report.data_hash,
            "valid": True,
        },
    )


@app.command()
def assemble(
    ctx: typer.Context,
    base: str = typer.Option(
        ...,
        "--base",
        help="The previous training dataset (schema, readings, log): a directory or s3:// URI.",
    ),
    out: Path = typer.Option(..., "--out", help="New dataset directory (replaced)."),
    since: str = typer.Option(
        "", "--since", help="First collected day to use (YYYY-MM-DD); default all."
    ),
    older_days: float = typer.Option(
        30.0,
        "--older-days",
        min=0.0,
        help="Days of base data to keep before the collected ones.",
    ),
) -> None:
    """Build a training dataset from what the fleet sent (collected partitions) plus recent base data."""
    from edgeloop.core.settings import load_settings
    from edgeloop.train.retraining import assemble as build

    emit(ctx, build(load_settings(), base, out, since_day=since, older_days=older_days))


@app.command()
def profile(
    ctx: typer.Context,
    path: str = typer.Argument(
        ...,
        help="Dataset directory (with schema.yaml) or a readings file, path or URI; "
        "labels are not needed.",
    ),
    out: Path = typer.Option(
        ..., "--out", help="New or empty directory for the monitor-only bundle."
    ),
    name: str = typer.Option(
        "",
        "--name",
        help="Model name the bundle serves under (default: the schema's name).",
    ),
    schema: str | None = typer.Option(
        None,
        "--schema",
        help="Schema file, path or URI (default: schema.yaml beside the data).",
    ),
) -> None:
    """A monitor-only bundle: drift and data-quality windows at the edge, with no model yet."""
    from edgeloop.train.pipeline_runs import code_revision
    from edgeloop_agent.contracts import MANIFEST_FILE, DesiredModel, file_sha256
    from edgeloop_components import monitor_profile
    from edgeloop_components.errors import DataValidationError

    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: not a new or empty directory; choose a new --out")
    try:
        manifest = monitor_profile.build_monitor_bundle(
            path,
            out,
            model_name=name or "",
            schema_uri=schema or "",
            code_revision=code_revision(),
        )
    except DataValidationError as exc:
        _refuse(exc)
    digest = file_sha256(out / MANIFEST_FILE)
    record = DesiredModel(
        model_name=manifest.model_name,
        version=monitor_profile.bundle_version(out),
        bundle_uri=".",
        bundle_sha256=digest,
    )
    (out / "desired-model.json").write_text(
        record.model_dump_json(exclude_none=True), encoding="utf-8"
    )
    (out / "SHA256SUMS").write_text(f"{digest}  {MANIFEST_FILE}\n", encoding="utf-8")
    emit(
        ctx,
        {
            "out": str(out),
            "kind": manifest.kind,
            "model": f"{record.model_name}:{record.version}",
            "inputs": len(manifest.reference),
            "rows": int(manifest.metrics.get("rows") or 0),
            "bundle_sha256": digest,
            "serve": f"edgeloop-agent serve --bundle {out}",
        },
    )

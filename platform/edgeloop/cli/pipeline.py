"""``edgeloop pipeline``: compile the training pipeline, run it locally or on KFP."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeloop.cli.output import emit, progress_bar, state, stderr
from edgeloop.core.errors import UsageError

app = typer.Typer(help="Training pipeline: compile, run.", no_args_is_help=True)


@app.command("compile")
def compile_(
    ctx: typer.Context,
    out: Path = typer.Option(
        Path("build/pipelines"), "--out", help="Directory for the IR YAML files."
    ),
    image: str = typer.Option(
        "",
        "--image",
        help="Run every step in this components image, pinned: REPO@sha256:….",
    ),
    image_digests: Path | None = typer.Option(
        None,
        "--image-digests",
        help="Or take it from the digests `make images PUSH=…` wrote "
        "(build/images/digests.json, key 'components').",
    ),
) -> None:
    """Write the pipelines' IR YAML, ready to upload in the Kubeflow UI."""
    from edgeloop_components.pipelines.compile import compile_all

    if image_digests is not None:
        image = image or _pushed_image(image_digests, "components")
    files = compile_all(out, image)
    emit(
        ctx,
        [
            {"pipeline": p.stem, "file": str(p), "image": image or "(default)"}
            for p in files
        ],
    )


def _pushed_image(path: Path, name: str) -> str:
    """The digest reference of image ``name`` in a ``digests.json``."""
    import json

    try:
        digests = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read image digests ({exc.strerror})") from exc
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: image digests are not JSON ({exc.msg})") from exc
    if not isinstance(digests, dict) or not isinstance(digests.get(name), str):
        raise UsageError(
            f"{path}: no '{name}' image (push it first: make images PUSH=REGISTRY/PREFIX)"
        )
    return str(digests[name])


@app.command()
def run(
    ctx: typer.Context,
    data: str = typer.Option(
        ...,
        "--data",
        help="Dataset directory (with schema.yaml) or readings file: a path, file://, "
        "s3://BUCKET/PREFIX (endpoint from AWS_ENDPOINT_URL) or http(s):// URI.",
    ),
    schema: str | None = typer.Option(
        None, "--schema", help="Dataset schema file (path or URI)."
    ),
    labels: str | None = typer.Option(
        None,
        "--labels",
        help="Failure log (path or URI) instead of the schema's label.path.",
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Registered model name."
    ),
    kfp_host: str | None = typer.Option(
        None, "--kfp-host", help="Submit to this Kubeflow Pipelines server."
    ),
    n_estimators: int | None = typer.Option(None, min=1, help="XGBoost trees."),
    max_depth: int | None = typer.Option(None, min=1, max=16, help="XGBoost depth."),
    max_regression: float | None = typer.Option(
        None, min=0, max=1, help="Allowed drop vs champion."
    ),
    profiles: Path | None = typer.Option(
        None, "--profiles", help="Device profiles YAML."
    ),
    param: list[str] = typer.Option(
        [], "--param", help="Any pipeline parameter as KEY=VALUE (repeatable)."
    ),
    no_promote: bool = typer.Option(
        False, "--no-promote", help="Register, but never move champion."
    ),
    image: str = typer.Option(
        "",
        "--image",
        help="Run each local step in this components image (kfp.local.DockerRunner; "
        "DOCKER_HOST may point at podman's socket).",
    ),
) -> None:
    """Train, gate and register a model (kfp.local unless --kfp-host is given).

    Long: most lines are Typer option declarations, which Typer needs per command.
    """
    from edgeloop.core.settings import load_settings
    from edgeloop.train import pipeline_runs

    settings = load_settings()
    if model_name:
        settings.registry.model_name = model_name
    named = {
        "schema_path": schema,
        "labels_uri": labels,
        "n_estimators": n_estimators,
        "max_depth": max_depth,
        "max_regression": max_regression,
        "profiles_path": profiles,
        "auto_promote": False if no_promote else None,
    }
    extra = pipeline_runs.parse_params(param)
    clash = sorted(k for k in extra if named.get(k) is not None)
    if clash:
        raise UsageError(f"set {', '.join(clash)} either as an option or as --param")
    host = kfp_host or settings.pipeline.kfp_host
    arguments = pipeline_runs.pipeline_arguments(
        settings, data, local=not host, **{**named, **extra}
    )
    if host:
        emit(ctx, pipeline_runs.submit(settings, arguments, host))
        return
    console = stderr()
    total = len(pipeline_runs.STEPS)
    done: list[str] = []
    # -o json / -q: stdout and stderr carry the result and errors only; on a
    # terminal a live bar; elsewhere (CI logs) a line per step
    quiet = state(ctx).quiet or state(ctx).output == "json"
    live = not quiet and console.is_terminal
    with progress_bar(ctx, "training") as bar:

        def progress(task: str, status: str) -> None:
            if quiet:
                return
            if status != "started":
                done.append(task)
            mark = (
                "…" if status == "started" else "ok" if status == "SUCCESS" else status
            )
            if live:
                bar(len(done), total, f"{task} {mark}")
            elif status == "started":
                console.print(f"[{len(done) + 1}/{total}] {task} …")
            else:
                console.print(f"[{len(done)}/{total}] {task} {mark}")

        result = pipeline_runs.run_local(settings, arguments, progress, image=image)
    from edgeloop.cli import model_view
    from edgeloop.provenance.registry import Registry

    registered = result.registered
    model_view.show(
        ctx,
        {
            **registered.model_dump(),
            "seconds": round(result.seconds, 1),
            "log": str(result.log_path),
        },
        model_view.details(
            Registry(settings.tracking_uri()), registered.name, registered.version
        ),
    )

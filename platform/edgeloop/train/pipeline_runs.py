"""Launch the training pipeline: locally with kfp.local, or on a KFP server.

Local runs use ``kfp.local.SubprocessRunner(use_venv=False)``: every step runs
as a subprocess of this venv, fully offline. kfp.local writes its own log and
each step's output to ``sys.stdout``; we send that to a per-run log file and
read task events from it to report progress, so the terminal shows
``[3/10] split-data`` instead of thousands of lines.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeloop.core.errors import (
    EdgeloopError,
    PermanentError,
    RetryableError,
    UsageError,
)
from edgeloop.core.settings import PlatformSettings
from edgeloop.provenance.audit import AuditLog
from edgeloop_agent.contracts import RegisteredModel

STEPS = (
    "validate-data",
    "build-features",
    "split-data",
    "train-model",
    "export-onnx",
    "profile-latency",
    "evaluate-model",
    "gate-model",
    "build-bundle",
    "register-model",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_STARTED = re.compile(r"Executing task '([\w-]+)'")
_FINISHED = re.compile(r"Task '([\w-]+)' finished with status (\w+)")
_ERROR_LINE = re.compile(r"^\s*(?:[\w.]+\.)?(\w+(?:Error|Exception)): (.+)$")

Progress = Callable[[str, str], None]
"""Called as ``progress(task, "started" | "SUCCESS" | "FAILURE")``."""


@dataclass
class RunResult:
    """What a pipeline run produced."""

    registered: RegisteredModel
    log_path: Path
    seconds: float
    step_seconds: dict[str, float] = field(default_factory=dict)


class _EventStream(io.TextIOBase):
    """A stdout stand-in: copies everything to a log, reports task events."""

    def __init__(self, log: io.TextIOBase, progress: Progress | None) -> None:
        self._log = log
        self._progress = progress
        self._pending = ""
        self.error_lines: list[str] = []
        self.failed_task = ""
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}

    def write(self, text: str) -> int:
        self._log.write(text)
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            self._line(_ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        self._log.flush()

    def _line(self, line: str) -> None:
        if match := _STARTED.search(line):
            self.started[match[1]] = time.perf_counter()
            if self._progress:
                self._progress(match[1], "started")
        elif match := _FINISHED.search(line):
            task, status = match[1], match[2]
            self.durations[task] = time.perf_counter() - self.started.get(
                task, time.perf_counter()
            )
            if status != "SUCCESS":
                self.failed_task = self.failed_task or task
            if self._progress:
                self._progress(task, status)
        elif match := _ERROR_LINE.match(line):
            self.error_lines.append(f"{match[1]}: {match[2]}")


def code_revision() -> str:
    """``git describe --always --dirty`` of the edgeloop source, or ``unknown``."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def pipeline_arguments(
    settings: PlatformSettings,
    data_uri: Path | str,
    *,
    local: bool = True,
    **params: Any,
) -> dict[str, Any]:
    """The pipeline's arguments; unset parameters keep the pipeline's defaults.

    ``data_uri`` is a path or a URI (``s3://``, ``http(s)://``). A local run
    checks that a local dataset exists here; a submitted run passes a path
    through (it may exist only in the cluster), though object storage is what
    a cluster run should read.
    """
    from edgeloop_components import uris

    data_uri = str(data_uri)
    if local and not uris.is_remote(data_uri):
        try:
            path = uris.local_path(data_uri)
        except EdgeloopError as exc:
            raise UsageError(str(exc)) from exc
        if not path.exists():
            raise UsageError(
                f"{path}: no such dataset (a directory with schema.yaml, or a readings file)"
            )
        data_uri = str(path.resolve())
    args: dict[str, Any] = {
        "data_uri": data_uri,
        "tracking_uri": settings.tracking_uri(),
        "model_name": settings.registry.model_name,
        "code_revision": code_revision(),
    }
    args.update(
        {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in params.items()
            if v is not None
        }
    )
    return args


def trigger_label(trigger: dict[str, Any] | None, reason: str = "") -> str:
    """The run's ``trigger`` argument: the decision's kind and cohort, else the reason.

    Short on purpose: it becomes the training run's ``edgeloop.trigger`` tag in
    MLflow (searchable); the full decision, with its evidence, is in the audit log.
    """
    kind = str((trigger or {}).get("kind") or "manual")
    cohort = (trigger or {}).get("cohort") or ""
    if cohort:
        return f"{kind}:{cohort}"
    said = reason or (trigger or {}).get("reason") or ""
    if kind in {"manual", "code_change"} and said:  # a person's words say why
        return f"{kind}: {said}"[:200]
    return kind


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> typed pipeline arguments.

    Keys must be parameters of ``train-edge-model``; values are parsed as
    JSON when they can be (numbers, booleans, lists) and kept as text otherwise.

    Raises:
        UsageError: malformed pair, unknown key, or a value of the wrong type.
    """
    from edgeloop_components.pipelines.train_edge_model import train_edge_model

    signature = inspect.signature(train_edge_model.pipeline_func)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"invalid --param {pair!r}: use KEY=VALUE")
        if key not in signature.parameters:
            known = ", ".join(sorted(signature.parameters))
            raise UsageError(f"unknown pipeline parameter {key!r}; known: {known}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        want = signature.parameters[key].annotation
        if want is str:
            value = raw  # text parameters are taken as typed, never JSON-decoded
        elif want is float and _is_number(value):
            value = float(value)
        elif not _has_type(value, want):
            raise UsageError(f"--param {key}: expected {want.__name__}, got {raw!r}")
        out[key] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _has_type(value: Any, want: Any) -> bool:
    """JSON-decoded ``value`` fits a parameter annotation (``bool`` is not an ``int``)."""
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if want is float:
        return _is_number(value)
    if want in (bool, list, dict):
        return isinstance(value, want)
    return True


def run_local(
    settings: PlatformSettings,
    arguments: dict[str, Any],
    progress: Progress | None = None,
    reason: str = "",
    trigger: dict[str, Any] | None = None,
    image: str = "",
) -> RunResult:
    """Run ``train-edge-model`` with kfp.local and return the registered version.

    With ``image`` every step runs in that components image through
    ``kfp.local.DockerRunner`` (any Docker API: Docker, or podman's
    ``podman system service`` with ``DOCKER_HOST``) instead of as a subprocess.

    Every run lands in the audit log: ``training`` (why, on what) and, when it
    registered a version, ``registered`` (and ``promoted`` if the gates passed).

    Raises:
        EdgeloopError: a step failed; the message names the step and its error
            and points to the full log.
    """
    from kfp import local

    from edgeloop_components.pipelines.train_edge_model import train_edge_model

    arguments = {"trigger": trigger_label(trigger, reason), **arguments}
    root = settings.pipeline_root()
    root.mkdir(parents=True, exist_ok=True)
    log_path = (
        root
        / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{time.perf_counter_ns() % 10**6:06d}.log"
    )
    start = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        stream = _EventStream(log, progress)
        runner = (
            _docker_runner(settings, arguments, image)
            if image
            else local.SubprocessRunner(use_venv=False)
        )
        local.init(runner=runner, pipeline_root=str(root))
        pipeline = _pinned_ir(root, image) if image else train_edge_model
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                task = pipeline(**arguments)
        except (
            Exception
        ) as exc:  # kfp.local raises bare RuntimeError on any failed task
            step = stream.failed_task or "pipeline"
            cause = (
                stream.error_lines[-1]
                if stream.error_lines
                else str(exc).splitlines()[0]
            )
            raise EdgeloopError(
                f"step '{step}' failed: {_ANSI.sub('', cause)} (full log: {log_path})"
            ) from exc
    registered = RegisteredModel.model_validate(task.output)
    _audit(settings, arguments, registered, log_path, reason, trigger)
    return RunResult(
        registered, log_path, time.perf_counter() - start, dict(stream.durations)
    )


def _docker_runner(
    settings: PlatformSettings, arguments: dict[str, Any], image: str
) -> Any:
    """A DockerRunner whose containers see the run's files at the same paths.

    kfp mounts the pipeline root itself; the dataset, the embedded MLflow store
    and ``home`` are bind-mounted read-write at identical paths, so the IR's
    path arguments mean the same inside and out. Steps run as the calling user
    (files they write stay the caller's), on the host network (a remote MLflow
    at 127.0.0.1 stays reachable).
    """
    from docker.types import Mount
    from kfp import local

    if "@sha256:" not in image and ":" not in image.rsplit("/", 1)[-1]:
        raise UsageError(
            f"image {image!r}: name a tag or, better, a digest (REPO@sha256:…)"
        )
    paths = {settings.home.resolve()}
    data_uri = str(arguments["data_uri"])
    if "://" not in data_uri:  # remote data is fetched by the step itself
        data = Path(data_uri)
        paths.add(data if data.is_dir() else data.parent)
    tracking = str(arguments.get("tracking_uri", ""))
    if tracking.startswith("sqlite:///"):
        paths.add(Path(tracking.removeprefix("sqlite:///")).parent)
    settings.home.mkdir(parents=True, exist_ok=True)
    mounts = [
        Mount(target=str(path), source=str(path), type="bind")
        for path in sorted(_outermost(paths))
    ]
    return local.DockerRunner(
        mounts=mounts,
        user=f"{os.getuid()}:{os.getgid()}",
        network_mode="host",
        environment={"HOME": "/tmp"},
    )


def _pinned_ir(root: Path, image: str) -> Any:
    """The compiled IR with every step in ``image``, loaded back as a pipeline.

    What runs is what a cluster would run: the IR, not the Python function
    (whose steps name the default image, fixed when they were imported).
    """
    from kfp import compiler, components

    from edgeloop_components.pipelines.compile import pin_image
    from edgeloop_components.pipelines.train_edge_model import train_edge_model

    path = root / "ir" / f"train-edge-model-{time.perf_counter_ns()}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(train_edge_model, str(path))
    pin_image(path, image)
    return components.load_component_from_file(str(path))


def _outermost(paths: set[Path]) -> set[Path]:
    """Drop paths inside another one (a bind mount inside a bind mount is redundant)."""
    return {p for p in paths if not any(o != p and o in p.parents for o in paths)}


def _audit(
    settings: PlatformSettings,
    arguments: dict[str, Any],
    registered: RegisteredModel,
    log_path: Path,
    reason: str,
    trigger: dict[str, Any] | None,
) -> None:
    log = AuditLog(settings.audit_path())
    subject = registered.ref
    log.append(
        "training",
        subject,
        reason=reason or "run by hand",
        data_uri=arguments.get("data_uri", ""),
        code_revision=arguments.get("code_revision", ""),
        log=str(log_path),
        trigger=trigger,
    )
    log.append(
        "registered",
        subject,
        bundle_sha256=registered.bundle_sha256,
        mlflow_run_id=registered.run_id,
        promoted=registered.promoted,
        previous_champion=registered.previous_champion,
    )
    if registered.promoted:
        log.append("promoted", subject, by="gates", alias="champion")


def submit(
    settings: PlatformSettings, arguments: dict[str, Any], host: str
) -> dict[str, Any]:
    """Submit a run to a Kubeflow Pipelines server (compiled from the same code)."""
    import kfp

    from edgeloop_components.pipelines.train_edge_model import train_edge_model

    try:
        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_func(
            train_edge_model,
            arguments=arguments,
            experiment_name=settings.pipeline.experiment,
        )
    except Exception as exc:  # kfp.Client raises urllib3/ApiException/ValueError alike
        raise kfp_error(exc, f"cannot submit to Kubeflow Pipelines at {host}") from exc
    return {
        "run_id": run.run_id,
        "host": host,
        "experiment": settings.pipeline.experiment,
    }


def kfp_error(exc: Exception, what: str) -> EdgeloopError:
    """Classify a Kubeflow Pipelines client failure by its class and HTTP status.

    Network failures (urllib3/requests connection errors, timeouts) and 5xx or
    429 answers are retryable; any other HTTP answer is permanent; anything
    else (e.g. ``ValueError`` for a bad argument) is a permanent error too,
    since submitting it again cannot help.
    """
    import requests
    import urllib3.exceptions
    from kfp_server_api.exceptions import ApiException

    text = (
        f"{what}: {str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__}"
    )
    if isinstance(
        exc,
        urllib3.exceptions.HTTPError
        | requests.exceptions.ConnectionError
        | requests.exceptions.Timeout
        | ConnectionError
        | TimeoutError,
    ):
        return RetryableError(text, delay=10)
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        if status >= 500 or status == 429:
            return RetryableError(text, delay=10)
        return PermanentError(text)
    return PermanentError(text)

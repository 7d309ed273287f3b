"""MLflow model registry: register a bundle, find the champion, fetch bundles.

A registered version carries the ONNX flavor (with signature) as its model,
the whole bundle directory as run artifacts under ``bundle/``, and tags that
pin the bundle (``edgeloop.bundle_uri``, ``edgeloop.bundle_sha256``) and record
lineage, on a training run that logs its dataset (``log_input``) and lineage
tags. Aliases: a promoted version becomes ``champion``; one that is not becomes
``challenger``. An alias moves, it is never on two roles of one version.

MLflow returns version numbers as ints from sqlite and as strings over REST
(STACK.md); everything here normalises them with ``int()``.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnx
from mlflow import MlflowClient
from mlflow.data.meta_dataset import MetaDataset
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleManifest,
    bundle_digest,
    file_sha256,
    read_manifest,
    verify_bundle,
)
from edgeloop_components.errors import RegistryError, RegistryUnavailableError
from edgeloop_components.packaging import write_manifest

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG_PREFIX = "edgeloop."
BUNDLE_ARTIFACT_DIR = "bundle"


@dataclass
class Registered:
    """Outcome of :func:`register`."""

    name: str
    version: int
    run_id: str
    bundle_uri: str
    bundle_sha256: str
    promoted: bool
    previous_champion: int | None


_TRANSIENT_CODES = {
    "TEMPORARILY_UNAVAILABLE",
    "INTERNAL_ERROR",
    "REQUEST_LIMIT_EXCEEDED",
}


def is_transient(exc: BaseException) -> bool:
    """Whether an MLflow error is worth retrying: decided by class and HTTP status.

    A network failure (requests' ConnectionError/Timeout on the cause/context
    chain: MLflow's REST client raises a plain ``MlflowException`` while handling
    it) or a 5xx / transient error code. Never by message text.
    """
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, requests.exceptions.ConnectionError | requests.exceptions.Timeout
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    if not isinstance(exc, MlflowException):
        return False
    status = int(exc.get_http_status_code())  # type: ignore[no-untyped-call]
    return exc.error_code in _TRANSIENT_CODES or status >= 500


def _registry_error(exc: MlflowException, message: str) -> RegistryError:
    """The pipeline's error for an MLflow failure: retryable when transient."""
    if is_transient(exc):
        return RegistryUnavailableError(message)
    return RegistryError(message)


def client(tracking_uri: str) -> MlflowClient:
    """A client bound to one tracking + registry URI (no global state relied on)."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def artifact_location(tracking_uri: str) -> str | None:
    """Artifacts beside an embedded sqlite store; the server's default otherwise.

    Without this MLflow would put artifacts in ``./mlruns`` under whatever the
    current directory is, scattering a store across checkouts.
    """
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.parent / "mlartifacts").resolve().as_uri()
    return None


def champion_version(mlc: MlflowClient, name: str) -> int | None:
    """The version the ``champion`` alias points at, or None."""
    try:
        return int(mlc.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as exc:
        if exc.error_code in {
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
            "NOT_FOUND",
        }:
            return None
        raise _registry_error(
            exc, f"registry: cannot read alias {name}@{CHAMPION}: {exc.message}"
        ) from exc


def _bundle_tags(mlc: MlflowClient, name: str, version: int) -> tuple[str, str]:
    """A version's pinned bundle URI (``runs:/RUN/PATH``) and digest."""
    try:
        mv = mlc.get_model_version(name, str(version))
    except MlflowException as exc:
        raise _registry_error(
            exc, f"registry: {name}:{version} not found ({exc.message})"
        ) from exc
    uri = mv.tags.get(TAG_PREFIX + "bundle_uri")
    digest = mv.tags.get(TAG_PREFIX + "bundle_sha256")
    if not uri or not digest:
        raise RegistryError(f"registry: {name}:{version} has no edgeloop bundle tags")
    run_id, _, artifact_path = uri.removeprefix("runs:/").partition("/")
    if not uri.startswith("runs:/") or not run_id or not artifact_path:
        raise RegistryError(
            f"registry: {name}:{version} has an unsupported bundle URI {uri!r}"
        )
    return uri, digest


def download_bundle(mlc: MlflowClient, name: str, version: int, dst: Path) -> Path:
    """Fetch a version's bundle into ``dst`` and verify it against its pinned digest."""
    uri, digest = _bundle_tags(mlc, name, version)
    dst.mkdir(parents=True, exist_ok=True)
    run_id, _, artifact_path = uri.removeprefix("runs:/").partition("/")
    try:
        # The client's own method: mlflow.artifacts.download_artifacts would
        # resolve runs:/ against the *global* tracking URI instead.
        local = mlc.download_artifacts(run_id, artifact_path, str(dst))
    except MlflowException as exc:
        raise _registry_error(
            exc, f"registry: cannot download {uri}: {exc.message}"
        ) from exc
    verify_bundle(Path(local), expected_digest=digest)
    return Path(local)


def download_manifest(mlc: MlflowClient, name: str, version: int, dst: Path) -> Path:
    """Fetch only a version's ``bundle.json`` into ``dst``, verified by its pinned digest.

    The bundle's digest is the manifest's sha256, so the manifest alone can be
    trusted without fetching the (much larger) model: what the controller and
    lineage need (latency, gates, lineage) is all in it.
    """
    uri, digest = _bundle_tags(mlc, name, version)
    run_id, _, artifact_path = uri.removeprefix("runs:/").partition("/")
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = Path(
            mlc.download_artifacts(run_id, f"{artifact_path}/{MANIFEST_FILE}", str(dst))
        )
    except MlflowException as exc:
        raise _registry_error(
            exc, f"registry: cannot download {uri}: {exc.message}"
        ) from exc
    if file_sha256(local) != digest:
        raise RegistryError(
            f"registry: {name}:{version} bundle.json does not match its pinned sha256"
        )
    return local.parent


def _signature(n_inputs: int) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, n_inputs), "input")]),
        outputs=Schema(
            [
                TensorSpec(np.dtype(np.int64), (-1,), "label"),
                TensorSpec(np.dtype(np.float32), (-1, 2), "probabilities"),
            ]
        ),
    )


def register(
    bundle_dir: Path,
    *,
    tracking_uri: str,
    gates_passed: bool,
    auto_promote: bool = True,
    params: dict[str, Any] | None = None,
) -> Registered:
    """Register a bundle as a new model version and move aliases.

    The manifest's lineage gets the MLflow run id and the parent champion
    before the digest is taken, so the registered digest covers them.

    Raises:
        RegistryError: MLflow refused; the champion alias is never moved then.
    """
    manifest = read_manifest(bundle_dir)
    name = manifest.model_name
    mlc = client(tracking_uri)
    experiment = f"edgeloop-{name}"
    try:
        if mlc.get_experiment_by_name(experiment) is None:
            mlc.create_experiment(
                experiment, artifact_location=artifact_location(tracking_uri)
            )
        mlflow.set_experiment(experiment)
        previous = champion_version(mlc, name)
        with mlflow.start_run(
            run_name=f"{name}-{manifest.lineage.pipeline_run_id}"
        ) as run:
            final = _finalise(bundle_dir, manifest, run.info.run_id, name, previous)
            digest = bundle_digest(bundle_dir)
            mlflow.log_params(_params(params or {}))
            mlflow.set_tags(_run_tags(final, params or {}))
            mlflow.log_input(_dataset(final), context="training")
            mlflow.log_metrics(
                {k: v for k, v in final.metrics.items() if v is not None}
            )
            mlflow.log_artifacts(str(bundle_dir), BUNDLE_ARTIFACT_DIR)
            if final.importance is not None:
                mlflow.log_dict(final.importance.model_dump(), "importance.json")
            info = mlflow.onnx.log_model(
                onnx.load(str(Path(bundle_dir) / MODEL_FILE)),
                name="model",
                registered_model_name=name,
                signature=_signature(len(final.features.input_names())),
                pip_requirements=["onnxruntime"],
                onnx_execution_providers=["CPUExecutionProvider"],
            )
        version = int(info.registered_model_version)
        bundle_uri = f"runs:/{run.info.run_id}/{BUNDLE_ARTIFACT_DIR}"
        tags = _version_tags(final, bundle_uri, digest, gates_passed)
        for key, value in tags.items():
            mlc.set_model_version_tag(name, str(version), key, value)
        mlc.update_model_version(name, str(version), _description(final, gates_passed))
        if not mlc.get_registered_model(name).description:
            mlc.update_registered_model(name, _model_description(final))
        promoted = gates_passed and auto_promote
        if promoted:
            # an alias moves, never doubles: the new champion is nobody's challenger
            mlc.set_registered_model_alias(name, CHAMPION, str(version))
            drop_alias_if_on(mlc, name, CHALLENGER, version)
        else:
            mlc.set_registered_model_alias(name, CHALLENGER, str(version))
    except MlflowException as exc:
        raise _registry_error(exc, f"registry {tracking_uri}: {exc.message}") from exc
    return Registered(
        name, version, run.info.run_id, bundle_uri, digest, promoted, previous
    )


def drop_alias_if_on(mlc: MlflowClient, name: str, alias: str, version: int) -> None:
    """Remove ``alias`` when it points at ``version`` (promoted past it)."""
    aliases = mlc.get_registered_model(name).aliases or {}
    if alias in aliases and int(aliases[alias]) == int(version):
        mlc.delete_registered_model_alias(name, alias)


def _params(params: dict[str, Any]) -> dict[str, str]:
    """Pipeline parameters as MLflow params: ``300.0`` from KFP's JSON stays ``300``."""
    out = {}
    for key, value in params.items():
        if isinstance(value, float) and value.is_integer() and key in _INT_PARAMS:
            value = int(value)
        out[key] = str(value)[:500]
    return out


_INT_PARAMS = {"n_estimators", "max_depth", "seed"}


def _run_tags(manifest: BundleManifest, params: dict[str, Any]) -> dict[str, str]:
    """Lineage on the training run, where MLflow's UI shows and searches it."""
    lin = manifest.lineage
    tags = {
        TAG_PREFIX + "code_revision": lin.code_revision,
        TAG_PREFIX + "pipeline_run_id": lin.pipeline_run_id,
        TAG_PREFIX + "parent_version": lin.parent_champion or "none",
        TAG_PREFIX + "data_hash": lin.data_hash,
    }
    if params.get("trigger"):  # runs the loop service started name their trigger
        tags[TAG_PREFIX + "trigger"] = str(params["trigger"])
    if re.fullmatch(r"[0-9a-f]{7,40}", lin.code_revision):
        tags["mlflow.source.git.commit"] = lin.code_revision
    return tags


def _dataset(manifest: BundleManifest) -> MetaDataset:
    """The training data as an MLflow dataset: name, digest, source URI, schema."""
    from mlflow.data.dataset_source_registry import get_dataset_source_from_json
    from mlflow.data.http_dataset_source import HTTPDatasetSource

    uri = manifest.lineage.dataset_uri or "unknown"
    source: Any
    if uri.startswith(("http://", "https://")):
        source = HTTPDatasetSource(uri)  # type: ignore[no-untyped-call]
    else:  # MLflow makes these classes at import time: reached by source type
        kind = "s3" if uri.startswith("s3://") else "local"
        source = get_dataset_source_from_json(json.dumps({"uri": uri}), kind)
    schema = Schema([ColSpec("double", sensor.name) for sensor in manifest.sensors])
    name = Path(uri.rstrip("/")).name or "training-data"
    return MetaDataset(  # type: ignore[abstract]  # MLflow's own class: works
        source, name=name, digest=manifest.lineage.data_hash[:36], schema=schema
    )


def _description(manifest: BundleManifest, gates_passed: bool) -> str:
    """One paragraph per version: data, gates, threshold and its policy."""
    lin = manifest.lineage
    gates = ", ".join(
        f"{g.name} {'passed' if g.passed else 'FAILED'}" for g in manifest.gates
    )
    out = manifest.scoring()
    policy = out.threshold_policy
    if policy is None:
        rule = "a fixed threshold"
    elif policy.target_alarm_rate is not None:
        rule = f"an alarm rate of {policy.target_alarm_rate:g} on training data"
    else:
        budget = policy.max_false_alarms_per_asset_month
        rule = f"precision at least {policy.target_precision:g}" + (
            f" and at most {budget:g} false alarms per asset-month"
            if budget is not None and budget >= 0
            else ""
        )
    parent = lin.parent_champion or "no champion (the first version)"
    return (
        f"Trained on {lin.dataset_uri or 'an unnamed dataset'} (data {lin.data_hash[:12]}, "
        f"{len(manifest.sensors)} sensors) by pipeline run {lin.pipeline_run_id} at "
        f"code revision {lin.code_revision}, gated against {parent}: "
        f"{'every gate passed' if gates_passed else 'NOT promotable'} ({gates or 'no gates'}). "
        f"Alarms at score >= {out.threshold:.4g}, chosen for {rule}."
    )


def _model_description(manifest: BundleManifest) -> str:
    """What the registered model predicts (set once, when it has none)."""
    out = manifest.scoring()
    score = out.score
    if out.horizon_hours:  # name the horizon once ("... within the horizon" says which)
        horizon = f"{out.horizon_hours:g} h"
        score = (
            score.replace("the horizon", horizon)
            if "the horizon" in score
            else f"{score} within {horizon}"
        )
    return (
        f"{manifest.model_name}: the score is the {score} for one "
        f"{manifest.entity_column or 'asset'}, from the sensors "
        f"{', '.join(s.name for s in manifest.sensors)} (ONNX, served by the "
        "edgeloop agent). Versions carry their bundle (bundle/), gates, threshold "
        "policy and lineage; the champion alias is what the fleet runs."
    )


def _finalise(
    bundle_dir: Path,
    manifest: BundleManifest,
    run_id: str,
    name: str,
    previous: int | None,
) -> BundleManifest:
    lineage = manifest.lineage.model_copy(
        update={
            "mlflow_run_id": run_id,
            "parent_champion": manifest.lineage.parent_champion
            or (f"{name}:{previous}" if previous is not None else ""),
        }
    )
    final = manifest.model_copy(update={"lineage": lineage})
    write_manifest(bundle_dir, final)
    return final


def _version_tags(
    manifest: BundleManifest, bundle_uri: str, digest: str, gates_passed: bool
) -> dict[str, str]:
    lin = manifest.lineage
    return {
        TAG_PREFIX + "bundle_uri": bundle_uri,
        TAG_PREFIX + "bundle_sha256": digest,
        TAG_PREFIX + "model_sha256": manifest.model_sha256 or "",
        TAG_PREFIX + "data_hash": lin.data_hash,
        TAG_PREFIX + "code_revision": lin.code_revision,
        TAG_PREFIX + "pipeline_run_id": lin.pipeline_run_id,
        TAG_PREFIX + "parent_champion": lin.parent_champion or "none",
        TAG_PREFIX + "dataset_uri": lin.dataset_uri,
        TAG_PREFIX + "gates": "passed" if gates_passed else "failed",
        "validation_status": "approved" if gates_passed else "rejected",
    }


@contextmanager
def champion_bundle(tracking_uri: str, name: str) -> Iterator[tuple[int, Path] | None]:
    """The current champion's verified bundle in a temporary directory, or None.

    A context manager: the copy is deleted when the block ends (the gate reads
    it once; keeping it would leak one bundle per pipeline run).
    """
    mlc = client(tracking_uri)
    version = champion_version(mlc, name)
    if version is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="edgeloop-champion-") as tmp:
        yield version, download_bundle(mlc, name, version, Path(tmp))

"""The control plane's view of the MLflow model registry.

One small adapter: model references (``NAME``, ``NAME@ALIAS``, ``NAME:VERSION``),
listing, showing, promoting, lineage and export of verified bundles. MLflow
errors are translated here, once, into :mod:`edgeloop.core.errors` classes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeloop.core.errors import (
    EdgeloopError,
    NotFoundError,
    PermanentError,
    RetryableError,
    UsageError,
)
from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleManifest,
    DesiredModel,
    file_sha256,
    read_manifest,
)

_REF = re.compile(
    r"^(?P<name>[A-Za-z0-9][\w.\-]*)(?:@(?P<alias>[A-Za-z][\w\-]*)|:(?P<version>\d+))?$"
)
TAG = "edgeloop."


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference."""

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}:{self.version}" if self.version else self.name


def parse_ref(text: str) -> ModelRef:
    """Parse ``NAME``, ``NAME@ALIAS`` or ``NAME:VERSION``.

    Raises:
        UsageError: anything else, with the accepted forms.
    """
    match = _REF.match(text.strip())
    if not match or (match["version"] is not None and int(match["version"]) < 1):
        raise UsageError(
            f"invalid model reference {text!r}: use NAME, NAME@ALIAS or NAME:VERSION (version >= 1)"
        )
    version = int(match["version"]) if match["version"] else None
    return ModelRef(match["name"], match["alias"], version)


_MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}


def classify_mlflow(
    exc: Exception, what: str, tracking_uri: str, text: str
) -> EdgeloopError:
    """Our error for an MLflow exception, decided by class and HTTP status only.

    404-like codes -> :class:`NotFoundError`; a transport failure or a 5xx /
    transient code -> :class:`RetryableError`; any other 4xx ->
    :class:`PermanentError`.
    """
    from edgeloop_components.registration import is_transient

    code = str(getattr(exc, "error_code", ""))
    status = (
        int(exc.get_http_status_code()) if hasattr(exc, "get_http_status_code") else 500
    )
    if code in _MISSING_CODES or status == 404:
        return NotFoundError(f"{what or 'registry'}: not found ({text})")
    if is_transient(exc):
        return RetryableError(f"registry {tracking_uri} unreachable: {text}", delay=5)
    return PermanentError(f"registry {tracking_uri}: {text}")


class Registry:
    """MLflow registry access for the CLI and the controller."""

    def __init__(self, tracking_uri: str) -> None:
        # Fail fast when a server is down: MLflow's default retries take minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
        # A bundle is two files; per-file progress bars are noise in CLI output.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        from edgeloop_components import registration

        self.tracking_uri = tracking_uri
        # Versions are immutable: a manifest read once is good for the process.
        self._manifests: dict[tuple[str, int], BundleManifest] = {}
        with self._errors():
            self._client = registration.client(tracking_uri)

    @contextmanager
    def _errors(self, what: str = "") -> Iterator[None]:
        """Classify MLflow's and the pipeline's registry errors once, by class/status."""
        from mlflow.exceptions import MlflowException

        try:
            yield
        except MlflowException as exc:
            text = str(exc.message).splitlines()[0][:300]
            raise classify_mlflow(exc, what, self.tracking_uri, text) from exc

    def list_models(self) -> list[dict[str, Any]]:
        """Every registered model with its aliases and latest version."""
        with self._errors():
            models = self._client.search_registered_models()
            rows = []
            for model in models:
                versions = self._client.search_model_versions(f"name='{model.name}'")
                aliases = {alias: int(v) for alias, v in (model.aliases or {}).items()}
                rows.append(
                    {
                        "name": model.name,
                        "versions": len(versions),
                        "latest": max((int(v.version) for v in versions), default=None),
                        "champion": aliases.get("champion"),
                        "challenger": aliases.get("challenger"),
                    }
                )
        return sorted(rows, key=lambda r: r["name"])

    def versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a model with its parent champion and gate result, oldest first."""
        with self._errors(name):
            found = self._client.search_model_versions(f"name='{name}'")
        rows = []
        for mv in found:
            tags = dict(mv.tags or {})
            parent = tags.get(TAG + "parent_champion", "")
            rows.append(
                {
                    "version": int(mv.version),
                    "parent_champion": "" if parent == "none" else parent,
                    "gates": tags.get(TAG + "gates", ""),
                }
            )
        return sorted(rows, key=lambda r: r["version"])

    def resolve(self, ref: ModelRef) -> int:
        """The version a reference points at (bare NAME: champion, else latest)."""
        with self._errors(str(ref)):
            if ref.version is not None:
                self._client.get_model_version(ref.name, str(ref.version))
                return ref.version
            if ref.alias is not None:
                return int(
                    self._client.get_model_version_by_alias(ref.name, ref.alias).version
                )
            aliases = self._client.get_registered_model(ref.name).aliases or {}
            if "champion" in aliases:
                return int(aliases["champion"])
            versions = self._client.search_model_versions(f"name='{ref.name}'")
        if not versions:
            raise NotFoundError(f"{ref}: model has no versions")
        return max(int(v.version) for v in versions)

    def show(self, ref: ModelRef) -> dict[str, Any]:
        """Version details: aliases, bundle location + digest, metrics, gates, lineage tags."""
        version = self.resolve(ref)
        with self._errors(str(ref)):
            mv = self._client.get_model_version(ref.name, str(version))
            aliases = self._client.get_registered_model(ref.name).aliases or {}
            run = self._client.get_run(mv.run_id) if mv.run_id else None
        tags = dict(mv.tags or {})
        return {
            "name": ref.name,
            "version": version,
            "aliases": sorted(a for a, v in aliases.items() if int(v) == version),
            "created": int(mv.creation_timestamp or 0),
            "run_id": mv.run_id,
            "bundle_uri": tags.get(TAG + "bundle_uri", ""),
            "bundle_sha256": tags.get(TAG + "bundle_sha256", ""),
            "model_sha256": tags.get(TAG + "model_sha256", ""),
            "gates": tags.get(TAG + "gates", ""),
            "metrics": dict(run.data.metrics) if run else {},
            "lineage": {
                k[len(TAG) :]: v for k, v in sorted(tags.items()) if k.startswith(TAG)
            },
        }

    def promote(self, ref: ModelRef, alias: str) -> dict[str, Any]:
        """Point ``alias`` at an explicit version; returns the previous target."""
        if ref.version is None:
            raise UsageError(f"promote needs an explicit version: {ref.name}:VERSION")
        if not re.fullmatch(r"[A-Za-z][\w\-]*", alias):
            raise UsageError(
                f"invalid alias {alias!r}: letters, digits, '_' and '-', starting with a letter"
            )
        self.resolve(ref)
        with self._errors(str(ref)):
            aliases = self._client.get_registered_model(ref.name).aliases or {}
            previous = int(aliases[alias]) if alias in aliases else None
            self._client.set_registered_model_alias(ref.name, alias, str(ref.version))
            if alias == "champion" and str(aliases.get("challenger")) == str(
                ref.version
            ):
                # promoted past its challenger role: an alias is never doubled
                self._client.delete_registered_model_alias(ref.name, "challenger")
        return {
            "name": ref.name,
            "alias": alias,
            "version": ref.version,
            "previous": previous,
        }

    def bundle_location(self, name: str, version: int) -> str:
        """Where an agent can fetch a version's bundle from.

        An embedded store gives a local directory; an MLflow server gives its
        artifact proxy URL (``/api/2.0/mlflow-artifacts/artifacts/...``), which
        agents fetch over HTTP(S) with the same Range/resume logic.
        """
        info = self.show(ModelRef(name, version=version))
        with self._errors(f"{name}:{version}"):
            artifact_uri = str(self._client.get_run(info["run_id"]).info.artifact_uri)
        base = artifact_uri.rstrip("/") + "/bundle"
        if base.startswith("file://"):
            return base[len("file://") :]
        if base.startswith("mlflow-artifacts:"):
            path = base[len("mlflow-artifacts:") :].lstrip("/")
            return f"{self.tracking_uri.rstrip('/')}/api/2.0/mlflow-artifacts/artifacts/{path}"
        return base

    def download(self, ref: ModelRef, dst: Path) -> tuple[int, Path]:
        """Fetch and verify a version's bundle; returns (version, bundle dir)."""
        from edgeloop_components import registration

        version = self.resolve(ref)
        with self._errors(str(ref)):
            return version, registration.download_bundle(
                self._client, ref.name, version, dst
            )

    def manifest(self, ref: ModelRef) -> BundleManifest:
        """A version's verified ``bundle.json`` (only that file is fetched).

        Cached per (model, version): versions are immutable, and the
        controller asks for the same ones on every reconcile.
        """
        from edgeloop_components import registration

        version = self.resolve(ref)
        key = (ref.name, version)
        if key not in self._manifests:
            with (
                self._errors(str(ref)),
                tempfile.TemporaryDirectory(prefix="edgeloop-manifest-") as tmp,
            ):
                bundle = registration.download_manifest(
                    self._client, ref.name, version, Path(tmp)
                )
                self._manifests[key] = read_manifest(bundle)
        return self._manifests[key]

    def lineage(self, ref: ModelRef) -> dict[str, Any]:
        """Where a version came from, read from its verified manifest and tags."""
        info = self.show(ref)
        manifest = self.manifest(ModelRef(ref.name, version=info["version"]))
        return {
            "model": f"{ref.name}:{info['version']}",
            "aliases": info["aliases"],
            "bundle_sha256": info["bundle_sha256"],
            "model_sha256": manifest.model_sha256,
            **manifest.lineage.model_dump(),
            "metrics": manifest.metrics,
            "gates": [g.model_dump() for g in manifest.gates],
        }

    def export(self, ref: ModelRef, out: Path) -> dict[str, Any]:
        """Write the verified bundle as plain files plus a ``SHA256SUMS`` file.

        ``sha256sum -c SHA256SUMS`` checks the copy on a site with no edgeloop.
        """
        if out.exists() and any(out.iterdir()):
            raise UsageError(f"{out}: directory is not empty; choose a new --out")
        with tempfile.TemporaryDirectory(prefix="edgeloop-export-") as tmp:
            version, bundle = self.download(ref, Path(tmp))
            out.mkdir(parents=True, exist_ok=True)
            for name in (MANIFEST_FILE, MODEL_FILE):
                shutil.copyfile(bundle / name, out / name)
        sums = {name: file_sha256(out / name) for name in (MANIFEST_FILE, MODEL_FILE)}
        # The record an agent serves the bundle under (`edgeloop-agent serve --bundle DIR`).
        record = DesiredModel(
            model_name=ref.name,
            version=str(version),
            bundle_uri=".",
            bundle_sha256=sums[MANIFEST_FILE],
        )
        (out / "desired-model.json").write_text(
            record.model_dump_json(exclude_none=True), encoding="utf-8"
        )
        (out / "SHA256SUMS").write_text(
            "".join(f"{digest}  {name}\n" for name, digest in sums.items()),
            encoding="utf-8",
        )
        return {
            "model": f"{ref.name}:{version}",
            "out": str(out),
            "bundle_sha256": sums[MANIFEST_FILE],
            "model_sha256": sums[MODEL_FILE],
        }

    def push_oci(
        self, ref: ModelRef, target: str, plain_http: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        """Push the verified bundle to a registry as an OCI artifact.

        Returns the pinned ``oci://…@sha256:…`` reference and the desired-model
        record an agent fetches it by.
        """
        from edgeloop.provenance.oci_push import parse_target, push_bundle

        destination = parse_target(target)
        with tempfile.TemporaryDirectory(prefix="edgeloop-push-") as tmp:
            version, bundle = self.download(ref, Path(tmp))
            annotations = {
                "io.edgeloop.model": ref.name,
                "io.edgeloop.version": str(version),
                "org.opencontainers.image.title": f"{ref.name}:{version}",
            }
            pinned = push_bundle(
                bundle, destination, annotations, plain_http=plain_http
            )
            digest = file_sha256(bundle / MANIFEST_FILE)
        record = DesiredModel(
            model_name=ref.name,
            version=str(version),
            bundle_uri=str(pinned),
            bundle_sha256=digest,
        )
        return {
            "model": f"{ref.name}:{version}",
            "pushed": str(pinned),
            "tag": str(destination),
            "bundle_sha256": digest,
            "desired_model": record.model_dump(mode="json", exclude_none=True),
        }

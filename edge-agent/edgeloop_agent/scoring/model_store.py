"""Bundle cache on disk: fetch (resuming), verify, load, smoke-test, remember.

A bundle location is a directory (plain path or ``file://``), an HTTP(S) base
URL holding ``bundle.json`` and ``model.onnx`` (``bundle.json`` alone for a
monitor-only bundle), or an ``oci://`` artifact
(:mod:`edgeloop_agent.scoring.oci_pull`).

Layout under ``cache_dir``::

    <digest>/bundle.json, model.onnx   verified bundles, one per bundle digest
    .partial-<digest>/                 downloads in progress (resumed on retry)
    active.json                        the DesiredModel record now active

A bundle directory only gets its final name after every check passed, so a
crash mid-download never leaves something that looks verified. On restart the
agent reloads ``active.json``'s bundle from disk, with no network.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from edgeloop_agent.contracts import (
    MANIFEST_FILE,
    MODEL_FILE,
    BundleError,
    BundleManifest,
    DesiredModel,
    bundle_digest,
    read_manifest,
    verify_bundle,
)
from edgeloop_agent.scoring.oci_pull import OciPuller
from edgeloop_agent.scoring.onnx import OnnxScorer
from edgeloop_agent.scoring.transfer import Transfer, stream_to_file

log = logging.getLogger(__name__)

ACTIVE_FILE = "active.json"
MAX_MANIFEST_FILE_BYTES = 16 * 2**20
"""``bundle.json`` holds a reference profile and a sample: a few hundred KiB."""


@dataclass(frozen=True)
class LoadedModel:
    """A verified, loaded, smoke-tested model: immutable, swapped as a whole."""

    name: str
    version: str
    digest: str
    bundle_dir: Path
    manifest: BundleManifest
    scorer: OnnxScorer | None
    """None for a monitor-only bundle: no model, windows only."""
    record: DesiredModel


class ModelStore:
    """Fetches bundles into the cache and turns them into :class:`LoadedModel`."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        threads: int = 1,
        timeout_s: float = 60.0,
        smoke_tolerance: float = 1e-5,
        transport: httpx.BaseTransport | None = None,
        plain_http_registries: tuple[str, ...] = (),
        registry_mirror: str = "",
        max_bundle_bytes: int = 256 * 2**20,
        deadline_s: float = 600.0,
        redirect_hosts: tuple[str, ...] = (),
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self._threads = threads
        self._timeout = timeout_s
        self._tolerance = smoke_tolerance
        self._transport = transport
        self._max_bundle_bytes = max_bundle_bytes
        self._deadline_s = deadline_s
        self._redirect_hosts = redirect_hosts
        self.wanted = ""
        """Digest of the desired model now; a download of another digest stops."""
        self._oci = OciPuller(
            timeout_s=timeout_s,
            plain_http=plain_http_registries,
            mirror=registry_mirror,
            transport=transport,
        )

    def fetch(self, desired: DesiredModel) -> Path:
        """The verified bundle directory for ``desired``, downloading if needed."""
        final = self.cache_dir / desired.bundle_sha256
        if final.is_dir():
            try:
                verify_bundle(final, desired.bundle_sha256)
                return final
            except BundleError:
                log.warning(
                    "cached bundle %s failed verification; fetching again", final
                )
                shutil.rmtree(final, ignore_errors=True)
        partial = self.cache_dir / f".partial-{desired.bundle_sha256}"
        try:
            partial.mkdir(parents=True, exist_ok=True)
            self._download(
                desired.bundle_uri, MANIFEST_FILE, partial, desired.bundle_sha256
            )
            verify_digest = bundle_digest(partial)
            if verify_digest != desired.bundle_sha256:
                (partial / MANIFEST_FILE).unlink(missing_ok=True)
                raise BundleError(
                    f"{desired.bundle_uri}: bundle digest {verify_digest[:12]}… does not match "
                    f"the pinned {desired.bundle_sha256[:12]}…"
                )
            if not read_manifest(partial).monitor_only:
                self._download(
                    desired.bundle_uri, MODEL_FILE, partial, desired.bundle_sha256
                )
            try:
                verify_bundle(partial, desired.bundle_sha256)
            except BundleError:
                (partial / MODEL_FILE).unlink(missing_ok=True)
                raise
            partial.rename(final)
        except OSError as exc:
            raise BundleError(
                f"cannot store bundle in {self.cache_dir}: {exc.strerror or exc}"
            ) from exc
        return final

    def load(self, bundle_dir: Path, record: DesiredModel) -> LoadedModel:
        """Verify, open and smoke-test a cached bundle (a monitor-only one has no model)."""
        manifest = verify_bundle(bundle_dir, record.bundle_sha256)
        scorer = None if manifest.monitor_only else self._open(manifest, bundle_dir)
        return LoadedModel(
            name=record.model_name,
            version=record.version,
            digest=record.bundle_sha256,
            bundle_dir=bundle_dir,
            manifest=manifest,
            scorer=scorer,
            record=record,
        )

    def _open(self, manifest: BundleManifest, bundle_dir: Path) -> OnnxScorer:
        """The bundle's model, loaded and smoke-tested."""
        scorer = OnnxScorer(self._threads)
        scorer.load(bundle_dir / MODEL_FILE)
        expected = len(manifest.features.input_names())
        if scorer.n_inputs != expected:
            raise BundleError(
                f"{bundle_dir}: model takes {scorer.n_inputs} inputs, manifest lists {expected}"
            )
        self._smoke_test(scorer, manifest, bundle_dir)
        return scorer

    def _smoke_test(
        self, scorer: OnnxScorer, manifest: BundleManifest, bundle_dir: Path
    ) -> None:
        sample = manifest.reference_sample
        if not sample.inputs:
            return
        x = np.array(
            [[np.nan if v is None else v for v in row] for row in sample.inputs],
            dtype=np.float32,
        )
        got = scorer.predict(x)
        worst = float(np.max(np.abs(got - np.asarray(sample.scores))))
        if worst > self._tolerance:
            raise BundleError(
                f"{bundle_dir}: smoke test failed: reference sample scores differ by {worst:.2e} "
                f"(max {self._tolerance:.0e})"
            )

    def standalone(self, location: str) -> LoadedModel:
        """Load one bundle given by path or URL, pinned by its own digest."""
        staging = self.cache_dir / f".standalone-{int(time.time() * 1000)}"
        staging.mkdir(parents=True, exist_ok=True)
        try:
            self._download(location, MANIFEST_FILE, staging)
            if not read_manifest(staging).monitor_only:
                self._download(location, MODEL_FILE, staging)
            manifest = verify_bundle(staging)
            digest = bundle_digest(staging)
            final = self.cache_dir / digest
            if final.exists():
                shutil.rmtree(staging)
            else:
                staging.rename(final)
        except OSError as exc:
            raise BundleError(
                f"cannot store bundle in {self.cache_dir}: {exc.strerror or exc}"
            ) from exc
        finally:
            if staging.exists() and staging.name.startswith(".standalone-"):
                shutil.rmtree(staging, ignore_errors=True)
        record = self._standalone_record(location, manifest.model_name, digest)
        return self.load(final, record)

    def _standalone_record(self, location: str, name: str, digest: str) -> DesiredModel:
        """The record to serve a standalone bundle under.

        ``edgeloop models export`` writes ``desired-model.json`` beside the
        bundle (registered version and digest); without it the version is the
        digest's prefix. A record that pins another digest is refused.
        """
        parsed = urlparse(location)
        local = (
            Path(parsed.path if parsed.scheme == "file" else location)
            / "desired-model.json"
        )
        if parsed.scheme in {"", "file"} and local.is_file():
            record = read_desired(local)
            if record.bundle_sha256 != digest:
                raise BundleError(
                    f"{local}: pins bundle {record.bundle_sha256[:12]}…, the bundle is {digest[:12]}…"
                )
            return record.model_copy(update={"bundle_uri": location})
        return DesiredModel(
            model_name=name,
            version=digest[:12],
            bundle_uri=location,
            bundle_sha256=digest,
        )

    def remember(self, model: LoadedModel) -> None:
        """Persist which record is active (atomically: write then rename)."""
        tmp = self.cache_dir / f".{ACTIVE_FILE}.tmp"
        tmp.write_text(model.record.model_dump_json(), encoding="utf-8")
        tmp.replace(self.cache_dir / ACTIVE_FILE)

    def restore(self) -> LoadedModel | None:
        """The model that was active before a restart, from disk only."""
        path = self.cache_dir / ACTIVE_FILE
        if not path.is_file():
            return None
        try:
            record = DesiredModel.model_validate_json(path.read_text(encoding="utf-8"))
            return self.load(self.cache_dir / record.bundle_sha256, record)
        except (BundleError, ValueError, OSError) as exc:
            log.error("cannot restore the cached active model: %s", exc)
            return None

    def _download(
        self, location: str, name: str, target_dir: Path, digest: str = ""
    ) -> None:
        """Copy or download ``location/name`` into ``target_dir``, resuming partial files."""
        parsed = urlparse(location)
        target = target_dir / name
        if parsed.scheme in {"http", "https", "oci"}:
            transfer = self._transfer(name, target_dir, digest)
            if parsed.scheme == "oci":
                self._oci.download(location, name, target_dir, transfer)
            else:
                self._http_get(f"{location.rstrip('/')}/{name}", target, transfer)
            return
        source = Path(parsed.path if parsed.scheme == "file" else location) / name
        if not source.is_file():
            raise BundleError(f"{source}: bundle file not found")
        shutil.copyfile(source, target)

    def _transfer(self, name: str, target_dir: Path, digest: str) -> Transfer:
        """Limits of one download attempt.

        ``bundle.json`` is small; ``model.onnx`` is as large as the (already
        digest-checked) manifest declares, else ``max_bundle_bytes``.
        """
        cap = MAX_MANIFEST_FILE_BYTES
        if name == MODEL_FILE:
            declared = read_manifest(target_dir).model_bytes
            cap = declared or self._max_bundle_bytes
        return Transfer(
            max_bytes=cap,
            deadline=time.monotonic() + self._deadline_s,
            redirect_hosts=self._redirect_hosts,
            cancelled=lambda: bool(digest) and self.wanted not in ("", digest),
        )

    def _http_get(self, url: str, target: Path, transfer: Transfer) -> None:
        try:
            with httpx.Client(
                timeout=self._timeout, transport=self._transport, follow_redirects=False
            ) as client:
                stream_to_file(client, url, target, transfer)
        except httpx.HTTPError as exc:
            raise BundleError(
                f"{url}: download failed ({exc.__class__.__name__}: {exc})"
            ) from exc


def read_desired(path: Path) -> DesiredModel:
    """Parse the desired-model file; a readable error for anything wrong with it."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BundleError(
            f"{path}: cannot read desired-model file ({exc.strerror})"
        ) from exc
    except json.JSONDecodeError as exc:
        raise BundleError(
            f"{path}: desired-model file is not JSON ({exc.msg} at line {exc.lineno})"
        ) from exc
    try:
        return DesiredModel.model_validate(raw)
    except ValueError as exc:
        raise BundleError(
            f"{path}: invalid desired-model record ({str(exc).splitlines()[0]})"
        ) from exc

"""Follow the desired-model file: prepare, pre-stage, activate, fall back.

Each poll compares the file with what is active. A new target is prepared in a
worker thread (fetch with resume, verify digests, load, smoke test) while the
current model keeps serving; it becomes active in one swap, immediately or at
its ``activate_at`` time. A target that fails is retried with the backoff from
settings and never replaces the current model. If nothing is serving yet, the
record's ``last_known_good`` is tried instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edgeloop_agent.backoff import Backoff
from edgeloop_agent.contracts import BundleError, DesiredModel
from edgeloop_agent.scoring.model_store import LoadedModel, ModelStore, read_desired
from edgeloop_agent.service import ScoringService
from edgeloop_agent.settings import ModelSettings

log = logging.getLogger(__name__)


class Lifecycle:
    """Keeps the service on the desired model."""

    def __init__(
        self,
        settings: ModelSettings,
        store: ModelStore,
        service: ScoringService,
        clock: Callable[[], float] = time.time,
        node: str = "",
    ) -> None:
        self.settings = settings
        self.node = node
        self.store = store
        self.service = service
        self._clock = clock
        self._seen_hash = ""
        self.desired: DesiredModel | None = None
        self.staged: LoadedModel | None = None
        self._failures: dict[str, int] = {}
        self._backoff = Backoff(settings.retry_delays_s, settings.retry_jitter)
        self._retry_at: dict[str, float] = {}

    def restore(self) -> bool:
        """Activate the cached model from disk (no network); True if one was found."""
        model = self.store.restore()
        if model is None:
            return False
        self.service.swap(model)
        return True

    async def run(self) -> None:
        """Poll the desired-model file until cancelled."""
        while True:
            try:
                await self.step()
            except Exception:  # the watcher must survive anything and keep serving
                log.exception("desired-model watcher step failed")
            await asyncio.sleep(self.settings.poll_interval_s)

    async def step(self) -> None:
        """One poll: read the file, prepare and/or activate."""
        self._read_file()
        target = self.desired
        if target is None:
            return
        active = self.service.active
        if active is not None and active.digest == target.bundle_sha256:
            # e.g. a rollback to the version still serving: whatever failed
            # before is no longer wanted, so the node is healthy again
            self.staged = None
            self.service.last_model_failure = ""
            return
        if self.staged is None or self.staged.digest != target.bundle_sha256:
            self.staged = await self._prepare(target)
            if self.staged is None:
                await self._fallback(target)
                return
        if self._due(target):
            model, self.staged = self.staged, None
            self.service.swap(model)
            self.service.last_model_failure = ""
            await asyncio.to_thread(self.store.remember, model)

    def desired_path(self) -> Path:
        """This node's own record when its ConfigMap has one, else the group's.

        A percentage wave that splits a node group gives the nodes it targets a
        key ``desired-model.<node>.json`` beside the group's ``desired-model.json``
        (both projected from the same ConfigMap into the same directory).
        """
        path = self.settings.desired_model_path
        if self.node:
            own = path.with_name(f"{path.stem}.{self.node}{path.suffix}")
            if own.exists():
                return own
        return path

    def _read_file(self) -> None:
        path = self.desired_path()
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            self.service.record_failure(
                f"{path}: cannot read desired-model file ({exc.strerror})"
            )
            return
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self._seen_hash:
            return
        self._seen_hash = digest
        try:
            self.desired = read_desired(path)
        except BundleError as exc:
            self.service.record_failure(exc.message)

    def _due(self, target: DesiredModel) -> bool:
        if target.activate_at is None:
            return True
        when = (
            target.activate_at
            if target.activate_at.tzinfo
            else target.activate_at.replace(tzinfo=UTC)
        )
        return datetime.fromtimestamp(self._clock(), tz=UTC) >= when

    async def _prepare(self, target: DesiredModel) -> LoadedModel | None:
        digest = target.bundle_sha256
        if self._clock() < self._retry_at.get(digest, 0.0):
            return None
        try:
            bundle = await self._fetch_watching(target)
            model = await asyncio.to_thread(self.store.load, bundle, target)
        except BundleError as exc:
            failures = self._failures.get(digest, 0) + 1
            self._failures[digest] = failures
            self._retry_at[digest] = self._clock() + self._backoff.delay(failures)
            self.service.record_failure(
                f"{target.model_name}:{target.version}: {exc.message}"
            )
            return None
        self._failures.pop(digest, None)
        self._retry_at.pop(digest, None)
        return model

    async def _fetch_watching(self, target: DesiredModel) -> Path:
        """Fetch in a thread while still watching the desired-model file.

        If the file names another bundle meanwhile (a newer champion, a
        rollback), the store's ``wanted`` digest changes and the download
        stops at its next chunk instead of finishing a model nobody wants.
        """
        self.store.wanted = target.bundle_sha256
        fetch = asyncio.ensure_future(asyncio.to_thread(self.store.fetch, target))
        while not fetch.done():
            await asyncio.wait({fetch}, timeout=self.settings.poll_interval_s)
            if not fetch.done():
                self._read_file()
                if self.desired is not None:
                    self.store.wanted = self.desired.bundle_sha256
        return await fetch

    async def _fallback(self, target: DesiredModel) -> None:
        """Nothing serving and the target failed: try its last-known-good."""
        lkg = target.last_known_good
        if self.service.active is not None or lkg is None:
            return
        model = await self._prepare(lkg)
        if model is not None:
            log.warning("serving last-known-good %s:%s", lkg.model_name, lkg.version)
            self.service.swap(model)
            await asyncio.to_thread(self.store.remember, model)

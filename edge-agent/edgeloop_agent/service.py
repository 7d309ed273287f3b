"""ScoringService: score -> record drift -> queue reports. Knows nothing of HTTP or MQTT.

The active model and its window monitor live together in one immutable
``_Serving`` object that is replaced in a single assignment, so a request sees
either the old model or the new one, never a half-swapped pair. Raw readings
keep a short per-entity history, from which model inputs are computed with
``edgeloop_agent.features`` (the training code itself).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from edgeloop_agent.contracts import DriftWindow, Heartbeat, ReadingsBatch, RowSample
from edgeloop_agent.drift.monitor import WindowMonitor
from edgeloop_agent.errors import InputError, ModelNotReadyError, NoModelError
from edgeloop_agent.features import history_length, window_features
from edgeloop_agent.metrics import Metrics
from edgeloop_agent.outbox.store import Outbox
from edgeloop_agent.scoring.explain import Contribution, Explainer
from edgeloop_agent.scoring.model_store import LoadedModel
from edgeloop_agent.scoring.onnx import ScoringError
from edgeloop_agent.settings import AgentSettings

log = logging.getLogger(__name__)


#: A readings batch is sent early once it holds this many rows.
MAX_READINGS_BATCH = 5_000


@dataclass
class _PendingReadings:
    """Raw readings scored by one model version, not yet queued for upload."""

    model_name: str
    version: str
    columns: tuple[str, ...]
    entities: list[str] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)
    rows: list[NDArray[np.float64]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    alarms: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class _Serving:
    model: LoadedModel
    monitor: WindowMonitor
    sensors: tuple[str, ...]
    history: int
    explainer: Explainer


def missing_sensors(
    values: NDArray[np.float64], sensors: Sequence[str]
) -> list[tuple[str, ...]]:
    """Per reading, the sensors it lacks (NaN).

    A reading scored without them is *degraded*, and its alarm says so: an
    operator should not read a dropout's alarm as a failure's.
    """
    gaps = np.isnan(values)
    if not gaps.any():
        return [()] * len(values)
    return [
        tuple(s for s, gap in zip(sensors, row, strict=True) if gap)
        if row.any()
        else ()
        for row in gaps
    ]


@dataclass(frozen=True)
class Scored:
    """Scores of one request and the model version that produced them."""

    scores: NDArray[np.float64]
    alarms: NDArray[np.bool_]
    model: LoadedModel
    explanations: tuple[tuple[Contribution, ...], ...] = ()
    """Per row, the top sensors behind an alarm (empty for rows that did not alarm)."""

    def first_causes(self) -> list[str] | None:
        """Per row, the sensor its explanation names first ('' without one)."""
        if not self.explanations:
            return None
        return [e[0][0] if e else "" for e in self.explanations]

    def explanation(self, row: int) -> list[dict[str, object]]:
        """Row ``row``'s explanation as JSON-ready ``{"sensor", "contribution"}`` items."""
        if row >= len(self.explanations):
            return []
        return [{"sensor": s, "contribution": c} for s, c in self.explanations[row]]


class ScoringService:
    """The agent's core, shared by the HTTP API and the MQTT bridge."""

    def __init__(
        self,
        settings: AgentSettings,
        metrics: Metrics | None = None,
        outbox: Outbox | None = None,
        clock: Callable[[], float] = time.time,
        on_report: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.outbox = outbox
        if outbox is not None:
            self.metrics.watch_outbox(outbox)
        self._clock = clock
        self._on_report = on_report
        self._serving: _Serving | None = None
        self._lock = threading.Lock()  # guards histories and the monitor's buffers
        self._histories: OrderedDict[str, NDArray[np.float64]] = OrderedDict()
        self._pending: _PendingReadings | None = None
        self._started = clock()
        self._last_heartbeat = 0.0
        self.last_model_failure = ""

    @property
    def active(self) -> LoadedModel | None:
        """The model now serving, or None before the first activation."""
        serving = self._serving
        return serving.model if serving else None

    def swap(self, model: LoadedModel) -> None:
        """Make ``model`` active in one assignment; flush the old model's window."""
        spec = model.manifest.features
        new = _Serving(
            model=model,
            monitor=WindowMonitor(
                model.manifest,
                model.version,
                self.settings.drift,
                self.settings.node,
                self._clock,
            ),
            sensors=spec.sensors,
            history=history_length(spec),
            explainer=Explainer.for_manifest(model.manifest),
        )
        with self._lock:
            old = self._serving
            if old is not None and old.monitor.rows:
                self._emit([old.monitor.close()])
            self._flush_readings()
            if old is None or old.sensors != new.sensors:
                self._histories.clear()
            self._serving = new
        self.metrics.serving(model.name, model.version, model.digest[:12])
        self.metrics.inc("edgeloop_model_activations_total", version=model.version)
        log.info(
            "serving %s:%s (bundle %s…)", model.name, model.version, model.digest[:12]
        )

    def record_failure(self, message: str) -> None:
        """Remember why a model could not be activated (heartbeat, metrics, log)."""
        self.last_model_failure = message
        self.metrics.inc("edgeloop_model_failures_total")
        log.error("model not activated: %s", message)

    def _serving_or_fail(self) -> _Serving:
        serving = self._serving
        if serving is None:
            raise ModelNotReadyError("no verified model is active yet")
        return serving

    def score_inputs(self, inputs: NDArray[np.float32]) -> Scored:
        """Score model inputs (the V2 inference path)."""
        serving = self._serving_or_fail()
        if serving.model.scorer is None:
            raise NoModelError(
                f"{serving.model.name}:{serving.model.version} is a monitor-only bundle "
                "with no model to infer with; send readings to /predict to keep its "
                "drift and data-quality windows"
            )
        expected = serving.model.manifest.features.n_inputs
        if inputs.ndim != 2 or inputs.shape[1] != expected:
            raise InputError(
                f"input: expected shape [batch, {expected}], got {list(inputs.shape)}"
            )
        self._check_batch(len(inputs))
        scores = self._predict(serving, inputs)
        scored = self._scored(serving, inputs, scores)
        with self._lock:
            self._emit(
                serving.monitor.observe(inputs, scores, causes=scored.first_causes())
            )
        return scored

    def score_readings(
        self,
        entities: Sequence[str],
        values: NDArray[np.float64],
        stamps: Sequence[float | None] | None = None,
    ) -> Scored:
        """Append raw readings to each entity's history and score the new windows.

        Args:
            entities: entity (pump) of each reading, in arrival order.
            values: ``(n, len(sensors))`` readings; NaN for a missing sensor value.
            stamps: epoch seconds each reading was taken (None: now); only
                kept when readings are uploaded for retraining.
        """
        serving = self._serving_or_fail()
        self._check_batch(len(entities))
        with self._lock:
            if self._serving is not serving:  # swapped meanwhile: use the new one
                serving = self._serving_or_fail()
            history = np.empty((len(entities), serving.history, len(serving.sensors)))
            for i, entity in enumerate(entities):
                buf = self._history_for(entity, serving)
                buf[:-1] = buf[1:]
                buf[-1] = values[i]
                history[i] = buf
            inputs = window_features(history, serving.model.manifest.features)
            scores = self._predict(serving, inputs)
            if (
                self.settings.outbox.upload_readings
                and self.outbox is not None
                and serving.model.scorer
                is not None  # readings travel with their scores
            ):
                self._keep_readings(serving, entities, values, stamps, scores)
            scored = self._scored(serving, inputs, scores)
            self._emit(
                serving.monitor.observe(
                    inputs,
                    scores,
                    values,
                    list(entities),
                    stamps,
                    scored.first_causes(),
                )
            )
        return scored

    def _scored(
        self,
        serving: _Serving,
        inputs: NDArray[np.float32],
        scores: NDArray[np.float64],
    ) -> Scored:
        """Alarms by the bundle's threshold, each explained by its top sensors."""
        output = serving.model.manifest.output
        if output is None:  # monitor-only: no score, no alarm
            return Scored(scores, np.zeros(len(scores), dtype=bool), serving.model)
        alarms = scores >= output.threshold
        alarming = int(np.count_nonzero(alarms))
        version = serving.model.version
        self.metrics.inc("edgeloop_scored_rows_total", len(scores), version=version)
        if alarming:
            self.metrics.inc("edgeloop_alarms_total", alarming, version=version)
        top = self.settings.scoring.explain_top
        if not alarming or top == 0:
            return Scored(scores, alarms, serving.model)
        rows = np.flatnonzero(alarms)
        found = serving.explainer.explain(
            lambda x: self._predict(serving, x), inputs[rows], scores[rows], top
        )
        explanations: list[tuple[Contribution, ...]] = [()] * len(scores)
        for row, explanation in zip(rows, found, strict=True):
            explanations[row] = explanation
        self.metrics.inc("edgeloop_explained_alarms_total", by=len(rows))
        return Scored(scores, alarms, serving.model, tuple(explanations))

    def _predict(
        self, serving: _Serving, inputs: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        """Score, counting a model that raises or answers NaN (HTTP 500, JSON body).

        A monitor-only bundle has no scorer: its rows get NaN, which the window
        monitor counts in no score bin and no alarm.
        """
        scorer = serving.model.scorer
        if scorer is None:
            return np.full(len(inputs), np.nan)
        try:
            return scorer.predict(inputs)
        except ScoringError:
            self.metrics.inc(
                "edgeloop_scoring_failures_total", version=serving.model.version
            )
            raise

    def _history_for(self, entity: str, serving: _Serving) -> NDArray[np.float64]:
        buf = self._histories.get(entity)
        if buf is None or buf.shape[0] != serving.history:
            if len(self._histories) >= self.settings.scoring.max_entities:
                self._histories.popitem(last=False)
            buf = np.full((serving.history, len(serving.sensors)), np.nan)
            self._histories[entity] = buf
        else:
            self._histories.move_to_end(entity)
        return buf

    def _check_batch(self, rows: int) -> None:
        limit = self.settings.scoring.max_batch_rows
        if rows > limit:
            raise InputError(
                f"batch of {rows} rows exceeds max_batch_rows {limit}", status_code=413
            )
        if rows == 0:
            raise InputError("batch is empty: send at least one row")

    def _keep_readings(
        self,
        serving: _Serving,
        entities: Sequence[str],
        values: NDArray[np.float64],
        stamps: Sequence[float | None] | None,
        scores: NDArray[np.float64],
    ) -> None:
        now = self._clock()
        pending = self._pending
        if pending is None or pending.version != serving.model.version:
            self._flush_readings()
            pending = self._pending = _PendingReadings(
                serving.model.name, serving.model.version, serving.sensors
            )
        pending.entities.extend(entities)
        pending.stamps.extend(
            now if s is None else s for s in (stamps or [None] * len(entities))
        )
        pending.rows.extend(values)
        pending.scores.extend(float(x) for x in scores)
        threshold = serving.model.manifest.scoring().threshold
        pending.alarms.extend(bool(x >= threshold) for x in scores)
        if len(pending.rows) >= MAX_READINGS_BATCH:
            self._flush_readings()

    def _flush_readings(self) -> None:
        """Queue the pending raw readings as one batch (caller holds the lock)."""
        pending, self._pending = self._pending, None
        if pending is None or not pending.rows or self.outbox is None:
            return
        self.outbox.put(
            ReadingsBatch(
                site=self.settings.node.site,
                cohort=self.settings.node.cohort,
                model_name=pending.model_name,
                model_version=pending.version,
                columns=pending.columns,
                entities=tuple(pending.entities),
                timestamps=tuple(
                    datetime.fromtimestamp(t, tz=UTC) for t in pending.stamps
                ),
                rows=tuple(
                    tuple(None if np.isnan(v) else float(v) for v in row)
                    for row in pending.rows
                ),
                scores=tuple(pending.scores),
                alarms=tuple(pending.alarms),
            )
        )

    def _emit(self, closed: list[tuple[DriftWindow, RowSample | None]]) -> None:
        if self.outbox is None or not closed:
            return
        self._flush_readings()
        for window, sample in closed:
            self.outbox.put(window, *([] if sample is None else [sample]))
            self.metrics.inc(
                "edgeloop_drift_windows_total", version=window.model_version
            )
            self.metrics.set(
                "edgeloop_drifted_share",
                window.drifted_share,
                version=window.model_version,
            )
            for feature in window.features:
                self.metrics.set(
                    "edgeloop_feature_psi", feature.psi, feature=feature.name
                )
        if self._on_report:
            self._on_report()

    def tick(self) -> None:
        """Close a window that is due and queue a heartbeat when one is due."""
        serving = self._serving
        if serving is not None:
            with self._lock:
                if serving.monitor.due():
                    self._emit([serving.monitor.close()])
        now = self._clock()
        if (
            self.outbox is not None
            and now - self._last_heartbeat >= self.settings.outbox.heartbeat_interval_s
        ):
            self._last_heartbeat = now
            self.outbox.put(self.heartbeat())
            if self._on_report:
                self._on_report()

    def close(self) -> None:
        """Shutdown: queue the open window and the pending readings (durable in the outbox).

        Without this a restart (a pod rescheduled, a gateway rebooted) would
        drop up to a window of drift counts and uploaded readings.
        """
        serving = self._serving
        with self._lock:
            if serving is not None and serving.monitor.rows:
                self._emit([serving.monitor.close()])
            self._flush_readings()
        if self.outbox is not None:
            self.outbox.put(self.heartbeat())

    def _outbox_losses(self) -> dict[str, int]:
        stats = self.outbox.stats() if self.outbox else {}
        dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
        return {
            "outbox_dropped": dropped,
            "dead_letters": stats.get("dead_lettered", 0),
        }

    def heartbeat(self) -> Heartbeat:
        """This node's health right now."""
        model = self.active
        p50, p99 = self.metrics.percentiles()
        return Heartbeat(
            site=self.settings.node.site,
            cohort=self.settings.node.cohort,
            model_name=model.name if model else "",
            model_version=model.version if model else "",
            bundle_sha256=model.digest if model else "",
            requests=self.metrics.requests_ok,
            errors=self.metrics.requests_failed,
            latency_p50_ms=p50,
            latency_p99_ms=p99,
            outbox_depth=self.outbox.depth() if self.outbox else 0,
            **self._outbox_losses(),
            last_model_failure=self.last_model_failure,
            uptime_s=max(0.0, self._clock() - self._started),
        )

"""Evidently data-drift and data-summary reports per model version, cohort and window.

Current data: the row samples agents send (``RowSample`` reports in the intake
store). Reference data: the bundle's reference sample (training rows scored by
the exported model). Each run is stored as a snapshot in an Evidently workspace,
one project per model (a local directory by default; ``evidently ui`` shows it).

Evidently is imported inside the functions that need it: its import alone takes
seconds and the rest of the CLI should not pay for it.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from edgeloop.core.errors import NotFoundError
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tables import reports
from edgeloop.provenance.registry import ModelRef, Registry
from edgeloop_agent.contracts import Report, RowSample, read_manifest

SCORE = "score"


@dataclass(frozen=True)
class RunRecord:
    """One stored Evidently run."""

    project: str
    snapshot: str
    model: str
    version: str
    cohort: str
    window: str
    rows: int
    drifted_columns: float | None


def reference_frame(registry: Registry, name: str, version: int) -> pd.DataFrame:
    """The bundle's reference sample (inputs + score) as a DataFrame."""
    with tempfile.TemporaryDirectory(prefix="edgeloop-ref-") as tmp:
        _, bundle = registry.download(ModelRef(name, version=version), Path(tmp))
        manifest = read_manifest(bundle)
    columns = manifest.features.input_names()
    frame = pd.DataFrame(
        [list(r) for r in manifest.reference_sample.inputs],
        columns=columns,
        dtype=float,
    )
    frame[SCORE] = list(manifest.reference_sample.scores)
    return frame


def sample_groups(
    store: IntakeStore,
    model: str,
    version: str | None = None,
    after: datetime | None = None,
    bucket_s: int = 3600,
    pump_types: dict[str, str] | None = None,
) -> dict[tuple[str, str, str], pd.DataFrame]:
    """Samples grouped by (version, cohort, window start), as DataFrames.

    The cohort is the agent's (or its site). With ``pump_types`` (entity ->
    type, from an asset register) every row also lands in a
    ``pump_type=<type>`` cohort, across sites.
    """
    query = sa.select(reports.c.body).where(reports.c.kind == "sample")
    if after is not None:
        query = query.where(reports.c.received_at > after)
    with store.engine.connect() as conn:
        bodies = [row[0] for row in conn.execute(query.order_by(reports.c.received_at))]
    rows: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for text in bodies:
        sample = Report.model_validate_json(text).body
        assert isinstance(sample, RowSample)
        if sample.model_name != model or (
            version is not None and sample.model_version != version
        ):
            continue
        start = int(sample.window_end.timestamp() // bucket_s * bucket_s)
        key = (
            sample.model_version,
            sample.cohort or sample.site,
            datetime.fromtimestamp(start, tz=UTC).isoformat(),
        )
        entities = sample.entities or ("",) * len(sample.rows)
        for values, score, entity in zip(
            sample.rows, sample.scores, entities, strict=True
        ):
            row = {**dict(zip(sample.columns, values, strict=True)), SCORE: score}
            rows[key].append(row)
            if pump_types and entity in pump_types:
                rows[(key[0], f"pump_type={pump_types[entity]}", key[2])].append(row)
    return {key: pd.DataFrame(items).astype(float) for key, items in rows.items()}


def run_report(
    current: pd.DataFrame,
    reference: pd.DataFrame,
    metadata: dict[str, str],
    summary: bool = True,
) -> Any:
    """Evidently's data-drift preset (plus its data-summary preset) on current vs reference.

    The summary preset renders a handful of plotly figures per column and is
    about 60 % of a run's time (docs/benchmarks.md), so the scheduled passes
    leave it out unless ``monitor.summary`` asks for it; on-demand HTML
    reports keep it.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import DatasetMissingValueCount
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    columns = [c for c in reference.columns if c in current.columns]
    definition = DataDefinition(numerical_columns=columns)
    # missing values: the data-quality count the dashboard plots (cheap, always)
    metrics: list[Any] = [DataDriftPreset(), DatasetMissingValueCount()]
    report = Report([*metrics, DataSummaryPreset()] if summary else metrics)
    return report.run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(
            reference[columns], data_definition=definition
        ),
        # the data's time, not the monitor's: the dashboard's x axis
        timestamp=_window_time(metadata.get("window", "")),
        metadata=dict(metadata),
        tags=[f"{k}={v}" for k, v in sorted(metadata.items())],
        name=f"{metadata['model']}:{metadata['version']} {metadata['cohort']} {metadata['window']}",
    )


def _window_time(window: str) -> datetime | None:
    """A window's start as the snapshot's time; None (now) for ``all`` and the like."""
    try:
        return datetime.fromisoformat(window)
    except ValueError:
        return None


def drifted_share(snapshot: Any) -> float | None:
    """Share of drifted columns from a snapshot (Evidently's DriftedColumnsCount)."""
    for metric in json.loads(snapshot.json()).get("metrics", []):
        if "DriftedColumnsCount" in str(metric.get("metric_name", "")):
            value = metric.get("value", {})
            share = value.get("share") if isinstance(value, dict) else None
            return None if share is None else float(share)
    return None


class MonitorWorkspace:
    """An Evidently workspace with one project per model: local, or a remote UI service."""

    def __init__(self, location: Path | str, secret: str = "") -> None:
        from evidently.ui.workspace import RemoteWorkspace, Workspace

        self.location = str(location)
        self._secret = secret
        self.remote = self.location.startswith(("http://", "https://"))
        self.path = Path(self.location) if not self.remote else Path()
        self.workspace: Any = (
            RemoteWorkspace(self.location, secret=secret or None)
            if self.remote
            else Workspace.create(self.location)
        )

    def project_id(self, model: str) -> str:
        """The model's project, created once (create_project does not dedupe by name)."""
        found = self.workspace.search_project(model)
        if found:
            return str(found[0].id)
        project = self.workspace.create_project(
            model, description=f"edgeloop monitoring of {model}"
        )
        project.save()
        return str(project.id)

    def dashboard(self, model: str, cohorts: set[str], versions: set[str]) -> None:
        """Panels on the model's project (Evidently's dashboard API).

        Drift share per cohort and per version over data time, drifted columns,
        missing values. Rebuilt when a cohort or version appears that no panel shows yet; an
        existing dashboard that already shows them all is left as it is.
        """
        from edgeloop.monitor.evidently_dashboard import fleet_panels, tags_shown

        board = self.workspace.get_project(self.project_id(model)).dashboard
        shown = tags_shown(board)
        cohorts = cohorts | {t[7:] for t in shown if t.startswith("cohort=")}
        versions = versions | {t[8:] for t in shown if t.startswith("version=")}
        panels = fleet_panels(cohorts, versions)
        if [p.title for p in board.model().panels] == [p.title for p in panels]:
            return
        board.clear_dashboard()
        # Evidently 0.7 lists a panel twice when it is added to an existing
        # tab by name: name the tab once (it is created), then add to the first tab
        board.add_panel(panels[0], tab="Fleet drift")
        for panel in panels[1:]:
            board.add_panel(panel)

    def add(self, model: str, snapshot: Any) -> str:
        """Store a run; returns the snapshot id."""
        ref = self.workspace.add_run(
            self.project_id(model), snapshot, include_data=False
        )
        return str(getattr(ref, "id", ref))

    def runs(self, model: str) -> list[str]:
        """Snapshot ids stored for a model.

        Evidently 0.7's ``RemoteWorkspace.list_runs`` raises NotImplementedError,
        so for a remote service this reads the UI's own REST endpoint.
        """
        project = self.project_id(model)
        if not self.remote:
            return [str(r) for r in self.workspace.list_runs(project)]
        import httpx

        response = httpx.get(
            f"{self.location.rstrip('/')}/api/projects/{project}/snapshots",
            headers={"evidently-secret": self._secret} if self._secret else {},
            timeout=30,
        )
        response.raise_for_status()
        return [str(item["id"]) for item in response.json()]


def monitor_pass(
    store: IntakeStore,
    registry: Registry,
    workspace: MonitorWorkspace,
    model: str,
    after: datetime | None,
    bucket_s: int = 3600,
    pump_types: dict[str, str] | None = None,
    summary: bool = False,
    progress: Callable[[int, int, str], None] | None = None,
) -> tuple[list[RunRecord], datetime | None]:
    """Run reports for samples received after ``after``; returns the runs and the new mark.

    Samples are grouped per version, cohort and ``bucket_s`` of data time;
    ``summary`` adds the data-summary preset to every run. ``progress`` hears
    (runs done, runs in all, what the next one is): a run takes seconds.
    """
    with store.engine.connect() as conn:
        newest = conn.execute(
            sa.select(sa.func.max(reports.c.received_at)).where(
                reports.c.kind == "sample"
            )
        ).scalar()
    groups = sample_groups(
        store, model, after=after, bucket_s=bucket_s, pump_types=pump_types
    )
    references: dict[str, pd.DataFrame] = {}
    records = []
    if groups:
        workspace.dashboard(
            model, {cohort for _, cohort, _ in groups}, {v for v, _, _ in groups}
        )
    for done, ((version, cohort, window), current) in enumerate(sorted(groups.items())):
        if progress is not None:
            progress(done, len(groups), f"v{version} {cohort} {window[:13]}")
        if version not in references:
            try:
                references[version] = reference_frame(registry, model, int(version))
            except (NotFoundError, ValueError):
                continue
        meta = {"model": model, "version": version, "cohort": cohort, "window": window}
        snapshot = run_report(current, references[version], meta, summary=summary)
        snapshot_id = workspace.add(model, snapshot)
        records.append(
            RunRecord(
                workspace.project_id(model),
                snapshot_id,
                model,
                version,
                cohort,
                window,
                len(current),
                drifted_share(snapshot),
            )
        )
    if progress is not None:
        progress(len(groups), len(groups), "done")
    return records, newest

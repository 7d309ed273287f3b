"""Platform settings: one ``PlatformSettings`` root, grouped, from ``EDGELOOP_*``.

Built once at the entry point with :func:`load_settings` and passed down;
nothing reads the environment at import time. Nested groups use ``__`` in
environment names, e.g. ``EDGELOOP_REGISTRY__TRACKING_URI``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseModel):
    """Where models are tracked and registered."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    tracking_uri: str = ""
    """MLflow tracking + registry URI. Empty means the embedded store:
    ``sqlite:///<home>/mlflow.db`` with artifacts beside it, so a fresh clone
    needs no server. Any MLflow URI works, e.g. ``http://127.0.0.1:5000``."""
    model_name: str = "pump-failure"
    """Registered model name used when a command is not given one."""


class PipelineSettings(BaseModel):
    """How training pipelines run."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    kfp_host: str = ""
    """Kubeflow Pipelines API URL. Empty means run locally with
    ``kfp.local.SubprocessRunner`` (no cluster needed)."""
    experiment: str = "edgeloop"
    """Kubeflow experiment that submitted runs are filed under."""


class BaselinePolicy(BaseModel):
    """How baselines are built and judged (``EDGELOOP_INTAKE__BASELINE__*``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    windows: int = Field(3, ge=2, le=100)
    """Windows a node sends on a version before its baseline is set."""
    margin: float = Field(10.0, ge=1.0)
    """An input drifts at this many times its typical window-to-window PSI ..."""
    psi_floor: float = Field(0.25, gt=0)
    """... and never below this PSI (the usual 'significant change' level)."""
    pooled_quantile: float = Field(0.9, ge=0, le=1)
    """An input's usual wobble is the larger of the node's own and this quantile of
    it across every node's baseline on the same version (three windows of one node
    rarely see every load regime; the fleet has)."""
    pooled_min_nodes: int = Field(3, ge=2)
    """Ready baselines needed before the fleet's wobble is pooled at all."""
    pooled_outlier_factor: float = Field(10.0, gt=1)
    """A node whose wobble on an input exceeds this many times the fleet's median
    is left out of the pooled statistic (and listed), so it cannot blind the rest."""
    pooled_refresh_s: float = Field(30.0, gt=0)
    """With many ready baselines, the pooled wobble is recomputed at most this
    often (it reads every ready node's wobble: O(nodes)), not on every baseline
    that completes; other intake replicas' new baselines are also seen within it."""
    pooled_exact_below: int = Field(200, ge=0)
    """Below this many ready baselines on a version, each baseline that completes
    here re-pools at once (cheap at that size, and exact for small fleets)."""


class RetentionPolicy(BaseModel):
    """How long the intake keeps each kind of report (``EDGELOOP_INTAKE__RETENTION__*``).

    Heartbeats past their retention are folded into one row per node and day
    (count, first/last time, version, requests, errors, worst p99) before they
    are deleted; other kinds are deleted. Readings and samples are also kept as
    Parquet under ``collect_dir``: each (kind, model, site, day) partition is
    compacted into one file once its day is ``compact_after_days`` old, and
    deleted after ``collected_days`` (training data: kept forever by default).
    0 keeps forever (or never compacts).
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    heartbeat_days: float = Field(7.0, ge=0)
    """Heartbeats are kept this long, then summarised per node and day."""
    drift_days: float = Field(90.0, ge=0)
    """Drift windows (the per-site aggregates at ingest are kept regardless)."""
    sample_days: float = Field(30.0, ge=0)
    """Row samples in the database (Evidently reads the new ones each pass)."""
    readings_days: float = Field(2.0, ge=0)
    """Readings batches in the database (their Parquet copy is the training data)."""
    interval_s: float = Field(3600.0, ge=0)
    """How often a serving intake prunes; 0: never (run ``edgeloop intake prune``)."""
    compact_after_days: float = Field(1.0, ge=0)
    """Collected Parquet partitions are merged into one file per (kind, model, site,
    day) once the day ended this long ago (0: never); late reports for that day are
    merged in at the next pass."""
    collected_days: float = Field(0.0, ge=0)
    """Collected Parquet partitions whose day is older than this are deleted (0: kept)."""

    @model_validator(mode="after")
    def _compact_before_forgetting(self) -> RetentionPolicy:
        # compaction merges only files whose report the database still knows
        for name in ("readings_days", "sample_days"):
            kept = getattr(self, name)
            if self.compact_after_days and kept and kept < self.compact_after_days + 1:
                raise ValueError(
                    f"{name} ({kept}) must be at least compact_after_days + 1 "
                    f"({self.compact_after_days + 1}): compaction needs the reports' keys"
                )
        return self


class IntakeSettings(BaseModel):
    """The intake service."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    database_url: str = ""
    """SQLAlchemy URL of the report store. Empty means ``sqlite:///<home>/intake.db``;
    use ``postgresql+psycopg://...`` at scale."""
    host: str = "127.0.0.1"
    """Bind address (0.0.0.0 in a pod)."""
    port: int = Field(8000, ge=1, le=65535)
    max_body_bytes: int = Field(4 * 2**20, ge=1024)
    """Largest report batch accepted; larger ones get HTTP 413."""
    header_timeout_s: float = Field(10.0, gt=0)
    """A connection whose request headers are not complete by then is closed (slow-loris)."""
    body_timeout_s: float = Field(30.0, gt=0)
    """Longest wait for the next chunk of a request body; then HTTP 408."""
    max_connections: int = Field(1024, ge=1)
    """Concurrent connections and requests; beyond it new requests get HTTP 503."""
    store_threads: int = Field(2, ge=1)
    """Threads doing report POSTs' database work at once (the rest queue for one).
    Each holds the GIL between its database round trips, and the event loop
    waits behind all of them. PostgreSQL, 10,000 nodes, one core, a day's
    ingest (1 ms switch interval): ``/healthz`` p99 47-58 ms with 8 threads,
    21-24 ms with 4, 8-10 ms with 2, and ingest 2,000 / 2,170 / 2,670 reports/s
    (fewer of one site's transactions wait on its aggregate row at once).
    SQLite has one writer anyway."""
    switch_interval_ms: float = Field(1.0, gt=0, le=100)
    """How long a thread may hold the GIL while another wants it
    (``sys.setswitchinterval``; Python's default is 5). The event loop gives
    the GIL up at each poll and waits up to this long to get it back from a
    store thread (8 store threads, back-to-back runs: a day's ``/healthz`` p99
    47-58 ms at 1 ms, 60-66 ms at 5)."""
    max_posts_in_flight: int = Field(64, ge=1)
    """Report POSTs handled at once; the rest wait their turn (not refused). With
    1,000 nodes posting together, handling them all at once kept the event loop
    busy for ~100 ms at a time, and ``/healthz`` waited behind it."""
    max_posts_in_flight_per_token: int = Field(1, ge=1)
    """Report POSTs handled at once for one bearer token; its others wait behind
    them. An agent sends one batch at a time, so this only holds back a node
    flooding on many connections, which would otherwise take the store threads
    from the rest of the fleet."""
    open_reads: bool = False
    """Serve ``/v1/fleet`` and ``/v1/cohorts`` without a token. Off: they need a
    reader token (``edgeloop intake token create NAME --reader``)."""
    api_docs: bool = True
    """Serve ``/docs`` and ``/openapi.json`` (the chart turns them off)."""
    open_metrics: bool = True
    """Serve ``/metrics`` (Prometheus: fleet gauges, ingest counters) without a
    token. Off: a scrape needs a reader token (the chart's ServiceMonitor then
    sends ``monitoring.serviceMonitor.readerTokenSecret``)."""
    silent_after_s: float = Field(900.0, gt=0)
    """``edgeloop_fleet_silent_nodes`` counts nodes whose newest heartbeat is
    older than this (the agents' heartbeat interval is 60 s by default)."""
    url: str = ""
    """The intake this process reads the fleet from (controller, operator, loop
    service, CLI), e.g. ``http://edgeloop-intake.edgeloop:8000``. Empty: no fleet
    view (every node counts as silent, waves hold) unless a fleet file is given."""
    reader_token: str = ""
    """The reader token this process presents to an intake (controller, CLI)."""
    quota_reports_per_s: float = Field(10.0, gt=0)
    """Average reports per second one node may send (its outbox drains at this pace
    after an outage); over budget: HTTP 429 with Retry-After."""
    quota_bytes_per_s: float = Field(64 * 2**10, gt=0)
    """Average report bytes per second one node may send."""
    quota_burst_s: float = Field(300.0, gt=0)
    """Budgets hold this many seconds' worth: short bursts pass at full speed."""
    max_report_age_days: float = Field(400.0, gt=0)
    """Reports (and the readings in them) older than this, by receive time, get
    HTTP 422: a gateway may be offline for weeks, not for years."""
    max_clock_skew_s: float = Field(86_400.0, ge=0)
    """How far in the future a report's times may be (a gateway clock running
    ahead); later ones get HTTP 422 instead of poisoning storage."""
    baseline: BaselinePolicy = Field(default_factory=BaselinePolicy)
    """How each node's drift baseline is built and judged."""
    retention: RetentionPolicy = Field(default_factory=RetentionPolicy)
    """How long each kind of report is kept in the database."""
    collect_dir: str = ""
    """Where received readings and samples are kept as Parquet partitions
    (model/site/day): a directory or ``s3://BUCKET/PREFIX`` (any S3 API through
    ``AWS_ENDPOINT_URL``). Empty means ``<home>/collected``."""


class MonitorSettings(BaseModel):
    """Where Evidently snapshots go."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    workspace: str = ""
    """A directory (empty means ``<home>/evidently``) or the URL of an Evidently UI
    service (``http(s)://...``) at scale."""
    secret: str = ""
    """The Evidently UI service's secret, when it has one."""
    summary: bool = False
    """Add Evidently's data-summary preset to every scheduled run (per-column
    statistics in the UI; about 2.5x the run's time). ``monitor report``
    always includes it."""


class LoopSettings(BaseModel):
    """The loop service (``edgeloop loop run``): triggers -> retraining -> gates."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    interval_s: float = Field(300.0, gt=0)
    """Seconds between evaluations (the agents' drift window is a good value)."""
    policy_file: str = ""
    """Trigger policy YAML (fields of ``TriggerPolicy``; the chart mounts a
    ConfigMap). Empty: the library defaults."""
    base_dataset: str = ""
    """The previous training dataset (a directory with ``schema.yaml``): a
    retraining trains on what the fleet collected since, plus recent history
    from it (``data assemble``). Empty: train on ``dataset_uri`` as it is."""
    dataset_uri: str = ""
    """Train on this dataset (path or ``s3://``/``http(s)://`` URI) when no
    ``base_dataset`` is set, e.g. a table a data team refreshes."""
    label_horizon_hours: float = Field(72.0, gt=0)
    """Failure horizon of the delayed-label performance trigger."""
    max_attempts: int = Field(3, ge=1, le=20)
    """Runs per trigger before it is given up (the champion is never touched)."""
    retry_backoff_s: float = Field(900.0, ge=0)
    """Wait before the first retry of a failed run; doubles each attempt."""
    lease_ttl_s: float = Field(120.0, gt=0)
    """The leader's lease; another replica takes over this long after it stops renewing."""
    lease: Literal["auto", "kubernetes", "database"] = "auto"
    """Leader election: a Kubernetes Lease (``coordination.k8s.io``) or a lock row
    in the shared database. ``auto``: the Lease when running in a pod with a
    service-account token, the database otherwise."""
    lease_namespace: str = ""
    """Namespace of the Lease (empty: the pod's own namespace)."""
    holder: str = ""
    """This replica's name in the lease (empty: host name and process id)."""


class PlatformSettings(BaseSettings):
    """Root of the control plane's settings."""

    model_config = SettingsConfigDict(
        env_prefix="EDGELOOP_",
        env_nested_delimiter="__",
        env_file=".env",
        use_attribute_docstrings=True,
        extra="ignore",
    )

    home: Path = Path(".edgeloop")
    """Working directory for embedded state (MLflow store, pipeline runs,
    demo data). Relative paths are taken from the current directory."""
    registry: RegistrySettings = Field(default_factory=RegistrySettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    loop: LoopSettings = Field(default_factory=LoopSettings)

    def tracking_uri(self) -> str:
        """The configured MLflow URI, or the embedded sqlite store under ``home``."""
        if self.registry.tracking_uri:
            return self.registry.tracking_uri
        return f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def intake_database_url(self) -> str:
        """The configured store URL, or SQLite under ``home``."""
        if self.intake.database_url:
            return self.intake.database_url
        self.home.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.home / 'intake.db').resolve()}"

    def monitor_workspace(self) -> str:
        """The Evidently workspace: a local directory or a remote UI service URL."""
        configured = self.monitor.workspace
        return configured or str(self.home.resolve() / "evidently")

    def audit_path(self) -> Path:
        """The append-only audit log (``edgeloop.provenance.audit``)."""
        return self.home.resolve() / "audit.jsonl"

    def collect_root(self) -> Path | str:
        """Where the intake keeps collected Parquet partitions.

        A directory, or an object-store URI (``s3://BUCKET/PREFIX``) kept as a string.
        """
        configured = self.intake.collect_dir
        if configured.startswith(("s3://", "s3a://")):
            return configured.rstrip("/")
        if configured.startswith("file://"):
            return Path(configured[len("file://") :])
        return Path(configured) if configured else self.home.resolve() / "collected"

    def pipeline_root(self) -> Path:
        """Where local pipeline runs keep their artifacts."""
        return (self.home / "pipeline-runs").resolve()


def load_settings(**overrides: object) -> PlatformSettings:
    """Read settings from the environment (and ``.env``), applying overrides.

    Mounted secret files (:mod:`edgeloop.core.secret_files`) are applied to the
    environment first, so a token mounted as a file reads like a variable.
    """
    from edgeloop.core import secret_files

    secret_files.apply()
    try:
        return PlatformSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:  # a bad variable is the user's, not a bug
        from edgeloop.core.errors import UsageError

        first = exc.errors()[0]
        name = "EDGELOOP_" + "__".join(str(p) for p in first["loc"]).upper()
        raise UsageError(
            f"setting {name}: {first['msg']} (got {str(first.get('input'))[:60]!r})"
        ) from None

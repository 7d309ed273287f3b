"""Agent settings: ``AgentSettings`` from ``EDGELOOP_AGENT_*`` (nested with ``__``).

Built once by :func:`load_settings` in ``__main__`` and passed down. Defaults
suit a small gateway: one scoring thread, a few MB of outbox, windows of a few
minutes. Every number that shapes behaviour (windows, thresholds, backoff) is
here as data, not buried in a loop.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from edgeloop_agent.contracts.reports import Name, OptionalName


class _Group(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True, extra="forbid")


class NodeSettings(_Group):
    """Who this agent is, as reported to the platform."""

    id: str = "edge-node"
    """Node name (the Kubernetes node name at the edge)."""
    site: Name = "site"
    """Site the node belongs to; reports and MQTT topics carry it (the report
    contract's name rules: checked at start, not at the intake days later)."""
    cohort: OptionalName = ""
    """Free-form cohort (e.g. pump type, rollout group) for fleet aggregates."""


class ServerSettings(_Group):
    """HTTP server."""

    host: str = "127.0.0.1"
    """Bind address. In a pod set 0.0.0.0; tests and the demo keep loopback."""
    port: int = Field(8080, ge=1, le=65535)
    header_timeout_s: float = Field(10.0, gt=0)
    """A connection whose request headers are not complete by then is closed (slow-loris)."""
    body_timeout_s: float = Field(30.0, gt=0)
    """Longest wait for the next chunk of a request body; then HTTP 408."""
    keep_alive_s: float = Field(5.0, gt=0)
    """Idle keep-alive connections are closed after this."""
    max_connections: int = Field(256, ge=1)
    """Concurrent connections and requests; beyond it new requests get HTTP 503."""


class ModelSettings(_Group):
    """Which model to serve and where bundles live on disk."""

    bundle: str = ""
    """Serve this one bundle (directory or URL) and ignore the desired-model file."""
    desired_model_path: Path = Path("/etc/edgeloop/desired-model.json")
    """The desired-model record (the rendered ConfigMap, mounted as a file)."""
    cache_dir: Path = Path("/var/lib/edgeloop/models")
    """Verified bundles, one directory per digest; survives restarts (a volume)."""
    poll_interval_s: float = Field(2.0, gt=0)
    """How often the desired-model file is checked for a change."""
    download_timeout_s: float = Field(60.0, gt=0)
    """Per-request timeout while fetching a bundle over HTTP(S) or from a registry."""
    download_deadline_s: float = Field(600.0, gt=0)
    """Longest one download attempt may take; a later attempt resumes it."""
    max_bundle_bytes: int = Field(256 * 2**20, ge=2**20)
    """Cap on ``model.onnx`` for bundles whose manifest does not declare its size."""
    redirect_hosts: tuple[str, ...] = ()
    """Hosts a bundle download may be redirected to besides its own origin (e.g.
    the object store behind a registry); anything else is refused."""
    registry_mirror: str = ""
    """``HOST[:PORT]`` that replaces the registry of ``oci://`` bundle URIs: the
    site's registry mirror, the one its images come from (digests keep it safe)."""
    plain_http_registries: tuple[str, ...] = ()
    """Registries (``HOST[:PORT]``) reached over plain HTTP; loopback always is."""
    retry_delays_s: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)
    """Backoff between failed fetches of the same desired model; the last repeats."""
    retry_jitter: float = Field(0.5, ge=0, le=2)
    """Each delay grows by a random share up to this fraction (spreads a fleet's retries)."""
    smoke_tolerance: float = Field(1e-5, gt=0)
    """Largest allowed |score - recorded score| on the bundle's reference sample."""
    name_alias: str = "edge-model"
    """Extra model name accepted on the V2 API, so clients need not know the version."""


class ScoringSettings(_Group):
    """Limits and threads of the scorer."""

    threads: int = Field(1, ge=1, le=64)
    """onnxruntime intra-op threads (the device profile's thread count)."""
    max_batch_rows: int = Field(10_000, ge=1)
    """Largest batch accepted in one request; larger ones get HTTP 413."""
    max_body_bytes: int = Field(8 * 2**20, ge=1024)
    """Largest request body accepted; larger ones get HTTP 413 before parsing."""
    max_entities: int = Field(10_000, ge=1)
    """Entities (pumps) with a feature history kept in memory."""
    explain_top: int = Field(3, ge=0, le=20)
    """Sensors named on each alarm as its top contributors (0: no explanations)."""


class DriftSettings(_Group):
    """Windows, drift and data-quality bookkeeping."""

    window_readings: int = Field(1_000, ge=1)
    """A window closes after this many scored readings ..."""
    window_seconds: float = Field(300.0, gt=0)
    """... or after this many seconds with at least one reading."""
    psi_threshold: float = Field(0.2, gt=0)
    """PSI at or above which a model input counts as drifted (0.2 is the usual rule)."""
    sample_size: int = Field(50, ge=0)
    """Rows kept per window by reservoir sampling for the platform's Evidently reports."""
    stuck_readings: int = Field(30, ge=2)
    """Identical consecutive values that mark a sensor as stuck."""
    spike_sigmas: float = Field(8.0, gt=0)
    """A jump larger than this many reference standard deviations is a spike."""


class OutboxSettings(_Group):
    """Store-and-forward of reports to the platform's intake."""

    path: Path = Path("/var/lib/edgeloop/outbox.sqlite")
    """SQLite database (WAL) holding unsent reports; survives restarts."""
    intake_url: str = ""
    """Intake base URL; empty keeps reports queued locally (offline forever)."""
    token: str = ""
    """Bearer token of this node (``edgeloop intake token create NODE``)."""
    token_file: str = ""
    """Or a file holding it, ``{node}`` replaced by the node id: in the cluster the
    node-tokens Secret is mounted and this is ``/var/run/edgeloop/tokens/{node}``."""
    max_reports: int = Field(10_000, ge=10)
    """Reports kept when the link is down; beyond it the drop policy applies."""
    max_bytes: int = Field(50 * 2**20, ge=2**16)
    """Bytes of report bodies kept; beyond it the drop policy applies."""
    batch_size: int = Field(100, ge=1)
    """Reports per POST to the intake."""
    retry_delays_s: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 60.0)
    """Backoff after a failed delivery; the last delay repeats while offline."""
    retry_jitter: float = Field(0.5, ge=0, le=2)
    """Each delay grows by a random share up to this fraction, so thousands of
    agents reconnecting after one outage do not retry in lock-step."""
    flush_interval_s: float = Field(1.0, gt=0)
    """Idle time between delivery attempts when the link is up."""
    heartbeat_interval_s: float = Field(30.0, gt=0)
    """How often a heartbeat is queued."""
    upload_readings: bool = False
    """Also send the raw readings scored (one batch per drift window) so the
    platform can retrain on what the fleet saw. Off by default: it costs link
    bandwidth (~100 bytes per reading)."""
    max_report_bytes: int = Field(1 * 2**20, ge=16 * 2**10)
    """A readings batch larger than this (as JSON) is split into several
    reports, well under the intake's body limit (4 MiB by default). An intake
    answering 413 to a single report halves it for later batches."""
    poison_after: int = Field(5, ge=1)
    """HTTP 500 answers in a row for the same oldest report before it is treated
    as poison: a batch is bisected, a single report moved to the dead letters."""
    max_dead_letters: int = Field(1_000, ge=1)
    """Dead letters kept on the node for inspection; older ones are deleted (counted)."""
    request_timeout_s: float = Field(10.0, gt=0)
    shutdown_drain_s: float = Field(5.0, ge=0)
    """On shutdown, try this long to deliver what is queued (the rest stays queued)."""


class MqttSettings(_Group):
    """Readings from the site's broker, scores and alarms back to it."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    readings_topic: str = "edgeloop/+/+/readings"
    """Subscription; topic levels are ``edgeloop/<site>/<entity>/readings``."""
    score_topic: str = "edgeloop/{site}/{entity}/score"
    alarm_topic: str = "edgeloop/{site}/{entity}/alarm"
    qos: int = Field(1, ge=0, le=2)
    batch_max: int = Field(256, ge=1)
    """Readings scored together at most (micro-batching across pumps)."""
    batch_wait_s: float = Field(0.05, ge=0)
    """How long the scorer waits to fill a micro-batch."""
    twins: bool = False
    """Also take KubeEdge device-twin updates (``twin_topic``), one property
    per message, assembled into a reading per device (``edgeloop_agent.twins``)."""
    twin_topic: str = "$hw/events/device/+/twin/update"
    devices: dict[str, str] = Field(default_factory=dict)
    """KubeEdge device id -> entity (pump) name; a device not listed is its own entity.
    From the environment as JSON: ``EDGELOOP_AGENT_MQTT__DEVICES='{"pump-07-dev": "p7"}'``."""
    properties: dict[str, str] = Field(default_factory=dict)
    """Twin property -> model sensor; a property not listed keeps its name."""
    twin_staleness_s: float = Field(30.0, gt=0)
    """A reading is scored once every sensor is updated or its first update is
    this old; a sensor not updated within this bound is a dropout (null)."""


class AgentSettings(BaseSettings):
    """Root of the agent's settings."""

    model_config = SettingsConfigDict(
        env_prefix="EDGELOOP_AGENT_",
        env_nested_delimiter="__",
        use_attribute_docstrings=True,
        extra="ignore",
    )

    node: NodeSettings = Field(default_factory=NodeSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)


def load_settings(**overrides: object) -> AgentSettings:
    """Settings from the environment, with explicit overrides applied."""
    return AgentSettings(**overrides)  # type: ignore[arg-type]

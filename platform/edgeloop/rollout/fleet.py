"""Fleet observations: what the planner knows about each node.

``FleetSource`` is the interface. Here:

* :class:`IntakeFleet` reads the intake's fleet API (``GET /v1/fleet``): every
  node's last heartbeat and drift, at fleet scale (what the demo uses);
* :class:`FileFleet` reads a YAML/JSON file of observations (tests, dry runs,
  or an export of the fleet API);
* :class:`AgentProbe` asks each agent directly over HTTP (``/v2/health/ready``,
  model metadata, ``/metrics``): the embedded mode, where every node's agent
  is reachable from the controller.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeloop.core.errors import UsageError
from edgeloop.core.yaml_files import invalid, read_yaml
from edgeloop.rollout.plan import NodeObservation


class FleetSource(Protocol):
    """Where observations and node labels come from."""

    def observe(self) -> list[NodeObservation]:
        """Current observation of every known node."""
        ...

    def labels(self) -> dict[str, dict[str, str]]:
        """Node labels (for label-selected groups)."""
        ...


class EmptyFleet:
    """No observations: every node is silent (dry runs, or no fleet source configured)."""

    def observe(self) -> list[NodeObservation]:
        """Nothing is known."""
        return []

    def labels(self) -> dict[str, dict[str, str]]:
        """No labels."""
        return {}


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str
    labels: dict[str, str] = Field(default_factory=dict)
    last_seen: float | None = None
    active_version: str = ""
    healthy: bool = True
    error_rate: float = Field(0.0, ge=0, le=1)
    p99_ms: float | None = None
    drifted_share: float | None = Field(None, ge=0, le=1)


class FileFleet:
    """Observations from a file: ``nodes: [{node, labels, last_seen, active_version, ...}]``."""

    def __init__(self, path: Path) -> None:
        raw = read_yaml(path, "fleet observations") or {}
        if not isinstance(raw, dict):
            raise UsageError(f"{path}: expected a mapping with a 'nodes' list")
        try:
            self._entries = [_Entry.model_validate(e) for e in raw.get("nodes", [])]
        except ValidationError as exc:
            raise invalid(path, exc, "nodes.") from exc

    def observe(self) -> list[NodeObservation]:
        """The file's observations."""
        return [
            NodeObservation(
                e.node,
                e.last_seen,
                e.active_version,
                e.healthy,
                e.error_rate,
                e.p99_ms,
                e.drifted_share,
            )
            for e in self._entries
        ]

    def labels(self) -> dict[str, dict[str, str]]:
        """The file's node labels."""
        return {e.node: e.labels for e in self._entries}


def request_totals(metrics_text: str) -> dict[str, float]:
    """Scoring requests and the failed ones, from the agent's Prometheus text.

    ``edgeloop_requests_total`` counts every scoring request with its HTTP
    status in ``code``; errors are the 4xx and 5xx among them. Parsed with
    ``prometheus_client``'s own parser (``# HELP``/``# TYPE``, label escaping,
    exponents), so an agent that exposes standard metrics reads the same.

    Raises:
        ValueError: not Prometheus text format.
    """
    from prometheus_client.parser import text_string_to_metric_families

    totals = {"requests": 0.0, "errors": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name != "edgeloop_requests_total":
                continue
            totals["requests"] += float(sample.value)
            if int(sample.labels.get("code", "200")) >= 400:
                totals["errors"] += float(sample.value)
    return totals


class AgentProbe:
    """Observe agents directly: node -> base URL of its agent."""

    def __init__(
        self,
        agents: dict[str, str],
        model_alias: str = "edge-model",
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.agents = agents
        self._alias = model_alias
        self._clock = clock
        self._transport = transport
        self._node_labels: dict[str, dict[str, str]] = {}

    def observe(self) -> list[NodeObservation]:
        """One probe per agent; an agent that does not answer is silent."""
        out = []
        with httpx.Client(timeout=2.0, transport=self._transport) as client:
            for node, url in sorted(self.agents.items()):
                out.append(self._probe(client, node, url.rstrip("/")))
        return out

    def _probe(self, client: httpx.Client, node: str, url: str) -> NodeObservation:
        try:
            ready = client.get(f"{url}/v2/health/ready").status_code == 200
            meta = client.get(f"{url}/v2/models/{self._alias}")
            version = meta.json()["versions"][0] if meta.status_code == 200 else ""
            metrics = client.get(f"{url}/metrics").text
            totals = request_totals(metrics)
        except (httpx.HTTPError, ValueError, KeyError, IndexError):
            return NodeObservation(node=node, last_seen=None)
        requests, errors = totals["requests"], totals["errors"]
        error_rate = errors / requests if requests else 0.0
        return NodeObservation(
            node=node,
            last_seen=self._clock(),
            active_version=version,
            healthy=ready,
            error_rate=error_rate,
        )

    def labels(self) -> dict[str, dict[str, str]]:
        """Probed agents carry no labels; groups list their nodes explicitly."""
        return self._node_labels


class IntakeFleet:
    """Observations from the intake's fleet API (``GET {url}/v1/fleet``)."""

    def __init__(
        self,
        url: str,
        transport: httpx.BaseTransport | None = None,
        token: str = "",
    ) -> None:
        self.url = url.rstrip("/")
        self._transport = transport
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._labels: dict[str, dict[str, str]] = {}

    def _get(self, path: str, what: str, **params: str) -> Any:
        """GET a reader endpoint; refusals are permanent, outages retryable."""
        from edgeloop.core.errors import PermanentError, RetryableError

        try:
            with httpx.Client(
                timeout=10.0, transport=self._transport, headers=self._headers
            ) as client:
                response = client.get(f"{self.url}{path}", params=params)
                if response.status_code in (401, 403):
                    raise PermanentError(
                        f"intake {self.url} refused to show {what} "
                        f"(HTTP {response.status_code}): set EDGELOOP_INTAKE__READER_TOKEN "
                        "to a reader token (edgeloop intake token create NAME --reader)"
                    )
                response.raise_for_status()
                return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise RetryableError(
                f"intake {self.url} unreachable: {exc}", delay=10
            ) from exc

    def alarms(self, node: str = "", limit: int = 50) -> list[dict[str, Any]]:
        """The newest windows that alarmed, with their causes (``GET /v1/alarms``)."""
        params = {"limit": str(limit), **({"node": node} if node else {})}
        rows: list[dict[str, Any]] = self._get("/v1/alarms", "alarms", **params)
        return rows

    def drift_by_node(self, version: str) -> dict[str, float]:
        """Per node, the drifted share of its latest window on ``version`` (``GET /v1/drift``)."""
        body = self._get("/v1/drift", "drift", version=version)
        return {str(k): float(v) for k, v in (body.get("nodes") or {}).items()}

    def observe(self) -> list[NodeObservation]:
        """The intake's latest view of every node that ever reported."""
        rows = self._get("/v1/fleet", "the fleet")
        self._labels = {
            r["node"]: {"site": r.get("site", ""), "cohort": r.get("cohort", "")}
            for r in rows
        }
        return [
            NodeObservation(
                node=r["node"],
                last_seen=r.get("last_seen"),
                active_version=r.get("active_version", ""),
                healthy=bool(r.get("healthy", True)),
                error_rate=float(r.get("error_rate", 0.0)),
                p99_ms=r.get("p99_ms"),
                drifted_share=r.get("drifted_share"),
            )
            for r in rows
        ]

    def labels(self) -> dict[str, dict[str, str]]:
        """Site and cohort of each node, as last reported."""
        return self._labels


def fleet_source(
    intake_url: str, reader_token: str = "", fleet_file: Path | None = None
) -> FleetSource:
    """Where a controller learns about the fleet: a file only when named, else the intake.

    Without either every node is silent and waves hold (logged by the caller):
    that is the safe failure, never a rollout on no evidence.
    """
    if fleet_file is not None:
        return FileFleet(fleet_file)
    if intake_url:
        return IntakeFleet(intake_url, token=reader_token)
    return EmptyFleet()

"""What planning reads and returns: fleet observations, the registry view, the plan.

Plain dataclasses, no logic: :mod:`edgeloop.rollout.plan` and its helpers
(:mod:`~edgeloop.rollout.waves`, :mod:`~edgeloop.rollout.gates`,
:mod:`~edgeloop.rollout.assignment`) share them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from edgeloop.rollout.spec import EdgeRolloutStatus
from edgeloop_agent.contracts import DesiredModel, LatencyProfile


@dataclass(frozen=True)
class NodeObservation:
    """What the fleet last said about one node (from the intake's fleet API)."""

    node: str
    last_seen: float | None
    """Epoch seconds of the last heartbeat; None if never seen."""
    active_version: str = ""
    healthy: bool = True
    error_rate: float = 0.0
    p99_ms: float | None = None
    drifted_share: float | None = None


@dataclass(frozen=True)
class RegistryView:
    """What the registry says about the model the rollout follows."""

    desired: DesiredModel
    latency: Sequence[LatencyProfile] = ()
    previous_drifted_share: float | Mapping[str, float] | None = None
    """The drift gate's baseline: drifted share seen on the previous version, one
    number or per node (then the gate compares the same nodes on both versions)."""


@dataclass(frozen=True)
class GateCheck:
    """One gate's verdict for the current wave."""

    wave: str
    name: str
    passed: bool
    detail: str


@dataclass
class Plan:
    """The outcome of one planning pass."""

    status: EdgeRolloutStatus
    desired: dict[str, DesiredModel | None] = field(default_factory=dict)
    """Desired model per group (None: render nothing new for it)."""
    nodes: dict[str, list[str]] = field(default_factory=dict)
    """Member nodes per group (explicit or observed)."""
    waves: dict[str, list[str]] = field(default_factory=dict)
    """Groups per wave (a group split by a percentage wave is in several)."""
    wave_nodes: dict[str, list[str]] = field(default_factory=dict)
    """Nodes per wave, after resolving percentages."""
    node_desired: dict[str, DesiredModel | None] = field(default_factory=dict)
    """Per-node exceptions to their group's desired model (a percentage wave
    that splits a group); rendered as per-node keys of the group's ConfigMap."""
    gates: list[GateCheck] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def ts(epoch: float) -> datetime:
    """Epoch seconds as an aware UTC datetime (status fields are datetimes)."""
    return datetime.fromtimestamp(epoch, tz=UTC)

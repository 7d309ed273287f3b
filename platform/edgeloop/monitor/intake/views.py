"""What the intake's store hands to the stages above it (typed seams).

The trigger policy judges :class:`WindowSummary` rows; lineage and the
controller read node views. These are the intake's own types: the stages above
import them from here, the intake imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class WindowSummary:
    """One drift window as the intake stored it."""

    key: str
    node: str
    cohort: str
    window_end: float
    drifted_share: float | None
    """Against the node's own baseline; None while that baseline is being built."""
    quality_flags: tuple[str, ...] = ()
    reference_share: float = 0.0
    """Against the training reference, as the agent reported it (evidence only)."""
    version: str = ""


class NodeView(BaseModel):
    """One node as the intake sees it (``GET /v1/fleet``): the controller's input."""

    model_config = ConfigDict(frozen=True)

    node: str
    site: str = ""
    cohort: str = ""
    last_seen: float | None = None
    """Epoch seconds of the newest heartbeat (the agent's clock, never later than
    the intake's receive time); None: never."""
    active_version: str = ""
    healthy: bool = True
    error_rate: float = 0.0
    """Scoring errors / (requests + errors) over the agent's lifetime."""
    p99_ms: float | None = None
    drifted_share: float | None = None
    """Latest window, against the training reference (the agent's own judgement)."""
    baseline_share: float | None = None
    """Latest window, against the node's own baseline (None while it is built)."""
    drifted_inputs: list[str] = []
    quality_flags: list[str] = []
    outbox_dropped: int = 0
    """Reports the node's full outbox dropped (its latest heartbeat)."""
    dead_letters: int = 0
    """Reports the node set aside because the intake would never take them."""
    alarms: int = 0
    """Alarms in the node's latest drift window."""
    alarm_causes: dict[str, int] = {}
    """Those alarms by the sensor their explanation named first."""


class VersionDrift(BaseModel):
    """Drift reports received for one model version (lineage's fleet part)."""

    model_config = ConfigDict(frozen=True)

    drift_reports: int
    judged_against_baseline: int
    max_baseline_share: float | None
    drifted_reports: list[str]
    """Keys of the reports that drifted against their node's baseline, oldest first."""

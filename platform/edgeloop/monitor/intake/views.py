"""What the intake's store hands to the stages above it (typed seams).

The trigger policy judges :class:`WindowSummary` rows; lineage and the
controller read node views. These are the intake's own types: the stages above
import them from here, the intake imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass


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

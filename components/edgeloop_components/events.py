"""Event-level metrics: what a maintenance planner counts, not rows.

Rows overstate both sides: one failure is dozens of positive rows before it,
and one false alarm stays on for many readings. Here a *failure event* is a
run of consecutive positive rows of one entity (for a failure-log label, the
readings within the horizon before one failure; the event's time is its last
row, the last reading before the failure) and a *false alarm* is a run of
consecutive alarming negative rows of one entity (an alarm episode).

- ``event_recall``: share of failure events alarmed at least ``min_lead_hours``
  before the event's time (0 h: alarmed at all).
- ``median_lead_hours``: median time from an event's first alarm to its time,
  over the events alarmed at all.
- ``false_alarms_per_asset_month``: false-alarm episodes per entity per 30
  days of observed history (each entity's first to last reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

EVENT_METRICS = ("event_recall", "median_lead_hours", "false_alarms_per_asset_month")
ASSET_MONTH = np.timedelta64(30, "D")


@dataclass(frozen=True)
class Timeline:
    """Labels of rows sorted by (entity, time), with what the metrics need precomputed."""

    y: np.ndarray
    times: np.ndarray
    new_entity: np.ndarray
    asset_months: float

    @classmethod
    def of(
        cls, y: np.ndarray, entity: np.ndarray, times: np.ndarray
    ) -> tuple[Timeline, np.ndarray]:
        """The timeline and the order that sorts rows into it (apply it to scores)."""
        times = np.asarray(times, dtype="datetime64[ns]")
        entity = np.asarray(entity).astype(str)
        order = np.lexsort((times, entity))
        entity, times = entity[order], times[order]
        new_entity = np.ones(len(entity), dtype=bool)
        new_entity[1:] = entity[1:] != entity[:-1]
        starts = np.flatnonzero(new_entity)
        ends = np.append(starts[1:], len(entity)) - 1
        span = (times[ends] - times[starts]).sum() if len(starts) else np.timedelta64(0)
        months = float(span / ASSET_MONTH) if len(starts) else 0.0
        y_sorted = np.asarray(y).astype(np.int8)[order]
        return cls(y_sorted, times, new_entity, months), order

    def _runs(self, flag: np.ndarray) -> np.ndarray:
        """Run id per row (``-1`` outside runs) of consecutive ``flag`` rows per entity."""
        previous = np.zeros(len(flag), dtype=bool)
        previous[1:] = flag[:-1]
        start = flag & (self.new_entity | ~previous)
        ids = np.cumsum(start) - 1
        return np.where(flag, ids, -1)

    def false_alarms(self, alarms: np.ndarray) -> int:
        """Alarm episodes on negative rows."""
        wrong = alarms & (self.y == 0)
        previous = np.zeros(len(wrong), dtype=bool)
        previous[1:] = wrong[:-1]
        return int((wrong & (self.new_entity | ~previous)).sum())

    def false_alarm_rate(self, alarms: np.ndarray) -> float | None:
        """False-alarm episodes per asset-month; ``None`` without observed time."""
        if self.asset_months <= 0:
            return None
        return self.false_alarms(alarms) / self.asset_months

    def metrics(self, alarms: np.ndarray, min_lead_hours: float) -> dict[str, Any]:
        """The three event metrics for one alarm decision per row (sorted order)."""
        runs = self._runs(self.y == 1)
        inside = runs >= 0
        out: dict[str, Any] = {
            "events": int(runs.max() + 1) if inside.any() else 0,
            "false_alarms": self.false_alarms(alarms),
            "false_alarms_per_asset_month": self.false_alarm_rate(alarms),
            "event_recall": None,
            "median_lead_hours": None,
        }
        if not out["events"]:
            return out
        frame = pd.DataFrame(
            {
                "run": runs[inside],
                "time": self.times[inside],
                "alarm_time": np.where(
                    alarms[inside], self.times[inside], np.datetime64("NaT")
                ),
            }
        )
        grouped = frame.groupby("run").agg(
            end=("time", "max"), first_alarm=("alarm_time", "min")
        )
        lead = (grouped["end"] - grouped["first_alarm"]).dt.total_seconds() / 3600
        alarmed = lead.notna()
        out["event_recall"] = float((lead >= min_lead_hours).sum() / len(grouped))
        out["median_lead_hours"] = (
            float(lead[alarmed].median()) if alarmed.any() else None
        )
        return out

"""What the wire contract cannot check alone: times against the receive time.

A reading stamped in year 2300 is valid JSON and a valid ``datetime``, yet it
cannot be stored (Parquet's timestamps end in 2262) and would freeze a node's
view (later heartbeats look out of order). Every time a report carries must
lie within ``[received - max age, received + clock skew]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from edgeloop_agent.contracts import DriftWindow, ReadingsBatch, Report, RowSample


def _times(report: Report) -> Iterator[tuple[str, datetime]]:
    yield "created_at", report.created_at
    body = report.body
    if isinstance(body, DriftWindow):
        yield "body.window_start", body.window_start
        yield "body.window_end", body.window_end
    elif isinstance(body, RowSample):
        yield "body.window_end", body.window_end
    elif isinstance(body, ReadingsBatch):
        for i, stamp in enumerate(body.timestamps):
            yield f"body.timestamps.{i}", stamp


def out_of_window(
    reports: list[Report], received: datetime, max_age: timedelta, skew: timedelta
) -> str | None:
    """The first time outside the window, as one line naming report and field."""
    earliest, latest = received - max_age, received + skew
    for i, report in enumerate(reports):
        for field, stamp in _times(report):
            aware = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
            if not earliest <= aware <= latest:
                return (
                    f"reports.{i}.{field}: {stamp.isoformat()} is outside the accepted "
                    f"window {earliest:%Y-%m-%dT%H:%M}Z … {latest:%Y-%m-%dT%H:%M}Z "
                    "(check the gateway's clock)"
                )
    return None

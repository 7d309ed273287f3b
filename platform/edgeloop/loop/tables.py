"""The loop service's tables, kept in the intake's database (shared by every replica).

``leases`` holds the leader lock; ``loop_runs`` every retraining the service
started, keyed by the decision that caused it (so one decision can never start
two runs, whichever replica sees it).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(253), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
loop_runs = sa.Table(
    "loop_runs",
    metadata,
    # "<kind>:<decision time>": one run per fired decision, whoever sees it
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("run_name", sa.String(128), nullable=False, unique=True),
    # submitting -> running -> succeeded | failed | abandoned
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("backend", sa.String(16), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("coalesced", sa.Text, nullable=False, default="[]"),
    sa.Column("outcome", sa.Text, nullable=False, default="{}"),
)

marks = sa.Table(
    "loop_marks",
    metadata,
    # "decisions_from": decisions before the service first ran are history,
    # not requests (a fresh install must not retrain for last year's drift)
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def create_all(engine: sa.Engine) -> None:
    """Create the tables if missing (idempotent; safe from every replica)."""
    metadata.create_all(engine)

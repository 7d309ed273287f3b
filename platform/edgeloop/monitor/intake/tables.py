"""The intake's tables (SQLAlchemy Core) and the small helpers both sides of the store share.

``tokens`` (per-node bearer tokens, stored as sha256 only), ``reports`` (every
accepted report, unique by idempotency key), ``baselines`` (each node's drift
baseline per model version) and ``nodes`` (the latest view of each node).
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa

from edgeloop_agent.contracts import DriftWindow

metadata = sa.MetaData()
tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # identity pinned to the token (reports cannot claim another site)
    # "node": may post its own reports; "reader": may read the fleet views
    sa.Column("role", sa.String(16), nullable=False, server_default="node"),
    sa.Column("site", sa.String(253), nullable=False, server_default=""),
    sa.Column("cohort", sa.String(253), nullable=False, server_default=""),
    # rotation: the old token stays valid until previous_expires_at
    sa.Column("previous_sha256", sa.String(64), nullable=True),
    sa.Column("previous_expires_at", sa.DateTime(timezone=True), nullable=True),
    # every POST resolves its token; without this the lookup of a rotated
    # token scanned the table (O(nodes) per POST: 1.3x CPU per node at 10k)
    sa.Index("ix_tokens_previous", "previous_sha256"),
)
reports = sa.Table(
    "reports",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("node", sa.String(253), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, default=""),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    # drift windows: share of inputs drifted against the node's own baseline
    sa.Column("baseline_share", sa.Float, nullable=True),
    sa.Column("drifted_inputs", sa.Text, nullable=False, default="[]"),
    # every read selects by kind and orders or filters by arrival: "what is new
    # since the last pass" must not scan (and parse) a month of history
    sa.Index("ix_reports_kind_received", "kind", "received_at"),
    sa.Index("ix_reports_kind_version", "kind", "model_version"),
)
# Per site and model version, drift windows aggregated at ingest, so the
# cohort view reads O(sites x versions) rows, not every report ever received.
site_drift = sa.Table(
    "site_drift",
    metadata,
    sa.Column("site", sa.String(253), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("windows", sa.Integer, nullable=False, default=0),
    sa.Column("judged", sa.Integer, nullable=False, default=0),
    sa.Column("max_baseline_share", sa.Float, nullable=False, default=0.0),
    sa.Column("max_reference_share", sa.Float, nullable=False, default=0.0),
)
site_drift_inputs = sa.Table(
    "site_drift_inputs",
    metadata,
    sa.Column("site", sa.String(253), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("input", sa.String(253), primary_key=True),
)
# Retention (see retention.py): heartbeats past their retention, one row per
# node and day; and per node and kind, the newest report time retention removed,
# so a late redelivery of a removed report is known as a duplicate.
heartbeat_days = sa.Table(
    "heartbeat_days",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("heartbeats", sa.Integer, nullable=False),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False, default=""),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Integer, nullable=False, default=0),
    sa.Column("max_p99_ms", sa.Float, nullable=True),
)
retention_marks = sa.Table(
    "retention_marks",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("through", sa.DateTime(timezone=True), nullable=False),
)
baselines = sa.Table(
    "baselines",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("ready", sa.Boolean, nullable=False, default=False),
    sa.Column("state", sa.Text, nullable=False),
    # the node's wobble per input once ready: what pooling reads, without
    # parsing every node's window counts in ``state``
    sa.Column("typical", sa.Text, nullable=False, server_default="{}"),
)
nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("node", sa.String(253), primary_key=True),
    sa.Column("site", sa.String(253), nullable=False, default=""),
    sa.Column("cohort", sa.String(253), nullable=False, default=""),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
    sa.Column("active_version", sa.String(64), nullable=False, default=""),
    sa.Column("healthy", sa.Boolean, nullable=False, default=True),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("errors", sa.Integer, nullable=False, default=0),
    sa.Column("p99_ms", sa.Float, nullable=True),
    sa.Column("drifted_share", sa.Float, nullable=True),
    sa.Column("baseline_share", sa.Float, nullable=True),
    sa.Column("drifted_inputs", sa.Text, nullable=False, default="[]"),
    sa.Column("quality_flags", sa.Text, nullable=False, default="[]"),
    # added after the first release: server defaults, so add_missing_columns
    # can add them to an existing database
    sa.Column("outbox_dropped", sa.Integer, nullable=False, server_default="0"),
    sa.Column("dead_letters", sa.Integer, nullable=False, server_default="0"),
    # latest drift window: its alarms and the sensors named first behind them
    sa.Column("alarms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("alarm_causes", sa.Text, nullable=False, server_default="{}"),
)


def add_missing_columns(engine: sa.Engine) -> list[str]:
    """Add columns this version defines and an older database lacks.

    Only columns with a server default (or nullable ones) are ever added, so
    existing rows stay valid; ``ALTER TABLE … ADD COLUMN`` works the same on
    SQLite and PostgreSQL. Returns ``table.column`` for each one added.
    """
    inspector = sa.inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                ddl = sa.schema.CreateColumn(column).compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
                added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(engine: sa.Engine) -> list[str]:
    """Create indexes this version defines and an older database lacks.

    ``create_all`` skips tables that exist, and with them their new indexes.
    """
    inspector = sa.inspect(engine)
    added = []
    for table in metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        have = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in have:
                index.create(engine, checkfirst=True)
                added.append(str(index.name))
    return added


def quality_flags(window: DriftWindow) -> list[str]:
    """``sensor:kind`` for every data-quality problem a window reports."""
    return [
        f"{q.name}:{kind}"
        for q in window.quality
        for kind, hit in (
            ("nan", q.nan_count > 0),
            ("out_of_range", q.out_of_range > 0),
            ("spikes", q.spikes > 0),
            ("stuck", bool(q.stuck_entities)),
        )
        if hit
    ]


def token_hash(token: str) -> str:
    """What is stored for a token (never the token itself)."""
    return hashlib.sha256(token.encode()).hexdigest()

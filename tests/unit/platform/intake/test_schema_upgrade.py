"""An intake database written by an older edgeloop is upgraded in place on open."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.monitor.intake.tables import reports


def _older_database(url: str) -> None:
    """Today's schema minus what later versions added: three indexes and a column."""
    IntakeStore(url).engine.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_reports_kind_received")
        conn.exec_driver_sql("DROP INDEX ix_reports_kind_version")
        conn.exec_driver_sql("DROP INDEX ix_tokens_previous")
        conn.exec_driver_sql("ALTER TABLE nodes DROP COLUMN alarm_causes")
    engine.dispose()


def test_an_older_database_gains_the_new_columns_and_indexes(tmp_path):
    url = f"sqlite:///{tmp_path / 'intake.db'}"
    _older_database(url)
    inspector = sa.inspect(sa.create_engine(url))
    assert "ix_reports_kind_received" not in {
        i["name"] for i in inspector.get_indexes("reports")
    }

    store = IntakeStore(url)
    inspector = sa.inspect(store.engine)
    assert {"ix_reports_kind_received", "ix_reports_kind_version"} <= {
        i["name"] for i in inspector.get_indexes("reports")
    }
    assert "ix_tokens_previous" in {i["name"] for i in inspector.get_indexes("tokens")}
    assert "alarm_causes" in {c["name"] for c in inspector.get_columns("nodes")}
    assert store.fleet() == []  # and the upgraded tables are usable


def test_what_is_new_since_the_last_pass_is_read_through_the_index(tmp_path):
    """Trigger evaluation and monitor passes ask for one kind after a time mark."""
    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}")
    query = (
        sa.select(reports.c.body)
        .where(reports.c.kind == "drift")
        .where(reports.c.received_at > datetime(2026, 1, 1, tzinfo=UTC))
        .order_by(reports.c.received_at)
    )
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as conn:
        plan = " ".join(
            str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        )
    assert "ix_reports_kind_received" in plan, plan


def test_a_token_is_resolved_through_an_index_current_or_previous(tmp_path):
    """Every POST resolves its token: neither lookup may scan the table."""
    from edgeloop.monitor.intake import tokens as tokens_mod

    store = IntakeStore(f"sqlite:///{tmp_path / 'intake.db'}")
    old = store.create_token("node-a")
    new, _ = store.rotate_token("node-a", 3600)
    assert store.node_for(new) == store.node_for(old) == "node-a"
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        tokens_mod.resolve(store.engine, old)  # the previous token: both lookups
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
    assert len(statements) == 2
    with store.engine.connect() as conn:
        for statement in statements:
            digest = tokens_mod.token_hash(old)
            plan = " ".join(
                str(row[-1])
                for row in conn.exec_driver_sql(
                    f"EXPLAIN QUERY PLAN {statement}", (digest,)
                )
            )
            assert "SCAN" not in plan and "USING INDEX" in plan, plan

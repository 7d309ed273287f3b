"""The fleet view stays true: clocks ahead, borrowed keys, losses on the node,
and a database made by an older intake."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from edgeloop.monitor.intake.store import IntakeStore

from .test_intake import heartbeat_report, post
from .test_intake_identity import intake

__all__ = ["intake"]  # the fixture, used by name


def test_a_clock_running_ahead_does_not_freeze_the_nodes_view(intake):
    """A heartbeat 20 h ahead (inside the accepted skew) used to hide every
    later heartbeat as out of order until the node's clock caught up."""
    url, store = intake
    token = store.create_token("node-a")
    ahead = heartbeat_report("node-a", "node-a:hb:ahead", version="1")
    ahead = ahead.model_copy(
        update={"created_at": datetime.now(UTC) + timedelta(hours=20)}
    )
    assert post(url, token, [ahead]).status_code == 200
    (view,) = store.fleet()
    assert view.last_seen <= datetime.now(UTC).timestamp()
    later = heartbeat_report("node-a", "node-a:hb:later", version="2")
    assert post(url, token, [later]).status_code == 200
    (view,) = store.fleet()
    assert view.active_version == "2"


def test_a_node_cannot_use_another_nodes_idempotency_key(intake):
    """Keys were global: node B reusing node A's key had its report dropped as a
    duplicate (and could pre-empt A's). Now a key must carry its node's name."""
    url, store = intake
    token_a, token_b = store.create_token("node-a"), store.create_token("node-b")
    assert (
        post(url, token_a, [heartbeat_report("node-a", "node-a:hb:1")]).status_code
        == 200
    )
    borrowed = heartbeat_report("node-b", "node-a:hb:1")
    answer = post(url, token_b, [borrowed])
    assert answer.status_code == 422
    assert "must start with the node name 'node-b:'" in answer.json()["error"]
    own = post(url, token_b, [heartbeat_report("node-b", "node-b:hb:1")])
    assert own.json()["accepted"] == 1
    assert [v.node for v in store.fleet()] == ["node-a", "node-b"]


def test_drops_and_dead_letters_on_the_node_reach_the_fleet_view(intake):
    url, store = intake
    token = store.create_token("node-a")
    report = heartbeat_report("node-a", "node-a:hb:1")
    report = report.model_copy(
        update={
            "body": report.body.model_copy(
                update={"outbox_dropped": 7, "dead_letters": 2}
            )
        }
    )
    assert post(url, token, [report]).status_code == 200
    (view,) = store.fleet()
    assert (view.outbox_dropped, view.dead_letters) == (7, 2)


def test_an_older_database_gains_the_new_columns(tmp_path):
    path = tmp_path / "intake.db"
    IntakeStore(f"sqlite:///{path}").engine.dispose()
    with sqlite3.connect(path) as db:  # as the previous release created it
        db.execute("ALTER TABLE nodes DROP COLUMN outbox_dropped")
        db.execute("ALTER TABLE nodes DROP COLUMN dead_letters")
        db.execute(
            "INSERT INTO nodes (node, site, cohort, active_version, healthy, "
            "requests, errors, drifted_inputs, quality_flags) "
            "VALUES ('old', 's', '', '1', 1, 0, 0, '[]', '[]')"
        )
    store = IntakeStore(f"sqlite:///{path}")
    (view,) = store.fleet()
    assert view.node == "old" and view.dead_letters == 0
    store.engine.dispose()

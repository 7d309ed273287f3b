from datetime import UTC, datetime

import pytest

from edgeloop_agent.contracts import (
    DriftWindow,
    FeatureWindow,
    Heartbeat,
    Report,
    RowSample,
)
from edgeloop_agent.outbox.store import Outbox

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def heartbeat(n=0):
    return Heartbeat(site="s", requests=n, errors=0, outbox_depth=0, uptime_s=1)


def window(rows=10, version="1"):
    return DriftWindow(
        site="s",
        model_name="m",
        model_version=version,
        window_start=NOW,
        window_end=NOW,
        rows=rows,
        features=(FeatureWindow(name="f", counts=(rows, 0), psi=0.0),),
        psi_threshold=0.2,
        drifted_share=0.0,
        score_counts=(rows,) + (0,) * 9,
    )


def sample():
    return RowSample(
        site="s",
        model_name="m",
        model_version="1",
        window_end=NOW,
        columns=("f",),
        rows=((1.0,),),
        scores=(0.1,),
    )


def test_reports_survive_reopen_in_order_with_stable_keys(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "node-1")
    keys = [box.put(heartbeat(i)).key for i in range(3)]
    box.close()
    again = Outbox(tmp_path / "o.sqlite", "node-1")
    peeked = again.peek(10)
    assert [Report.model_validate_json(text).key for _, text in peeked] == keys
    assert all(k.startswith("node-1:heartbeat:") for k in keys)
    again.ack([peeked[0][0]])
    assert again.depth() == 2


def test_full_queue_drops_old_heartbeats_then_samples_then_merges_windows(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "n", max_reports=10)
    for _ in range(4):
        box.put(window())
    for _ in range(3):
        box.put(sample())
    for i in range(3):
        box.put(heartbeat(i))
    box.put(heartbeat(99))
    stats = box.stats()
    assert stats == {"dropped_heartbeat": 1}
    for _ in range(4):
        box.put(heartbeat())
    assert box.stats()["dropped_heartbeat"] == 5
    for _ in range(2):
        box.put(window())
    assert box.stats() == {"dropped_heartbeat": 7}  # only the newest heartbeat is left
    for _ in range(3):
        box.put(window())
    assert box.stats() == {"dropped_heartbeat": 7, "dropped_sample": 3}
    for _ in range(3):
        box.put(window())
    stats = box.stats()
    assert stats["merged_drift"] == 3 and "dropped_drift" not in stats
    reports = [Report.model_validate_json(t) for _, t in box.peek(100)]
    assert box.depth() == 10
    windows = [r.body for r in reports if r.body.kind == "drift"]
    assert sum(w.rows for w in windows) == 120  # merged, not lost
    assert any(len(w.merged_from) >= 2 for w in windows)


def test_windows_of_different_versions_are_never_merged(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "n", max_reports=10)
    for i in range(12):
        box.put(window(version=str(i)))
    assert box.stats() == {"dropped_drift": 2}


def test_byte_bound_applies_too(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "n", max_reports=1000, max_bytes=2**16)
    for _ in range(300):
        box.put(sample())
    assert box.depth() < 300 and box.stats()["dropped_sample"] > 0


def test_keys_are_unique(tmp_path):
    box = Outbox(tmp_path / "o.sqlite", "n")
    assert len({box.put(heartbeat()).key for _ in range(50)}) == 50


def test_merge_of_mismatched_windows_is_refused():
    from edgeloop_agent.contracts import merge_windows

    with pytest.raises(ValueError, match="same model version"):
        merge_windows(window(version="1"), window(version="2"), ())


def test_a_window_and_its_sample_are_stored_in_one_transaction(tmp_path):
    """One commit (one fsync at synchronous=FULL) on the serving thread, not two."""
    box = Outbox(tmp_path / "o.sqlite", "node-1")
    statements = []
    box._db.set_trace_callback(statements.append)
    first = box.put(window(), sample())
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
    stored = [Report.model_validate_json(text) for _, text in box.peek(10)]
    assert [r.body.kind for r in stored] == ["drift", "sample"]
    assert stored[0].key == first.key and stored[0].key != stored[1].key
    assert box.stats().get("split_readings", 0) == 0

"""Compaction and retention of collected partitions: fewer files, the same rows, once.

Reports go through the real store (files written, then committed); the retention
pass compacts each (kind, model, site, day) into one file. Checked: nothing is
lost or doubled (uncommitted files left alone, redeliveries, late reports, a
pass cut short), the sidecar maps the old partition hash, expiry deletes days.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest

from edgeloop.core.settings import RetentionPolicy
from edgeloop.monitor.intake import collect, compaction
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import ReadingsBatch, Report

from .test_collect import readings

NOW = datetime(2026, 7, 5, 12, 0, tzinfo=UTC)  # 1 and 2 July are well over a day old


def agent_key(n: int) -> str:
    """A key as an agent's outbox makes it: node:kind:hex."""
    return f"desert-02-gw1:readings:{n:032x}"


def store_at(tmp_path, **policy) -> IntakeStore:
    return IntakeStore(
        f"sqlite:///{tmp_path / 'intake.db'}",
        collect_root=tmp_path / "collected",
        retention_policy=RetentionPolicy(**policy),
    )


def rows(tmp_path):
    parts = collect.partitions(tmp_path / "collected", "readings", "pump-failure")
    frame = collect.load(parts)
    return frame.sort_values(["timestamp", "pump_id"]).reset_index(drop=True), parts


def test_a_day_becomes_one_file_with_the_same_rows_and_the_old_hash_on_record(tmp_path):
    store = store_at(tmp_path)
    for n in range(5):
        store.accept([readings(agent_key(n))])
    before, parts = rows(tmp_path)
    assert [len(p.files) for p in parts] == [5, 5]
    result = store.prune(NOW)
    assert result.compacted == 2
    after, compacted = rows(tmp_path)
    assert [p.files[0].startswith("compacted-") for p in compacted] == [True, True]
    assert [len(p.files) for p in compacted] == [1, 1]
    assert after.equals(before)  # every row, once
    # the sidecar maps the hash a training dataset recorded to the file now
    (record,) = compaction.compactions(compacted[0])
    assert record["before_sha256"] == parts[0].sha256
    assert record["file"] == compacted[0].files[0] and len(record["members"]) == 5
    assert store.prune(NOW).compacted == 0  # nothing left to merge


def test_uncommitted_files_stay_and_redeliveries_and_late_reports_are_merged_once(
    tmp_path,
):
    store = store_at(tmp_path)
    for n in range(3):
        store.accept([readings(agent_key(n))])
    # written but never committed (the intake died between file and commit)
    orphan = readings(agent_key(99))
    collect.write_report(tmp_path / "collected", orphan)
    store.prune(NOW)
    _, parts = rows(tmp_path)
    assert [sorted(p.files)[-1] for p in parts] == [
        "desert-02-gw1_readings_" + f"{99:032x}.parquet"
    ] * 2
    # the agent redelivers it: same file rewritten, committed, merged next pass
    assert store.accept([orphan]) == (1, 0)
    assert store.accept([readings(agent_key(1))]) == (0, 1)  # a duplicate: no file
    store.prune(NOW)
    merged, parts = rows(tmp_path)
    assert [len(p.files) for p in parts] == [1, 1]
    assert len(merged) == 4 * 6  # four reports of six rows, each once
    # an offline site catching up: a report for the compacted days
    late = readings(agent_key(7), n=6)
    late = late.model_copy(
        update={
            "body": late.body.model_copy(
                update={"entities": tuple(f"desert-02-p1{i}" for i in range(6))}
            )
        }
    )
    store.accept([late])
    assert [len(p.files) for p in rows(tmp_path)[1]] == [2, 2]
    store.prune(NOW)
    final, parts = rows(tmp_path)
    assert [len(p.files) for p in parts] == [1, 1] and len(final) == 5 * 6
    assert (final["pump_id"].str.startswith("desert-02-p1")).sum() == 6


def test_a_pass_cut_short_shows_no_row_twice_and_the_next_one_finishes(tmp_path):
    store = store_at(tmp_path)
    for n in range(3):
        store.accept([readings(agent_key(n))])
    before, parts = rows(tmp_path)
    keep = tmp_path / "kept"
    shutil.copytree(parts[0].path, keep)
    store.prune(NOW)
    # the merged files reappear, as if deleting them had not happened yet
    for name in parts[0].files:
        shutil.copy(keep / name, parts[0].path / name)
    during, listed = rows(tmp_path)
    assert during.equals(before) and len(listed[0].files) == 1
    store.prune(NOW)
    on_disk = sorted(p.name for p in listed[0].path.glob("*.parquet"))
    assert len(on_disk) == 1 and on_disk[0].startswith("compacted-")


def test_today_is_not_compacted_and_old_days_expire(tmp_path):
    store = store_at(tmp_path, collected_days=3)
    store.accept([readings(agent_key(1)), readings(agent_key(2))])
    # 2 July ended less than a day before this: only 1 July is merged
    assert store.prune(datetime(2026, 7, 3, 12, 0, tzinfo=UTC)).compacted == 1
    _, parts = rows(tmp_path)
    assert [(p.day, len(p.files)) for p in parts] == [
        ("2026-07-01", 1),
        ("2026-07-02", 2),
    ]
    result = store.prune(NOW + timedelta(days=0))  # days before 2 July are gone
    assert result.expired == 1
    assert [p.day for p in rows(tmp_path)[1]] == ["2026-07-02"]


def test_compaction_needs_the_database_to_remember_the_keys_long_enough():
    with pytest.raises(ValueError, match="readings_days .* must be at least"):
        RetentionPolicy(readings_days=1, compact_after_days=1)
    assert RetentionPolicy(readings_days=0, compact_after_days=1).readings_days == 0


def test_a_file_named_by_a_key_the_database_never_saw_is_left_alone(tmp_path):
    store = store_at(tmp_path)
    store.accept([readings(agent_key(1))])
    stranger = readings("not-an-agent:key:xyz")
    collect.write_report(tmp_path / "collected", stranger)
    body = stranger.body
    assert isinstance(body, ReadingsBatch)
    store.prune(NOW)
    _, parts = rows(tmp_path)
    assert all(len(p.files) == 2 for p in parts)
    assert isinstance(stranger, Report)

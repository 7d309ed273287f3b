"""Collected reports as Parquet partitions: layout, idempotence, partition hashes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edgeloop.monitor.intake import collect
from edgeloop_agent.contracts import Heartbeat, ReadingsBatch, Report

T0 = datetime(2026, 7, 1, 22, 0, tzinfo=UTC)


def readings(key: str, n: int = 6, step_h: float = 1.0) -> Report:
    stamps = tuple(T0 + timedelta(hours=step_h * i) for i in range(n))
    return Report(
        key=key,
        node="desert-02-gw1",
        created_at=T0,
        body=ReadingsBatch(
            site="desert-02",
            model_name="pump-failure",
            model_version="2",
            columns=("vibration_rms", "ambient_temp"),
            entities=tuple(f"desert-02-p0{i % 2}" for i in range(n)),
            timestamps=stamps,
            rows=tuple((1.0 + i, None if i == 3 else 30.0) for i in range(n)),
            scores=tuple(0.1 * i for i in range(n)),
            alarms=tuple(i >= 5 for i in range(n)),
        ),
    )


def test_a_batch_is_split_into_day_partitions_and_read_back(tmp_path):
    written = collect.write_report(tmp_path, readings("key-0001"))
    assert [p.parent.name for p in written] == ["day=2026-07-01", "day=2026-07-02"]
    parts = collect.partitions(tmp_path, "readings", "pump-failure")
    assert [(p.site, p.day, p.files) for p in parts] == [
        ("desert-02", "2026-07-01", ("key-0001.parquet",)),
        ("desert-02", "2026-07-02", ("key-0001.parquet",)),
    ]
    rows = collect.load(parts)
    assert len(rows) == 6 and rows["ambient_temp"].isna().sum() == 1
    assert rows["alarm"].sum() == 1 and set(rows["node"]) == {"desert-02-gw1"}


def test_redelivery_rewrites_the_same_file_and_keeps_the_hash(tmp_path):
    collect.write_report(tmp_path, readings("key-0001"))
    before = collect.partitions(tmp_path, "readings", "pump-failure")
    collect.write_report(tmp_path, readings("key-0001"))
    after = collect.partitions(tmp_path, "readings", "pump-failure")
    assert [p.sha256 for p in before] == [p.sha256 for p in after]
    assert len(collect.load(after)) == 6
    collect.write_report(tmp_path, readings("key-0002", n=1))
    grown = collect.partitions(tmp_path, "readings", "pump-failure")
    assert grown[0].sha256 != before[0].sha256 and grown[1].sha256 == before[1].sha256


def test_day_range_and_other_kinds(tmp_path):
    collect.write_report(tmp_path, readings("key-0001"))
    only = collect.partitions(
        tmp_path, "readings", "pump-failure", since_day="2026-07-02"
    )
    assert [p.day for p in only] == ["2026-07-02"]
    heartbeat = Report(
        key="hb-00001",
        node="n",
        created_at=T0,
        body=Heartbeat(site="s", requests=0, errors=0, outbox_depth=0, uptime_s=0),
    )
    assert collect.write_report(tmp_path, heartbeat) == []
    assert collect.partitions(tmp_path, "readings", "other-model") == []
    assert collect.load([]).empty

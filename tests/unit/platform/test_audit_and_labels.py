"""The audit log's hash chain, delayed-label ingestion and alarm scoring, and their CLI errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.core.errors import UsageError
from edgeloop.monitor import labels
from edgeloop.monitor.intake import collect
from edgeloop.provenance.audit import AuditLog
from edgeloop_agent.contracts import ReadingsBatch, Report

T0 = datetime(2026, 7, 1, tzinfo=UTC)


def test_audit_chain_detects_an_edited_record(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("training", "pump-failure:1", reason="initial")
    log.append("registered", "pump-failure:1", promoted=True)
    log.append("rollout", "pump-failure:1", wave="canary")
    assert log.verify() == 3
    assert [r["kind"] for r in log.records(subject="pump-failure:1")] == [
        "training",
        "registered",
        "rollout",
    ]
    lines = log.path.read_text().splitlines()
    lines[1] = lines[1].replace('"promoted": true', '"promoted": false')
    log.path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError, match=r"audit.jsonl:3: chain broken"):
        log.verify()


def test_audit_verify_notices_records_removed_from_the_end(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(4):
        log.append("rollout", "pump-failure:1", wave=f"w{n}")
    assert log.verify() == 4
    lines = log.path.read_text().splitlines()
    log.path.write_text("\n".join(lines[:2]) + "\n")  # the chain itself is intact
    with pytest.raises(UsageError, match="ends at record 2 but its head records 4"):
        log.verify()
    log.path.unlink()  # the whole log gone, its head left
    with pytest.raises(UsageError, match="head records 4 records"):
        log.verify()


def test_audit_verify_refuses_a_log_whose_head_was_removed(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("labels", "orders.csv", new=1)
    log.head_path.unlink()
    with pytest.raises(UsageError, match="end of the log cannot be checked"):
        log.verify()
    # appending again rebuilds the head from the log itself
    log.append("labels", "orders.csv", new=2)
    assert log.verify() == 2


def test_audit_cli_lists_and_verifies(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    AuditLog(tmp_path / "audit.jsonl").append("labels", "orders.csv", new=3)
    listed = CliRunner().invoke(
        app, ["-o", "json", "audit", "list", "--kind", "labels"]
    )
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["details"] == {
        "new": 3
    }
    (tmp_path / "audit.jsonl").write_text("not json\n")
    broken = CliRunner().invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "not an audit record" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def _orders(path, rows):
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_ingest_deduplicates_and_names_bad_rows(tmp_path):
    orders = _orders(
        tmp_path / "wo.csv",
        [
            {"work_order": "WO-1", "pump_id": "p1", "failed_at": "2026-07-03T00:00:00"},
            {"work_order": "WO-2", "pump_id": "p2", "failed_at": "2026-07-05T12:00:00"},
        ],
    )
    first = labels.ingest(orders, tmp_path / "collected")
    again = labels.ingest(orders, tmp_path / "collected")
    assert (first["new"], first["duplicates"]) == (2, 0)
    assert (again["new"], again["duplicates"], again["total"]) == (0, 2, 2)
    bad = _orders(
        tmp_path / "bad.csv",
        [
            {"pump_id": "p1", "failed_at": "2026-07-03"},
            {"pump_id": "p2", "failed_at": "last tuesday"},
        ],
    )
    with pytest.raises(UsageError, match=r"bad.csv:3: failed_at: empty or not a time"):
        labels.ingest(bad, tmp_path / "collected")
    missing = _orders(tmp_path / "missing.csv", [{"asset": "p1", "when": "2026-07-09"}])
    with pytest.raises(UsageError, match="missing column"):
        labels.ingest(missing, tmp_path / "collected")
    custom = labels.ingest(
        missing, tmp_path / "collected", entity_column="asset", time_column="when"
    )
    assert custom["new"] == 1


def test_alarm_quality_joins_labels_with_logged_predictions(tmp_path):
    root = tmp_path / "collected"
    stamps = tuple(T0 + timedelta(hours=6 * i) for i in range(12))  # 3 days
    # p1 fails at 60 h: its readings within 48 h before are positives
    batch = ReadingsBatch(
        site="s",
        model_name="pump-failure",
        model_version="1",
        columns=("x",),
        entities=("p1",) * 12,
        timestamps=stamps,
        rows=tuple((1.0,) for _ in stamps),
        scores=tuple(0.9 if i >= 2 else 0.1 for i in range(12)),
        alarms=tuple(i >= 2 for i in range(12)),
    )
    collect.write_report(
        root, Report(key="node:readings:1", node="n", created_at=T0, body=batch)
    )
    orders = _orders(
        tmp_path / "wo.csv", [{"pump_id": "p1", "failed_at": "2026-07-03T12:00:00"}]
    )
    labels.ingest(orders, root)
    rows = {r["day"]: r for r in labels.alarm_quality(root, "pump-failure", 48.0)}
    overall = rows["all"]
    # the newest label is at 60 h: only readings at 0, 6 and 12 h have a horizon
    # (48 h) that has passed; of those only the one at 12 h precedes the failure
    # by at most 48 h, and it is the only alarm among them
    assert overall["readings"] == 3
    assert overall["failing"] == 1 and overall["alarms"] == 1
    assert overall["precision"] == 1.0 and overall["recall"] == 1.0
    assert overall["pr_auc"] == 1.0


def test_labels_cli_reports_one_line_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    missing = CliRunner().invoke(app, ["labels", "ingest", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "cannot read work orders" in missing.stderr
    orders = _orders(
        tmp_path / "wo.csv", [{"pump_id": "p1", "failed_at": "2026-07-03T12:00:00"}]
    )
    ok = CliRunner().invoke(app, ["-o", "json", "labels", "ingest", str(orders)])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["new"] == 1
    assert AuditLog(tmp_path / "audit.jsonl").records("labels")


def test_data_assemble_names_bad_input(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path))
    missing = CliRunner().invoke(
        app, ["data", "assemble", "--base", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert missing.exit_code == 1 and "not a dataset (no schema.yaml)" in missing.stderr
    bad_day = CliRunner().invoke(
        app,
        [
            "data",
            "assemble",
            "--base",
            str(tmp_path),
            "--out",
            str(tmp_path / "o"),
            "--since",
            "tomorrow",
        ],
    )
    assert bad_day.exit_code == 1 and "expected a day as YYYY-MM-DD" in bad_day.stderr

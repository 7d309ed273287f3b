"""Data and bundles by URI against a real S3 API server and a real MLflow server.

Before: every dataset was a ``Path`` (the compiled pipeline could only read a
volume it never mounted) and nothing showed an agent fetching a bundle that
lives in object storage behind MLflow's artifact proxy.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from edgeloop.cli import app
from edgeloop.provenance.registry import Registry
from edgeloop_agent.contracts import DesiredModel
from edgeloop_components import tasks
from edgeloop_components.errors import SchemaError

from ..conftest import free_port
from ..s3_server import S3Server, s3_server
from .test_agent_http import running_agent, settings_for, wait_for
from .test_mlflow_server import running_mlflow_server

pytestmark = [pytest.mark.slow]
runner = CliRunner()
BUCKET = "edgeloop"


@pytest.fixture(scope="module")
def s3(tmp_path_factory, fleet_dir) -> S3Server:
    root = tmp_path_factory.mktemp("s3")
    with s3_server(root) as server:
        fs = server.filesystem()
        fs.mkdir(BUCKET)
        fs.put(str(fleet_dir) + "/", f"{BUCKET}/datasets/pumps/", recursive=True)
        yield server


@pytest.fixture()
def s3_env(s3, monkeypatch) -> S3Server:
    for key, value in s3.env.items():
        monkeypatch.setenv(key, value)
    return s3


def test_validate_reads_a_dataset_directory_from_s3(s3_env, fleet_dir):
    local = runner.invoke(app, ["-o", "json", "data", "validate", str(fleet_dir)])
    remote = runner.invoke(
        app, ["-o", "json", "data", "validate", f"s3://{BUCKET}/datasets/pumps/"]
    )
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    local_row, remote_row = json.loads(local.stdout), json.loads(remote.stdout)
    assert remote_row["path"] == f"s3://{BUCKET}/datasets/pumps/"
    # the same bytes were read: same rows and the same content hash
    assert remote_row["rows"] == local_row["rows"] > 0
    assert remote_row["data_hash"] == local_row["data_hash"]


def test_the_pipeline_step_reads_data_and_labels_by_uri(s3_env, fleet_dir, tmp_path):
    schema = json.loads(json.dumps(_schema(fleet_dir)))
    log_name = schema["label"]["path"]
    # labels kept apart from the readings: another prefix, passed as labels_uri
    s3_env.filesystem().put(
        str(fleet_dir / log_name), f"{BUCKET}/labels/work-orders.csv"
    )
    out = tmp_path / "validated"
    info = tasks.ingest_validate(
        f"s3://{BUCKET}/datasets/pumps",
        "",
        out,
        labels_uri=f"s3://{BUCKET}/labels/work-orders.csv",
    )
    local = tasks.ingest_validate(str(fleet_dir), "", tmp_path / "local")
    assert info["dataset_uri"] == f"s3://{BUCKET}/datasets/pumps"
    assert info["labels_uri"] == f"s3://{BUCKET}/labels/work-orders.csv"
    assert info["rows"] == local["rows"] and info["data_hash"] == local["data_hash"]
    assert (out / "readings.parquet").exists()
    # the staged copy is gone; only the validated output stays
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local", "validated"]


def test_missing_object_and_unreachable_endpoint_are_one_line(s3_env, monkeypatch):
    missing = runner.invoke(
        app, ["data", "validate", f"s3://{BUCKET}/datasets/nowhere/readings.parquet"]
    )
    assert missing.exit_code == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.output
    assert "no such object" in missing.stderr and s3_env.url in missing.stderr

    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    unreachable = runner.invoke(
        app, ["data", "validate", f"s3://{BUCKET}/datasets/pumps/"]
    )
    assert unreachable.exit_code == 1 and "Traceback" not in unreachable.output
    assert unreachable.stderr.count("\n") == 1
    assert f"cannot read from {dead}" in unreachable.stderr


def test_unknown_scheme_is_refused(tmp_path):
    with pytest.raises(SchemaError, match="unsupported scheme 'ftp'"):
        tasks.ingest_validate("ftp://example.org/data", "", tmp_path / "v")


@pytest.fixture(scope="module")
def mlflow_on_s3(s3, tmp_path_factory):
    """``mlflow server --serve-artifacts`` whose artifact store is the S3 bucket."""
    root = tmp_path_factory.mktemp("mlflow-s3")
    with running_mlflow_server(root, f"s3://{BUCKET}/mlflow", s3.env) as url:
        yield url


def test_agent_fetches_a_bundle_stored_in_s3_through_the_artifact_proxy(
    s3, mlflow_on_s3, registry_with_champion, tmp_path
):
    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    registered = tasks.register_bundle(bundle, mlflow_on_s3, True, True, {})
    registry = Registry(mlflow_on_s3)
    location = registry.bundle_location("pump-failure", registered["version"])
    # a URL any edge node can fetch, never a path on the training machine
    assert location.startswith(f"{mlflow_on_s3}/api/2.0/mlflow-artifacts/artifacts/")
    # ... and the bytes live in the object store, not on the MLflow server
    stored = s3.filesystem().find(f"{BUCKET}/mlflow")
    assert any(p.endswith("/bundle/model.onnx") for p in stored), stored

    settings = settings_for(tmp_path / "agent")
    with running_agent(settings) as url:
        settings.model.desired_model_path.write_text(
            DesiredModel(
                model_name="pump-failure",
                version=str(registered["version"]),
                bundle_uri=location,
                bundle_sha256=registered["bundle_sha256"],
            ).model_dump_json()
        )
        wait_for(
            lambda: httpx.get(f"{url}/v2/health/ready").status_code == 200,
            timeout=60,
            what="the agent to activate the bundle fetched from the proxy",
        )
        meta = httpx.get(f"{url}/v2/models/pump-failure").json()
        assert meta["versions"] == [str(registered["version"])]


def _schema(fleet_dir: Path) -> dict:
    import yaml

    return yaml.safe_load((fleet_dir / "schema.yaml").read_text())


def test_collected_partitions_and_labels_live_in_object_storage(s3_env, tmp_path):
    """The intake writes partitions to s3:// exactly as to a directory: same
    files, same partition hashes, the same rows back; labels beside them."""
    from edgeloop.core.settings import PlatformSettings
    from edgeloop.monitor import labels
    from edgeloop.monitor.intake import collect
    from edgeloop.monitor.intake.store import IntakeStore

    from ..unit.platform.intake.test_collect import readings

    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.collect_dir = f"s3://{BUCKET}/collected/"
    root = settings.collect_root()
    assert root == f"s3://{BUCKET}/collected"
    store = IntakeStore.from_settings(settings)
    try:
        assert store.accept([readings("key-0001")])[0] == 1
        assert store.accept([readings("key-0001")])[0] == 0  # redelivered
    finally:
        store.engine.dispose()
    remote = collect.partitions(root, "readings", "pump-failure")
    collect.write_report(tmp_path / "local", readings("key-0001"))
    local = collect.partitions(tmp_path / "local", "readings", "pump-failure")
    assert [(p.site, p.day, p.files, p.sha256) for p in remote] == [
        (p.site, p.day, p.files, p.sha256) for p in local
    ]
    assert str(remote[0].path).startswith(f"s3://{BUCKET}/collected/readings/")
    assert collect.row_count(remote) == 6
    assert collect.load(remote).equals(collect.load(local))
    stored = s3_env.filesystem().find(f"{BUCKET}/collected/readings")
    assert len(stored) == 2 and all(k.endswith("key-0001.parquet") for k in stored)

    orders = tmp_path / "orders.csv"
    orders.write_text("pump_id,failed_at\ndesert-02-p01,2026-07-02T03:00:00\n")
    first = labels.ingest(orders, root)
    again = labels.ingest(orders, root)
    assert (first["new"], again["new"], again["duplicates"]) == (1, 0, 1)
    assert first["store"] == f"s3://{BUCKET}/collected/labels/maintenance.csv"
    quality = labels.alarm_quality(root, "pump-failure", 1.0)
    assert {q["model_version"] for q in quality} == {"2"}


def test_collected_partitions_in_object_storage_are_compacted_and_expired(
    s3_env, tmp_path
):
    """Compaction and expiry on s3:// as on a disk: one object per day, same rows."""
    from datetime import UTC, datetime

    from edgeloop.core.settings import PlatformSettings
    from edgeloop.monitor.intake import collect, compaction
    from edgeloop.monitor.intake.store import IntakeStore

    from ..unit.platform.intake.test_collect import readings
    from ..unit.platform.intake.test_compaction import agent_key

    settings = PlatformSettings(home=tmp_path / "home")
    settings.intake.collect_dir = f"s3://{BUCKET}/compacted/"
    settings.intake.retention.collected_days = 3
    root = settings.collect_root()
    store = IntakeStore.from_settings(settings)
    try:
        for n in range(3):
            store.accept([readings(agent_key(n))])

        def ordered(frame):
            return frame.sort_values(list(frame.columns)).reset_index(drop=True)

        before = ordered(
            collect.load(collect.partitions(root, "readings", "pump-failure"))
        )
        # 2 July ended over a day before: both days are merged
        result = store.prune(datetime(2026, 7, 4, 6, 0, tzinfo=UTC))
        assert result.compacted == 2 and result.expired == 0
        parts = collect.partitions(root, "readings", "pump-failure")
        assert [len(p.files) for p in parts] == [1, 1]
        assert ordered(collect.load(parts)).equals(before)  # every row, once
        (record,) = compaction.compactions(parts[0])
        assert len(record["members"]) == 3
        keys = s3_env.filesystem().find(f"{BUCKET}/compacted/readings")
        assert sum(k.endswith(".parquet") for k in keys) == 2
        # three days on, 1 July is older than collected_days and goes
        assert store.prune(datetime(2026, 7, 5, 6, 0, tzinfo=UTC)).expired == 1
        assert [
            p.day for p in collect.partitions(root, "readings", "pump-failure")
        ] == ["2026-07-02"]
    finally:
        store.engine.dispose()


def test_a_base_dataset_in_object_storage_assembles_the_next_training_set(
    s3_env, tmp_path
):
    from edgeloop.core.errors import UsageError
    from edgeloop.core.settings import PlatformSettings
    from edgeloop.monitor.intake import collect
    from edgeloop.train import retraining

    from ..unit.platform.intake.test_collect import readings

    settings = PlatformSettings(home=tmp_path / "home")
    collect.write_report(settings.collect_root(), readings("key-0001"))
    uri = f"s3://{BUCKET}/datasets/pumps/"
    manifest = retraining.assemble(settings, uri, tmp_path / "fresh")
    assert manifest["base"] == uri and manifest["rows"]["collected"] == 6
    assert (tmp_path / "fresh" / "schema.yaml").exists()
    with pytest.raises(UsageError, match="no such object"):
        retraining.assemble(settings, f"s3://{BUCKET}/nothing/", tmp_path / "x")

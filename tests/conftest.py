"""Shared test setup: markers, the --with-e2e switch, fleet and registry fixtures."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgeloop.demo.simulator import config as cfg
from edgeloop.demo.simulator import generate


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--with-e2e", action="store_true", help="also run tests that need a cluster"
    )
    parser.addoption(
        "--with-arm64",
        action="store_true",
        help="also run the arm64 container tests under qemu (make test-containers-full)",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    skip_e2e = pytest.mark.skip(
        reason="needs a Kubernetes cluster; run with --with-e2e and KUBECONFIG"
    )
    skip_arm64 = pytest.mark.skip(
        reason="arm64 under qemu (opt-in: make test-containers-full); on these "
        "machines it fails: onnxruntime crashes or hangs under the emulator "
        "(docs/status.md, Containers)"
    )
    for item in items:
        if "e2e" in item.keywords and not config.getoption("--with-e2e"):
            item.add_marker(skip_e2e)
        if "arm64" in item.keywords and not config.getoption("--with-arm64"):
            item.add_marker(skip_arm64)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches ./.edgeloop or a user's MLflow settings."""
    monkeypatch.setenv("EDGELOOP_HOME", str(tmp_path / "home"))
    for var in (
        "EDGELOOP_REGISTRY__TRACKING_URI",
        "MLFLOW_TRACKING_URI",
        "EDGELOOP_PIPELINE__KFP_HOST",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


SMALL_FLEET = cfg.SimulationConfig(sites=3, pumps_per_site=4, days=40, seed=11)


@pytest.fixture(scope="session")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated fleet on disk (readings, maintenance log, schema)."""
    out = tmp_path_factory.mktemp("fleet")
    generate.write_fleet(generate.simulate(SMALL_FLEET), out)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class TrainedRun:
    """Directories of one training run through the step functions."""

    work: Path
    ingest: dict[str, Any]
    report: dict[str, Any]
    gate: dict[str, Any]
    parity: float
    latency: list[dict[str, Any]]
    bundle_dir: Path
    bundle: dict[str, Any]


def train_through_steps(
    data_dir: Path,
    work: Path,
    tracking_uri: str,
    *,
    n_estimators: int = 40,
    policy: dict[str, Any] | None = None,
    dropout_share: float = 0.2,
) -> TrainedRun:
    """Run every step function in order, as the pipeline does, without kfp."""
    from edgeloop_components import tasks

    ingest = tasks.ingest_validate(str(data_dir), "", work / "validated")
    tasks.build_features(
        work / "validated", [12], ["last", "mean", "std", "slope"], work / "features"
    )
    tasks.split_data(work / "features", 0.3, 0.4, 0, work / "split")
    tasks.train_model(
        work / "split",
        {"n_estimators": n_estimators, "max_depth": 4, "dropout_share": dropout_share},
        work / "model.json",
    )
    report = tasks.evaluate_model(work / "split", work / "model.json", 0.8)
    gate = tasks.gate_vs_champion(
        work / "validated",
        work / "split",
        report,
        tracking_uri,
        "pump-failure",
        policy or {},
    )
    parity = tasks.export_onnx(work / "model.json", work / "split", work / "model.onnx")
    latency = tasks.profile_latency(work / "model.onnx", work / "split", "")
    bundle = tasks.assemble_bundle(
        model_name="pump-failure",
        onnx_path=work / "model.onnx",
        split_dir=work / "split",
        report=report,
        gate_result=gate,
        parity=parity,
        parity_tolerance=1e-5,
        latency=latency,
        ingest=ingest,
        code_revision="test",
        pipeline_run_id=f"test-{work.name}",
        out_dir=work / "bundle",
    )
    return TrainedRun(
        work, ingest, report, gate, parity, latency, work / "bundle", bundle
    )


@pytest.fixture(scope="session")
def registry_with_champion(
    tmp_path_factory: pytest.TempPathFactory, fleet_dir: Path
) -> dict[str, Any]:
    """An embedded MLflow store holding pump-failure:1 as champion."""
    from edgeloop_components import tasks

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    old = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    try:
        run = train_through_steps(fleet_dir, root / "run1", uri)
        registered = tasks.register_bundle(
            run.bundle_dir, uri, run.bundle["gates_passed"], True, {}
        )
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
    return {"uri": uri, "root": root, "run": run, "registered": registered}

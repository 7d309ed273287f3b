"""Latency and memory of the ONNX session per device profile.

A device profile file lists the hardware classes of the fleet (name, arch,
cores, memory, threads, latency budget). The numbers are measured on the
machine running the step with the profile's thread count; ``measured_on``
records which machine that was, so nobody mistakes them for on-device numbers.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgeloop_agent.contracts import LatencyProfile
from edgeloop_components.dataset import MAX_SCHEMA_BYTES, SAFE_LOADER
from edgeloop_components.errors import SchemaError
from edgeloop_components.export import INPUT_NAME, session


class DeviceProfile(BaseModel):
    """One hardware class of edge gateway."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    arch: str = "amd64"
    cores: int = Field(2, ge=1)
    memory_mb: int = Field(1024, ge=16)
    threads: int = Field(1, ge=1)
    latency_budget_ms: float = Field(10.0, gt=0)
    memory_budget_mb: float = Field(64.0, gt=0)
    """Memory the scorer may add on this device for the ONNX session."""


DEFAULT_PROFILES: tuple[DeviceProfile, ...] = (
    DeviceProfile(
        name="gateway-small",
        arch="arm64",
        cores=2,
        memory_mb=1024,
        threads=1,
        latency_budget_ms=20.0,
        memory_budget_mb=64.0,
    ),
    DeviceProfile(
        name="gateway-standard",
        arch="amd64",
        cores=4,
        memory_mb=4096,
        threads=2,
        latency_budget_ms=10.0,
        memory_budget_mb=256.0,
    ),
)


def load_profiles(path: Path | None) -> list[DeviceProfile]:
    """Read a profiles YAML (``profiles: [...]``); the defaults when ``path`` is None."""
    if path is None:
        return list(DEFAULT_PROFILES)
    try:
        if Path(path).stat().st_size > MAX_SCHEMA_BYTES:
            raise SchemaError(f"{path}: larger than {MAX_SCHEMA_BYTES} bytes")
        raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=SAFE_LOADER)  # noqa: S506
        items = raw["profiles"] if isinstance(raw, dict) else raw
        return [DeviceProfile.model_validate(item) for item in items]
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValidationError) as exc:
        raise SchemaError(f"{path}: invalid device profiles ({exc})") from exc


def _rss_mb() -> float:
    """Resident set size of this process from /proc (Linux), 0 elsewhere."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * 4096 / 2**20


def _percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.asarray(samples) * 1000.0
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def profile(
    onnx_path: Path,
    x: np.ndarray,
    profiles: list[DeviceProfile],
    repeats: int = 300,
    batch_size: int = 100,
) -> list[LatencyProfile]:
    """Single-row and batch latency (p50/p99) and session memory per profile."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    batch = x[np.arange(batch_size) % len(x)]
    results = []
    for prof in profiles:
        before = _rss_mb()
        sess = session(onnx_path, threads=prof.threads)
        singles, batches = [], []
        for i in range(repeats):
            row = x[i % len(x) : i % len(x) + 1]
            start = time.perf_counter()
            sess.run(["probabilities"], {INPUT_NAME: row})
            singles.append(time.perf_counter() - start)
        for _ in range(max(10, repeats // 10)):
            start = time.perf_counter()
            sess.run(["probabilities"], {INPUT_NAME: batch})
            batches.append(time.perf_counter() - start)
        # After the runs: onnxruntime allocates its arena on first use.
        memory = max(0.0, _rss_mb() - before)
        s50, s99 = _percentiles(singles)
        b50, b99 = _percentiles(batches)
        results.append(
            LatencyProfile(
                device_profile=prof.name,
                threads=prof.threads,
                single_p50_ms=round(s50, 4),
                single_p99_ms=round(s99, 4),
                batch_size=batch_size,
                batch_p50_ms=round(b50, 4),
                batch_p99_ms=round(b99, 4),
                session_memory_mb=round(memory, 2),
                latency_budget_ms=prof.latency_budget_ms,
                memory_budget_mb=prof.memory_budget_mb,
                fits=s99 <= prof.latency_budget_ms and memory <= prof.memory_budget_mb,
                measured_on=f"{platform.machine()} {platform.node()}",
            )
        )
        del sess
    return results

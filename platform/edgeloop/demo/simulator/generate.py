"""Deterministic pump-fleet data: readings, maintenance log and dataset schema.

Each pump gets its own random stream seeded by ``(seed, site, pump)``, so the
same config always yields the same bytes and adding a site does not change
the others. Work is vectorised per pump (one numpy array per sensor), which is
what keeps a million readings to a couple of seconds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from edgeloop.demo.simulator import config as cfg
from edgeloop_components.dataset import (
    DatasetSchema,
    FailureLogLabel,
    FeatureColumn,
    dump_schema,
)

READINGS_FILE = "readings.parquet"
MAINTENANCE_FILE = "maintenance_log.csv"
FLEET_FILE = "fleet.json"

_DEGRADE_DAYS = (3.0, 8.0)
_DOWNTIME_HOURS = (6.0, 12.0)


@dataclass
class FleetData:
    """A simulated fleet: readings (time-ordered per pump) and failures."""

    readings: pd.DataFrame
    maintenance: pd.DataFrame
    sites: pd.DataFrame
    config: cfg.SimulationConfig


@dataclass
class _Pump:
    site: str
    site_index: int
    pump_id: str
    index: int
    kind: cfg.PumpType


def simulate(
    config: cfg.SimulationConfig,
    progress: Callable[[int, int], None] | None = None,
) -> FleetData:
    """Generate a fleet.

    Args:
        config: fleet size, period, seed and perturbations.
        progress: called as ``progress(done_pumps, total_pumps)``.
    """
    sites = config.site_names()
    times = pd.date_range(
        config.start, periods=config.steps(), freq=f"{config.cadence_minutes}min"
    ).to_numpy()
    pumps = [
        _Pump(
            site,
            s,
            f"{site}-p{p + 1:02d}",
            p,
            cfg.PUMP_TYPES[(s + p) % len(cfg.PUMP_TYPES)],
        )
        for s, site in enumerate(sites)
        for p in range(config.pumps_per_site)
    ]
    frames: list[pd.DataFrame] = []
    failures: list[dict[str, object]] = []
    for done, pump in enumerate(pumps, start=1):
        frame, pump_failures = _simulate_pump(config, pump, times)
        frames.append(frame)
        failures += pump_failures
        if progress:
            progress(done, len(pumps))
    readings = pd.concat(frames, ignore_index=True)
    maintenance = pd.DataFrame(
        failures,
        columns=[
            "work_order",
            "site_id",
            "pump_id",
            "pump_type",
            "failure_mode",
            "failed_at",
            "repaired_at",
            "repair",
        ],
    ).sort_values(["failed_at", "pump_id"], kind="stable", ignore_index=True)
    maintenance["work_order"] = [f"WO-{i + 1:06d}" for i in range(len(maintenance))]
    site_table = pd.DataFrame(
        {
            "site_id": sites,
            "climate": [
                cfg.CLIMATES[i % len(cfg.CLIMATES)][0] for i in range(len(sites))
            ],
            "ambient_mean_degc": [
                cfg.CLIMATES[i % len(cfg.CLIMATES)][1] for i in range(len(sites))
            ],
        }
    )
    return FleetData(readings, maintenance, site_table, config)


def _affects(
    config: cfg.SimulationConfig, kind: str, site_index: int
) -> cfg.Perturbation | None:
    """The perturbation of ``kind`` if it touches this site, else None."""
    names = config.site_names()
    for pert in config.perturbations:
        if pert.kind != kind:
            continue
        if pert.sites:
            return pert if names[site_index] in pert.sites else None
        defaults = {
            "ambient_shift": {0},
            "new_pump_type": {len(names) - 1},
            "regime_change": set(range(len(names))),
            "sensor_faults": {1 % len(names)},
        }[kind]
        return pert if site_index in defaults else None
    return None


def _simulate_pump(
    config: cfg.SimulationConfig, pump: _Pump, times: np.ndarray
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """One pump's readings over the simulated period.

    Long: one pump's physics (regimes, seasons, degradation, failure, repair) in time order; the state carried from step to step is local.
    """
    rng = np.random.default_rng([config.seed, pump.site_index, pump.index])
    n = len(times)
    step_h = config.cadence_minutes / 60.0
    hours = np.arange(n) * step_h
    climate = cfg.CLIMATES[pump.site_index % len(cfg.CLIMATES)]

    # Seasons follow the calendar (coldest on 1 January), so a run's start date
    # decides whether its window sees a season turning (real drift) or not.
    start_day = float(pd.Timestamp(times[0]).dayofyear - 1)
    ambient = (
        climate[1]
        + climate[2]
        * np.sin(2 * np.pi * (start_day + hours / 24.0) / 365.0 - np.pi / 2)
        + 4.0 * np.sin(2 * np.pi * (hours - 9.0) / 24.0)
        + rng.normal(0, 0.5, n)
    )
    shift = _affects(config, "ambient_shift", pump.site_index)
    if shift:
        start = int(shift.start_fraction * n)
        ramp = np.clip((np.arange(n) - start) / max(1.0, 24 / step_h), 0, 1)
        ambient = ambient + 12.0 * shift.magnitude * ramp

    regime = _regimes(
        rng, n, step_h, _affects(config, "regime_change", pump.site_index), n
    )
    load = np.array([cfg.REGIME_LOAD[r] for r in cfg.REGIMES])[regime]

    kinds = np.full(n, pump.kind.name, dtype=object)
    base = _base_arrays(pump.kind, n)
    newtype = _affects(config, "new_pump_type", pump.site_index)
    if newtype and pump.index >= config.pumps_per_site // 2:
        start = int(newtype.start_fraction * n)
        kinds[start:] = cfg.NEW_PUMP_TYPE.name
        for key, values in _base_arrays(cfg.NEW_PUMP_TYPE, n).items():
            base[key][start:] = values[start:]

    severity, running, events = _failures(config, rng, n, step_h)
    bear, imp, seal = severity

    def noise(scale: np.ndarray | float) -> np.ndarray:
        return rng.normal(0.0, 1.0, n) * scale

    speed = base["speed_rpm"] * (0.85 + 0.15 * load) + noise(5.0)
    flow = base["flow_rate"] * load * (1 - 0.25 * imp) * (1 + noise(0.02 + 0.06 * seal))
    discharge = (
        base["discharge_pressure"] * load**2 * (1 - 0.2 * imp) * (1 + noise(0.01))
    )
    suction = base["suction_pressure"] * (1 - 0.4 * seal) + noise(0.05)
    current = (
        base["motor_current"]
        * load**1.5
        * (1 + 0.04 * bear - 0.06 * imp)
        * (1 + noise(0.01))
    )
    spikes = (rng.random(n) < 0.25 * seal) * rng.uniform(1.5, 3.5, n)
    vibration = (
        base["vibration_rms"] * (0.8 + 0.2 * load)
        + 4.0 * bear**1.5
        + 1.0 * imp
        + spikes
        + np.abs(noise(0.12))
    )
    bearing = (
        ambient
        + base["bearing_temp_rise"] * load
        + 25.0 * bear**1.5
        + 3.0 * seal
        + noise(0.7)
    )

    sensors = {
        "vibration_rms": vibration,
        "bearing_temp": bearing,
        "motor_current": current,
        "discharge_pressure": discharge,
        "suction_pressure": suction,
        "flow_rate": flow,
        "speed_rpm": speed,
        "ambient_temp": ambient,
    }
    faults = _affects(config, "sensor_faults", pump.site_index)
    if faults and pump.index == 0:
        _inject_faults(
            sensors, rng, n, step_h, int(faults.start_fraction * n), faults.magnitude
        )

    frame = pd.DataFrame(
        {
            "timestamp": times,
            "site_id": pump.site,
            "pump_id": pump.pump_id,
            "pump_type": kinds,
            "regime": np.array(cfg.REGIMES, dtype=object)[regime],
            **{name: np.round(values, 3) for name, values in sensors.items()},
        }
    )[running]
    failures = [
        {
            "work_order": "",
            "site_id": pump.site,
            "pump_id": pump.pump_id,
            "pump_type": str(kinds[min(fail_step, n - 1)]),
            "failure_mode": mode,
            "failed_at": pd.Timestamp(times[0])
            + pd.Timedelta(minutes=fail_step * config.cadence_minutes),
            "repaired_at": pd.Timestamp(times[0])
            + pd.Timedelta(minutes=repaired_step * config.cadence_minutes),
            "repair": cfg.REPAIRS[mode],
        }
        for fail_step, repaired_step, mode in events
        if fail_step < n
    ]
    return frame, failures


def _base_arrays(kind: cfg.PumpType, n: int) -> dict[str, np.ndarray]:
    fields = (
        "speed_rpm",
        "flow_rate",
        "discharge_pressure",
        "suction_pressure",
        "motor_current",
        "vibration_rms",
        "bearing_temp_rise",
    )
    return {f: np.full(n, float(getattr(kind, f))) for f in fields}


def _regimes(
    rng: np.random.Generator,
    n: int,
    step_h: float,
    change: cfg.Perturbation | None,
    total: int,
) -> np.ndarray:
    """Piecewise-constant operating regime, switching every ~2 days."""
    regime = np.empty(n, dtype=np.int64)
    start_change = int(change.start_fraction * total) if change else n
    pos = 0
    while pos < n:
        length = max(1, int(rng.exponential(48.0) / step_h))
        probs = [0.25, 0.55, 0.20] if pos < start_change else [0.05, 0.25, 0.70]
        regime[pos : pos + length] = rng.choice(3, p=probs)
        pos += length
    return regime


def _failures(
    config: cfg.SimulationConfig, rng: np.random.Generator, n: int, step_h: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int, str]]]:
    """Degradation severity per failure mode (3, n), running mask, events."""
    severity = np.zeros((3, n))
    running = np.ones(n, dtype=bool)
    events: list[tuple[int, int, str]] = []
    per_day = 24.0 / step_h
    cursor = int(rng.exponential(config.mtbf_days) * per_day * 0.5)
    while True:
        degrade = int(rng.uniform(*_DEGRADE_DAYS) * per_day)
        fail_at = cursor + degrade
        if cursor >= n:
            break
        mode_index = int(rng.integers(3))
        stop = min(fail_at, n)
        progress = (np.arange(cursor, stop) - cursor) / max(1, degrade)
        severity[mode_index, cursor:stop] = progress**2
        repaired = fail_at + int(rng.uniform(*_DOWNTIME_HOURS) / step_h)
        running[min(fail_at, n) : min(repaired, n)] = False
        events.append((fail_at, repaired, cfg.FAILURE_MODES[mode_index]))
        cursor = repaired + int(rng.exponential(config.mtbf_days) * per_day)
    return severity, running, events


def _inject_faults(
    sensors: dict[str, np.ndarray],
    rng: np.random.Generator,
    n: int,
    step_h: float,
    start: int,
    magnitude: float,
) -> None:
    """Stuck value, spikes, a dropout and NaN bursts on one pump from ``start``."""
    per_hour = max(1, int(1 / step_h))
    if start >= n:
        return
    stuck_end = min(n, start + 24 * per_hour)
    sensors["bearing_temp"][start:stuck_end] = sensors["bearing_temp"][start]
    spike_count = max(1, int(12 * magnitude))
    spike_at = rng.choice(
        np.arange(start, n), size=min(spike_count, n - start), replace=False
    )
    sensors["vibration_rms"][spike_at] = 65.0
    drop_start = min(n - 1, stuck_end + 6 * per_hour)
    sensors["flow_rate"][drop_start : drop_start + 6 * per_hour] = np.nan
    for _ in range(max(1, int(3 * magnitude))):
        burst = int(rng.integers(start, n))
        for values in sensors.values():
            values[burst : burst + per_hour] = np.nan


def dataset_schema(config: cfg.SimulationConfig) -> DatasetSchema:
    """The contract of the simulator's output, as a user would write it."""
    return DatasetSchema(
        name="pump-fleet",
        readings=READINGS_FILE,
        entity_column="pump_id",
        time_column="timestamp",
        features=[
            FeatureColumn(name=name, unit=unit, min=low, max=high)
            for name, (unit, low, high) in cfg.SENSOR_RANGES.items()
        ],
        label=FailureLogLabel(
            path=MAINTENANCE_FILE,
            entity_column="pump_id",
            time_column="failed_at",
            horizon_hours=config.horizon_hours,
        ),
        slices=["pump_type", "site_id"],
        allow_extra_columns=True,
    )


def write_fleet(data: FleetData, out: Path) -> list[Path]:
    """Write readings (Parquet), maintenance log (CSV), schema and fleet config."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        out / READINGS_FILE,
        out / MAINTENANCE_FILE,
        out / "schema.yaml",
        out / FLEET_FILE,
    ]
    data.readings.to_parquet(paths[0], index=False)
    log = data.maintenance.copy()
    for col in ("failed_at", "repaired_at"):
        log[col] = pd.to_datetime(log[col]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    log.to_csv(paths[1], index=False)
    dump_schema(dataset_schema(data.config), paths[2])
    fleet = {
        "config": data.config.model_dump(mode="json"),
        "sites": data.sites.to_dict(orient="records"),
        "pumps": (
            data.readings.groupby("pump_id", sort=True)[["site_id", "pump_type"]]
            .first()
            .reset_index()
            .to_dict(orient="records")
        ),
    }
    paths[3].write_text(json.dumps(fleet, indent=2) + "\n", encoding="utf-8")
    return paths

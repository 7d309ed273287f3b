"""What a simulated pump fleet looks like: sites, pump types, perturbations.

Pure data (pydantic + constants). The numbers are plausible for centrifugal
pumps in upstream oil & gas service; they are not calibrated to any vendor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PerturbationKind = Literal[
    "ambient_shift", "new_pump_type", "regime_change", "sensor_faults"
]
PERTURBATIONS: tuple[str, ...] = (
    "ambient_shift",
    "new_pump_type",
    "regime_change",
    "sensor_faults",
)

SENSORS: tuple[str, ...] = (
    "vibration_rms",
    "bearing_temp",
    "motor_current",
    "discharge_pressure",
    "suction_pressure",
    "flow_rate",
    "speed_rpm",
    "ambient_temp",
)

#: (unit, valid min, valid max) per sensor: the physical envelope of the sensor.
SENSOR_RANGES: dict[str, tuple[str, float, float]] = {
    "vibration_rms": ("mm/s", 0.0, 50.0),
    "bearing_temp": ("degC", -40.0, 150.0),
    "motor_current": ("A", 0.0, 400.0),
    "discharge_pressure": ("bar", 0.0, 250.0),
    "suction_pressure": ("bar", -1.0, 50.0),
    "flow_rate": ("m3/h", 0.0, 500.0),
    "speed_rpm": ("rpm", 0.0, 6000.0),
    "ambient_temp": ("degC", -50.0, 60.0),
}

FAILURE_MODES: tuple[str, ...] = ("bearing_wear", "impeller_erosion", "seal_leak")
REPAIRS: dict[str, str] = {
    "bearing_wear": "replaced drive-end bearing",
    "impeller_erosion": "replaced impeller and wear rings",
    "seal_leak": "replaced mechanical seal; checked NPSH",
}
REGIMES: tuple[str, ...] = ("low", "nominal", "high")
#: Load factor applied to speed, flow and current per regime.
REGIME_LOAD: dict[str, float] = {"low": 0.8, "nominal": 1.0, "high": 1.15}


class PumpType(BaseModel):
    """Baseline operating point of one manufacturer/model."""

    model_config = ConfigDict(frozen=True)

    name: str
    speed_rpm: float
    flow_rate: float
    discharge_pressure: float
    suction_pressure: float
    motor_current: float
    vibration_rms: float
    bearing_temp_rise: float
    """Bearing temperature above ambient at nominal load (degC)."""


PUMP_TYPES: tuple[PumpType, ...] = (
    PumpType(
        name="flowserve-hpx",
        speed_rpm=2980,
        flow_rate=220,
        discharge_pressure=95,
        suction_pressure=4.5,
        motor_current=160,
        vibration_rms=2.2,
        bearing_temp_rise=32,
    ),
    PumpType(
        name="sulzer-msd",
        speed_rpm=3560,
        flow_rate=310,
        discharge_pressure=140,
        suction_pressure=6.0,
        motor_current=230,
        vibration_rms=2.8,
        bearing_temp_rise=38,
    ),
    PumpType(
        name="grundfos-cr",
        speed_rpm=2900,
        flow_rate=90,
        discharge_pressure=38,
        suction_pressure=2.0,
        motor_current=55,
        vibration_rms=1.6,
        bearing_temp_rise=24,
    ),
)
#: Introduced by the ``new_pump_type`` perturbation: unlike anything trained on.
NEW_PUMP_TYPE = PumpType(
    name="ksb-etanorm",
    speed_rpm=1480,
    flow_rate=160,
    discharge_pressure=22,
    suction_pressure=1.5,
    motor_current=75,
    vibration_rms=3.6,
    bearing_temp_rise=18,
)

#: Site climates: (name prefix, mean ambient degC, seasonal amplitude degC).
CLIMATES: tuple[tuple[str, float, float], ...] = (
    ("offshore", 14.0, 5.0),
    ("desert", 31.0, 9.0),
    ("arctic", -6.0, 14.0),
    ("delta", 26.0, 4.0),
)


class Perturbation(BaseModel):
    """A change injected from ``start_fraction`` of the simulated period on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: PerturbationKind
    sites: tuple[str, ...] = ()
    """Sites affected; empty means the perturbation's default site(s)."""
    start_fraction: float = Field(0.5, ge=0.0, le=1.0)
    magnitude: float = Field(1.0, gt=0.0)


class SimulationConfig(BaseModel):
    """Everything that determines a simulated fleet; same config + seed = same data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: int = Field(3, ge=1, le=500)
    pumps_per_site: int = Field(4, ge=1, le=500)
    days: float = Field(30.0, gt=0, le=3650)
    seed: int = 0
    cadence_minutes: int = Field(10, ge=1, le=1440)
    start: str = "2026-01-01T00:00:00"
    mtbf_days: float = Field(18.0, gt=0)
    """Mean time between failures per pump: short, so small fleets see failures."""
    horizon_hours: float = Field(48.0, gt=0)
    """Label horizon written into the schema: failure within this many hours."""
    perturbations: tuple[Perturbation, ...] = ()

    @field_validator("perturbations")
    @classmethod
    def _one_per_kind(cls, value: tuple[Perturbation, ...]) -> tuple[Perturbation, ...]:
        kinds = [p.kind for p in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each perturbation kind may be given once")
        return value

    def site_names(self) -> list[str]:
        """Stable site ids, climate first so names say where a site is."""
        return [
            f"{CLIMATES[i % len(CLIMATES)][0]}-{i + 1:02d}" for i in range(self.sites)
        ]

    def steps(self) -> int:
        """Readings per pump."""
        return max(1, int(self.days * 24 * 60 // self.cadence_minutes))

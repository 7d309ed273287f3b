"""The demo's scenario: sites, roles, sizes, the simulated fleet and the EdgeRollout."""

from __future__ import annotations

from dataclasses import dataclass

from edgeloop.demo.simulator import config as cfg
from edgeloop.rollout.spec import EdgeRollout

SITES = ("offshore-01", "desert-02", "arctic-03")
CANARY_SITE, DRIFT_SITE, FAULT_SITE, OFFLINE_SITE = (
    "offshore-01",
    "desert-02",
    "arctic-03",
    "arctic-03",
)
#: Early summer: no season turns during the live days, so the only drift is the injected one.
START = "2026-05-01T00:00:00"
READINGS_PER_DAY = 24 * 6  # the simulator's 10-minute cadence
DRIFT_DAY = 3
"""Live day (0-based) on which the shift starts; days before it build the baselines."""


@dataclass
class LoopSize:
    """How big the compressed loop is."""

    pumps_per_site: int = 12
    history_days: float = 60
    live_days: int = 10
    n_estimators: int = 200
    older_days: float = 60
    """Days of the previous training data kept beside the collected data."""

    @property
    def pumps_per_node(self) -> int:
        """Two gateways per site share its pumps."""
        return max(1, self.pumps_per_site // 2)


FAST = LoopSize(
    pumps_per_site=8, history_days=40, live_days=9, n_estimators=60, older_days=40
)


def edge_rollout(nodes: dict[str, list[str]]) -> EdgeRollout:
    """Canary site first, then the rest; gates fit compressed time."""
    groups = [
        {"name": site.split("-")[0], "nodes": nodes[site], "site": site}
        for site in SITES
    ]
    gates = {
        "soakSeconds": 1,
        "maxSilentFraction": 0.5,
        "minHealthyFraction": 0.5,
        # the demo posts a day of readings in 1,000-row requests: p99 is per request
        "maxP99LatencyMs": 2000,
    }
    return EdgeRollout.model_validate(
        {
            "metadata": {"name": "pumps"},
            "spec": {
                "model": {"name": "pump-failure", "alias": "champion"},
                "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
                "groups": groups,
                "waves": [
                    {"name": "canary", "groups": ["offshore"], "gates": gates},
                    {"name": "rest", "groups": ["desert", "arctic"], "gates": gates},
                ],
            },
        }
    )


def simulation_config(size: LoopSize, seed: int) -> cfg.SimulationConfig:
    """History plus live days; the shift and the faults start during the live days."""
    total = size.history_days + size.live_days
    live_from = size.history_days / total
    day = 1 / total
    return cfg.SimulationConfig(
        sites=len(SITES),
        pumps_per_site=size.pumps_per_site,
        days=total,
        seed=seed,
        start=START,
        perturbations=(
            cfg.Perturbation(
                kind="ambient_shift",
                sites=(DRIFT_SITE,),
                start_fraction=live_from + DRIFT_DAY * day,
                magnitude=1.0,  # +12 degC: more would leave the sensor's range (a fault)
            ),
            cfg.Perturbation(
                kind="new_pump_type",  # half the site's pumps replaced by a new model
                sites=(DRIFT_SITE,),
                start_fraction=live_from + DRIFT_DAY * day,
            ),
            cfg.Perturbation(
                kind="sensor_faults",
                sites=(FAULT_SITE,),
                start_fraction=live_from + 2 * day,
                magnitude=3.0,
            ),
        ),
    )

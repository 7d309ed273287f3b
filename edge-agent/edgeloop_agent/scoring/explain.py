"""Why an alarm fired, computed on the node: occlusion against the bundle's reference.

For each alarming reading, every sensor in turn has all of its model inputs
replaced by the training reference's medians (the bundle's reference sample)
and the row is scored again; a sensor's *contribution* is how much the score
drops when it looks ordinary. The top contributors are named on the alarm
("vibration_rms 0.41, bearing_temp 0.12"), so a technician knows where to look.

Why occlusion and not SHAP: it needs nothing but the ONNX model the agent
already runs (no xgboost, no shap on a gateway), works for every model kind,
and speaks in sensors, not in derived inputs. Cost: one extra batched run of
``sensors × alarming rows`` rows, only when something alarms (measured in
docs/benchmarks.md, "Alarm explanations", with its agreement with SHAP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edgeloop_agent.contracts import BundleManifest

Contribution = tuple[str, float]


@dataclass(frozen=True)
class Explainer:
    """Reference medians and which inputs each sensor feeds, for one bundle."""

    medians: NDArray[np.float32]
    groups: tuple[tuple[str, NDArray[np.intp]], ...]

    @classmethod
    def for_manifest(cls, manifest: BundleManifest) -> Explainer:
        """Medians of the reference sample's inputs; inputs grouped by sensor."""
        names = manifest.features.input_names()
        rows = np.asarray(manifest.reference_sample.inputs, dtype=np.float64)
        if rows.size:
            with np.errstate(all="ignore"):
                medians = np.nanmedian(
                    np.where(np.isfinite(rows), rows, np.nan), axis=0
                )
        else:
            medians = np.full(len(names), np.nan)
        groups = tuple(
            (
                sensor,
                np.asarray(
                    [i for i, n in enumerate(names) if n.startswith(f"{sensor}__")],
                    dtype=np.intp,
                ),
            )
            for sensor in manifest.features.sensors
        )
        return cls(np.asarray(medians, dtype=np.float32), groups)

    def explain(
        self,
        predict: Callable[[NDArray[np.float32]], NDArray[np.float64]],
        inputs: NDArray[np.float32],
        scores: NDArray[np.float64],
        top: int,
    ) -> list[tuple[Contribution, ...]]:
        """The ``top`` sensors raising each row's score, largest first (positive only)."""
        if not len(inputs) or top <= 0:
            return [() for _ in range(len(inputs))]
        k = len(self.groups)
        occluded = np.repeat(np.asarray(inputs, dtype=np.float32), k, axis=0)
        for j, (_, columns) in enumerate(self.groups):
            occluded[j::k, columns] = self.medians[columns]
        drops = np.asarray(scores, dtype=np.float64)[:, None] - predict(
            occluded
        ).reshape(len(inputs), k)
        out: list[tuple[Contribution, ...]] = []
        for row in drops:
            order = np.argsort(-row, kind="stable")[:top]
            out.append(
                tuple(
                    (self.groups[j][0], round(float(row[j]), 4))
                    for j in order
                    if row[j] > 0
                )
            )
        return out

"""Alarm explanations: cost on the node and agreement with SHAP.

Trains the classifier on the simulated fleet through the pipeline's steps,
then on the holdout rows that score highest (the ones that alarm or nearly
do) compares the agent's occlusion explanation (``edgeloop_agent.scoring.explain``,
sensors replaced by the bundle's reference medians, ONNX only) with exact
TreeSHAP (XGBoost ``pred_contribs``) summed per sensor:

* top-3 agreement: the share of the three sensors both methods name;
* top-1 agreement: the share of rows where both put the same sensor first;
* cost: scoring the rows plus explaining them vs scoring alone, same run.

Writes the "Alarm explanations" block of docs/benchmarks.md
(``python -m bench.explanations``).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.doc import write_section
from edgeloop.demo.simulator import generate
from edgeloop_agent.contracts import read_manifest
from edgeloop_agent.scoring.explain import Explainer
from edgeloop_agent.scoring.onnx import OnnxScorer
from edgeloop_components import importance, training
from tests.conftest import SMALL_FLEET, train_through_steps

ROWS = 300
TOP = 3


def _train(root: Path) -> Path:
    """The test suite's step runner on its small fleet (one definition of both)."""
    data = root / "fleet"
    generate.write_fleet(generate.simulate(SMALL_FLEET), data)
    run = train_through_steps(
        data, root / "work", f"sqlite:///{root}/m.db", n_estimators=200
    )
    return run.work


def measure() -> dict[str, float]:
    """Agreement and cost figures on one trained model."""
    with tempfile.TemporaryDirectory() as tmp:
        work = _train(Path(tmp))
        manifest = read_manifest(work / "bundle")
        spec = manifest.features
        holdout = pd.read_parquet(work / "split" / "holdout.parquet")
        x_all = holdout[spec.input_names()].to_numpy(dtype=np.float32)
        scorer = OnnxScorer()
        scorer.load(work / "bundle" / "model.onnx")
        scores_all = scorer.predict(x_all)
        rows = np.argsort(-scores_all)[:ROWS]
        x, scores = x_all[rows], scores_all[rows]
        explainer = Explainer.for_manifest(manifest)

        start = time.perf_counter()
        for _ in range(5):
            scorer.predict(x)
        plain = (time.perf_counter() - start) / 5
        start = time.perf_counter()
        for _ in range(5):
            found = explainer.explain(scorer.predict, x, scorer.predict(x), TOP)
        explained = (time.perf_counter() - start) / 5

        shap = importance.shap_values(training.load(work / "model.json"), x)
        top3, top1 = [], []
        for row, occlusion in zip(shap, found, strict=True):
            per_sensor = importance.by_sensor(row, spec)
            ranked = sorted(per_sensor, key=lambda s: -per_sensor[s])[:TOP]
            named = [s for s, _ in occlusion]
            top3.append(len(set(ranked) & set(named)) / TOP)
            top1.append(float(bool(named) and named[0] == ranked[0]))
        return {
            "rows": float(len(x)),
            "sensors": float(len(spec.sensors)),
            "threshold": manifest.output.threshold,
            "alarming": float((scores >= manifest.output.threshold).sum()),
            "top3": float(np.mean(top3)),
            "top1": float(np.mean(top1)),
            "plain_ms": plain * 1000,
            "explained_ms": explained * 1000,
        }


def main() -> None:
    """Measure and write the block."""
    m = measure()
    per_alarm = (m["explained_ms"] - m["plain_ms"]) / m["rows"]
    write_section(
        "bench.explanations",
        f"""## Alarm explanations (`python -m bench.explanations`)

Measured {time.strftime("%Y-%m-%d")} on this machine: the classifier trained on
the simulated fleet (3 sites × 4 pumps × 40 days, 200 trees), the {int(m["rows"])}
highest-scoring holdout rows ({int(m["alarming"])} of them above the alarm
threshold), {int(m["sensors"])} sensors.

| | value |
| --- | --- |
| top-3 sensors named by both occlusion (node) and TreeSHAP (offline) | {m["top3"]:.0%} |
| same first sensor | {m["top1"]:.0%} |
| scoring {int(m["rows"])} rows | {m["plain_ms"]:.2f} ms |
| scoring + explaining them | {m["explained_ms"]:.2f} ms ({m["explained_ms"] / m["plain_ms"]:.1f}×) |
| extra cost per explained alarm | {per_alarm:.3f} ms |

Occlusion is run only for alarming rows, so readings that do not alarm cost
nothing extra. It answers "which sensor, set to an ordinary value, would
lower the score most", SHAP "how much each input moved the margin"; they
differ when sensors interact (a high bearing temperature matters more at high
vibration), which is where the rankings part.
""",
    )


if __name__ == "__main__":
    main()

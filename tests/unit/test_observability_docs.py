"""docs/observability.md names exactly the metrics the agent, intake and loop service expose."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from edgeloop.core.settings import PlatformSettings
from edgeloop.loop.metrics import LoopMetrics
from edgeloop.monitor.intake import metrics as intake_metrics
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.metrics import Metrics
from edgeloop_agent.outbox.store import Outbox

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def _families(text: bytes) -> set[str]:
    out = set()
    for family in text_string_to_metric_families(text.decode()):
        # prometheus_client's *_created series (a counter's start time) aside
        if family.name.startswith("edgeloop_") and not family.name.endswith("_created"):
            out.add(family.name + ("_total" if family.type == "counter" else ""))
    return out


def test_every_exposed_metric_is_documented_and_nothing_else(tmp_path):
    agent = Metrics()
    agent.watch_outbox(Outbox(tmp_path / "outbox.db", "n1"))
    store = IntakeStore.from_settings(PlatformSettings(home=tmp_path))
    registry = intake_metrics.registry_for(store.engine, 900)
    intake_metrics.IngestMetrics(registry)
    exposed = (
        _families(agent.render())
        | _families(intake_metrics.render(registry))
        | _families(LoopMetrics().render())
    )
    documented = set(re.findall(r"`(edgeloop_[a-z_]+)`", DOC.read_text()))
    assert exposed - documented == set(), "exposed but not documented"
    assert documented - exposed == set(), "documented but not exposed"

"""The controller's run loop without a cluster: reconcile a directory of EdgeRollouts.

``edgeloop controller run`` is a thin command over :func:`run_controller`. Each
file is reconciled every ``interval`` seconds; a file whose reconcile raised a
:class:`RetryableError` is not tried again before the delay that error asks for
(so a registry that is down is not hammered by every file on every tick), and
one bad file never stops the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeloop.core.errors import EdgeloopError, retry_delay
from edgeloop.rollout.controller import Outcome, Reconciler, StatusStore, load_rollout


def summarise(outcome: Outcome) -> dict[str, Any]:
    """One reconcile as plain data: phase, waves with their nodes and versions, gates."""
    p = outcome.plan
    status = outcome.rollout.status
    group_of = {n: g for g, nodes in p.nodes.items() for n in nodes}

    def versions(wave: str, groups: list[str]) -> list[str]:
        per_node = {
            d.version
            for n in p.wave_nodes.get(wave, [])
            if (d := p.node_desired.get(n) or p.desired.get(group_of[n])) is not None
        }
        per_group = {
            d.version
            for g in groups
            if not p.nodes.get(g) and (d := p.desired.get(g)) is not None
        }
        return sorted(per_node | per_group)

    return {
        "rollout": outcome.rollout.metadata.name,
        "phase": status.phase,
        "model": f"{outcome.rollout.spec.model.name}:{status.modelVersion}",
        "wave": status.wave,
        "lastKnownGood": status.lastKnownGood,
        "waves": [
            {
                "wave": w,
                "groups": groups,
                "nodes": p.wave_nodes.get(w, []),
                "version": versions(w, groups),
            }
            for w, groups in p.waves.items()
        ],
        "gates": [
            {"wave": g.wave, "gate": g.name, "passed": g.passed, "detail": g.detail}
            for g in p.gates
        ],
        "refused": p.refused,
        "objects": [f"{o['kind']}/{o['metadata']['name']}" for o in outcome.objects],
        "changed": outcome.changed,
    }


@dataclass
class ControllerLoop:
    """Reconciles every ``*.yaml``/``*.yml`` in ``rollouts`` on an interval.

    ``clock`` and ``sleep`` are injectable so tests drive time explicitly.
    """

    reconciler: Reconciler
    store: StatusStore
    rollouts: Path
    interval: float
    report: Callable[[str], None]
    """Where lines go: errors always, successes unless ``quiet``."""
    quiet: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    not_before: dict[str, float] = field(default_factory=dict)
    """File name -> monotonic time before which it is not retried."""

    def tick(self) -> list[dict[str, Any]]:
        """Reconcile every due file once; returns the summaries of those that succeeded."""
        results = []
        for path in sorted(self.rollouts.glob("*.y*ml")):
            now = self.clock()
            if self.not_before.get(path.name, 0.0) > now:
                continue
            try:
                outcome = self.reconciler.reconcile(self.store.load(load_rollout(path)))
            except EdgeloopError as exc:
                delay = retry_delay(exc)
                if delay is not None:
                    self.not_before[path.name] = now + delay
                    self.report(f"{path.name}: will retry in {delay:g}s: {exc}")
                else:
                    self.report(f"{path.name}: {exc}")
                continue
            self.not_before.pop(path.name, None)
            self.store.save(outcome.rollout)
            results.append(summarise(outcome))
            s = outcome.rollout.status
            if not self.quiet:
                self.report(
                    f"{path.name}: {s.phase} wave={s.wave} version={s.modelVersion}"
                )
        return results

    def next_wait(self) -> float:
        """Seconds until the next tick: the interval, or sooner if a retry is due."""
        now = self.clock()
        due = [t - now for t in self.not_before.values() if t > now]
        return max(0.0, min([self.interval, *due]))

    def run_forever(self) -> None:
        """Tick until interrupted (Ctrl-C / SIGTERM's KeyboardInterrupt)."""
        while True:
            self.tick()
            self.sleep(self.next_wait())

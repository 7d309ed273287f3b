"""Run the trigger policy over what the intake received; keep state and decisions.

State (counters, arming, cooldown, every decision) lives in one JSON file under
``$EDGELOOP_HOME`` so ``edgeloop triggers list`` can show the whole history.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field

from edgeloop.monitor.intake.store import IntakeStore
from edgeloop.provenance.audit import AuditLog
from edgeloop.triggers import policy as p


class EngineState(BaseModel):
    """The policy's memory plus how far the intake has been read."""

    policy_state: p.TriggerState = Field(default_factory=p.TriggerState)
    received_after: datetime | None = None


class TriggerEngine:
    """Evaluate the policy on new intake data; persist everything."""

    def __init__(
        self,
        store: IntakeStore,
        state_path: Path,
        policy: p.TriggerPolicy | None = None,
        audit: AuditLog | None = None,
        model: str = "pump-failure",
    ) -> None:
        self.store = store
        self.audit = audit
        self.model = model
        self.path = Path(state_path)
        self.policy = policy or p.TriggerPolicy()
        self.state = (
            EngineState.model_validate_json(self.path.read_text(encoding="utf-8"))
            if self.path.exists()
            else EngineState()
        )

    def save(self) -> None:
        """Write the state atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.state.model_dump_json(indent=1), encoding="utf-8")
        tmp.replace(self.path)

    def evaluate(self, now: float | None = None) -> list[p.Decision]:
        """Drift (new windows since the last call) and schedule decisions."""
        now = time.time() if now is None else now
        windows, newest = self.store.drift_windows(self.state.received_after)
        decisions = p.evaluate_drift(self.policy, self.state.policy_state, windows, now)
        decisions += p.evaluate_schedule(self.policy, self.state.policy_state, now)
        self.state.received_after = newest
        self.save()
        self._audit([d for d in decisions if d.fired])
        return decisions

    def evaluate_new_data(
        self, new_rows: int, now: float | None = None
    ) -> list[p.Decision]:
        """New-data decision: ``new_rows`` collected since the last training."""
        now = time.time() if now is None else now
        decisions = p.evaluate_new_data(
            self.policy, self.state.policy_state, new_rows, now
        )
        self.save()
        self._audit([d for d in decisions if d.fired])
        return decisions

    def evaluate_performance(
        self,
        live_pr_auc: float,
        holdout_pr_auc: float,
        version: str,
        now: float | None = None,
    ) -> list[p.Decision]:
        """Performance decision: the live PR-AUC (delayed labels) against the holdout's."""
        now = time.time() if now is None else now
        decisions = p.evaluate_performance(
            self.policy,
            self.state.policy_state,
            live_pr_auc,
            holdout_pr_auc,
            version,
            now,
        )
        self.save()
        self._audit([d for d in decisions if d.fired])
        return decisions

    def _audit(self, fired: list[p.Decision]) -> None:
        if self.audit is None:
            return
        for decision in fired:
            versions = decision.evidence.get("versions") or [""]
            self.audit.append(
                "trigger",
                f"{self.model}:{versions[0]}" if versions[0] else self.model,
                decision=decision.model_dump(mode="json"),
            )

    def manual(
        self, reason: str, now: float | None = None, kind: p.Kind = "manual"
    ) -> p.Decision:
        """Record a manual (or CI ``code_change``) retraining request."""
        decision = p.manual(
            self.state.policy_state, reason, time.time() if now is None else now, kind
        )
        self.save()
        self._audit([decision])
        return decision

    def decisions(self) -> list[p.Decision]:
        """Every decision so far, oldest first."""
        return list(self.state.policy_state.decisions)

"""kopf operator: EdgeRollout create/update/timer -> plan -> render -> apply -> status.

A thin shell: every handler parses the object, calls
:meth:`edgeloop.rollout.controller.Reconciler.reconcile` and patches
``status``. Run in the cluster with ``kopf run -m edgeloop.rollout.operator``
(the chart's controller Deployment does). An invalid EdgeRollout gets
``phase: Invalid`` and a condition naming the field; nothing is rendered.

Fleet observations come from the intake's fleet API
(:class:`edgeloop.rollout.fleet.IntakeFleet`, ``EDGELOOP_INTAKE__URL`` with a
reader token in ``EDGELOOP_INTAKE__READER_TOKEN``; the chart sets both). A
mounted observations file (``EDGELOOP_FLEET_FILE``) overrides it explicitly.
With neither, every node is silent and waves hold (logged at startup).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import kopf
from pydantic import ValidationError

from edgeloop.core.errors import PermanentError, RetryableError
from edgeloop.rollout import spec as rollout_spec
from edgeloop.rollout.controller import Reconciler
from edgeloop.rollout.spec import EdgeRollout

_state: dict[str, Reconciler] = {}
log = logging.getLogger(__name__)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Build the reconciler once, from PlatformSettings and the in-cluster config."""
    from kubernetes import client, config

    from edgeloop.core.settings import load_settings
    from edgeloop.provenance.registry import Registry
    from edgeloop.rollout.apply import KubernetesSink
    from edgeloop.rollout.fleet import fleet_source
    from edgeloop.rollout.registry_view import registry_view

    settings.persistence.finalizer = "edgeloop.io/finalizer"
    config.load_incluster_config()
    platform = load_settings()
    registry = Registry(platform.tracking_uri())
    fleet_file = os.environ.get("EDGELOOP_FLEET_FILE", "")
    if not fleet_file and not platform.intake.url:
        log.warning(
            "no fleet view: set EDGELOOP_INTAKE__URL (the chart's intake.url) or "
            "EDGELOOP_FLEET_FILE; until then every node is silent and waves hold"
        )
    _state["reconciler"] = Reconciler(
        registry_view=lambda r: registry_view(registry, r),
        fleet=fleet_source(
            platform.intake.url,
            platform.intake.reader_token,
            Path(fleet_file) if fleet_file else None,
        ),
        sink=KubernetesSink(client.ApiClient()),
    )


def reconcile_object(
    reconciler: Reconciler, body: dict[str, Any], patch: Any, promote: bool = False
) -> dict[str, Any]:
    """What every handler does; returns the new status (also written into ``patch``)."""
    meta = body.get("metadata", {})
    try:
        rollout = EdgeRollout.model_validate(
            {
                "metadata": {
                    "name": meta.get("name", ""),
                    "namespace": meta.get("namespace", "default"),
                },
                "spec": body.get("spec", {}),
                "status": {
                    k: v
                    for k, v in (body.get("status") or {}).items()
                    if not k.startswith("kopf")
                },
            }
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = f"{where}: {str(first['msg']).removeprefix('Value error, ')}"
        status = {
            "phase": "Invalid",
            "conditions": [
                {
                    "type": "Valid",
                    "status": "False",
                    "reason": "InvalidSpec",
                    "message": message,
                }
            ],
        }
        patch.status.update(status)
        raise kopf.PermanentError(message) from exc
    try:
        outcome = reconciler.reconcile(rollout, promote=promote)
    except RetryableError as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc
    except PermanentError as exc:
        raise kopf.PermanentError(str(exc)) from exc
    status = outcome.rollout.status.model_dump(mode="json")
    patch.status.update(status)
    return status


@kopf.on.create(rollout_spec.GROUP, rollout_spec.VERSION, rollout_spec.PLURAL)
@kopf.on.update(
    rollout_spec.GROUP, rollout_spec.VERSION, rollout_spec.PLURAL, field="spec"
)
def on_change(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """A new or edited EdgeRollout: reconcile now."""
    reconcile_object(_state["reconciler"], dict(body), patch)


@kopf.timer(
    rollout_spec.GROUP,
    rollout_spec.VERSION,
    rollout_spec.PLURAL,
    interval=30.0,
    idle=10.0,
)
def on_timer(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """Gates are evaluated over time: reconcile every 30 s while nothing else happens."""
    reconcile_object(_state["reconciler"], dict(body), patch)

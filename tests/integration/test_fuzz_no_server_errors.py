"""Schemathesis against both services: positive and negative data, zero 5xx.

Every operation of the agent and the intake gets generated requests, valid
and invalid (wrong types, missing fields, out-of-range values), with a valid
token; the services must answer each with a 2xx or a 4xx, never a 5xx.
"""

from __future__ import annotations

import shutil

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app as create_intake
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.api.app import create_app as create_agent
from edgeloop_agent.scoring.model_store import ModelStore
from edgeloop_agent.service import ScoringService

from ..unit.edge_agent.conftest import desired_for
from .test_agent_http import settings_for

MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


def fuzz(schema, tokens: dict[str, str]) -> tuple[list[str], dict[int, int]]:
    """Every operation, positive then negative data: the 5xx answers found, and
    how many answers of each status (so a run that tested nothing shows)."""
    server_errors: list[str] = []
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in MODES:

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case) -> None:
                token = tokens.get(case.method.upper(), "")
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = case.call(headers=headers)
                statuses[response.status_code] = (
                    statuses.get(response.status_code, 0) + 1
                )
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.path}: "
                        f"{response.status_code} {response.text[:200]}"
                    )

            try:
                check()
            except Unsatisfiable:  # e.g. negative data for a GET without parameters
                continue
    return server_errors, statuses


def test_the_intake_answers_no_input_with_a_5xx(tmp_path):
    platform = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore.from_settings(platform)
    tokens = {
        "POST": store.create_token("node-a"),
        "GET": store.create_token("dashboards", role="reader"),
    }
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", create_intake(platform, store)
    )
    assert {op.ok().label for op in schema.get_all_operations()} >= {
        "POST /v1/reports",
        "GET /v1/fleet",
        "GET /v1/cohorts",
    }
    errors, statuses = fuzz(schema, tokens)
    assert errors == []
    # schema-valid data is mostly refused for what a schema cannot say (another
    # node's name, times outside the window, unknown sensors): 4xx, not 5xx
    assert sum(statuses.values()) >= 80 and statuses.get(422, 0) >= 10, statuses


def test_the_agent_answers_no_input_with_a_5xx(registry_with_champion, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(registry_with_champion["run"].bundle_dir, bundle)
    agent = settings_for(tmp_path)
    store = ModelStore(agent.model.cache_dir)
    service = ScoringService(agent)
    record = desired_for(bundle)
    service.swap(store.load(store.fetch(record), record))
    app = create_agent(agent, service=service, store=store, background=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    assert "POST /predict" in {op.ok().label for op in schema.get_all_operations()}
    errors, statuses = fuzz(schema, {})
    assert errors == []
    # schema-valid data is mostly refused for what a schema cannot say (another
    # node's name, times outside the window, unknown sensors): 4xx, not 5xx
    assert sum(statuses.values()) >= 80 and statuses.get(422, 0) >= 10, statuses

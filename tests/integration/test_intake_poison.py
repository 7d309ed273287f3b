"""One poisoned report never hurts the rest: bad times and names get 422, a
report the store cannot take is named in ``rejected`` and spares its batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from edgeloop.core.settings import PlatformSettings
from edgeloop.monitor.intake.app import create_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import Heartbeat, ReadingsBatch, Report

from ..conftest import free_port
from ..servers import serve_app
from .test_intake import heartbeat_report, post


def readings_report(key: str, site: str, when: datetime) -> Report:
    return Report(
        key=key,
        node="node-a",
        created_at=datetime.now(UTC),
        body=ReadingsBatch(
            site=site,
            model_name="pump-failure",
            model_version="1",
            columns=("flow_rate",),
            entities=("p1",),
            timestamps=(when,),
            rows=((210.0,),),
            scores=(0.1,),
            alarms=(False,),
        ),
    )


@pytest.fixture()
def intake(tmp_path):
    settings = PlatformSettings(home=tmp_path / "home")
    store = IntakeStore.from_settings(settings)
    with serve_app(create_app(settings, store), free_port()) as url:
        yield url, store, settings


def test_a_reading_from_year_2300_is_refused_and_the_intake_keeps_working(intake):
    url, store, _ = intake
    token = store.create_token("node-a")
    poisoned = readings_report(
        "node-a:r:2300", "offshore-01", datetime(2300, 1, 1, tzinfo=UTC)
    )
    answer = post(url, token, [poisoned])
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("reports.0.body.timestamps.0: 2300-01-01")
    future = heartbeat_report("node-a", "node-a:hb:2099")
    future = future.model_copy(update={"created_at": datetime(2099, 1, 1, tzinfo=UTC)})
    assert post(url, token, [future]).status_code == 422
    good = readings_report("node-a:r:now", "offshore-01", datetime.now(UTC))
    answer = post(url, token, [good, heartbeat_report("node-a", "node-a:hb:1")])
    assert answer.status_code == 200 and answer.json()["accepted"] == 2
    assert [v.node for v in store.fleet()] == ["node-a"]


@pytest.mark.parametrize(
    "site, fragment",
    [("s" * 300, "at most 253 characters"), ("../../etc", "should match pattern")],
)
def test_names_out_of_bounds_are_422_naming_the_field(intake, site, fragment):
    url, store, _ = intake
    token = store.create_token("node-a")
    body = Heartbeat.model_construct(
        kind="heartbeat",
        site=site,
        cohort="",
        model_name="",
        model_version="",
        bundle_sha256="",
        requests=0,
        errors=0,
        outbox_depth=0,
        last_model_failure="",
        uptime_s=1.0,
    )
    raw = {
        "reports": [
            {
                "key": "node-a:hb:long",
                "node": "node-a",
                "created_at": datetime.now(UTC).isoformat(),
                "body": body.model_dump(mode="json", warnings=False),
            }
        ]
    }
    answer = httpx.post(
        f"{url}/v1/reports", json=raw, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("reports.0.body.heartbeat.site")
    assert fragment in answer.json()["error"]


def test_a_report_the_store_cannot_take_spares_its_batch(intake):
    """Yesterday's readings partition cannot be written (a file where its
    directory would be): a real storage failure for that one report."""
    url, store, settings = intake
    token = store.create_token("node-a", site="offshore-01")
    now = datetime.now(UTC) - timedelta(minutes=1)
    yesterday = now - timedelta(days=1)
    site = (
        settings.collect_root() / "readings" / "model=pump-failure" / "site=offshore-01"
    )
    site.mkdir(parents=True)
    (site / f"day={yesterday:%Y-%m-%d}").write_text("not a directory")
    batch = [
        readings_report("node-a:r:1", "offshore-01", now),
        readings_report("node-a:r:2", "offshore-01", yesterday),
        heartbeat_report("node-a", "node-a:hb:1"),
    ]
    answer = post(url, token, batch)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    assert [r["key"] for r in body["rejected"]] == ["node-a:r:2"]
    assert (
        "Error" in body["rejected"][0]["error"]
    )  # FileExistsError: a file is in the way
    again = post(url, token, batch[:1] + batch[2:])
    assert again.json() == {"accepted": 0, "duplicates": 2, "rejected": []}

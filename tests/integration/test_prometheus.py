"""Alert rules, the chart's monitoring objects, the Grafana dashboard, and a real Prometheus.

* ``promtool test rules``: every alert fires when it must and not when it
  must not (tests/prometheus/alerts.test.yaml).
* The chart ships the same rule file and dashboard it keeps in ``files/``, and
  its monitors select objects that exist.
* Every dashboard query parses (promtool's PromQL parser) and runs on a real
  Prometheus server (``/api/v1/query``).
* A real Prometheus on 127.0.0.1 scrapes a real agent, intake and loop service
  and evaluates the shipped rules (their ``for:`` durations removed: those are
  what the promtool tests check); the expected alerts fire.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from edgeloop.core.settings import PlatformSettings
from edgeloop.demo.processes import spawn_logged
from edgeloop.loop.health import serve_health
from edgeloop.monitor.intake.app import create_app as intake_app
from edgeloop.monitor.intake.store import IntakeStore
from edgeloop_agent.contracts import Heartbeat, Report, ReportBatch

from ..conftest import free_port
from ..servers import serve_app
from .test_agent_http import (
    SENSORS,
    activate,
    running_agent,
    settings_for,
    source_bundle,  # noqa: F401 - a fixture
    wait_for,
)
from .test_install_manifests import by_name, helm_template
from .test_loop_service import ScriptedKfp, make_settings, request, service

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "helm/edgeloop/files/prometheus/alerts.yaml"
RULE_TESTS = ROOT / "tests/prometheus/alerts.test.yaml"
DASHBOARD = ROOT / "helm/edgeloop/files/grafana/edgeloop-fleet.json"
# Grafana's variables, as a query would run with "All" sites selected
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$site": ".*"}


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} missing: make test installs the Debian package prometheus")
    return found


def _promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_tool("promtool"), *args], cwd=cwd, capture_output=True, text=True
    )


def _alert_names() -> list[str]:
    rules = yaml.safe_load(RULES.read_text())
    return [r["alert"] for g in rules["groups"] for r in g["rules"]]


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], expr))
    return out


def test_alert_rules_pass_their_promtool_unit_tests(tmp_path):
    shutil.copy(RULES, tmp_path / "alerts.yaml")
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yaml")
    checked = _promtool("check", "rules", "alerts.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # every alert is tested firing at least once
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for case in cases
        for check in case.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert fired == set(_alert_names())


def test_a_broken_rule_fails_its_promtool_test(tmp_path):
    """The unit tests can fail: a silent-node alert that waits 30 min instead of 15."""
    text = RULES.read_text().replace("for: 15m", "for: 30m", 1)
    (tmp_path / "alerts.yaml").write_text(text)
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yaml")
    tested = _promtool("test", "rules", "alerts.test.yaml", cwd=tmp_path)
    assert tested.returncode != 0
    assert "alertname: EdgeloopNodeSilent" in tested.stdout + tested.stderr


def test_the_chart_ships_the_rules_the_dashboard_and_monitors_that_select_something():
    assert not [
        d
        for d in helm_template()
        if d["apiVersion"].startswith("monitoring.coreos.com")
        or d["metadata"]["name"] == "edgeloop-grafana-dashboard"
    ], "monitoring objects are opt-in"
    docs = helm_template(
        "--set",
        "monitoring.serviceMonitor.enabled=true",
        "--set",
        "monitoring.prometheusRule.enabled=true",
        "--set",
        "monitoring.grafanaDashboard.enabled=true",
        "--set",
        "monitoring.serviceMonitor.labels.release=kube-prometheus-stack",
        "--set-string",
        "monitoring.serviceMonitor.readerTokenSecret=prometheus-reader",
    )
    rule = by_name(docs, "PrometheusRule", "edgeloop")
    assert rule["spec"] == yaml.safe_load(RULES.read_text())
    board = by_name(docs, "ConfigMap", "edgeloop-grafana-dashboard")
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["edgeloop-fleet.json"]) == json.loads(
        DASHBOARD.read_text()
    )
    monitor = by_name(docs, "ServiceMonitor", "edgeloop-intake")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = by_name(docs, "Service", "edgeloop-intake")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    assert wanted.items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["authorization"]["credentials"]["name"] == "prometheus-reader"
    pods = by_name(docs, "PodMonitor", "edgeloop-loop")
    loop = by_name(docs, "Deployment", "edgeloop-loop")["spec"]["template"]
    assert (
        pods["spec"]["selector"]["matchLabels"].items()
        <= loop["metadata"]["labels"].items()
    )
    (container,) = loop["spec"]["containers"]
    (scrape,) = pods["spec"]["podMetricsEndpoints"]
    assert scrape["port"] in {p["name"] for p in container["ports"]}
    policy = by_name(docs, "NetworkPolicy", "edgeloop-metrics")
    ports = {p["port"] for p in policy["spec"]["ingress"][0]["ports"]}
    assert ports == {8000, 8080}


def test_the_dashboard_is_well_formed_and_every_query_parses(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["schemaVersion"] >= 36 and dashboard["uid"] == "edgeloop-fleet"
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and panel["description"], panel["title"]
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in (
        "versions per site",
        "rollout waves",
        "drift heatmap",
        "alarms per day",
        "latency",
    ):
        assert topic in titles
    # promtool's parser: each query as a recording rule
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(_dashboard_queries())
                ],
            }
        ]
    }
    (tmp_path / "queries.yaml").write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", str(tmp_path / "queries.yaml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # and the parser is not lenient: a broken query fails the same check
    rules["groups"][0]["rules"][0]["expr"] = "sum by (site (edgeloop_fleet_nodes)"
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(rules))
    broken = _promtool("check", "rules", str(tmp_path / "broken.yaml"))
    assert broken.returncode != 0


# -- a real Prometheus -----------------------------------------------------


def _heartbeat(node: str, site: str, at: datetime, version: str) -> Report:
    return Report(
        key=f"{node}:hb:{int(at.timestamp() * 1e6)}",
        node=node,
        created_at=at,
        body=Heartbeat(
            site=site,
            model_version=version,
            requests=1,
            errors=0,
            outbox_depth=0,
            uptime_s=1,
        ),
    )


def _post(url: str, token: str, *reports: Report) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/reports",
        content=ReportBatch(reports=reports).model_dump_json(),
        headers={"authorization": f"Bearer {token}"},
    )


class Prometheus:
    """``prometheus`` on 127.0.0.1 with a 1 s scrape and evaluation interval."""

    def __init__(self, home: Path, targets: dict[str, str]) -> None:
        rules = yaml.safe_load(RULES.read_text())
        for group in rules["groups"]:
            for rule in group["rules"]:
                rule.pop("for", None)  # durations: the promtool tests
        (home / "alerts.yaml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yaml"],
            "scrape_configs": [
                {
                    "job_name": job,
                    "static_configs": [{"targets": [url.removeprefix("http://")]}],
                }
                for job, url in targets.items()
            ],
        }
        (home / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home

    def __enter__(self) -> Prometheus:
        self.process = spawn_logged(
            [
                _tool("prometheus"),
                f"--config.file={self.home / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            self.home / "prometheus.log",
            cwd=self.home,
        )
        wait_for(self._ready, what="prometheus ready", timeout=60)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def get(self, path: str, **params: str) -> dict:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def firing(self) -> dict[str, list[dict[str, str]]]:
        out: dict[str, list[dict[str, str]]] = {}
        for alert in self.get("/api/v1/alerts")["alerts"]:
            if alert["state"] == "firing":
                out.setdefault(alert["labels"]["alertname"], []).append(alert["labels"])
        return out


@pytest.mark.slow
def test_a_real_prometheus_scrapes_agent_intake_and_loop_and_fires_the_alerts(
    tmp_path,
    source_bundle,  # noqa: F811 - the fixture imported above
):
    now = datetime.now(UTC)
    platform = PlatformSettings(home=tmp_path / "intake")
    platform.intake.silent_after_s = 600
    store = IntakeStore.from_settings(platform)
    tokens = {
        n: store.create_token(n, site="desert-02") for n in ("gw-silent", "gw-roll")
    }
    loop_settings = make_settings(tmp_path / "loop", max_attempts=1)
    kfp = ScriptedKfp()
    loop = service(loop_settings, kfp, "pod-1")
    loop.tick()
    with serve_app(intake_app(platform, store), free_port()) as intake:
        agent_settings = settings_for(tmp_path / "agent", intake)
        agent_settings.outbox.token = store.create_token("node-a", site="offshore-01")
        agent_settings.outbox.heartbeat_interval_s = 1  # its version, soon
        loop_port = free_port()
        health = serve_health(loop_port, loop, "127.0.0.1")
        try:
            with running_agent(agent_settings) as agent:
                activate(agent, agent_settings, source_bundle)
                targets = {
                    "edgeloop-agent": agent,
                    "edgeloop-intake": intake,
                    "edgeloop-loop": f"http://127.0.0.1:{loop_port}",
                }
                home = tmp_path / "prometheus"
                home.mkdir()
                with Prometheus(home, targets) as prom:
                    _drive_the_fleet(prom, agent, intake, tokens, now, loop, kfp)
                    _assert_alerts_and_queries(prom)
        finally:
            health.shutdown()
            health.server_close()


def _scraped_twice(prom: Prometheus, targets: int = 3) -> None:
    """Wait for two more scrapes of every target, so a change is an increase."""

    def scrapes() -> dict[str, str]:
        active = prom.get("/api/v1/targets")["activeTargets"]
        return {t["scrapeUrl"]: t["lastScrape"] for t in active if t["health"] == "up"}

    wait_for(lambda: len(scrapes()) == targets, what="every target up", timeout=60)
    for _ in range(2):
        seen = scrapes()
        wait_for(
            lambda seen=seen: (
                all(seen.get(url) not in (None, at) for url, at in scrapes().items())
                and len(scrapes()) == targets
            ),
            what="every target scraped again",
            timeout=60,
        )


def _drive_the_fleet(prom, agent, intake, tokens, now, loop, kfp) -> None:
    # a node silent for two hours (on version 2: the fleet serves two versions);
    # another on version 3 that rolls back to 1
    silent = _heartbeat("gw-silent", "desert-02", now - timedelta(hours=2), "2")
    assert _post(intake, tokens["gw-silent"], silent).is_success
    roll = _heartbeat("gw-roll", "desert-02", now - timedelta(seconds=30), "3")
    assert _post(intake, tokens["gw-roll"], roll).is_success
    # the agent scores (latency histogram) and reports on version "1"
    rows = [{"entity": f"p{i % 4}", "values": SENSORS} for i in range(40)]
    assert httpx.post(f"{agent}/predict", json={"readings": rows}).is_success
    _scraped_twice(prom)
    back = _heartbeat("gw-roll", "desert-02", now - timedelta(seconds=10), "1")
    assert _post(intake, tokens["gw-roll"], back).is_success
    for _ in range(20):  # refused: a token the intake does not know
        assert _post(intake, "revoked-token", back).status_code == 401
    request(loop.settings, "retrain please", loop.clock() + 1)
    loop.clock.now += 5
    assert loop.tick().started
    kfp.states["run-1"] = "failed"
    loop.clock.now += 5
    assert list(loop.tick().finished.values()) == ["abandoned"]
    _scraped_twice(prom)


def _assert_alerts_and_queries(prom: Prometheus) -> None:
    expected = {
        "EdgeloopNodeSilent",
        "EdgeloopFleetStuckMidRollout",
        "EdgeloopRollback",
        "EdgeloopIntakeRefusingReports",
        "EdgeloopRetrainingAbandoned",
    }
    deadline = time.monotonic() + 60
    while not expected <= set(firing := prom.firing()):
        assert time.monotonic() < deadline, (
            f"missing {sorted(expected - set(firing))}; firing: {sorted(firing)}; "
            f"pending or inactive: {prom.get('/api/v1/rules')['groups']}"
        )
        time.sleep(0.5)
    assert {a["site"] for a in firing["EdgeloopNodeSilent"]} == {"desert-02"}
    assert {a["site"] for a in firing["EdgeloopRollback"]} == {"desert-02"}
    # nothing fires that the fleet did not do
    quiet = {
        "EdgeloopIntakeIngestErrors",
        "EdgeloopDriftTriggerFired",
        "EdgeloopOutboxDeadLetters",
        "EdgeloopAgentDeadLetters",
        "EdgeloopLoopStalled",
    }
    assert not quiet & set(firing), firing
    # every dashboard query runs on the server; the fleet panels have data
    empty = []
    for title, expr in _dashboard_queries():
        if not prom.get("/api/v1/query", query=expr)["result"]:
            empty.append(title)
    for title in (
        "Nodes",
        "Versions per site",
        "Rollout waves: nodes per version",
        "Agent latency (p50, p99)",
        "Report POSTs by status",
        "Retraining runs",
    ):
        assert title not in empty, f"{title}: no data ({empty})"
    versions = prom.get(
        "/api/v1/query", query="sum by (site, version) (edgeloop_fleet_nodes)"
    )["result"]
    assert {(r["metric"]["site"], r["metric"]["version"]) for r in versions} == {
        ("desert-02", "1"),
        ("desert-02", "2"),
        ("offshore-01", "1"),
    }

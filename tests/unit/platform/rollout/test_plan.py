import pytest

from edgeloop.rollout.plan import NodeObservation, RegistryView, plan
from edgeloop.rollout.spec import EdgeRollout
from edgeloop_agent.contracts import DesiredModel, LatencyProfile

T0 = 1_800_000_000.0


def desired(version: str, lkg: DesiredModel | None = None) -> DesiredModel:
    return DesiredModel(
        model_name="pump-failure",
        version=version,
        bundle_uri=f"http://mlflow/{version}",
        bundle_sha256=version * 64 if len(version) == 1 else "a" * 64,
        last_known_good=lkg,
    )


def latency(profile="gateway-small", fits=True):
    return LatencyProfile(
        device_profile=profile,
        threads=1,
        single_p50_ms=0.1,
        single_p99_ms=0.3 if fits else 90,
        batch_size=100,
        batch_p50_ms=1,
        batch_p99_ms=2,
        session_memory_mb=5,
        latency_budget_ms=20,
        memory_budget_mb=64,
        fits=fits,
        measured_on="x",
    )


def rollout(**spec_changes) -> EdgeRollout:
    spec = {
        "model": {"name": "pump-failure", "alias": "champion"},
        "runtime": {"image": "ghcr.io/edgeloop/edgeloop-agent:0.1.0"},
        "groups": [
            {"name": "canary", "nodes": ["n1", "n2"]},
            {"name": "fleet", "nodes": ["n3", "n4", "n5", "n6"]},
        ],
        "waves": [
            {"name": "canary", "groups": ["canary"], "gates": {"soakSeconds": 60}},
            {
                "name": "fleet",
                "groups": ["fleet"],
                "gates": {"soakSeconds": 60, "maxSilentFraction": 0.25},
            },
        ],
        **spec_changes,
    }
    return EdgeRollout.model_validate({"metadata": {"name": "pumps"}, "spec": spec})


def fleet(version: str, nodes, now=T0, **kw):
    return [
        NodeObservation(node=n, last_seen=now, active_version=version, **kw)
        for n in nodes
    ]


def step(r: EdgeRollout, view: RegistryView, obs, now):
    result = plan(r, view, obs, now)
    return r.model_copy(update={"status": result.status}), result


V1 = desired("1")
V2 = RegistryView(desired("2", lkg=V1), latency=[latency()], previous_drifted_share=0.1)
ALL = ["n1", "n2", "n3", "n4", "n5", "n6"]


def succeeded_on_v1() -> EdgeRollout:
    r = rollout()
    r.status.modelVersion, r.status.phase = "1", "Succeeded"
    return r


def test_new_version_starts_at_the_canary_and_later_waves_keep_last_good():
    r, result = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    assert result.status.phase == "Progressing" and result.status.wave == "canary"
    assert result.status.lastKnownGood == "1"
    assert (
        result.desired["canary"].version == "2"
        and result.desired["fleet"].version == "1"
    )
    assert [d.action for d in result.status.history] == ["start", "hold"]


def test_canary_soaks_then_advances_then_completes():
    r, _ = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    obs = fleet("2", ["n1", "n2"], T0 + 30) + fleet(
        "1", ["n3", "n4", "n5", "n6"], T0 + 30
    )
    r, result = step(r, V2, obs, T0 + 30)
    assert result.status.wave == "canary"
    soak = next(g for g in result.gates if g.name == "soak")
    assert not soak.passed and "soaked 30 s of 60 s" in soak.detail
    r, result = step(
        r,
        V2,
        fleet("2", ["n1", "n2"], T0 + 61)
        + fleet("1", ["n3", "n4", "n5", "n6"], T0 + 61),
        T0 + 61,
    )
    assert result.status.wave == "fleet" and result.desired["fleet"].version == "2"
    assert result.status.history[-1].action == "advance"
    r, result = step(r, V2, fleet("2", ALL, T0 + 200), T0 + 200)
    assert (
        result.status.phase == "Succeeded"
        and result.status.history[-1].action == "complete"
    )
    assert result.status.waves[1].healthy == 4


def test_unhealthy_canary_rolls_every_wave_back_with_the_reason():
    r, _ = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    obs = fleet("2", ["n1"], T0 + 10, error_rate=0.5) + fleet("2", ["n2"], T0 + 10)
    r, result = step(r, V2, obs, T0 + 10)
    assert result.status.phase == "RolledBack"
    assert {g: d.version for g, d in result.desired.items()} == {
        "canary": "1",
        "fleet": "1",
    }
    last = result.status.history[-1]
    assert (
        last.action == "rollback"
        and "1 of 2 reporting nodes unhealthy" in last.reason
        and "back to 1" in last.reason
    )


def test_latency_and_drift_gates():
    r, _ = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    _, slow = step(r, V2, fleet("2", ["n1", "n2"], T0 + 5, p99_ms=500.0), T0 + 5)
    assert slow.status.phase == "RolledBack"
    _, drifting = step(
        r, V2, fleet("2", ["n1", "n2"], T0 + 5, drifted_share=0.6), T0 + 5
    )
    assert drifting.status.phase == "RolledBack"
    assert "drifted share 0.60 vs previous 0.10" in drifting.status.history[-1].reason


def test_silent_nodes_count_neither_way_up_to_the_allowed_share():
    r, _ = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    r, _ = step(r, V2, fleet("2", ["n1", "n2"], T0 + 61), T0 + 61)
    assert r.status.wave == "fleet"
    one_silent = fleet("2", ["n3", "n4", "n5"], T0 + 200) + [
        NodeObservation("n6", last_seen=T0 - 3600)
    ]
    _, result = step(r, V2, one_silent, T0 + 200)
    assert result.status.phase == "Succeeded" and result.status.waves[1].silent == 1
    two_silent = fleet("2", ["n3", "n4"], T0 + 200) + [
        NodeObservation("n5", None),
        NodeObservation("n6", None),
    ]
    _, held = step(r, V2, two_silent, T0 + 200)
    assert (
        held.status.phase == "Progressing" and held.status.history[-1].action == "hold"
    )
    assert "2 of 4 nodes silent" in held.status.history[-1].reason
    assert (
        held.desired["fleet"].version == "2"
    )  # silent nodes get the new version when they return


def test_pause_holds_and_resume_continues():
    r, _ = step(succeeded_on_v1(), V2, fleet("1", ALL), T0)
    paused = r.model_copy(update={"spec": r.spec.model_copy(update={"paused": True})})
    paused, result = step(paused, V2, fleet("2", ["n1", "n2"], T0 + 100), T0 + 100)
    assert result.status.phase == "Paused" and result.status.wave == "canary"
    resumed = paused.model_copy(
        update={"spec": paused.spec.model_copy(update={"paused": False})}
    )
    _, result = step(resumed, V2, fleet("2", ["n1", "n2"], T0 + 200), T0 + 200)
    assert [d.action for d in result.status.history][-2:] == ["resume", "advance"]


def test_wave_needing_approval_waits():
    r = rollout(
        waves=[
            {"name": "canary", "groups": ["canary"], "gates": {"soakSeconds": 0}},
            {"name": "fleet", "groups": ["fleet"], "requireApproval": True},
        ]
    )
    r.status.modelVersion, r.status.phase = "1", "Succeeded"
    r, _ = step(r, V2, fleet("1", ALL), T0)
    _, result = step(r, V2, fleet("2", ["n1", "n2"], T0 + 5), T0 + 5)
    assert result.status.wave == "canary"
    assert any(c.type == "AwaitingApproval" for c in result.status.conditions)


def test_groups_whose_device_profile_does_not_fit_are_refused():
    r = rollout(
        groups=[
            {"name": "canary", "nodes": ["n1", "n2"]},
            {
                "name": "fleet",
                "nodes": ["n3", "n4", "n5", "n6"],
                "deviceProfile": "pi-zero",
            },
        ]
    )
    view = RegistryView(
        desired("2", lkg=V1), latency=[latency(), latency("pi-zero", fits=False)]
    )
    r.status.modelVersion, r.status.phase = "1", "Succeeded"
    _, result = step(r, view, fleet("1", ALL), T0)
    assert (
        "fleet" in result.refused
        and "does not fit 'pi-zero'" in result.refused["fleet"]
    )
    fit = next(c for c in result.status.conditions if c.type == "HardwareFit")
    assert fit.status == "False" and "pi-zero" in fit.message
    assert result.desired["fleet"].version == "1"


def test_percent_waves_take_a_share_of_the_remaining_nodes():
    r = rollout(
        groups=[{"name": f"g{i}", "nodes": [f"n{i}a", f"n{i}b"]} for i in range(5)],
        waves=[
            {"name": "first", "groups": ["g0"]},
            {"name": "some", "percent": 50},
            {"name": "rest", "percent": 100},
        ],
    )
    view = RegistryView(desired("2"), latency=[latency()])
    result = plan(r, view, [], T0)
    assert result.waves == {"first": ["g0"], "some": ["g1", "g2"], "rest": ["g3", "g4"]}
    assert result.wave_nodes["some"] == ["n1a", "n1b", "n2a", "n2b"]


def test_a_percent_wave_splits_a_group_node_by_node():
    """25 % of 8 nodes is 2: half of the first group moves, the rest stays on v1."""
    r = rollout(
        groups=[
            {"name": "north", "nodes": ["a1", "a2", "a3", "a4"]},
            {"name": "south", "nodes": ["b1", "b2", "b3", "b4"]},
        ],
        waves=[
            {"name": "quarter", "percent": 25, "gates": {"soakSeconds": 0}},
            {"name": "rest", "percent": 100, "gates": {"soakSeconds": 0}},
        ],
    )
    r.status.modelVersion, r.status.phase = "1", "Succeeded"
    r, first = step(
        r, V2, fleet("1", ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4"]), T0
    )
    assert first.wave_nodes == {
        "quarter": ["a1", "a2"],
        "rest": ["a3", "a4", "b1", "b2", "b3", "b4"],
    }
    targeted = {
        n: (first.node_desired.get(n) or first.desired[g]).version
        for g, nodes in first.nodes.items()
        for n in nodes
    }
    assert targeted == {
        "a1": "2",
        "a2": "2",
        "a3": "1",
        "a4": "1",
        "b1": "1",
        "b2": "1",
        "b3": "1",
        "b4": "1",
    }
    # the gates of the quarter wave look at its two nodes only
    obs = fleet("2", ["a1", "a2"], T0 + 5) + fleet(
        "1", ["a3", "a4", "b1", "b2", "b3", "b4"], T0 + 5
    )
    r, second = step(r, V2, obs, T0 + 5)
    assert r.status.wave == "rest" and second.status.waves[0].targeted == 2
    assert {
        n: (second.node_desired.get(n) or second.desired[g]).version
        for g, nodes in second.nodes.items()
        for n in nodes
    } == dict.fromkeys(targeted, "2")
    assert second.node_desired == {}


def test_first_rollout_failing_has_no_rollback_target():
    r = rollout()
    view = RegistryView(desired("1"), latency=[latency()])
    r, _ = step(r, view, [], T0)
    _, result = step(r, view, fleet("1", ["n1", "n2"], T0 + 5, healthy=False), T0 + 5)
    assert result.status.phase == "Failed"
    assert "no automatic rollback" in result.status.history[-1].reason


@pytest.mark.parametrize(
    "change, message",
    [
        ({"groups": []}, "at least 1"),
        (
            {
                "groups": [
                    {"name": "a", "nodes": ["n1"]},
                    {"name": "b", "nodes": ["n1"]},
                ]
            },
            "node 'n1' is in both",
        ),
        ({"waves": [{"name": "w", "groups": ["nope"]}]}, "unknown group 'nope'"),
        (
            {
                "waves": [
                    {"name": "w", "groups": ["canary"]},
                    {"name": "x", "groups": ["canary"]},
                ]
            },
            "already in wave",
        ),
        ({"waves": [{"name": "w"}]}, "exactly one of groups or percent"),
        ({"runtime": {"image": "edgeloop-agent"}}, "must carry a tag"),
        ({"runtime": {"image": "edgeloop-agent:latest"}}, "must carry a tag"),
        ({"model": {"name": "m"}}, "exactly one of alias or version"),
        ({"groups": [{"name": "Canary!", "nodes": ["n"]}]}, "DNS-1123"),
        ({"groups": [{"name": "empty"}]}, "give nodes, matchLabels or nodeGroup"),
        (
            {
                "waves": [
                    {
                        "name": "w",
                        "groups": ["canary"],
                        "gates": {"minHealthyFraction": 1.5},
                    }
                ]
            },
            "less than or equal to 1",
        ),
    ],
)
def test_invalid_rollouts_are_rejected_with_a_precise_message(change, message):
    with pytest.raises(ValueError, match=message):
        rollout(**change)


def test_next_wave_waits_for_its_sites_maintenance_window():
    hour = int((T0 // 3600) % 24)  # UTC hour of T0
    closed = {
        "site": "desert-02",
        "startHour": (hour + 2) % 23,
        "endHour": (hour + 2) % 23 + 1,
    }
    r = rollout(
        groups=[
            {"name": "canary", "nodes": ["n1", "n2"]},
            {"name": "fleet", "nodes": ["n3", "n4", "n5", "n6"], "site": "desert-02"},
        ],
        maintenanceWindows=[closed],
    )
    r.status.modelVersion, r.status.phase = "1", "Succeeded"
    r, _ = step(r, V2, fleet("1", ALL), T0)
    r, result = step(r, V2, fleet("2", ["n1", "n2"], T0 + 61), T0 + 61)
    assert result.status.wave == "canary"
    assert (
        "site desert-02 is outside its maintenance window"
        in result.status.history[-1].reason
    )
    assert result.desired["fleet"].version == "1"
    promoted = plan(r, V2, fleet("2", ["n1", "n2"], T0 + 62), T0 + 62, promote=True)
    assert promoted.status.wave == "fleet"


def test_a_maintenance_window_may_wrap_midnight():
    from edgeloop.rollout.spec import MaintenanceWindow

    night = MaintenanceWindow(site="offshore-01", startHour=22, endHour=4)
    assert [h for h in range(24) if night.contains(h)] == [0, 1, 2, 3, 22, 23]
    day = MaintenanceWindow(site="offshore-01", startHour=9, endHour=17)
    assert [h for h in range(24) if day.contains(h)] == list(range(9, 17))


def test_a_maintenance_window_with_start_equal_to_end_is_refused():
    with pytest.raises(ValueError, match="startHour equals endHour"):
        rollout(
            maintenanceWindows=[{"site": "desert-02", "startHour": 5, "endHour": 5}]
        )


def test_agent_metrics_are_read_with_the_prometheus_parser():
    from edgeloop.rollout.fleet import request_totals
    from edgeloop_agent.metrics import Metrics

    metrics = Metrics()
    metrics.inc("edgeloop_requests_total", 1234567, endpoint="predict", code="200")
    metrics.inc("edgeloop_requests_total", 3, endpoint="infer", code="200")
    for _ in range(10):
        metrics.request("predict", 422)
    metrics.request("infer", 200, 0.002)
    totals = request_totals(metrics.render().decode())
    # exact: the hand-written exposition printed 1.23457e+06
    assert totals == {"requests": 1234581.0, "errors": 10.0}
    with pytest.raises(ValueError):
        request_totals('edgeloop_requests_total{route="/predict" 5\n')

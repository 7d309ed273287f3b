"""Step ⑤ of the demo: labels, fresh data, retraining, and the rollout with a site offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from edgeloop.demo import fleet_ops
from edgeloop.demo.link import wait_until
from edgeloop.demo.scenario import OFFLINE_SITE
from edgeloop.demo.simulator import generate
from edgeloop.demo.state import Loop, Running
from edgeloop.monitor import labels
from edgeloop.rollout.spec import EdgeRollout
from edgeloop.train import retraining
from edgeloop.triggers.policy import Decision


def retrain_and_roll_out(
    loop: Loop,
    up: Running,
    fleet: generate.FleetData,
    base: Path,
    fired: Decision,
    days: list[pd.Timestamp],
    day_index: int,
    rollout: EdgeRollout,
) -> None:
    """Labels, fresh data, retraining; if promoted: offline site, rollout, catch-up."""
    ingested = _ingest_labels(loop, fleet, days[day_index] + pd.Timedelta(days=1))
    # what the fleet sent up to the trigger, all of it: agents deliver in the
    # background (and back off after a failed delivery), so wait for their
    # outboxes to drain before assembling, or the dataset depends on timing
    wait_until(
        lambda: all(
            fleet_ops.outbox_depth(up.client, url) == 0 for url in up.agents.values()
        ),
        60,
        0.3,
    )
    data = loop.home / "data-v2"
    manifest = retraining.assemble(
        loop.settings, base, data, older_days=loop.size.older_days
    )
    loop.mark(
        f"assembled data-v2: {manifest['rows']['collected']:,} collected readings from "
        f"{len(manifest['partitions'])} partitions + {manifest['rows']['base']:,} older; "
        f"{ingested} work orders ingested"
    )
    v2 = loop.train(
        data,
        fired.reason,
        fired.model_dump(mode="json"),
        # compare v1 and v2 on held-out pumps over the fresh days only
        holdout_from=pd.Timestamp(days[0]).isoformat(),
    )
    if not v2.promoted:
        loop.mark(f"v{v2.version} failed its gates: champion and fleet stay on v1")
        return
    _roll_out_with_a_site_offline(loop, up, str(v2.version), days, day_index, rollout)


def _ingest_labels(loop: Loop, fleet: generate.FleetData, now: pd.Timestamp) -> int:
    """Work orders known by ``now`` ingested as labels; alarm quality from them."""
    orders = loop.home / "work-orders.csv"
    log = fleet.maintenance[pd.to_datetime(fleet.maintenance["failed_at"]) < now].copy()
    for column in ("failed_at", "repaired_at"):
        log[column] = pd.to_datetime(log[column]).dt.strftime("%Y-%m-%dT%H:%M:%S")
    log.to_csv(orders, index=False)
    ingested = labels.ingest(orders, loop.settings.collect_root())
    loop.audit.append("labels", str(orders), **ingested)
    loop.result.alarm_quality = [
        q
        for q in labels.alarm_quality(
            loop.settings.collect_root(), "pump-failure", 48.0
        )
        if q["day"] == "all"
    ]
    return int(ingested["new"])


def _roll_out_with_a_site_offline(
    loop: Loop,
    up: Running,
    version: str,
    days: list[pd.Timestamp],
    day_index: int,
    rollout: EdgeRollout,
) -> None:
    """One site's link goes down, the rest rolls out; the site catches up on return."""
    up.links[OFFLINE_SITE].down()
    offline = [n for n in up.agents if n.startswith(OFFLINE_SITE)]
    loop.mark(f"{OFFLINE_SITE} goes offline (link down) before the rollout")
    online = {n for n in up.agents if n not in offline}
    fleet_ops.wait_silent(up.reconciler, offline)
    rollout = fleet_ops.roll_out(
        loop.mark, up.reconciler, up.statuses, rollout, version
    )
    loop.stamp("reachable_on_new")
    for later in days[day_index + 1 :]:
        up.feeder.day(later, online)
    depth = {n: fleet_ops.outbox_depth(up.client, up.agents[n]) for n in offline}
    loop.mark(
        f"streamed the remaining {len(days) - day_index - 1} days; {OFFLINE_SITE} "
        f"kept scoring on v1 offline, {sum(depth.values())} reports buffered"
    )
    up.links[OFFLINE_SITE].up()
    caught_up = wait_until(
        lambda: all(
            fleet_ops.serving(up.client, up.agents[n]) == version
            and fleet_ops.outbox_depth(up.client, up.agents[n]) == 0
            for n in offline
        ),
        90,
        0.3,
    )
    if caught_up:
        loop.stamp("all_on_new")
    loop.result.offline = {
        "site": OFFLINE_SITE,
        "buffered_reports": depth,
        "caught_up": caught_up,
    }
    loop.mark(
        f"{OFFLINE_SITE} back online: "
        + (
            f"switched to v{version} and delivered its backlog"
            if caught_up
            else "did NOT catch up in 90 s"
        )
    )
    up.reconciler.reconcile(up.statuses.load(rollout))

"""Part (c) of the scale benchmark: the warmer's observe and plan at size.

No cluster: a synthetic cluster state of ``pools`` pools (copies of the shipped
``mem64`` pool, each with an office-hours schedule of one node per zone with
homes), three zones and ``nodes`` pool nodes, each with a user pod, plus one
placeholder per pool × zone, a home per user and an hour of remembered spawns.
``Observer.ingest`` is the warmer's observe step without the API calls (turning
the listed objects into a snapshot); ``policy.plan`` is its decision. Both are
what the warmer runs every pass; the API lists themselves are measured by the
hub part (requests per second) and devcluster's own benchmark.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from wbspawner.model import (
    CAPACITY_LABEL,
    POOL_LABEL,
    USER_LABEL,
    ZONE_LABEL,
    Profiles,
    WarmSchedule,
    WarmSettings,
)
from wbspawner.warmer import policy
from wbspawner.warmer.observer import Observer, ObserveSettings
from wbspawner.warmer.snapshot import PLACEHOLDER, ROLE_LABEL

ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # a Monday, inside office hours
PLAN_LIMIT_MS = 100.0


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthetic_state(
    profiles: Profiles, pools: int, nodes: int
) -> tuple[dict[str, Any], WarmSettings, dict[str, Any]]:
    """Return (pools by name, warm settings, listed objects) of a big cluster."""
    base = profiles.pools["mem64"]
    window = profiles.warm.schedules[0].windows
    many = {
        f"p{i:03d}": dataclasses.replace(base, name=f"p{i:03d}", zones=ZONES)
        for i in range(pools)
    }
    schedules = tuple(
        WarmSchedule(name=f"s-{name}", pool=name, windows=window, nodes_per_zone=1)
        for name in many
    )
    settings = dataclasses.replace(
        profiles.warm, schedules=schedules, budget_per_hour=None, habit_days=0
    )
    names = sorted(many)  # user u<i> runs on (and has a home for) pool names[i % pools]
    raw_nodes, raw_pods, homes = [], [], {}
    for i in range(nodes):
        pool, zone = names[i % pools], ZONES[(i // pools) % len(ZONES)]
        labels = {POOL_LABEL: pool, ZONE_LABEL: zone, CAPACITY_LABEL: "spot"}
        raw_nodes.append(
            {
                "metadata": {"name": f"node-{i}", "labels": labels},
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
        )
        user = f"u{i:05d}"
        homes[user] = zone
        created = NOW - timedelta(seconds=3 * i)
        raw_pods.append(
            {
                "metadata": {
                    "name": f"jupyter-{user}",
                    "uid": f"uid-{i}",
                    "creationTimestamp": _stamp(created),
                    "labels": {USER_LABEL: user, POOL_LABEL: pool},
                },
                "spec": {"nodeName": f"node-{i}", "nodeSelector": labels},
                "status": {"phase": "Running"},
            }
        )
    for j, (pool, zone) in enumerate((p, z) for p in names for z in ZONES):
        raw_pods.append(
            {
                "metadata": {
                    "name": f"warm-{j}",
                    "uid": f"warm-uid-{j}",
                    "creationTimestamp": _stamp(NOW - timedelta(minutes=30)),
                    "labels": {ROLE_LABEL: PLACEHOLDER, POOL_LABEL: pool},
                },
                "spec": {"nodeSelector": {POOL_LABEL: pool, ZONE_LABEL: zone}},
                "status": {"phase": "Pending"},
            }
        )
    for i in range(nodes, 2 * nodes):  # as many users again, not running now
        homes[f"u{i:05d}"] = ZONES[(i // pools) % len(ZONES)]
    listed = {"nodes": raw_nodes, "pods": raw_pods, "homes": homes}
    return many, settings, listed


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def measure(profiles: Profiles, pools: int, nodes: int, runs: int) -> dict[str, Any]:
    """Time ``runs`` observe (ingest) and plan steps; return the figures."""
    many, settings, listed = synthetic_state(profiles, pools, nodes)
    # the hub's last sizes: every user of the state uses the pool of their number
    last_pools = {u: sorted(many)[int(u[1:]) % pools] for u in listed["homes"]}
    observe_settings = ObserveSettings(
        namespace="jhub",
        pool_zones={name: ZONES for name in many},
        region="us-east-1",
    )
    observer = Observer(_NoKube(), observe_settings)
    observe_s, plan_s = [], []
    plan = None
    for _ in range(runs):
        began = time.perf_counter()
        snapshot = observer.ingest(
            NOW, listed["nodes"], listed["pods"], listed["homes"], [], last_pools
        )
        observe_s.append(time.perf_counter() - began)
        began = time.perf_counter()
        plan = policy.plan(many, settings, snapshot, NOW)
        plan_s.append(time.perf_counter() - began)
    assert plan is not None
    warm = sum(t.count for t in plan.targets)
    return {
        "pools": pools,
        "zones": len(ZONES),
        "nodes": nodes,
        "pods": len(listed["pods"]),
        "runs": runs,
        "observe": _ms(observe_s),
        "plan": _ms(plan_s),
        "plan_limit_ms": PLAN_LIMIT_MS,
        # the median: on a shared machine one pass can lose the CPU for a while
        "plan_within_limit": statistics.median(plan_s) * 1000 <= PLAN_LIMIT_MS,
        "warm_nodes_planned": warm,
        "decisions": len(plan.decisions),
    }


class _NoKube:
    """The observer's reader; ``ingest`` never calls it."""

    async def list_nodes(self) -> list[dict[str, Any]]:
        raise AssertionError("ingest lists nothing")

    async def list_pods(self, namespace: str) -> list[dict[str, Any]]:
        raise AssertionError("ingest lists nothing")

    async def list_pvcs(self, namespace: str) -> list[dict[str, Any]]:
        raise AssertionError("ingest lists nothing")

    async def list_pvs(self) -> list[dict[str, Any]]:
        raise AssertionError("ingest lists nothing")

    async def list_events(
        self, namespace: str | None, field_selector: str | None = None
    ) -> list[dict[str, Any]]:
        raise AssertionError("ingest lists nothing")

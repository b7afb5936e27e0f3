"""Reclaimed spot capacity and how a start avoids it (wbspawner.spawn.reclaims)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wbspawner.model import Pool, Profiles
from wbspawner.spawn.reclaims import (
    AVOID_S,
    Reclaim,
    avoidance,
    reclaims_of_events,
    reclaims_of_nodes,
)

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
ZONE = "us-east-1a"


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def node(itype: str, zone: str, *taints: dict[str, Any]) -> dict[str, Any]:
    labels = {
        "node.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/zone": zone,
    }
    return {"metadata": {"name": "n", "labels": labels}, "spec": {"taints": taints}}


def spot_itn(at: datetime | None) -> dict[str, Any]:
    taint = {"key": "aws-node-termination-handler/spot-itn", "effect": "NoSchedule"}
    return taint | ({"timeAdded": stamp(at)} if at else {})


def event(reason: str, annotations: dict[str, str], at: datetime) -> dict[str, Any]:
    return {
        "metadata": {"name": "e", "namespace": "default", "annotations": annotations},
        "reason": reason,
        "lastTimestamp": stamp(at),
    }


def test_a_tainted_node_is_a_reclaim_of_its_type_and_zone() -> None:
    earlier = NOW - timedelta(seconds=30)
    nodes = [
        node("r5.large", ZONE, spot_itn(earlier)),
        node("r6i.large", ZONE, spot_itn(None)),
        node("r5.large", "us-east-1b", {"key": "other", "effect": "NoSchedule"}),
    ]
    assert reclaims_of_nodes(nodes, NOW) == [
        Reclaim("r5.large", ZONE, earlier),
        Reclaim("r6i.large", ZONE, NOW),
    ]


def test_spot_interruption_events_are_reclaims_when_they_say_where() -> None:
    where = {"instance-type": "r5.large", "availability-zone": ZONE}
    events = [
        event("SpotInterruption", where, NOW),
        event("SpotInterruption", {"instance-type": "r5.large"}, NOW),
        event("RebalanceRecommendation", where, NOW),
    ]
    assert reclaims_of_events(events) == [Reclaim("r5.large", ZONE, NOW)]


@pytest.fixture
def cpu16(profiles: Profiles) -> Pool:
    pool = profiles.pools["cpu16"]
    assert pool.instance_types == ("r5.large", "r6i.large")
    assert pool.capacity_types == ("spot", "on-demand")
    return pool


def test_a_reclaimed_type_leaves_another_spot_type_or_on_demand(cpu16: Pool) -> None:
    found = [Reclaim("r5.large", ZONE, NOW - timedelta(minutes=4))]
    avoid = avoidance(cpu16, ZONE, found, NOW)
    assert avoid is not None
    assert (avoid.reclaimed, avoid.other_spot, avoid.on_demand) == (
        ("r5.large",),
        ("r6i.large",),
        True,
    )
    assert avoid.node_affinity_required == [
        {
            "matchExpressions": [
                {"key": "wbspawner.io/capacity", "operator": "In", "values": ["spot"]},
                {
                    "key": "node.kubernetes.io/instance-type",
                    "operator": "NotIn",
                    "values": ["r5.large"],
                },
            ]
        },
        {
            "matchExpressions": [
                {
                    "key": "wbspawner.io/capacity",
                    "operator": "In",
                    "values": ["on-demand"],
                }
            ]
        },
    ]
    assert avoid.message == (
        "Spot capacity of this size (r5.large in us-east-1a) was reclaimed 4 "
        "minutes ago; starting on another spot type (r6i.large) or on-demand for "
        "now (spot is avoided there for 30 minutes after a reclaim)."
    )


def test_every_type_reclaimed_means_on_demand(cpu16: Pool) -> None:
    found = [
        Reclaim("r5.large", ZONE, NOW - timedelta(seconds=20)),
        Reclaim("r6i.large", ZONE, NOW + timedelta(seconds=2)),  # API clock ahead
    ]
    avoid = avoidance(cpu16, ZONE, found, NOW)
    assert avoid is not None
    assert avoid.other_spot == ()
    assert avoid.node_affinity_required == [
        {
            "matchExpressions": [
                {
                    "key": "wbspawner.io/capacity",
                    "operator": "In",
                    "values": ["on-demand"],
                }
            ]
        }
    ]
    assert "(r5.large and r6i.large in us-east-1a) was reclaimed 1 minute ago" in (
        avoid.message
    )
    assert "starting on on-demand for now" in avoid.message


@pytest.mark.parametrize(
    ("found", "zone"),
    [
        pytest.param([], ZONE, id="no-reclaim"),
        pytest.param(
            [Reclaim("r5.large", ZONE, NOW - timedelta(seconds=AVOID_S + 1))],
            ZONE,
            id="too-old",
        ),
        pytest.param([Reclaim("r5.large", "us-east-1b", NOW)], ZONE, id="other-zone"),
        pytest.param([Reclaim("r5.2xlarge", ZONE, NOW)], ZONE, id="other-pool-type"),
        pytest.param([Reclaim("r5.large", ZONE, NOW)], None, id="no-zone-pinned"),
    ],
)
def test_nothing_to_avoid(cpu16: Pool, found: list[Reclaim], zone: str | None) -> None:
    assert avoidance(cpu16, zone, found, NOW) is None


def test_the_window_is_configurable(cpu16: Pool) -> None:
    found = [Reclaim("r5.large", ZONE, NOW - timedelta(minutes=10))]
    assert avoidance(cpu16, ZONE, found, NOW, window_s=300) is None
    assert avoidance(cpu16, ZONE, found, NOW, window_s=900) is not None


def test_a_spot_only_pool_avoids_only_while_another_type_is_left(
    cpu16: Pool,
) -> None:
    spot_only = dataclasses.replace(cpu16, capacity_types=("spot",))
    one = [Reclaim("r5.large", ZONE, NOW)]
    avoid = avoidance(spot_only, ZONE, one, NOW)
    assert avoid is not None
    assert len(avoid.node_affinity_required) == 1
    assert "another spot type (r6i.large) for now" in avoid.message
    both = [*one, Reclaim("r6i.large", ZONE, NOW)]
    assert avoidance(spot_only, ZONE, both, NOW) is None  # better than no start


def test_an_on_demand_pool_has_nothing_to_avoid(cpu16: Pool) -> None:
    on_demand = dataclasses.replace(cpu16, capacity_types=("on-demand",))
    assert avoidance(on_demand, ZONE, [Reclaim("r5.large", ZONE, NOW)], NOW) is None

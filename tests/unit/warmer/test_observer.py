"""How the warmer reads the cluster: nodes, pods, homes, spawns and shortages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.unit.warmer.clock_support import NOW, A, B
from wbspawner.model import CAPACITY_LABEL, POOL_LABEL, USER_LABEL, ZONE_LABEL
from wbspawner.warmer.observer import (
    Observer,
    ObserveSettings,
    event_shortages,
    group_index,
)
from wbspawner.warmer.snapshot import (
    ROLE_LABEL,
    capacity_of,
    home_zones,
    node_info,
    pod_info,
)


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(
    name: str, zone: str = A, capacity: str = "spot", ready: str = "True", **spec: Any
) -> dict[str, Any]:
    labels = {POOL_LABEL: "mem64", ZONE_LABEL: zone, CAPACITY_LABEL: capacity}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}]},
    }


def pod(
    name: str,
    *,
    role: str = "user",
    node_name: str | None = None,
    phase: str = "Pending",
    user: str | None = None,
    minutes_ago: float = 1,
    uid: str | None = None,
    selector: dict[str, str] | None = None,
) -> dict[str, Any]:
    labels = {POOL_LABEL: "mem64"}
    annotations = {}
    if role == "placeholder":
        labels[ROLE_LABEL] = "placeholder"
    else:
        labels["component"] = "singleuser-server"
        if user:
            labels[USER_LABEL] = user
            annotations["hub.jupyter.org/username"] = user
    spec: dict[str, Any] = {"nodeSelector": selector or {POOL_LABEL: "mem64"}}
    if node_name:
        spec["nodeName"] = node_name
    return {
        "metadata": {
            "name": name,
            "uid": uid or f"uid-{name}",
            "labels": labels,
            "annotations": annotations,
            "creationTimestamp": stamp(minutes_ago),
        },
        "spec": spec,
        "status": {"phase": phase},
    }


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({CAPACITY_LABEL: "spot"}, "spot", id="own-label"),
        pytest.param(
            {"eks.amazonaws.com/capacityType": "ON_DEMAND"}, "on-demand", id="eks"
        ),
        pytest.param({"karpenter.sh/capacity-type": "spot"}, "spot", id="karpenter"),
        pytest.param({}, None, id="none"),
    ],
)
def test_capacity_of(labels: dict[str, str], expected: str | None) -> None:
    assert capacity_of(labels) == expected


@pytest.mark.parametrize(
    ("obj", "ready"),
    [
        pytest.param(node("n"), True, id="ready"),
        pytest.param(node("n", ready="False"), False, id="not-ready"),
        pytest.param(node("n", unschedulable=True), False, id="cordoned"),
        pytest.param(
            node("n", taints=[{"key": "ToBeDeletedByClusterAutoscaler"}]),
            False,
            id="being-removed",
        ),
    ],
)
def test_node_readiness(obj: dict[str, Any], ready: bool) -> None:
    info = node_info(obj)
    assert info is not None and info.ready is ready


def test_nodes_of_no_pool_are_skipped() -> None:
    assert node_info({"metadata": {"name": "core", "labels": {ZONE_LABEL: A}}}) is None


def test_pod_info_takes_zone_and_capacity_from_its_node() -> None:
    nodes = {"n1": node_info(node("n1", zone=B, capacity="on-demand"))}
    info = pod_info(pod("p", node_name="n1", phase="Running", user="ann"), nodes, NOW)  # type: ignore[arg-type]
    assert info is not None
    assert (info.zone, info.capacity_type, info.running, info.user) == (
        B,
        "on-demand",
        True,
        "ann",
    )


def test_pending_pod_takes_zone_from_its_selector() -> None:
    selector = {POOL_LABEL: "mem64", ZONE_LABEL: A, CAPACITY_LABEL: "spot"}
    info = pod_info(pod("p", role="placeholder", selector=selector), {}, NOW)
    assert info is not None
    assert (info.zone, info.capacity_type, info.running, info.node) == (
        A,
        "spot",
        False,
        None,
    )


@pytest.mark.parametrize(
    "obj",
    [
        pytest.param({**pod("p"), "status": {"phase": "Succeeded"}}, id="finished"),
        pytest.param(
            {
                **pod("p"),
                "metadata": {**pod("p")["metadata"], "deletionTimestamp": stamp(0)},
            },
            id="deleting",
        ),
        pytest.param(
            {"metadata": {"name": "x", "labels": {}}, "spec": {}}, id="not-ours"
        ),
    ],
)
def test_pods_that_do_not_count(obj: dict[str, Any]) -> None:
    assert pod_info(obj, {}, NOW) is None


def zone_pv(name: str, zone: str, key: str = ZONE_LABEL) -> dict[str, Any]:
    term = {"matchExpressions": [{"key": key, "operator": "In", "values": [zone]}]}
    return {
        "metadata": {"name": name},
        "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [term]}}},
    }


def test_home_zones_of_bound_home_claims_only() -> None:
    pvcs = [
        {
            "metadata": {
                "name": "home-ann",
                "annotations": {"hub.jupyter.org/username": "ann.lee"},
            },
            "spec": {"volumeName": "pv1"},
        },
        {"metadata": {"name": "home-bob"}, "spec": {"volumeName": "pv2"}},
        {"metadata": {"name": "home-new"}, "spec": {}},
        {"metadata": {"name": "scratch"}, "spec": {"volumeName": "pv1"}},
    ]
    assert home_zones(pvcs, [zone_pv("pv1", A), zone_pv("pv2", B)]) == {
        "ann.lee": A,
        "bob": B,
    }


def spot_placeholder_waiting(minutes: float) -> dict[str, Any]:
    """Return mem64's spot placeholder in us-east-1a, pending for ``minutes``."""
    selector = {POOL_LABEL: "mem64", ZONE_LABEL: A, CAPACITY_LABEL: "spot"}
    return pod(
        "warm-mem64-us-east-1a-spot-0",
        role="placeholder",
        selector=selector,
        minutes_ago=minutes,
    )


def settings(**kw: Any) -> ObserveSettings:
    values: dict[str, Any] = {
        "namespace": "jhub",
        "pool_zones": {"mem64": (A, B)},
        "region": "us-east-1",
        "demand_window_s": 3600,
        "shortage_ttl_s": 900,
        "pending_shortage_s": 600,
    }
    values.update(kw)
    return ObserveSettings(**values)


def test_spawns_are_remembered_after_their_pod_is_gone() -> None:
    observer = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    first = observer.ingest(
        NOW, [], [pod("jupyter-ann", user="ann", minutes_ago=5)], {"ann": A}, []
    )
    assert [(s.user, s.zone) for s in first.spawns] == [("ann", A)]
    later = observer.ingest(NOW + timedelta(minutes=10), [], [], {"ann": A}, [])
    assert [s.user for s in later.spawns] == ["ann"]
    gone = observer.ingest(NOW + timedelta(minutes=70), [], [], {"ann": A}, [])
    assert gone.spawns == ()


def test_what_is_remembered_outlives_the_observer() -> None:
    """A new observer (a restarted warmer) given the old one's memory counts the
    spawn whose pod is gone and the shortage, and forgets them when they are old."""
    first = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    waiting = spot_placeholder_waiting(11)
    spawned = pod("jupyter-ann", user="ann", minutes_ago=5)
    before = first.ingest(NOW, [], [spawned, waiting], {"ann": A}, [])
    memory = first.memory()
    assert memory.spawns == before.spawns and memory.shortages == before.shortages

    second = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    second.remember(memory)
    later = second.ingest(NOW + timedelta(minutes=10), [], [], {"ann": A}, [])
    assert [(s.user, s.zone) for s in later.spawns] == [("ann", A)]
    assert [(s.pool, s.capacity_type) for s in later.shortages] == [("mem64", "spot")]
    old = second.ingest(NOW + timedelta(minutes=70), [], [], {"ann": A}, [])
    assert old.spawns == () and old.shortages == ()
    assert second.memory().spawns == () and second.memory().shortages == ()


def test_users_pool_comes_from_running_pods_before_the_hub() -> None:
    observer = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    snap = observer.ingest(
        NOW,
        [],
        [pod("jupyter-ann", user="ann")],
        {},
        [],
        {"ann": "cpu16", "bob": "cpu4"},
    )
    assert dict(snap.user_pools) == {"ann": ("mem64",), "bob": ("cpu4",)}


def test_spot_placeholder_waiting_too_long_is_a_shortage_that_lasts() -> None:
    observer = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    waiting = spot_placeholder_waiting(11)
    snap = observer.ingest(NOW, [], [waiting], {}, [])
    assert [(s.pool, s.zone, s.capacity_type) for s in snap.shortages] == [
        ("mem64", A, "spot")
    ]
    # the placeholder is gone (replaced by an on-demand one): the signal stays a while
    assert observer.ingest(NOW + timedelta(minutes=10), [], [], {}, []).shortages
    assert not observer.ingest(NOW + timedelta(minutes=16), [], [], {}, []).shortages


@pytest.mark.parametrize(
    ("event", "found"),
    [
        pytest.param(
            {
                "reason": "FailedToScaleUpGroup",
                "message": "Scale-up failed for group wbspawner-dev-mem64-b-spot: "
                "InsufficientInstanceCapacity",
                "lastTimestamp": stamp(2),
            },
            [("mem64", B, "spot")],
            id="named-group",
        ),
        pytest.param(
            {
                "reason": "NotTriggerScaleUp",
                "message": "pod didn't trigger scale-up: "
                "1 in backoff after failed scale-up",
                "involvedObject": {"name": "warm-mem64-us-east-1a-spot-0"},
                "lastTimestamp": stamp(2),
            },
            [("mem64", A, "spot")],
            id="placeholder-in-backoff",
        ),
        pytest.param(
            {
                "reason": "NotTriggerScaleUp",
                "message": "pod didn't trigger scale-up: 1 max node group size reached",
                "involvedObject": {"name": "warm-mem64-us-east-1a-spot-0"},
                "lastTimestamp": stamp(2),
            },
            [],
            id="max-size-is-not-a-shortage",
        ),
    ],
)
def test_event_shortages(
    event: dict[str, Any], found: list[tuple[str, str, str]]
) -> None:
    from wbspawner.warmer.observer import WallClock

    selector = {POOL_LABEL: "mem64", ZONE_LABEL: A, CAPACITY_LABEL: "spot"}
    info = pod_info(
        pod("warm-mem64-us-east-1a-spot-0", role="placeholder", selector=selector),
        {},
        NOW,
    )
    assert info is not None
    groups = group_index({"mem64": (A, B)}, "us-east-1")
    out = event_shortages([event], groups, {info.name: info}, WallClock())
    assert [(s.pool, s.zone, s.capacity_type) for s in out] == found


def spot_itn(minutes_ago: float) -> dict[str, Any]:
    return {
        "key": "aws-node-termination-handler/spot-itn",
        "value": "spot-itn-i-0123",
        "effect": "NoSchedule",
        "timeAdded": stamp(minutes_ago),
    }


def test_a_spot_notice_on_a_pool_node_is_a_spot_shortage_of_its_zone() -> None:
    """It lasts the shortage TTL, also after the node is gone."""
    observer = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    nodes = [
        node("reclaimed", zone=B, unschedulable=True, taints=[spot_itn(1)]),
        node("calm", zone=A),
    ]
    snap = observer.ingest(NOW, nodes, [], {}, [])
    assert [(s.pool, s.zone, s.capacity_type) for s in snap.shortages] == [
        ("mem64", B, "spot")
    ]
    assert snap.shortages[0].at == NOW - timedelta(minutes=1)
    assert "reclaimed got an interruption notice" in snap.shortages[0].message
    gone = observer.ingest(NOW + timedelta(minutes=10), [node("calm")], [], {}, [])
    assert [(s.pool, s.zone) for s in gone.shortages] == [("mem64", B)]
    later = observer.ingest(NOW + timedelta(minutes=15), [node("calm")], [], {}, [])
    assert later.shortages == ()


def test_a_spot_interruption_event_is_a_shortage_of_every_pool_of_its_type() -> None:
    observer = Observer(
        kube=None,  # type: ignore[arg-type]
        settings=settings(
            pool_types={"mem64": ("r5.2xlarge", "r6i.2xlarge"), "cpu4": ("m5.large",)}
        ),
    )
    notice = {
        "metadata": {
            "name": "ip-10-0-1-7.ec2.internal.1",
            "annotations": {"instance-type": "r6i.2xlarge", "availability-zone": A},
        },
        "reason": "SpotInterruption",
        "lastTimestamp": stamp(3),
    }
    rebalance = {**notice, "reason": "RebalanceRecommendation"}
    snap = observer.ingest(NOW, [], [], {}, [notice, rebalance])
    assert [(s.pool, s.zone, s.capacity_type) for s in snap.shortages] == [
        ("mem64", A, "spot")
    ]
    assert snap.shortages[0].at == NOW - timedelta(minutes=3)


def test_a_notice_on_an_on_demand_node_says_nothing_of_spot() -> None:
    """Only spot nodes get NTH's spot-itn taint; a node of no pool is skipped."""
    observer = Observer(kube=None, settings=settings())  # type: ignore[arg-type]
    stray = node("stray", taints=[spot_itn(1)])
    stray["metadata"]["labels"] = {}
    assert observer.ingest(NOW, [stray], [], {}, []).shortages == ()

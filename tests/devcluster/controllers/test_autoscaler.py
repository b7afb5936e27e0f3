"""Cluster Autoscaler decisions: expanders, scale-up simulation, scale-down."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.controllers.autoscaler import decisions as ca
from devcluster.controllers.autoscaler.asg import NodeGroup
from devcluster.controllers.nodes import GROUP_ANNOTATION, build_node, group_of
from devcluster.controllers.scheduler.decisions import Snapshot
from tests.devcluster.objects_support import GPU, POOL, ZONE, node, pod, pv, pvc, taint
from wbspawner.catalog.instances import load_catalog
from wbspawner.catalog.sizing import node_request
from wbspawner.model import SizingSettings

CATALOG = load_catalog()
PRIORITIES = ca.parse_priorities("50:\n  - .*-spot$\n10:\n  - .*-ondemand$\n")
CAP = "wbspawner.io/capacity"


def group(
    pool: str = "mem64",
    zone: str = "a",
    capacity: str = "spot",
    itype: str = "r5.2xlarge",
    *,
    desired: int = 0,
    min_size: int = 0,
    max_size: int = 3,
    gpu: bool = False,
) -> NodeGroup:
    suffix = "spot" if capacity == "spot" else "ondemand"
    taints = [taint(POOL, pool)] + ([taint(GPU, "present")] if gpu else [])
    return NodeGroup(
        name=f"wbspawner-dev-{pool}-{zone}-{suffix}",
        min_size=min_size,
        max_size=max_size,
        desired=desired,
        zone=f"us-east-1{zone}",
        instance_type=itype,
        capacity_type=capacity,
        labels={POOL: pool, CAP: capacity},
        taints=tuple(taints),
    )


def template(g: NodeGroup) -> dict[str, Any]:
    return build_node(
        name=ca.template_name(g),
        itype=CATALOG.types[g.instance_type],
        zone=g.zone,
        region="us-east-1",
        capacity_type=g.capacity_type,
        labels=g.labels,
        taints=g.taints,
        resource_overrides=g.resources,
    )


def user(
    name: str = "u",
    pool: str = "mem64",
    itype: str = "r5.2xlarge",
    zone: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    req = node_request(CATALOG.types[itype], SizingSettings())
    selector = {POOL: pool, **({ZONE: f"us-east-1{zone}"} if zone else {})}
    tolerations = [
        {"key": POOL, "operator": "Equal", "value": pool, "effect": "NoSchedule"}
    ]
    tolerations += kw.pop("extra_tolerations", [])
    kw.setdefault("cpu", f"{req.cpu_m}m")
    kw.setdefault("memory", f"{req.memory_mib}Mi")
    return pod(
        name,
        selector=selector,
        tolerations=tolerations,
        priority=kw.pop("priority", 0),
        **kw,
    )


def plan(
    pods: list[dict[str, Any]],
    groups: list[NodeGroup],
    *,
    registered: dict[str, int] | None = None,
    expander: str = "priority",
    priorities: Any = PRIORITIES,
    backed_off: tuple[str, ...] = (),
    pvcs: tuple[Any, ...] = (),
    pvs: tuple[Any, ...] = (),
) -> ca.ScaleUpPlan:
    snap = Snapshot([], pods, pvcs, pvs)
    return ca.plan_scale_up(
        pods,
        groups,
        {g.name: template(g) for g in groups},
        snap,
        registered or {},
        expander=expander,
        priorities=priorities,
        backed_off=backed_off,
    )


GA_SPOT, GA_OD = group(), group(capacity="on-demand")
GB_SPOT, GB_OD = group(zone="b"), group(zone="b", capacity="on-demand")
G16 = group("mem16", itype="r5.large")
GPU_G = group("gpu", itype="g5.xlarge", gpu=True)
GPU_TOL = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}


@pytest.mark.parametrize(
    ("pods", "groups", "options", "expected"),
    [
        pytest.param(
            [user()],
            [GA_OD, GA_SPOT],
            {},
            ("wbspawner-dev-mem64-a-spot", 1),
            id="spot-before-on-demand",
        ),
        pytest.param(
            [user()],
            [GA_OD, GA_SPOT],
            {"priorities": ca.parse_priorities("50: [ondemand]\n10: [spot]")},
            ("wbspawner-dev-mem64-a-ondemand", 1),
            id="on-demand-first-when-configured",
        ),
        pytest.param(
            [user(zone="b")],
            [GA_SPOT, GB_SPOT, GB_OD],
            {},
            ("wbspawner-dev-mem64-b-spot", 1),
            id="zone-selector-picks-zone-group",
        ),
        pytest.param(
            [user(claims=["home"])],
            [GA_SPOT, GB_SPOT],
            {"pvcs": (pvc("home", volume="pv-h"),), "pvs": (pv("pv-h", "us-east-1b"),)},
            ("wbspawner-dev-mem64-b-spot", 1),
            id="pv-zone-picks-zone-group",
        ),
        pytest.param(
            [user()],
            [GA_OD, GA_SPOT],
            {"backed_off": ("wbspawner-dev-mem64-a-spot",)},
            ("wbspawner-dev-mem64-a-ondemand", 1),
            id="backoff-falls-back",
        ),
        pytest.param(
            [user(f"u{i}") for i in range(3)],
            [group(max_size=2)],
            {},
            ("wbspawner-dev-mem64-a-spot", 2),
            id="count-capped-by-max",
        ),
        pytest.param(
            [user(f"u{i}", memory="10Gi", cpu="1") for i in range(3)],
            [GA_SPOT],
            {},
            ("wbspawner-dev-mem64-a-spot", 1),
            id="small-pods-bin-packed",
        ),
        pytest.param(
            [user("g", "gpu", "g5.xlarge", gpu=1, extra_tolerations=[GPU_TOL])],
            [GA_SPOT, GPU_G],
            {},
            ("wbspawner-dev-gpu-a-spot", 1),
            id="gpu-pool-from-zero",
        ),
        pytest.param(
            [pod("any", memory="10Gi", tolerations=[{"operator": "Exists"}])],
            [G16, GA_SPOT],
            {"expander": "least-waste"},
            ("wbspawner-dev-mem16-a-spot", 1),
            id="least-waste-picks-smallest",
        ),
        pytest.param(
            [pod("any", memory="10Gi", tolerations=[{"operator": "Exists"}])],
            [GA_SPOT, G16],
            {"priorities": ca.parse_priorities("5: [nomatch]")},
            ("wbspawner-dev-mem16-a-spot", 1),
            id="priority-without-match-falls-back",
        ),
        pytest.param(
            [user()],
            [group(desired=1)],
            {"registered": {"wbspawner-dev-mem64-a-spot": 0}},
            None,
            id="booting-node-absorbs-pod",
        ),
        pytest.param(
            [user()],
            [group(desired=3)],
            {"registered": {"wbspawner-dev-mem64-a-spot": 3}},
            None,
            id="max-reached",
        ),
    ],
)
def test_plan_scale_up(
    pods: Any, groups: Any, options: dict[str, Any], expected: tuple[str, int] | None
) -> None:
    result = plan(pods, groups, **options)
    got = (result.option.group.name, result.option.count) if result.option else None
    assert got == expected


@pytest.mark.parametrize(
    ("the_pod", "groups", "message"),
    [
        pytest.param(
            user(),
            [group(desired=3)],
            "pod didn't trigger scale-up: 1 max node group size reached",
            id="max",
        ),
        pytest.param(
            user(),
            [GA_SPOT],
            "pod didn't trigger scale-up: 1 in backoff after failed scale-up",
            id="backoff",
        ),
        pytest.param(
            pod("p", tolerations=[{"operator": "Exists"}], selector={POOL: "mem512"}),
            [GA_SPOT, GB_SPOT],
            "pod didn't trigger scale-up: 2 node(s) didn't match Pod's node"
            " affinity/selector",
            id="selector",
        ),
        pytest.param(
            pod("p"),
            [GA_SPOT, GPU_G],
            "pod didn't trigger scale-up: 1 node(s) had untolerated taint"
            " {wbspawner.io/pool: gpu},"
            " 1 node(s) had untolerated taint {wbspawner.io/pool: mem64}",
            id="taints",
        ),
        pytest.param(
            user(memory="63Gi"),
            [GA_SPOT],
            "pod didn't trigger scale-up: 1 Insufficient memory",
            id="over-real-allocatable",
        ),
        pytest.param(
            user(claims=["home"]),
            [GA_SPOT, GB_SPOT],
            "pod didn't trigger scale-up: 2 node(s) had volume node affinity conflict",
            id="pv-zone",
        ),
    ],
)
def test_not_triggered_messages(the_pod: Any, groups: Any, message: str) -> None:
    backed = ("wbspawner-dev-mem64-a-spot",) if "backoff" in message else ()
    result = plan(
        [the_pod],
        groups,
        registered={g.name: g.desired for g in groups},
        backed_off=backed,
        pvcs=(pvc("home", volume="pv-h"),),
        pvs=(pv("pv-h", "us-east-1c"),),
    )
    assert result.option is None
    assert result.not_triggered == {"jhub/" + the_pod["metadata"]["name"]: message}


def test_scale_up_message() -> None:
    option = plan(
        [user()],
        [group(desired=1, max_size=10)],
        registered={"wbspawner-dev-mem64-a-spot": 1},
    ).option
    assert option is not None
    assert (
        ca.scale_up_message(option)
        == "pod triggered scale-up: [{wbspawner-dev-mem64-a-spot 1->2 (max: 10)}]"
    )


def test_parse_priorities_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="invalid priority expander configuration"):
        ca.parse_priorities("10: ['(']")


# ------------------------------------------------------------------ scale-down

G = group(desired=2, min_size=0)


def gnode(name: str, g: NodeGroup = G, **annotations: str) -> dict[str, Any]:
    n = node(name)
    n["metadata"]["annotations"] = {GROUP_ANNOTATION: g.name, **annotations}
    return n


def running(name: str, on: str, **kw: Any) -> dict[str, Any]:
    return pod(name, node_name=on, phase=kw.pop("phase", "Running"), **kw)


@pytest.mark.parametrize(
    ("nodes", "pods", "since", "groups", "removed", "unneeded"),
    [
        pytest.param(
            [gnode("n1")], [], {"n1": 0.0}, [G], ["n1"], ["n1"], id="empty-node-removed"
        ),
        pytest.param(
            [gnode("n1")],
            [],
            {"n1": 500.0},
            [G],
            [],
            ["n1"],
            id="not-unneeded-long-enough",
        ),
        pytest.param([gnode("n1")], [], {}, [G], [], ["n1"], id="timer-starts-now"),
        pytest.param(
            [gnode("n1", group(desired=1, min_size=1))],
            [],
            {"n1": 0.0},
            [group(desired=1, min_size=1)],
            [],
            ["n1"],
            id="min-respected",
        ),
        pytest.param(
            [gnode("n1"), gnode("n2")],
            [],
            {"n1": 0.0, "n2": 0.0},
            [group(desired=2, min_size=1)],
            ["n1"],
            ["n1", "n2"],
            id="min-respected-across-nodes",
        ),
        pytest.param(
            [gnode("n1")],
            [running("ph", "n1", priority=-10)],
            {"n1": 0.0},
            [G],
            [],
            [],
            id="placeholder-at-cutoff-keeps-node",
        ),
        pytest.param(
            [gnode("n1")],
            [running("junk", "n1", priority=-11)],
            {"n1": 0.0},
            [G],
            ["n1"],
            ["n1"],
            id="expendable-pod-does-not",
        ),
        pytest.param(
            [gnode("n1")],
            [running("ds", "n1", owner_kind="DaemonSet")],
            {"n1": 0.0},
            [G],
            ["n1"],
            ["n1"],
            id="daemonset-pod-does-not",
        ),
        pytest.param(
            [gnode("n1")],
            [running("done", "n1", phase="Succeeded")],
            {"n1": 0.0},
            [G],
            ["n1"],
            ["n1"],
            id="finished-pod-does-not",
        ),
        pytest.param(
            [gnode("n1")],
            [running("alice", "n1", priority=0)],
            {"n1": 0.0},
            [G],
            [],
            [],
            id="user-pod-keeps-node",
        ),
        pytest.param(
            [gnode("n1", **{ca.SCALE_DOWN_DISABLED: "true"})],
            [],
            {"n1": 0.0},
            [G],
            [],
            [],
            id="scale-down-disabled",
        ),
        pytest.param(
            [node("static")],
            [],
            {"static": 0.0},
            [G],
            [],
            [],
            id="nodes-outside-groups-kept",
        ),
    ],
)
def test_plan_scale_down(
    nodes: Any,
    pods: Any,
    since: Any,
    groups: Any,
    removed: list[str],
    unneeded: list[str],
) -> None:
    result = ca.plan_scale_down(
        nodes,
        {g.name: g for g in groups},
        group_of,
        Snapshot(nodes, pods),
        cutoff=-10,
        unneeded_since=since,
        now=1000.0,
        unneeded_s=600.0,
    )
    assert [name for name, _ in result.remove] == removed
    assert sorted(result.unneeded) == unneeded

"""The scheduler table: expected node (and victims) or the exact FailedScheduling"
" text."""

from __future__ import annotations

from typing import Any

import pytest

from devcluster.controllers.scheduler.decisions import (
    Bound,
    Snapshot,
    Unschedulable,
    VolumeBinding,
    schedule,
)
from tests.devcluster.objects_support import (
    GPU,
    POOL,
    ZONE,
    expr,
    node,
    pod,
    priority_class,
    pv,
    pvc,
    storage_class,
    taint,
)

M64 = taint(POOL, "mem64")
M16 = taint(POOL, "mem16")
GPU_TAINT = taint(GPU, "present")
TOL_M16 = {"key": POOL, "operator": "Equal", "value": "mem16", "effect": "NoSchedule"}
NA, NB, NC = (node(f"n-{z}", zone=f"us-east-1{z}") for z in "abc")
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"


def case(
    id_: str,
    the_pod: dict[str, Any],
    nodes: list[dict[str, Any]],
    expected: str | tuple[str, ...],
    **world: Any,
) -> Any:
    return pytest.param(the_pod, nodes, world, expected, id=id_)


def full(name: str, on: str, memory: str = "60Gi", **kw: Any) -> dict[str, Any]:
    return pod(
        name, memory=memory, node_name=on, phase=kw.pop("phase", "Running"), **kw
    )


CASES = [
    case("fits-single-node", pod("u", cpu="1", memory="1Gi"), [NA], ("n-a",)),
    case(
        "nodeselector-picks-labelled",
        pod("u", selector={POOL: "mem16"}),
        [NA, node("m16", labels={POOL: "mem16"})],
        ("m16",),
    ),
    case(
        "nodeselector-matches-nothing",
        pod("u", selector={POOL: "mem512"}),
        [NA, NB],
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    case(
        "affinity-zone-in",
        pod("u", required=[[expr(ZONE, "In", "us-east-1b")]]),
        [NA, NB, NC],
        ("n-b",),
    ),
    case(
        "affinity-zone-notin",
        pod("u", required=[[expr(ZONE, "NotIn", "us-east-1a", "us-east-1b")]]),
        [NA, NB, NC],
        ("n-c",),
    ),
    case(
        "affinity-exists",
        pod("u", required=[[expr("gpu", "Exists")]]),
        [NA, node("g", labels={"gpu": "t4"})],
        ("g",),
    ),
    case(
        "affinity-does-not-exist",
        pod("u", required=[[expr(POOL, "DoesNotExist")]]),
        [node("a-pool", labels={POOL: "x"}), NB],
        ("n-b",),
    ),
    case(
        "affinity-gt",
        pod("u", required=[[expr("mem-gib", "Gt", "32")]]),
        [
            node("big", labels={"mem-gib": "64"}),
            node("a-small", labels={"mem-gib": "16"}),
        ],
        ("big",),
    ),
    case(
        "affinity-lt",
        pod("u", required=[[expr("mem-gib", "Lt", "32")]]),
        [
            node("big", labels={"mem-gib": "64"}),
            node("small", labels={"mem-gib": "16"}),
        ],
        ("small",),
    ),
    case(
        "affinity-terms-are-ored",
        pod(
            "u",
            required=[
                [expr(ZONE, "In", "us-east-1c")],
                [expr(ZONE, "In", "us-east-1b")],
            ],
        ),
        [NA, NB],
        ("n-b",),
    ),
    case(
        "affinity-zone-matches-nothing",
        pod("u", required=[[expr(ZONE, "In", "us-east-1d")]]),
        [NA, NB, NC],
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
        f" preemption: 0/3 nodes are available: 3 {NOT_HELPFUL}.",
    ),
    case(
        "untolerated-pool-taint",
        pod("u"),
        [node("m64-a", taints=[M64]), node("m64-b", taints=[M64])],
        "0/2 nodes are available: 2 node(s) had untolerated taint"
        " {wbspawner.io/pool: mem64}."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    case(
        "toleration-equal",
        pod("u", tolerations=[TOL_M16]),
        [node("m16", taints=[M16])],
        ("m16",),
    ),
    case(
        "toleration-wrong-value",
        pod("u", tolerations=[TOL_M16]),
        [node("m64", taints=[M64])],
        "0/1 nodes are available: 1 node(s) had untolerated taint"
        " {wbspawner.io/pool: mem64}."
        f" preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.",
    ),
    case(
        "toleration-exists-empty-key-tolerates-all",
        pod("u", tolerations=[{"operator": "Exists"}]),
        [node("t", taints=[M64, GPU_TAINT, taint("x", effect="NoExecute")])],
        ("t",),
    ),
    case(
        "noexecute-taint-untolerated",
        pod("u"),
        [node("d", taints=[taint("dedicated", "hub", "NoExecute")])],
        "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: hub}."
        f" preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.",
    ),
    case(
        "prefer-no-schedule-does-not-filter",
        pod("u"),
        [node("soft", taints=[taint("x", "y", "PreferNoSchedule")])],
        ("soft",),
    ),
    case(
        "prefer-no-schedule-prefers-clean-node",
        pod("u"),
        [node("a-soft", taints=[taint("x", "y", "PreferNoSchedule")]), node("b-clean")],
        ("b-clean",),
    ),
    case(
        "cordoned-node",
        pod("u"),
        [node("c", unschedulable=True)],
        "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1"
        f" nodes are available: 1 {NOT_HELPFUL}.",
    ),
    case(
        "not-ready-node",
        pod("u"),
        [node("nr", ready="False"), node("gone", ready="Unknown")],
        "0/2 nodes are available: 1 node(s) had untolerated taint"
        " {node.kubernetes.io/not-ready: },"
        " 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
    ),
    case(
        "insufficient-memory",
        pod("u", memory="8Gi", priority=0),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are"
        f" available: 1 {NO_VICTIMS}.",
        pods=[full("other", "n-a", priority=0)],
    ),
    case(
        "insufficient-cpu-and-memory",
        pod("u", cpu="16", memory="128Gi"),
        [NA],
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
        f" preemption: 0/1 nodes are available: 1 {NO_VICTIMS}.",
    ),
    case(
        "gpu-request-on-cpu-nodes",
        pod("u", gpu=1),
        [NA, NB],
        "0/2 nodes are available: 2 Insufficient nvidia.com/gpu. preemption: 0/2"
        f" nodes are available: 2 {NO_VICTIMS}.",
    ),
    case(
        "gpu-node-with-toleration",
        pod(
            "u",
            gpu=1,
            tolerations=[{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
        ),
        [NA, node("g-a", gpu=1, taints=[GPU_TAINT])],
        ("g-a",),
    ),
    case(
        "gpu-taint-keeps-cpu-pods-off",
        pod("u"),
        [node("g-a", gpu=1, taints=[GPU_TAINT])],
        "0/1 nodes are available: 1 node(s) had untolerated taint"
        " {nvidia.com/gpu: present}."
        f" preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.",
    ),
    case(
        "too-many-pods",
        pod("u"),
        [node("tiny", pods="2")],
        "0/1 nodes are available: 1 Too many pods. preemption: 0/1 nodes are"
        f" available: 1 {NO_VICTIMS}.",
        pods=[full("p1", "tiny", "1Mi"), full("p2", "tiny", "1Mi")],
    ),
    case(
        "finished-pods-free-their-resources",
        pod("u", memory="8Gi"),
        [NA],
        ("n-a",),
        pods=[full("done", "n-a", phase="Succeeded")],
    ),
    case(
        "terminating-pods-still-hold-resources",
        pod("u", memory="8Gi"),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are"
        f" available: 1 {NO_VICTIMS}.",
        pods=[full("leaving", "n-a", terminating=True, priority=0)],
    ),
    case(
        "bound-pv-picks-its-zone",
        pod("u", claims=["home"]),
        [NA, NB],
        ("n-b",),
        pvcs=[pvc("home", volume="pv-home")],
        pvs=[pv("pv-home", "us-east-1b")],
    ),
    case(
        "bound-pv-zone-conflict",
        pod("u", claims=["home"]),
        [NA, NB],
        "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
        pvcs=[pvc("home", volume="pv-home")],
        pvs=[pv("pv-home", "us-east-1c")],
    ),
    case(
        "five-nodes-mixed-reasons",
        pod("u", memory="8Gi", tolerations=[TOL_M16], claims=["home"], priority=0),
        [
            node("m16-a", taints=[M16]),
            node("m64-a", taints=[M64]),
            node("m64-b", zone="us-east-1b", taints=[M64]),
            node("m16-b", zone="us-east-1b", taints=[M16]),
            node("m16-c", zone="us-east-1c", taints=[M16]),
        ],
        "0/5 nodes are available: 1 Insufficient memory, 2 node(s) had untolerated"
        " taint"
        " {wbspawner.io/pool: mem64}, 2 node(s) had volume node affinity conflict."
        f" preemption: 0/5 nodes are available: 1 {NO_VICTIMS}, 4 {NOT_HELPFUL}.",
        pods=[full("alice", "m16-a", priority=0)],
        pvcs=[pvc("home", volume="pv-home")],
        pvs=[pv("pv-home", "us-east-1a")],
    ),
    case(
        "wffc-claim-fits-any-node",
        pod("u", claims=["home"], required=[[expr(ZONE, "In", "us-east-1b")]]),
        [NA, NB],
        ("n-b",),
        pvcs=[pvc("home")],
        storage_classes=[storage_class()],
    ),
    case(
        "wffc-allowed-topologies-mismatch",
        pod("u", claims=["home"]),
        [NA, NB],
        "0/2 nodes are available: 2 node(s) didn't find available persistent volumes"
        " to bind."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
        pvcs=[pvc("home")],
        storage_classes=[storage_class(zones=["us-east-1c"])],
    ),
    case(
        "immediate-claim-unbound",
        pod("u", claims=["home"]),
        [NA, NB],
        "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        f" preemption: 0/2 nodes are available: 2 {NOT_HELPFUL}.",
        pvcs=[pvc("home")],
        storage_classes=[storage_class(mode="Immediate")],
    ),
    case(
        "missing-claim",
        pod("u", claims=["home"]),
        [NA],
        '0/1 nodes are available: persistentvolumeclaim "home" not found.'
        f" preemption: 0/1 nodes are available: 1 {NOT_HELPFUL}.",
    ),
    case(
        "preempts-placeholder",
        pod("u", memory="60Gi", priority=0),
        [NA],
        ("n-a", "ph"),
        pods=[full("ph", "n-a", priority=-10)],
    ),
    case(
        "preempts-where-victims-matter-least",
        pod("u", memory="60Gi", priority=10),
        [NA, NB],
        ("n-b", "ph"),
        pods=[full("batch", "n-a", priority=5), full("ph", "n-b", priority=-10)],
    ),
    case(
        "preempts-as-few-as-needed",
        pod("u", memory="30Gi", priority=0),
        [NA],
        ("n-a", "ph-2"),
        pods=[
            full("ph-1", "n-a", "30Gi", priority=-10, created="2026-01-01T00:00:01Z"),
            full("ph-2", "n-a", "30Gi", priority=-10, created="2026-01-01T00:00:02Z"),
        ],
    ),
    case(
        "preemption-policy-never",
        pod("u", memory="60Gi", priority=0, preemption_policy="Never"),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory. preemption: not eligible due"
        " to preemptionPolicy=Never.",
        pods=[full("ph", "n-a", priority=-10)],
    ),
    case(
        "preemption-would-not-help",
        pod("u", memory="30Gi", priority=0),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are"
        " available: 1 Insufficient memory.",
        pods=[
            full("vip", "n-a", "40Gi", priority=100),
            full("ph", "n-a", "20Gi", priority=-10),
        ],
    ),
    case(
        "nominated-pod-reserves-its-node",
        pod("late", memory="60Gi", priority=-10),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes are"
        f" available: 1 {NO_VICTIMS}.",
        pods=[pod("first", memory="60Gi", priority=0, nominated="n-a")],
    ),
    case(
        "waits-for-terminating-victim",
        pod("u", memory="60Gi", priority=0, nominated="n-a"),
        [NA],
        "0/1 nodes are available: 1 Insufficient memory."
        " preemption: not eligible due to a terminating pod on the nominated node.",
        pods=[full("ph", "n-a", priority=-10, terminating=True)],
    ),
    case(
        "priority-from-priority-class",
        pod("u", memory="60Gi", priority_class="user"),
        [NA],
        ("n-a", "ph"),
        pods=[full("ph", "n-a", priority_class="placeholder")],
        priority_classes=[
            priority_class("user", 0),
            priority_class("placeholder", -10),
        ],
    ),
    case(
        "least-allocated-node-wins",
        pod("u", memory="4Gi"),
        [NA, NB],
        ("n-b",),
        pods=[full("busy", "n-a", "32Gi")],
    ),
    case("no-nodes", pod("u"), [], "no nodes available to schedule pods"),
]


@pytest.mark.parametrize(("the_pod", "nodes", "world", "expected"), CASES)
def test_schedule(the_pod: Any, nodes: Any, world: Any, expected: Any) -> None:
    decision = schedule(
        the_pod,
        nodes,
        world.get("pods", []),
        world.get("pvcs", []),
        world.get("pvs", []),
        world.get("storage_classes", []),
        world.get("priority_classes", []),
    )
    if isinstance(expected, str):
        assert isinstance(decision, Unschedulable), decision
        assert decision.message == expected
    else:
        assert isinstance(decision, Bound), decision
        victims = tuple(v["metadata"]["name"] for v in decision.victims)
        assert (decision.node_name, *victims) == expected


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 25


def test_wffc_binding_carries_the_node_zone() -> None:
    decision = schedule(
        pod("u", claims=["home"]),
        [NB],
        [],
        [pvc("home")],
        [],
        [storage_class("gp3")],
    )
    assert decision == Bound(
        "n-b",
        volume_bindings=(VolumeBinding("jhub", "home", "gp3", "n-b", "us-east-1b"),),
    )


def test_preemption_reports_the_filter_message() -> None:
    decision = schedule(
        pod("u", memory="60Gi", priority=0), [NA], [full("ph", "n-a", priority=-10)]
    )
    assert isinstance(decision, Bound)
    assert decision.message == "0/1 nodes are available: 1 Insufficient memory."


def test_assume_makes_later_pods_see_the_first() -> None:
    snap = Snapshot([NA], [])
    first, second = pod("a", memory="40Gi"), pod("b", memory="40Gi")
    assert snap.schedule(first) == Bound("n-a")
    snap.assume(first, "n-a")
    decision = snap.schedule(second)
    assert isinstance(decision, Unschedulable)
    assert decision.message.startswith(
        "0/1 nodes are available: 1 Insufficient memory."
    )


def test_schedule_does_not_mutate_inputs() -> None:
    import copy

    nodes = [NA, NB]
    pods = [full("ph", "n-a", priority=-10)]
    before = copy.deepcopy((nodes, pods))
    schedule(pod("u", memory="60Gi", priority=0), nodes, pods)
    assert (nodes, pods) == before

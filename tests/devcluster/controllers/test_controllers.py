"""devcluster's controllers against a Store and an in-process moto server."""

from __future__ import annotations

import time
from typing import Any

import pytest

from devcluster.apiserver.store import Store
from devcluster.config import ClusterConfig
from devcluster.controllers.manager import Controllers
from devcluster.controllers.nodes import instance_id_of
from tests.devcluster.controllers.controller_support import (
    events,
    group_status,
    node_of,
    priorities,
    sleep,
    user_pod,
)
from tests.devcluster.objects_support import GPU, POOL, ZONE, priority_class
from tests.node_groups_support import MakePool

pytestmark = pytest.mark.integration


async def test_pending_pod_grows_the_right_group_and_binds(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    autoscaling: Any,
    config: ClusterConfig,
    eventually: Any,
) -> None:
    make_pool("mem64", zones=["us-east-1a", "us-east-1b"])
    make_pool("mem64", cluster="other", zones=["us-east-1b"])
    priorities(store)
    store.create(
        "pods", "jhub", user_pod("alice", "mem64", "r5.2xlarge", zone="us-east-1b")
    )
    failed = await eventually(lambda: events(store, "alice", "FailedScheduling"))
    assert failed[0]["message"] == "no nodes available to schedule pods"
    triggered = await eventually(lambda: events(store, "alice", "TriggeredScaleUp"))
    scaled_at = time.monotonic()
    assert (
        triggered[0]["message"]
        == "pod triggered scale-up: [{wbspawner-dev-mem64-b-spot 0->1 (max: 3)}]"
    )
    groups = {
        g["AutoScalingGroupName"]: g["DesiredCapacity"]
        for g in autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"]
    }
    assert groups == {
        "wbspawner-dev-mem64-a-spot": 0,
        "wbspawner-dev-mem64-a-ondemand": 0,
        "wbspawner-dev-mem64-b-spot": 1,
        "wbspawner-dev-mem64-b-ondemand": 0,
        "wbspawner-other-mem64-b-spot": 0,
        "wbspawner-other-mem64-b-ondemand": 0,
    }
    node_name = await eventually(lambda: node_of(store, "alice"))
    assert time.monotonic() - scaled_at >= config.real(config.node_boot_s) * 0.9
    node = store.get("nodes", None, node_name)
    labels = node["metadata"]["labels"]
    assert node_name.startswith("ip-10-0-1-") and node_name.endswith(".ec2.internal")
    assert (
        labels[ZONE],
        labels["eks.amazonaws.com/capacityType"],
        labels["node.kubernetes.io/instance-type"],
    ) == ("us-east-1b", "SPOT", "r5.2xlarge")
    assert (labels[POOL], labels["wbspawner.io/capacity"]) == ("mem64", "spot")
    assert node["spec"]["providerID"] == f"aws:///us-east-1b/{instance_id_of(node)}"
    assert node["spec"]["taints"] == [
        {"key": POOL, "value": "mem64", "effect": "NoSchedule"}
    ]
    assert (
        events(store, "alice", "Scheduled")[0]["message"]
        == f"Successfully assigned jhub/alice to {node_name}"
    )
    assert (
        controllers.status()["last_scale_up"]["group"] == "wbspawner-dev-mem64-b-spot"
    )


async def test_empty_node_removed_after_unneeded_time_and_min_kept(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    autoscaling: Any,
    config: ClusterConfig,
    eventually: Any,
) -> None:
    make_pool("mem16", zones=["us-east-1a"], capacities=["spot"], min_size=1, desired=2)
    await eventually(lambda: len(store.items_raw("nodes")) == 2)
    joined = time.monotonic()
    await eventually(lambda: len(store.items_raw("nodes")) == 1)
    assert time.monotonic() - joined >= config.real(config.scale_down_unneeded_s) * 0.9
    group = autoscaling.describe_auto_scaling_groups()["AutoScalingGroups"][0]
    assert (group["DesiredCapacity"], len(group["Instances"])) == (1, 1)
    removed = [e for e in store.items_raw("events") if e["reason"] == "ScaleDown"]
    assert len(removed) == 1
    await sleep(config.real(config.scale_down_unneeded_s) * 2)
    assert len(store.items_raw("nodes")) == 1
    assert group_status(controllers, "wbspawner-dev-mem16-a-spot")["desired"] == 1


async def test_gpu_pool_scales_from_zero(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    eventually: Any,
) -> None:
    make_pool("mem64", zones=["us-east-1a"], capacities=["spot"])
    make_pool("gpu-a10g", zones=["us-east-1a"], capacities=["spot"], gpus=1)
    store.create("pods", "jhub", user_pod("gpu-user", "gpu-a10g", "g5.xlarge", gpus=1))
    node_name = await eventually(lambda: node_of(store, "gpu-user"))
    node = store.get("nodes", None, node_name)
    assert node["status"]["allocatable"][GPU] == "1"
    assert {"key": GPU, "value": "present", "effect": "NoSchedule"} in node["spec"][
        "taints"
    ]
    assert group_status(controllers, "wbspawner-dev-mem64-a-spot")["desired"] == 0


async def test_spot_shortage_falls_back_to_on_demand(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    eventually: Any,
) -> None:
    make_pool("mem64", zones=["us-east-1a"])
    priorities(store)
    controllers.set_spot_capacity("r5.2xlarge", "us-east-1a", available=False)
    store.create("pods", "jhub", user_pod("bob", "mem64", "r5.2xlarge"))
    node_name = await eventually(lambda: node_of(store, "bob"))
    labels = store.get("nodes", None, node_name)["metadata"]["labels"]
    assert (
        labels["eks.amazonaws.com/capacityType"],
        labels["wbspawner.io/capacity"],
    ) == ("ON_DEMAND", "on-demand")
    messages = [e["message"] for e in events(store, "bob", "TriggeredScaleUp")]
    assert messages == [
        "pod triggered scale-up: [{wbspawner-dev-mem64-a-spot 0->1 (max: 3)}]",
        "pod triggered scale-up: [{wbspawner-dev-mem64-a-ondemand 0->1 (max: 3)}]",
    ]
    status = controllers.status()
    assert status["failures"] == [
        "wbspawner-dev-mem64-a-spot: cannot provision any more nodes"
    ]
    assert group_status(controllers, "wbspawner-dev-mem64-a-spot")["desired"] == 0
    assert group_status(controllers, "wbspawner-dev-mem64-a-spot")["backoff_s"] > 0


async def test_placeholder_is_preempted_by_a_user_pod(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    eventually: Any,
) -> None:
    make_pool("mem64", zones=["us-east-1a"], capacities=["spot"])
    store.create("priorityclasses", None, priority_class("placeholder", -10))
    store.create(
        "pods",
        "jhub",
        user_pod("warm", "mem64", "r5.2xlarge", priority_class_name="placeholder"),
    )
    warm_node = await eventually(lambda: node_of(store, "warm"))
    store.create("pods", "jhub", user_pod("erin", "mem64", "r5.2xlarge"))
    assert await eventually(lambda: node_of(store, "erin")) == warm_node
    preempted = [e for e in store.items_raw("events") if e["reason"] == "Preempted"]
    assert preempted[0]["involvedObject"]["name"] == "warm"
    assert not events(store, "erin", "TriggeredScaleUp")
    assert group_status(controllers, "wbspawner-dev-mem64-a-spot")["desired"] == 1


async def test_spot_interruption_cordons_then_removes_the_node(
    store: Store,
    controllers: Controllers,
    make_pool: MakePool,
    ec2: Any,
    eventually: Any,
) -> None:
    make_pool("mem16", zones=["us-east-1a"], capacities=["spot"])
    store.create("pods", "jhub", user_pod("frank", "mem16", "r5.large"))
    node_name = await eventually(lambda: node_of(store, "frank"))
    instance_id = instance_id_of(store.get("nodes", None, node_name))
    gone = await controllers.interrupt_spot(node_name)
    node = store.get("nodes", None, node_name)
    assert node["spec"]["unschedulable"] is True
    assert {t["key"] for t in node["spec"]["taints"]} >= {
        "node.kubernetes.io/unschedulable",
        "aws-node-termination-handler/spot-itn",
    }
    assert store.get("pods", "jhub", "frank")["metadata"].get("deletionTimestamp")
    await gone
    assert not store.exists("nodes", None, node_name)
    assert not store.exists("pods", "jhub", "frank")
    state = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0][
        "Instances"
    ][0]["State"]["Name"]
    assert state == "terminated"


async def test_failed_scheduling_is_not_repeated_every_pass(
    store: Store, controllers: Controllers, eventually: Any
) -> None:
    store.create(
        "pods",
        "jhub",
        {
            "metadata": {"name": "lost"},
            "spec": {
                "containers": [{"name": "c", "image": "x"}],
                "nodeSelector": {POOL: "nowhere"},
            },
        },
    )
    await eventually(lambda: events(store, "lost", "FailedScheduling"))
    passes = controllers.scheduler.passes
    for i in range(30):
        store.create("configmaps", "jhub", {"metadata": {"name": f"noise-{i}"}})
        store.patch("pods", "jhub", "lost", {"metadata": {"labels": {"n": str(i)}}})
        await sleep(0.01)
    assert controllers.scheduler.passes > passes + 5
    count = events(store, "lost", "FailedScheduling")[0]["count"]
    assert count <= 3
    cond = next(
        c
        for c in store.get("pods", "jhub", "lost")["status"]["conditions"]
        if c["type"] == "PodScheduled"
    )
    assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")

"""Spot notices as aws-node-termination-handler shows them, and who avoids spot.

The first tests annotate a node in the store, as any API client would; then
``python -m devcluster.drill`` runs as a process against a devcluster over HTTP;
the last show that a Dask scheduler, placed as wbspawner places it, never runs
on spot capacity.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devcluster.apiserver.store import Store
from devcluster.cluster import Cluster
from devcluster.controllers.manager import Controllers
from devcluster.controllers.termination import DRILL_ANNOTATION
from tests.devcluster.controllers.controller_support import (
    events,
    node_of,
    priorities,
    user_pod,
)
from tests.node_groups_support import MakePool
from tests.paths import REPO
from wbspawner.gateway.pods import scheduler_placement
from wbspawner.model import USER_LABEL
from wbspawner.profiles.loader import load_profiles
from wbspawner.spawn.reclaims import avoidance, reclaims_of_events

pytestmark = pytest.mark.integration

ITN = "aws-node-termination-handler/spot-itn"
REBALANCE = "aws-node-termination-handler/rebalance-recommendation"


def taints(store: Store, node: str) -> dict[str, dict[str, Any]]:
    found = store.get("nodes", None, node)["spec"].get("taints") or []
    return {t["key"]: t for t in found}


def annotations(store: Store, node: str) -> dict[str, str]:
    return store.get("nodes", None, node)["metadata"].get("annotations") or {}


async def spot_node(store: Store, make_pool: MakePool, eventually: Any) -> str:
    make_pool("mem16", zones=["us-east-1a"], capacities=["spot"])
    store.create("pods", "jhub", user_pod("frank", "mem16", "r5.large"))
    node: str = await eventually(lambda: node_of(store, "frank"))
    return node


def drill(store: Store, node: str, value: str) -> None:
    store.patch(
        "nodes", None, node, {"metadata": {"annotations": {DRILL_ANNOTATION: value}}}
    )


async def test_a_drill_annotation_delivers_a_spot_interruption(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    node = await spot_node(store, make_pool, eventually)
    drill(store, node, "spot-interruption")
    notice = await eventually(lambda: events(store, node, "SpotInterruption"))
    assert notice[0]["type"] == "Warning"
    assert notice[0]["source"]["component"] == "aws-node-termination-handler"
    assert taints(store, node)[ITN]["effect"] == "NoSchedule"
    assert taints(store, node)[ITN]["value"].startswith("spot-itn-i-")
    assert DRILL_ANNOTATION not in annotations(store, node)
    # NTH's annotations say which instance, type and zone (the Event outlives
    # the node).
    described = notice[0]["metadata"]["annotations"]
    assert described["instance-id"].startswith("i-")
    assert described["instance-type"] == "r5.large"
    assert described["availability-zone"] == "us-east-1a"
    assert described["region"] == "us-east-1"
    assert events(store, node, "CordonAndDrain")
    await eventually(lambda: not store.exists("pods", "jhub", "frank"))
    await eventually(lambda: not store.exists("nodes", None, node))


async def test_a_rebalance_recommendation_cordons_without_draining(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    node = await spot_node(store, make_pool, eventually)
    drill(store, node, "rebalance-recommendation")
    await eventually(lambda: events(store, node, "RebalanceRecommendation"))
    assert taints(store, node)[REBALANCE]["effect"] == "NoSchedule"
    assert ITN not in taints(store, node)
    assert store.get("nodes", None, node)["spec"]["unschedulable"] is True
    assert DRILL_ANNOTATION not in annotations(store, node)
    pod = store.get("pods", "jhub", "frank")
    assert not pod["metadata"].get("deletionTimestamp")
    await asyncio.sleep(controllers.config.real(controllers.config.spot_notice_s) * 2)
    assert store.exists("nodes", None, node)


async def test_an_unknown_drill_is_taken_off_with_the_known_ones(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    node = await spot_node(store, make_pool, eventually)
    drill(store, node, "spot")
    refused = await eventually(lambda: events(store, node, "DrillRefused"))
    assert refused[0]["message"] == (
        "devcluster.wbspawner.io/drill='spot' is not a drill devcluster knows; "
        "use one of: spot-interruption, rebalance-recommendation"
    )
    assert DRILL_ANNOTATION not in annotations(store, node)
    assert not store.get("nodes", None, node)["spec"].get("unschedulable")


async def run_drill(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devcluster.drill",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def server_pod(user: str, node: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"jupyter-{user}",
            "labels": {"component": "singleuser-server", USER_LABEL: user},
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "notebook", "image": "python:3.11"}],
        },
    }


async def test_the_drill_command_finds_a_users_node_and_waits_for_the_notice(
    full_cluster: Cluster, tmp_path: Path
) -> None:
    assert full_cluster.store is not None
    kubeconfig = full_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    full_cluster.store.create("pods", "jhub", server_pod("bob", "core"))

    status, out, err = await run_drill(
        "spot-interruption", "--user", "bob", "--kubeconfig", str(kubeconfig)
    )
    assert (status, err) == (0, "")
    shown = json.loads(out)
    assert shown["node"] == "core"
    assert shown["notice"] == "spot-interruption"
    assert shown["taint"].startswith(f"{ITN}=spot-itn-")
    assert shown["taint"].endswith(":NoSchedule")
    assert shown["at"]


async def test_the_drill_command_explains_what_it_cannot_do(
    full_cluster: Cluster, tmp_path: Path
) -> None:
    kubeconfig = full_cluster.write_kubeconfig(tmp_path / "kubeconfig")
    cases = [
        (
            ["spot-interruption", "--user", "nobody", "--kubeconfig", str(kubeconfig)],
            "drill: nobody has no server on a node in namespace jhub\n",
        ),
        (
            ["rebalance-recommendation", "ghost", "--kubeconfig", str(kubeconfig)],
            "drill: not found: /api/v1/nodes/ghost\n",
        ),
        (
            ["spot-interruption", "core"],
            "drill: no kubeconfig: pass --kubeconfig or set KUBECONFIG\n",
        ),
    ]
    for args, message in cases:
        assert await run_drill(*args) == (1, "", message)


def scheduler_pod(name: str, pool: str) -> dict[str, Any]:
    """A Dask scheduler pod placed as wbspawner places it (gateway.pods)."""
    profiles = load_profiles([REPO / "profiles"])
    spec = scheduler_placement(profiles.pools[pool])
    spec["containers"] = [
        {
            "name": "dask-scheduler",
            "image": "python:3.11",
            "resources": {"requests": {"cpu": "1", "memory": "2Gi"}},
        }
    ]
    spec["terminationGracePeriodSeconds"] = 1
    return {"metadata": {"name": name}, "spec": spec}


async def test_a_dask_scheduler_waits_for_on_demand_rather_than_take_spot(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    """Spot is the preferred, cheaper group; a scheduler starts on-demand anyway."""
    priorities(store)
    make_pool("mem64", zones=["us-east-1a"], capacities=["spot", "on-demand"])
    store.create("pods", "jhub", scheduler_pod("dask-scheduler-a", "mem64"))
    node = await eventually(lambda: node_of(store, "dask-scheduler-a"))
    labels = store.get("nodes", None, node)["metadata"]["labels"]
    assert labels["wbspawner.io/capacity"] == "on-demand"


async def test_a_dask_scheduler_is_never_placed_on_spot(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    make_pool("mem64", zones=["us-east-1a"], capacities=["spot"], min_size=1, desired=1)
    spot = await eventually(
        lambda: [n["metadata"]["name"] for n in store.items_raw("nodes")]
    )
    store.create("pods", "jhub", scheduler_pod("dask-scheduler-b", "mem64"))
    await eventually(lambda: events(store, "dask-scheduler-b", "FailedScheduling"))
    await asyncio.sleep(controllers.config.real(120))
    assert node_of(store, "dask-scheduler-b") is None
    assert [n["metadata"]["name"] for n in store.items_raw("nodes")] == spot


async def test_a_start_that_avoids_the_reclaimed_spot_type_gets_on_demand(
    store: Store, controllers: Controllers, make_pool: MakePool, eventually: Any
) -> None:
    """The autoscaler starts the pool's on-demand group for the next start.

    Cluster Autoscaler models the spot group by its first type, the one
    reclaimed, so the spot term of the avoidance cannot be met by a new node.
    """
    priorities(store)
    make_pool("mem16", zones=["us-east-1a"], capacities=["spot", "on-demand"])
    store.create("pods", "jhub", user_pod("frank", "mem16", "r5.large"))
    first = await eventually(lambda: node_of(store, "frank"))
    labels = store.get("nodes", None, first)["metadata"]["labels"]
    assert labels["wbspawner.io/capacity"] == "spot"
    drill(store, first, "spot-interruption")
    notice = await eventually(lambda: events(store, first, "SpotInterruption"))
    await eventually(lambda: not store.exists("pods", "jhub", "frank"))

    cpu16 = load_profiles([REPO / "profiles"]).pools["cpu16"]
    pool = dataclasses.replace(cpu16, name="mem16")  # the test groups' pool
    avoid = avoidance(pool, "us-east-1a", reclaims_of_events(notice), datetime.now(UTC))
    assert avoid is not None and avoid.reclaimed == ("r5.large",)
    again = user_pod("frank-again", "mem16", "r5.large", zone="us-east-1a")
    again["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": avoid.node_affinity_required
            }
        }
    }
    store.create("pods", "jhub", again)
    second = await eventually(lambda: node_of(store, "frank-again"))
    labels = store.get("nodes", None, second)["metadata"]["labels"]
    assert labels["wbspawner.io/capacity"] == "on-demand"
    assert labels["topology.kubernetes.io/zone"] == "us-east-1a"
    assert events(store, "frank-again", "TriggeredScaleUp")

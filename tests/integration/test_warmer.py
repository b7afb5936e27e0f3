"""The warmer on devcluster: placeholders, the autoscaler, preemption, refill, access.

The cluster tests run an in-process devcluster (API over HTTP, scheduler,
autoscaler over moto groups, kubelet in sim mode, 100× faster than real time)
and the warmer's own loop against its API through kubernetes_asyncio, with the
warmer's clock on the cluster's simulated time. The access test runs the whole
hub (``devcluster.demo.workbench.Workbench``) with the warmer as a hub-managed service.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.demo.node_groups import CLUSTER, REGION, aws_clients, create_node_groups
from devcluster.demo.workbench import Kube, Workbench, prepare_cluster
from devcluster.services.moto_server import MotoServer
from devcluster.services.procs import free_port
from tests.integration.cost_support import seed_spending
from tests.paths import REPO
from wbspawner.adapters.kube import Kube as WarmerKube
from wbspawner.catalog.instances import load_catalog
from wbspawner.model import CAPACITY_LABEL, POOL_LABEL, ZONE_LABEL, Profiles
from wbspawner.naming import group_name
from wbspawner.profiles.loader import load_profiles
from wbspawner.warmer.app import WarmerApp

sys.path.insert(0, str(REPO / "bench"))
from warm_world import ScaledClock, home_objects, user_pod  # noqa: E402

from tests.integration.hub_harness import eventually  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

NS = "jhub"
FACTOR = 0.01
A, B = "us-east-1a", "us-east-1b"
SCHEDULE = """
warm:
  timezone: UTC
  schedules:
    - name: always
      pool: mem64
      windows: [{days: mon-sun, start: "00:00", end: "23:59"}]
      nodes_per_zone: 1
      zones: [us-east-1a]
"""


@dataclass
class World:
    cluster: Cluster
    moto: MotoServer
    profiles: Profiles
    app: WarmerApp
    clock: ScaledClock

    def pods(self) -> list[dict[str, Any]]:
        assert self.cluster.store is not None
        return self.cluster.store.items_raw("pods")

    def placeholders(self, running: bool = False) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pods()
            if p["metadata"]["name"].startswith("warm-")
            and not p["metadata"].get("deletionTimestamp")
            and (not running or (p.get("status") or {}).get("phase") == "Running")
        ]

    def desired(self) -> dict[str, int]:
        groups = self.moto.client("autoscaling").describe_auto_scaling_groups()
        return {
            g["AutoScalingGroupName"]: g["DesiredCapacity"]
            for g in groups["AutoScalingGroups"]
        }

    def node(self, name: str) -> dict[str, Any]:
        assert self.cluster.store is not None
        return self.cluster.store.get("nodes", None, name)


async def run_loop(app: WarmerApp, period: float) -> None:
    while True:
        await app.reconcile()
        await asyncio.sleep(period)


@contextlib.asynccontextmanager
async def world(
    tmp_path: Path, moto: MotoServer, **app_traits: Any
) -> AsyncIterator[World]:
    moto.reset()  # groups of other tests would be discovered too
    profiles_dir = tmp_path / "profiles"
    shutil.copytree(
        REPO / "profiles", profiles_dir, ignore=shutil.ignore_patterns("examples")
    )
    (profiles_dir / "40-warm.yaml").write_text(SCHEDULE)
    catalog = load_catalog()
    profiles = load_profiles([profiles_dir], catalog)
    config = ClusterConfig(
        time_factor=FACTOR,
        kubelet_mode="sim",
        state_dir=str(tmp_path / "state"),
        static_nodes=({"metadata": {"name": "core"}},),
    )
    cluster = Cluster(config, aws_endpoint=moto.endpoint_url)
    await cluster.start()
    kube = None
    task = None
    try:
        await asyncio.to_thread(prepare_cluster, Kube(cluster.url), profiles)
        await asyncio.to_thread(
            create_node_groups,
            aws_clients(moto.endpoint_url),
            profiles,
            pools=["mem64"],
            zones=[A, B],
        )
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", NS)
        clock = ScaledClock(datetime(2026, 11, 25, 9, tzinfo=UTC), FACTOR)
        app = WarmerApp(
            profiles_dir=[str(profiles_dir)],
            namespace=NS,
            read_hub_sizes=False,
            clock=clock,
            **app_traits,
        )
        kube = await WarmerKube.connect(str(kubeconfig))
        app.init_state(kube)
        task = asyncio.create_task(run_loop(app, 0.1))
        yield World(cluster, moto, profiles, app, clock)
        assert not task.done(), "the warmer loop died"
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if kube is not None:
            await kube.close()
        await cluster.stop()


def group(zone: str, capacity: str) -> str:
    return group_name(CLUSTER, "mem64", zone, REGION, capacity)


async def test_schedule_warms_the_right_group_and_a_user_preempts(
    tmp_path: Path, moto: MotoServer
) -> None:
    """Schedule → placeholder → mem64 spot group in the zone grows → user preempts."""
    async with world(tmp_path, moto) as w:
        first = (
            await eventually(lambda: w.placeholders(running=True), 30, "warm node")
        )[0]
        assert first["metadata"]["name"] == "warm-mem64-us-east-1a-spot-0"
        assert first["spec"]["priorityClassName"] == "wbspawner-placeholder"
        node = w.node(first["spec"]["nodeName"])
        labels = node["metadata"]["labels"]
        assert (labels[POOL_LABEL], labels[ZONE_LABEL], labels[CAPACITY_LABEL]) == (
            "mem64",
            A,
            "spot",
        )
        desired = w.desired()
        assert desired[group(A, "spot")] == 1
        assert {n: d for n, d in desired.items() if d and n != group(A, "spot")} == {}

        def warmer_sees_it() -> bool:
            cells = w.app.status()["cells"]
            return bool(cells) and cells[0]["warm_nodes"] == 1

        await eventually(warmer_sees_it, 10, "the warmer's view of the warm node")
        readiness = w.app.readiness()["sizes"]["large"]
        assert (readiness["ready"], readiness["text"]) == (1, "Ready now")

        # alice, whose home is in us-east-1a, starts a 64 GiB server
        assert w.cluster.store is not None
        volume = moto.client("ec2").create_volume(AvailabilityZone=A, Size=10)
        pv, pvc = home_objects(
            "alice", A, NS, w.profiles.homes.storage_class, volume["VolumeId"]
        )
        w.cluster.store.create("persistentvolumes", None, pv)
        w.cluster.store.create("persistentvolumeclaims", NS, pvc)
        started = w.clock.sim_seconds()
        w.cluster.store.create(
            "pods", NS, user_pod("alice", "large", w.profiles, A, NS)
        )

        def alice_running() -> dict[str, Any] | None:
            pod = w.cluster.store.get("pods", NS, "jupyter-alice")  # type: ignore[union-attr]
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            ready = statuses and all(s.get("ready") for s in statuses)
            return pod if pod["status"].get("phase") == "Running" and ready else None

        pod = await eventually(alice_running, 30, "alice running")
        waited = w.clock.sim_seconds() - started
        assert pod["spec"]["nodeName"] == first["spec"]["nodeName"]
        assert waited < 30, (
            f"alice waited {waited:.0f} simulated s (a node boots in 180)"
        )

        # the warmer makes a new placeholder, the group grows, a new node is warm
        def refilled() -> list[dict[str, Any]]:
            return [
                p
                for p in w.placeholders(running=True)
                if p["spec"]["nodeName"] != first["spec"]["nodeName"]
            ]

        await eventually(refilled, 30, "refilled warm node")
        assert w.desired()[group(A, "spot")] == 2
        assert w.app.result.errors == ()


async def test_spot_shortage_falls_back_to_on_demand(
    tmp_path: Path, moto: MotoServer
) -> None:
    """No spot r5.2xlarge in us-east-1a: the warm node comes from on-demand."""
    async with world(tmp_path, moto, pending_shortage_s=300.0) as w:
        assert w.cluster.controllers is not None
        w.cluster.controllers.set_spot_capacity("r5.2xlarge", A, False)
        pod = (await eventually(lambda: w.placeholders(running=True), 60, "warm node"))[
            0
        ]
        assert pod["metadata"]["name"] == "warm-mem64-us-east-1a-on-demand-0"
        assert (
            w.node(pod["spec"]["nodeName"])["metadata"]["labels"][CAPACITY_LABEL]
            == "on-demand"
        )
        decisions = " ".join(d["message"] for d in w.app.status()["plan"]["decisions"])
        assert "spot is short here" in decisions and "on-demand instead" in decisions


# --------------------------------------------------------------- the hub


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": ["mem64"], "zones": [B], "public_port": free_port()}


def session(bench: Workbench, name: str, password: str) -> requests.Session:
    from tests.integration.hub_harness import HubUser

    user = HubUser(bench.url, name, password)
    assert user.login().status_code == 302
    return user.http


def test_admin_sees_the_page_and_a_non_admin_gets_403(workbench: Workbench) -> None:
    from tests.integration.hub_harness import HubUser, wait_until

    alice = HubUser(workbench.url, "alice", "alice-pw")
    assert alice.login().status_code == 302
    services = alice.api("GET", "/services").json()
    assert "warmer" in services, "hubconfig.apply does not register the warmer"
    role = alice.api("GET", "/services/warmer").json()
    assert sorted(role["roles"]) == ["warmer-service"]
    base = f"{workbench.url}/services/warmer/"

    def page() -> requests.Response | None:
        response = alice.http.get(base, timeout=30)
        return response if response.status_code == 200 else None

    html = wait_until(page, 60, "warmer page for alice").text
    assert "Warm capacity" in html and "<svg" in html
    headers = {"Authorization": f"token {alice.token()}"}
    status = wait_until(
        lambda: (
            (r := requests.get(base + "api/status", headers=headers, timeout=10)).ok
            and r.json()["plan"] is not None
            and r
        ),
        60,
        "a first warmer pass",
    ).json()
    assert not [e for e in status["errors"] if e["action"] == "hub users"], status[
        "errors"
    ]
    metrics = requests.get(base + "metrics", headers=headers, timeout=10)
    assert "wbspawner_warm_reconcile_total" in metrics.text

    bob = HubUser(workbench.url, "bob", "bob-pw")
    assert bob.login().status_code == 302
    assert bob.http.get(base, timeout=30).status_code == 403
    bob_headers = {"Authorization": f"token {bob.token()}"}
    assert (
        requests.get(base + "api/status", headers=bob_headers, timeout=10).status_code
        == 403
    )
    ready = requests.get(base + "api/readiness", headers=bob_headers, timeout=10)
    assert ready.status_code == 200 and "large" in ready.json()["sizes"]
    # the spawn form reads the status file the warmer writes beside the hub
    status_file = workbench.state_dir / "hub" / "warm-status.json"
    wait_until(status_file.exists, 30, "the warmer's status file")
    large = ready.json()["sizes"]["large"]
    warm_line = "Ready now" if large["ready"] else "Starts in about"
    assert warm_line in bob.form()
    # the costs page: same access, from the hub's accounting database
    month = datetime.now(UTC).strftime("%Y-%m")
    seed_spending(workbench.cost_db, "gina")
    costs = alice.http.get(base + "costs", params={"month": month}, timeout=30)
    assert costs.status_code == 200, costs.text
    assert "gina" in costs.text and "<svg" in costs.text and "$1.50" in costs.text
    bad = alice.http.get(base + "costs", params={"month": "2026-13"}, timeout=30)
    assert bad.status_code == 400 and "2026-13" in bad.text
    assert bob.http.get(base + "costs", timeout=30).status_code == 403
    anonymous = requests.get(base + "api/status", timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302
    assert "/hub/api/oauth2/authorize" in anonymous.headers["location"]

"""Homes on EBS with moto + devcluster: the pod follows its home, and a home moves.

One in-process devcluster (API over HTTP, scheduler, PV and attach controllers, Cluster
Autoscaler over moto node groups, kubelet running pods as processes) with
``devcluster.controllers.volumes.snapshots`` carrying files through EBS snapshots. A
node pool ``mem16`` has spot node groups in us-east-1a and us-east-1b. Alice's pods
write and read her home through the kubelet's per-PV directory; the admin commands run
in-process through ``wbspawner.cli.main.main`` against the API and moto over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.controllers.volumes import snapshots
from devcluster.controllers.volumes.ebs import EbsRules
from devcluster.errors import ApiError
from devcluster.services.moto_server import MotoServer
from tests.node_groups_support import create_pool, make_network
from tests.paths import REPO
from wbspawner.adapters.kube import Kube
from wbspawner.cli.main import main
from wbspawner.homes import MoveFailedError
from wbspawner.homes.move import HomeMover, MoveRequest
from wbspawner.homes.policy import (
    ZoneFacts,
    choose_zone,
    no_capacity_message,
    should_offer_move,
    zone_of_pv,
)
from wbspawner.homes.records import Waits
from wbspawner.homes.volumes import Volumes
from wbspawner.model import POOL_LABEL, ZONE_LABEL, HomeSettings, Pool, Resources

pytestmark = pytest.mark.integration

NS, USER, CLAIM = "jhub", "alice", "home-alice"
A, B = "us-east-1a", "us-east-1b"
ZONES = (A, B, "us-east-1c")
POOL_NAME, ITYPE = "mem16", "r5.large"
POOL = Pool(
    name=POOL_NAME,
    display_name="16 GiB",
    instance_types=(ITYPE,),
    capacity_types=("spot",),
    zones=(A, B),
    max_nodes=3,
    vcpu=2,
    memory_mib=16384,
    request=Resources(cpu_m=1000, memory_mib=1024),
    price_per_hour=0.126,
)
SETTINGS = HomeSettings(default_zone=A)

WRITE = """
import os, pathlib, time
home = pathlib.Path(os.environ["HOME"])
(home / "notebooks").mkdir(exist_ok=True)
(home / "notebooks" / "analysis.ipynb").write_text('{"cells": [], "nbformat": 4}')
(home / "data.bin").write_bytes(os.urandom(256 * 1024))
(home / ".ready").write_text("written")
time.sleep(600)
"""
READ = """
import hashlib, json, os, pathlib, sys, time
home = pathlib.Path(os.environ["HOME"])
seen = {str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("seen-")}
(home / f"seen-{sys.argv[1]}.json").write_text(json.dumps(seen))
time.sleep(600)
"""


@dataclass
class Lab:
    cluster: Cluster
    moto: MotoServer
    ec2: Any
    autoscaling: Any
    kubeconfig: Path
    groups: dict[str, str]
    """Node group name by zone."""

    @property
    def store(self) -> Any:
        return self.cluster.store

    def claim(self) -> dict[str, Any]:
        return self.store.get("persistentvolumeclaims", NS, CLAIM)

    def pv(self) -> dict[str, Any]:
        return self.store.get(
            "persistentvolumes", None, self.claim()["spec"]["volumeName"]
        )

    def home_dir(self) -> Path:
        return self.cluster.state_dir / "volumes" / self.pv()["metadata"]["name"]


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except (ApiError, KeyError, OSError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def make_pool(ec2: Any, autoscaling: Any, cluster: str) -> dict[str, str]:
    """A spot node group per zone, tagged like ``wbspawner pools apply`` does."""
    subnets = make_network(ec2, POOL.zones)
    names = create_pool(
        ec2,
        autoscaling,
        subnets,
        POOL_NAME,
        cluster=cluster,
        zones=POOL.zones,
        instance_type=ITYPE,
        capacities=("spot",),
        max_size=POOL.max_nodes,
    )
    return dict(zip(POOL.zones, names, strict=True))


@pytest.fixture
async def lab(
    moto: MotoServer, tmp_path: Path, moto_credentials: None
) -> AsyncIterator[Lab]:
    name = f"homes{uuid.uuid4().hex[:6]}"
    config = ClusterConfig(
        time_factor=0.005,
        node_boot_s=60.0,
        image_pull_s=20.0,
        scan_interval_s=10.0,
        scale_down_unneeded_s=200.0,
        snapshot_s=60.0,
        scale_up_backoff_s=60.0,
        zones=ZONES,
        cluster_name=name,
        state_dir=str(tmp_path / "state"),
    )
    cluster = Cluster(config, aws_endpoint=moto.endpoint_url)
    await cluster.start()
    try:
        assert cluster.controllers is not None, "devcluster controllers did not start"
        snapshots.install(cluster.controllers.volumes, cluster.state_dir)
        ec2, autoscaling = moto.client("ec2"), moto.client("autoscaling")
        groups = await asyncio.to_thread(make_pool, ec2, autoscaling, name)
        cluster.store.create(
            "storageclasses",
            None,
            {
                "metadata": {"name": SETTINGS.storage_class},
                "provisioner": "ebs.csi.aws.com",
                "volumeBindingMode": "WaitForFirstConsumer",
                "reclaimPolicy": "Retain",
                "allowVolumeExpansion": True,
                "parameters": {
                    "type": "gp3",
                    "encrypted": "true",
                    "csi.storage.k8s.io/fstype": "ext4",
                },
            },
        )
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", NS)
        yield Lab(cluster, moto, ec2, autoscaling, kubeconfig, groups)
    finally:
        await cluster.stop()


def user_pod(
    name: str, script: str, *args: str, zone: str | None = None
) -> dict[str, Any]:
    selector = {POOL_LABEL: POOL_NAME, **({ZONE_LABEL: zone} if zone else {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": "singleuser-server"}},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/base-notebook:latest",
                    "command": ["python", "-c", script, *args],
                    "env": [{"name": "HOME", "value": SETTINGS.mount_path}],
                    "volumeMounts": [
                        {"name": "home", "mountPath": SETTINGS.mount_path}
                    ],
                }
            ],
            "nodeSelector": selector,
            "tolerations": [
                {
                    "key": POOL_LABEL,
                    "operator": "Equal",
                    "value": POOL_NAME,
                    "effect": "NoSchedule",
                }
            ],
            "volumes": [
                {"name": "home", "persistentVolumeClaim": {"claimName": CLAIM}}
            ],
            "terminationGracePeriodSeconds": 1,
        },
    }


def digest(home: Path) -> dict[str, str]:
    return {
        str(p.relative_to(home)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(home.rglob("*"))
        if p.is_file() and not p.name.startswith("seen-")
    }


def node_zone(lab: Lab, pod: str) -> str | None:
    node = lab.store.get("pods", NS, pod)["spec"].get("nodeName")
    return (
        lab.store.get("nodes", None, node)["metadata"]["labels"][ZONE_LABEL]
        if node
        else None
    )


async def delete_pod(lab: Lab, name: str) -> None:
    lab.store.delete("pods", NS, name)
    await eventually(
        lambda: not lab.store.exists("pods", NS, name), f"pod {name} to go"
    )


async def read_home(lab: Lab, pod: str) -> dict[str, str]:
    """Start a pod that checksums the home; return what it saw."""
    lab.store.create("pods", NS, user_pod(pod, READ, pod))
    seen = await eventually(
        lambda: (lab.home_dir() / f"seen-{pod}.json").read_text(),
        f"pod {pod} to read the home",
    )
    return dict(json.loads(seen))


def zone_facts(lab: Lab) -> list[ZoneFacts]:
    found = lab.autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=list(lab.groups.values())
    )["AutoScalingGroups"]
    unavailable = set(lab.cluster.controllers.status().get("spot_unavailable") or [])
    busy = {p["spec"].get("nodeName") for p in lab.store.items_raw("pods")}
    facts = []
    for zone, name in lab.groups.items():
        group = next(g for g in found if g["AutoScalingGroupName"] == name)
        nodes = [
            n
            for n in lab.store.items_raw("nodes")
            if n["metadata"]["labels"].get(ZONE_LABEL) == zone
            and n["metadata"]["labels"].get(POOL_LABEL) == POOL_NAME
        ]
        facts.append(
            ZoneFacts(
                zone=zone,
                warm_nodes=sum(n["metadata"]["name"] not in busy for n in nodes),
                spot_available=f"{ITYPE}@{zone}" not in unavailable,
                free_nodes=group["MaxSize"] - len(group["Instances"]),
            )
        )
    return facts


def cli(lab: Lab, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    argv = [
        "home",
        *args,
        "--kubeconfig",
        str(lab.kubeconfig),
        "--namespace",
        NS,
        "--region",
        "us-east-1",
        "--endpoint-url",
        lab.moto.endpoint_url,
        "--profiles",
        str(REPO / "profiles"),
    ]
    code = main(argv, environ={}, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


async def first_spawn(lab: Lab) -> dict[str, str]:
    """Alice's first server: zone chosen, volume made there, files written."""
    choice = choose_zone(POOL, zone_facts(lab), SETTINGS.default_zone)
    assert (choice.zone, choice.reason) == (A, f"spot capacity available in {A}")
    lab.store.create(
        "persistentvolumeclaims",
        NS,
        {
            "metadata": {"name": CLAIM, "labels": {"hub.jupyter.org/username": USER}},
            "spec": {
                "storageClassName": SETTINGS.storage_class,
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )
    lab.store.create("pods", NS, user_pod("jupyter-alice", WRITE, zone=choice.zone))
    await eventually(lambda: (lab.home_dir() / ".ready").exists(), "alice's files", 30)
    assert node_zone(lab, "jupyter-alice") == A
    assert zone_of_pv(lab.pv()) == A
    volume_id = lab.pv()["spec"]["csi"]["volumeHandle"]
    volume = lab.ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert (volume["AvailabilityZone"], volume["Size"], volume["Encrypted"]) == (
        A,
        10,
        True,
    )
    return digest(lab.home_dir())


async def no_capacity_in_home_zone(lab: Lab) -> None:
    """Spot in us-east-1a runs out while a node waits in us-east-1b."""
    lab.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=lab.groups[B], MinSize=1, DesiredCapacity=1
    )
    lab.cluster.controllers.set_spot_capacity(ITYPE, A, False)

    def zones_with_nodes() -> set[str]:
        return {
            n["metadata"]["labels"].get(ZONE_LABEL)
            for n in lab.store.items_raw("nodes")
        }

    await eventually(
        lambda: zones_with_nodes() == {B}, "the node in A to go, one in B", 30
    )
    lab.store.create("pods", NS, user_pod("jupyter-alice-3", WRITE))

    def pending_message() -> str | None:
        pod = lab.store.get("pods", NS, "jupyter-alice-3")
        cond = [
            c
            for c in pod["status"].get("conditions") or []
            if c["type"] == "PodScheduled"
        ]
        return cond[0]["message"] if cond and cond[0]["status"] == "False" else None

    message = await eventually(pending_message, "the pod to be unschedulable")
    assert "volume node affinity conflict" in message
    advice = should_offer_move(A, POOL, zone_facts(lab), SETTINGS)
    assert (advice.action, advice.target_zone) == ("offer", B)
    text = no_capacity_message(message, zone_of_pv(lab.pv()), POOL, advice)
    assert text == (
        "Your home directory is stored in zone us-east-1a, and no 16 GiB node can be "
        "started there right now. Try again later, pick another size, or ask an admin "
        "to move your home to us-east-1b (your files are kept)."
    )
    await asyncio.sleep(0.3)
    assert lab.store.get("pods", NS, "jupyter-alice-3")["spec"].get("nodeName") is None
    await delete_pod(lab, "jupyter-alice-3")


async def test_home_follows_its_zone_and_moves_without_loss(lab: Lab) -> None:
    original = await first_spawn(lab)
    old_volume = lab.pv()["spec"]["csi"]["volumeHandle"]
    await delete_pod(lab, "jupyter-alice")
    assert await read_home(lab, "jupyter-alice-2") == original, (
        "files survive a restart"
    )
    assert node_zone(lab, "jupyter-alice-2") == A
    await delete_pod(lab, "jupyter-alice-2")

    await no_capacity_in_home_zone(lab)

    code, out, err = await asyncio.to_thread(
        cli, lab, "move", USER, "--zone", B, "--dry-run"
    )
    assert (code, err) == (0, ""), err
    assert "Move alice's home (jhub/home-alice) from us-east-1a to us-east-1b" in out
    assert "Dry run: nothing was changed." in out
    assert lab.claim()["spec"]["volumeName"] == lab.pv()["metadata"]["name"]
    assert zone_of_pv(lab.pv()) == A
    code, out, err = await asyncio.to_thread(
        cli, lab, "move", USER, "--zone", B, "--yes"
    )
    assert (code, err) == (0, ""), err
    assert "Moved alice's home (home-alice) from us-east-1a to us-east-1b" in out

    assert zone_of_pv(lab.pv()) == B
    assert await read_home(lab, "jupyter-alice-4") == original, (
        "byte-identical after move"
    )
    assert node_zone(lab, "jupyter-alice-4") == B
    assert digest(lab.home_dir()) == original
    old = lab.ec2.describe_volumes(VolumeIds=[old_volume])["Volumes"][0]
    assert old["AvailabilityZone"] == A, "the old volume is kept"

    code, out, _ = await asyncio.to_thread(cli, lab, "list")
    row = next(line for line in out.splitlines() if line.startswith("alice "))
    assert f" {B} " in row and " Bound " in row and row.endswith(f"from {A}")
    code, out, _ = await asyncio.to_thread(cli, lab, "show", USER, "--json")
    shown = json.loads(out)
    assert (shown["zone"], shown["server_pods"]) == (B, ["jupyter-alice-4"])
    assert [k["volume"] for k in shown["kept"]] == [old_volume]
    code, out, _ = await asyncio.to_thread(cli, lab, "show", USER)
    volume_line = next(x for x in out.splitlines() if x.startswith("volume "))
    assert code == 0 and "attached_to" not in out and "('" not in out
    # gp3 states its IOPS (and throughput, when EC2 reports one) in brackets
    described = (
        rf"{shown['volume']['volume_id']}: 10 GiB gp3( \([^)]*\))? in {B}, in-use"
    )
    assert re.search(described, volume_line), volume_line
    assert "attached to i-" in volume_line
    code, _, err = await asyncio.to_thread(cli, lab, "move", USER, "--zone", A, "--yes")
    assert code == 1 and "alice's server is running (pod jupyter-alice-4" in err
    code, _, err = await asyncio.to_thread(
        cli, lab, "move", USER, "--zone", "us-east-1z"
    )
    assert code == 1 and "zone us-east-1z is not a zone of any pool" in err
    code, out, _ = await asyncio.to_thread(cli, lab, "gc", "--dry-run")
    assert code == 0 and "kept: retained until" in out
    await delete_pod(lab, "jupyter-alice-4")


async def test_move_with_ebs_rules_waits_for_snapshots_and_explains_bad_zones(
    lab: Lab,
) -> None:
    original = await first_spawn(lab)
    await delete_pod(lab, "jupyter-alice")
    kube = await Kube.connect(str(lab.kubeconfig))
    rules = EbsRules(lab.moto.client("ec2"), zones=ZONES, snapshot_s=0.4)
    steps: list[str] = []
    mover = HomeMover(
        kube,
        Volumes(rules),
        waits=Waits(interval_s=0.05),
        on_step=lambda r: steps.append(r.step),
    )
    request = MoveRequest(namespace=NS, user=USER, target_zone="us-east-1z")
    try:
        # In the event loop the cluster runs in, as the hub would run a move.
        with pytest.raises(
            MoveFailedError,
            match=(
                r"failed at step 'volume': availability zone us-east-1z "
                r"does not exist in this region \(InvalidZone.NotFound\)"
                r".*alice stays on the old, unchanged volume"
            ),
        ):
            await mover.run(request)
        assert zone_of_pv(lab.pv()) == A and lab.claim()["status"]["phase"] == "Bound"

        started = time.monotonic()
        result = await mover.run(MoveRequest(namespace=NS, user=USER, target_zone=B))
    finally:
        await kube.close()
    assert time.monotonic() - started >= 0.4, "waited for the pending snapshot"
    assert steps[-7:] == [
        "retain",
        "snapshot",
        "volume",
        "pv",
        "claim",
        "verify",
        "record",
    ]
    assert (result.status, result.old_zone, result.zone) == ("moved", A, B)
    lab.autoscaling.update_auto_scaling_group(
        AutoScalingGroupName=lab.groups[B], MinSize=1, DesiredCapacity=1
    )
    assert await read_home(lab, "jupyter-alice-5") == original
    assert node_zone(lab, "jupyter-alice-5") == B
    await delete_pod(lab, "jupyter-alice-5")

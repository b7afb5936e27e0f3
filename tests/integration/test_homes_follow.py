"""Homes follow capacity through the hub: ``homes.auto_move`` (issue 18, part 4).

One stack for the module (slapd, devcluster with moto node groups of ``mem64`` in
us-east-1a and us-east-1b, the hub through ``jupyterhub_config.py``). A zone is
made short the way AWS shows it to Cluster Autoscaler here: its spot and
on-demand groups of the pool may not grow (maximum size 0), so the autoscaler
refuses a node there ("max node group size reached"). bob's home is in one
zone; his 64 GiB server is asked for while that zone is short. Files are
written and read through his server's Jupyter API; the move is the one
``wbspawner home move`` runs (:class:`wbspawner.homes.move.HomeMover`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from devcluster.demo.node_groups import aws_clients
from devcluster.demo.workbench import NAMESPACE, Workbench
from tests.integration.hub_harness import (
    HubUser,
    edit_profiles,
    error_on,
    hub_log,
    pod_of,
    pvc_of,
    wait_until,
)
from wbspawner.adapters.kube import Kube
from wbspawner.homes.context import MoveRequest, StepReport
from wbspawner.homes.move import HomeMover
from wbspawner.homes.policy import zone_of_pv
from wbspawner.homes.volumes import Volumes
from wbspawner.hub.automove import POOL_TAG
from wbspawner.model import POOL_LABEL, ZONE_LABEL

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.usefixtures("bob_left_stopped"),
]

A, B = "us-east-1a", "us-east-1b"
POOL, SIZE = "mem64", "large"
HOMES_FILE = "60-homes.yaml"
FILES = {
    "analysis.ipynb": b'{"cells": [], "metadata": {}, "nbformat": 4}',
    "data.bin": os.urandom(192 * 1024),
}


@pytest.fixture(scope="module")
def workbench_options() -> dict[str, Any]:
    return {"pools": [POOL], "zones": [A, B], "capacity_grace_s": 1.0, "warmer": False}


@pytest.fixture(scope="module")
def bench(workbench: Workbench) -> Iterator[Workbench]:
    yield workbench
    assert "Traceback" not in hub_log(workbench), "the hub logged a traceback"


@pytest.fixture(scope="module")
def aws(bench: Workbench) -> dict[str, Any]:
    assert bench.cluster is not None
    return aws_clients(bench.cluster.moto)


@pytest.fixture
def kube(bench: Workbench) -> Any:
    assert bench.kube is not None
    return bench.kube


def set_auto_move(bench: Workbench, on: bool) -> None:
    """Edit the running hub's homes settings; it re-reads them within a second."""
    text = (bench.profiles_dir / HOMES_FILE).read_text(encoding="utf-8")
    old, new = ("false", "true") if on else ("true", "false")
    edit_profiles(
        bench, HOMES_FILE, text.replace(f"auto_move: {old}", f"auto_move: {new}")
    )
    time.sleep(2.0)  # WBSPAWNER_PROFILES_CHECK_SECONDS is 0.5


def set_room(aws: dict[str, Any], zone: str, max_size: int) -> None:
    """Let the pool's groups (spot and on-demand) in ``zone`` grow to ``max_size``;
    0 also ends their nodes, as AWS with no capacity leaves a zone without any."""
    groups = aws["autoscaling"].describe_auto_scaling_groups(
        Filters=[{"Name": f"tag:{POOL_TAG}", "Values": [POOL]}]
    )["AutoScalingGroups"]
    mine = [g for g in groups if g["AvailabilityZones"] == [zone]]
    assert len(mine) == 2, [g["AutoScalingGroupName"] for g in mine]
    for group in mine:
        sizes = {"MinSize": 0, "MaxSize": max_size}
        if max_size == 0:
            sizes["DesiredCapacity"] = 0
        # moto's update drops a mixed instances policy it is not sent again
        # (AWS keeps it), and with it the groups' instance types; and it takes
        # the template by name or by id, not both as it describes it.
        policy = group["MixedInstancesPolicy"]
        spec = dict(policy["LaunchTemplate"]["LaunchTemplateSpecification"])
        spec.pop("LaunchTemplateId", None)
        template = {**policy["LaunchTemplate"], "LaunchTemplateSpecification": spec}
        aws["autoscaling"].update_auto_scaling_group(
            AutoScalingGroupName=group["AutoScalingGroupName"],
            MixedInstancesPolicy={**policy, "LaunchTemplate": template},
            **sizes,
        )


def pool_nodes_in(kube: Any, zone: str) -> list[str]:
    nodes = kube.get("/api/v1/nodes", labelSelector=f"{POOL_LABEL}={POOL}")["items"]
    return [
        n["metadata"]["name"]
        for n in nodes
        if n["metadata"]["labels"].get(ZONE_LABEL) == zone
    ]


def home_zone(kube: Any) -> str | None:
    claim = pvc_of(kube, "bob")
    volume = ((claim or {}).get("spec") or {}).get("volumeName")
    if not volume:
        return None
    return zone_of_pv(kube.get(f"/api/v1/persistentvolumes/{volume}"))


def volume_of(kube: Any) -> str:
    claim = pvc_of(kube, "bob")
    assert claim is not None
    pv = kube.get(f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}")
    return str(pv["spec"]["csi"]["volumeHandle"])


def contents(bench: Workbench, bob: HubUser, name: str) -> str:
    return f"{bench.url}/user/bob/api/contents/{name}"


def write_files(bench: Workbench, bob: HubUser) -> None:
    for name, data in FILES.items():
        put = requests.put(
            contents(bench, bob, name),
            json={
                "type": "file",
                "format": "base64",
                "content": base64.b64encode(data).decode(),
            },
            headers={"Authorization": f"token {bob.token()}"},
            timeout=30,
        )
        assert put.status_code in (200, 201), put.text


def read_digests(bench: Workbench, bob: HubUser) -> dict[str, str]:
    found = {}
    for name in FILES:
        got = requests.get(
            contents(bench, bob, name),
            params={"format": "base64", "type": "file"},
            headers={"Authorization": f"token {bob.token()}"},
            timeout=30,
        )
        assert got.status_code == 200, got.text
        found[name] = hashlib.sha256(
            base64.b64decode(got.json()["content"])
        ).hexdigest()
    return found


EXPECTED = {name: hashlib.sha256(data).hexdigest() for name, data in FILES.items()}


def start_with_files(
    bench: Workbench, bob: HubUser, aws: dict[str, Any], kube: Any
) -> str:
    """Both zones open; bob's server starts, his files are on his home; stopped."""
    set_room(aws, A, 10)
    set_room(aws, B, 10)
    bob.form()
    assert bob.spawn({"profile": SIZE}).status_code == 302
    try:
        bob.wait_ready(timeout=150)
        write_files(bench, bob)
        assert read_digests(bench, bob) == EXPECTED
    finally:
        bob.stop(kube)
    zone = home_zone(kube)
    assert zone in (A, B), zone
    return zone


def make_short(aws: dict[str, Any], kube: Any, zone: str) -> None:
    set_room(aws, zone, 0)
    wait_until(
        lambda: not pool_nodes_in(kube, zone), 60, f"no {POOL} node in {zone}", 0.5
    )


def test_auto_move_moves_the_home_and_the_spawn_goes_on_in_the_new_zone(
    bench: Workbench, bob: HubUser, aws: dict[str, Any], kube: Any
) -> None:
    set_auto_move(bench, True)
    try:
        home = start_with_files(bench, bob, aws, kube)
        other = B if home == A else A
        old_volume = volume_of(kube)
        make_short(aws, kube, home)

        bob.form()
        assert bob.spawn({"profile": SIZE}).status_code == 302
        events = bob.progress(timeout=150)
        assert events[-1].get("ready") is True, events[-3:]
        messages = [e.get("message", "") for e in events]
        moving = f"Moving your home to {other}: no 64 GiB node can start in {home}."
        assert any(m.startswith(moving) for m in messages), messages
        assert f"Your home is in {other} now; starting your server there" in messages
        bob.wait_ready(timeout=60)
        assert home_zone(kube) == other
        node = pod_of(kube, "bob")["spec"]["nodeName"]  # type: ignore[index]
        assert (
            kube.get(f"/api/v1/nodes/{node}")["metadata"]["labels"][ZONE_LABEL] == other
        )
        assert read_digests(bench, bob) == EXPECTED, "byte-identical after the move"
        kept = aws["ec2"].describe_volumes(VolumeIds=[old_volume])["Volumes"][0]
        assert kept["AvailabilityZone"] == home, "the old volume is kept"
    finally:
        set_room(aws, A, 10)
        set_room(aws, B, 10)


def test_a_spawn_during_a_move_is_refused_with_a_message(
    bench: Workbench, bob: HubUser, aws: dict[str, Any], kube: Any
) -> None:
    """An admin's move (``wbspawner home move``'s code) holds after its snapshot;
    bob's start meanwhile is refused, and the move then finishes."""
    home = start_with_files(bench, bob, aws, kube)
    target = B if home == A else A
    reached, release = threading.Event(), threading.Event()

    def hold(report: StepReport) -> None:
        if report.step == "snapshot":
            reached.set()
            release.wait(60)

    async def move() -> str:
        assert bench.cluster is not None
        client = await Kube.connect(str(bench.cluster.kubeconfig))
        try:
            mover = HomeMover(client, Volumes(aws["ec2"]), on_step=hold)
            request = MoveRequest(namespace=NAMESPACE, user="bob", target_zone=target)
            return (await mover.run(request)).zone
        finally:
            await client.close()

    with ThreadPoolExecutor(1) as pool:
        moved = pool.submit(asyncio.run, move())
        try:
            assert reached.wait(60), "the move did not reach its snapshot"
            bob.form()
            refused = bob.spawn({"profile": SIZE})
        finally:
            release.set()
        assert moved.result(timeout=120) == target
    assert refused.status_code != 302, refused.status_code
    # JupyterHub shows a refusal other than 400 as "Error: <message>"
    assert error_on(refused.text).endswith(
        f"Your home is being moved to {target}; try again in a few minutes. "
        "Your files are kept."
    )
    assert pod_of(kube, "bob") is None
    assert home_zone(kube) == target


def test_without_auto_move_the_refusal_offers_the_admin_the_command(
    bench: Workbench, bob: HubUser, aws: dict[str, Any], kube: Any
) -> None:
    set_auto_move(bench, False)
    try:
        home = start_with_files(bench, bob, aws, kube)
        other = B if home == A else A
        make_short(aws, kube, home)
        bob.form()
        assert bob.spawn({"profile": SIZE}).status_code == 302
        events = bob.progress(timeout=120)
        assert events[-1].get("failed") is True, events[-3:]
        message = events[-1]["message"]
        assert (
            f"A 64 GiB node can start in {other}: an admin can move your home"
            in message
        )
        assert f"`wbspawner home move bob --zone {other}`" in message
        assert home_zone(kube) == home, "nothing moved"
    finally:
        set_auto_move(bench, True)
        set_room(aws, A, 10)
        set_room(aws, B, 10)

"""Who a pod's processes run as: runAsUser, runAsGroup, fsGroup, runAsNonRoot.

As configure-pod-container/security-context/: the container's securityContext
wins over the pod's, fsGroup is a supplementary group and owns the volumes
(group read/write, setgid directories so new files get the group). Without a
runAsUser the container runs as its image's USER (SecurityContext.runAsUser:
"Defaults to user specified in image metadata if unspecified"), for the images
whose USER devcluster is told (``ClusterConfig.image_users``). These tests
need devcluster to run as root (the tests do), so processes really change user.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from devcluster.cluster import Cluster
from devcluster.config import ClusterConfig
from devcluster.kubelet.identity import Identity, RunAsError, blocked, run_as
from devcluster.kubelet.images import image_user, repository
from tests.devcluster.cluster_support import Api, wait_for
from tests.devcluster.kubelet.kubelet_support import (
    NS,
    bound_claim,
    events,
    get_pod,
    phase,
    reasons,
    script,
)

UID, GID, FS_GROUP = 4242, 4343, 4444
_WHOAMI = (
    "import os, sys\n"
    "open(sys.argv[1] + '/note', 'w').write('hi')\n"
    "print(os.getuid(), os.getgid(), sorted(os.getgroups()))\n"
)


@pytest.fixture(autouse=True)
def _as_root() -> None:
    assert os.geteuid() == 0, "these tests need root: devcluster changes users"


async def _bound_home(api: Api, cluster: Cluster) -> Path:
    await bound_claim(api, "home")
    assert cluster.kubelet is not None
    return cluster.kubelet.volume_dir("pv-home")


async def test_pod_runs_as_its_user_and_fs_group_owns_the_home(
    api: Api, cluster: Cluster
):
    """The process has the pod's uid and gid with fsGroup as a supplementary
    group, and what it writes in the volume belongs to it and to fsGroup."""
    home = await _bound_home(api, cluster)
    pod = script(
        "owned",
        _WHOAMI,
        restartPolicy="Never",
        securityContext={
            "runAsUser": UID,
            "runAsGroup": GID,
            "fsGroup": FS_GROUP,
            "runAsNonRoot": True,
        },
        container={
            "args": ["/home/jovyan"],
            "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
        },
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home"}}],
    )
    await api.call("POST", f"{NS}/pods", pod)
    await phase(api, "owned", "Succeeded")
    _, log = await api.call("GET", f"{NS}/pods/owned/log")
    assert log == f"{UID} {GID} [{FS_GROUP}]\n"
    note = (home / "note").stat()
    assert (note.st_uid, note.st_gid) == (UID, FS_GROUP)
    root = home.stat()
    assert root.st_gid == FS_GROUP and root.st_mode & 0o2070 == 0o2070


async def test_container_security_context_wins_over_the_pods(api: Api):
    pod = script(
        "override",
        "import os; print(os.getuid(), os.getgid())",
        restartPolicy="Never",
        securityContext={"runAsUser": UID, "runAsGroup": GID},
        container={"securityContext": {"runAsUser": UID + 1}},
    )
    await api.call("POST", f"{NS}/pods", pod)
    await phase(api, "override", "Succeeded")
    _, log = await api.call("GET", f"{NS}/pods/override/log")
    assert log == f"{UID + 1} {GID}\n"


async def test_run_as_non_root_refuses_root(api: Api):
    """runAsNonRoot with uid 0 is a CreateContainerConfigError; nothing runs."""
    pod = script(
        "rooted",
        "print('ran')",
        securityContext={"runAsUser": 0, "runAsNonRoot": True},
    )
    await api.call("POST", f"{NS}/pods", pod)

    async def refused() -> dict | None:
        state = (await get_pod(api, "rooted"))["status"]["containerStatuses"][0]
        waiting = state["state"].get("waiting") or {}
        return state if waiting.get("reason") == "CreateContainerConfigError" else None

    state = await wait_for(refused, 10)
    assert (
        "runAsNonRoot and image will run as root"
        in state["state"]["waiting"]["message"]
    )
    assert "Failed" in await reasons(api, "rooted")


async def test_unreachable_program_fails_to_start_with_the_reason(
    api: Api, tmp_path: Path
):
    """A program its user cannot reach is a StartError naming the directory."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    program = private / "hello"
    program.write_text("#!/bin/sh\necho hello\n")
    program.chmod(0o755)
    pod = script("blocked", "", restartPolicy="Never")
    pod["spec"]["containers"][0]["command"] = [str(program)]
    pod["spec"]["securityContext"] = {"runAsUser": UID, "runAsGroup": GID}
    await api.call("POST", f"{NS}/pods", pod)
    failed = await phase(api, "blocked", "Failed")
    term = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 128
    assert f"{private} (mode 0700" in term["message"]
    assert f"cannot be searched by uid {UID}" in term["message"]


async def test_not_root_runs_as_itself_and_warns_once(api: Api, cluster: Cluster):
    """A devcluster that is not root cannot change users: the pod runs as
    devcluster's user and a Warning event says so, once per pod."""
    assert cluster.kubelet is not None
    cluster.kubelet.runtime.current = Identity(5151, 5151)  # as if not root
    pod = script("asked", "print('ran')", restartPolicy="Never")
    pod["spec"]["securityContext"] = {"runAsUser": UID}
    pod["spec"]["initContainers"] = [{**pod["spec"]["containers"][0], "name": "setup"}]
    await api.call("POST", f"{NS}/pods", pod)
    await phase(api, "asked", "Succeeded")
    warned = [
        e for e in await events(api, "asked") if e["reason"] == "DevclusterNotRoot"
    ]
    assert len(warned) == 1 and warned[0]["type"] == "Warning"
    assert f"not as uid {UID}" in warned[0]["message"]


def test_run_as_resolves_like_the_kubelet():
    pod = {
        "metadata": {"name": "p", "namespace": "jhub", "uid": "u"},
        "spec": {
            "securityContext": {
                "runAsUser": 1000,
                "runAsGroup": 100,
                "fsGroup": 100,
                "supplementalGroups": [2000],
            }
        },
    }
    me = Identity(0, 0)
    assert run_as(pod, {}, me) == Identity(1000, 100, (100, 2000))
    assert run_as(pod, {"securityContext": {"runAsUser": 7}}, me).uid == 7
    assert run_as({"spec": {}}, {}, me) == me
    root_pod = {**pod, "spec": {"securityContext": {"runAsNonRoot": True}}}
    with pytest.raises(RunAsError, match="runAsNonRoot and image will run as root"):
        run_as(root_pod, {"name": "c"}, me)


def test_run_as_takes_the_image_user_when_the_pod_sets_none():
    """The image's USER (uid[:gid]) is the default; runAsUser/runAsGroup win."""
    me = Identity(0, 0)
    bare: dict = {"spec": {}}
    assert run_as(bare, {}, me, "1000:100") == Identity(1000, 100)
    assert run_as(bare, {}, me, "1000").uid == 1000
    assert run_as(bare, {}, me, "") == me
    own = {"securityContext": {"runAsUser": 7, "runAsGroup": 8}}
    assert run_as(bare, own, me, "1000:100") == Identity(7, 8)
    group_only = {"securityContext": {"runAsGroup": 8}}
    assert run_as(bare, group_only, me, "1000:100") == Identity(1000, 8)
    non_root = {"securityContext": {"runAsNonRoot": True}, "name": "c"}
    assert run_as(bare, non_root, me, "1000:100").uid == 1000
    with pytest.raises(RunAsError, match="image will run as root"):
        run_as(bare, non_root, me, "0:0")


def test_image_user_looks_up_the_repository_without_tag_or_digest():
    users = (("quay.io/jupyterhub/singleuser", "1000:100"), ("localhost:5000/a", "5"))
    assert repository("quay.io/jupyterhub/singleuser:5.2") == (
        "quay.io/jupyterhub/singleuser"
    )
    assert repository("localhost:5000/a") == "localhost:5000/a"
    assert repository("localhost:5000/a@sha256:ab") == "localhost:5000/a"
    assert image_user(users, "quay.io/jupyterhub/singleuser:latest") == "1000:100"
    assert image_user(users, "quay.io/jupyterhub/singleuser") == "1000:100"
    assert image_user(users, "localhost:5000/a:1") == "5"
    assert image_user(users, "quay.io/jupyterhub/jupyterhub:latest") == ""


@pytest.fixture
async def image_user_api(
    fast_config: ClusterConfig, client: aiohttp.ClientSession
) -> AsyncIterator[Api]:
    config = replace(fast_config, image_users=(("example.org/jovyan", f"{UID}:{GID}"),))
    async with Cluster(config, controllers=False) as cluster:
        yield Api(client, cluster.url)


async def test_container_without_run_as_user_runs_as_its_images_user(
    image_user_api: Api,
):
    """An image with a known USER runs as it; runAsUser overrides it (and its
    group with it); another image runs as devcluster itself (root here)."""
    api = image_user_api
    probe = "import os; print(os.getuid(), os.getgid())"
    image = {"image": "example.org/jovyan:2026-01"}
    pods = {
        "imaged": script("imaged", probe, restartPolicy="Never", container=image),
        "chosen": script(
            "chosen",
            probe,
            restartPolicy="Never",
            container={**image, "securityContext": {"runAsUser": UID + 1}},
        ),
        "other": script("other", probe, restartPolicy="Never"),
    }
    for pod in pods.values():
        await api.call("POST", f"{NS}/pods", pod)
    expected = {
        "imaged": f"{UID} {GID}\n",
        "chosen": f"{UID + 1} 0\n",  # runAsUser's own group: no passwd entry
        "other": "0 0\n",
    }
    for name, log in expected.items():
        await phase(api, name, "Succeeded")
        assert (await api.call("GET", f"{NS}/pods/{name}/log"))[1] == log


def test_blocked_names_the_directory():
    with tempfile.TemporaryDirectory() as top:  # in /tmp, which anyone may search
        os.chmod(top, 0o711)
        _check_blocked(Path(top))


def _check_blocked(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    (closed / "f").write_text("x")
    who = Identity(UID, GID)
    assert blocked(str(closed / "f"), Identity(0, 0)) is None
    assert f"{closed} (mode 0700" in (blocked(str(closed / "f"), who) or "")
    closed.chmod(0o701)
    assert blocked(str(closed / "f"), who) is None
    assert "cannot be executed" in (blocked(str(closed / "f"), who, execute=True) or "")

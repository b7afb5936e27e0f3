"""Who a pod's processes run as: runAsUser, runAsGroup, fsGroup, runAsNonRoot.

As configure-pod-container/security-context/: the container's securityContext
wins over the pod's, fsGroup is a supplementary group and owns the volumes
(group read/write, setgid directories so new files get the group). These tests
need devcluster to run as root (the tests do), so processes really change user.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from devcluster.cluster import Cluster
from devcluster.kubelet.identity import Identity, RunAsError, blocked, run_as
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

"""Pure builders of what the kubelet reports: container states, pod conditions, node.

The shapes are complete ``V1ContainerStatus`` / pod condition / node status
objects as a real kubelet posts them, because clients (kubernetes_asyncio,
KubeSpawner) reject partial ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from devcluster.timestamps import now_iso


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    """Return a container ``state`` of waiting."""
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def running(started_at: str) -> dict[str, Any]:
    """Return a container ``state`` of running."""
    return {"running": {"startedAt": started_at}}


def terminated(
    exit_code: int, started_at: str, container_id: str, reason: str = ""
) -> dict[str, Any]:
    """Return a container ``state`` of terminated."""
    return {
        "terminated": {
            "exitCode": exit_code,
            "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "startedAt": started_at,
            "finishedAt": now_iso(),
            "containerID": container_id,
        }
    }


def container_status(
    container: Mapping[str, Any],
    state: dict[str, Any],
    *,
    ready: bool = False,
    restart_count: int = 0,
    container_id: str = "",
    last_state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Return a complete ``V1ContainerStatus`` (clients reject partial ones)."""
    image = str(container.get("image", ""))
    status: dict[str, Any] = {
        "name": container.get("name", ""),
        "image": image,
        "imageID": f"docker-pullable://{image.split(':')[0]}@sha256:{'0' * 64}",
        "ready": ready,
        "restartCount": restart_count,
        "started": "running" in state,
        "state": state,
        "lastState": last_state or {},
    }
    if container_id:
        status["containerID"] = container_id
    return status


def condition(
    kind: str, ok: bool, reason: str = "", message: str = ""
) -> dict[str, Any]:
    """Return one pod condition."""
    cond: dict[str, Any] = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now_iso(),
    }
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def pod_conditions(
    sandbox: bool, ready: bool, names: list[str], done: str = ""
) -> list[dict[str, Any]]:
    """Return the conditions of a scheduled pod (``done``: PodCompleted/PodFailed)."""
    reason = done or ("" if ready else "ContainersNotReady")
    message = (
        "" if ready or done else f"containers with unready status: [{' '.join(names)}]"
    )
    return [
        condition("PodReadyToStartContainers", sandbox and not done),
        condition("Initialized", True),
        condition("Ready", ready, reason, message),
        condition("ContainersReady", ready, reason, message),
        condition("PodScheduled", True),
    ]


_NODE_INFO = {
    "kubeletVersion": "v1.33.0-devcluster",
    "kubeProxyVersion": "v1.33.0-devcluster",
    "containerRuntimeVersion": "devcluster://1.0",
    "osImage": "Amazon Linux 2023 (devcluster)",
    "operatingSystem": "linux",
    "architecture": "amd64",
    "machineID": "",
    "systemUUID": "",
    "bootID": "",
}
_PRESSURE = (
    ("MemoryPressure", "SufficientMemory", "sufficient memory available"),
    ("DiskPressure", "NoDiskPressure", "no disk pressure"),
    ("PIDPressure", "SufficientPID", "sufficient PID available"),
)


def node_ready_status(name: str, status: dict[str, Any]) -> dict[str, Any]:
    """Return the status a kubelet posts for a healthy node it registers."""
    stamp = now_iso()
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": f"KubeletHas{reason}",
            "message": f"kubelet has {text}",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, reason, text in _PRESSURE
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True",
            "reason": "KubeletReady",
            "message": "kubelet is posting ready status",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    patch: dict[str, Any] = {"conditions": conditions}
    if not status.get("addresses"):
        patch["addresses"] = [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ]
    info = {**_NODE_INFO, "kernelVersion": os.uname().release}
    patch["nodeInfo"] = {**info, **(status.get("nodeInfo") or {})}
    return patch

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
    exit_code: int,
    started_at: str,
    container_id: str,
    reason: str = "",
    message: str = "",
) -> dict[str, Any]:
    """Return a container ``state`` of terminated."""
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": started_at,
        "finishedAt": now_iso(),
        "containerID": container_id,
    }
    if message:
        state["message"] = message
    return {"terminated": state}


def container_status(
    container: Mapping[str, Any],
    state: dict[str, Any],
    *,
    ready: bool = False,
    restart_count: int = 0,
    container_id: str = "",
    last_state: dict[str, Any] | None = None,
    started: bool | None = None,
) -> dict[str, Any]:
    """Return a complete ``V1ContainerStatus`` (clients reject partial ones).

    ``started`` defaults to "the container is running" (no startupProbe).
    """
    image = str(container.get("image", ""))
    status: dict[str, Any] = {
        "name": container.get("name", ""),
        "image": image,
        "imageID": f"docker-pullable://{image.split(':')[0]}@sha256:{'0' * 64}",
        "ready": ready,
        "restartCount": restart_count,
        "started": ("running" in state) if started is None else started,
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
    sandbox: bool,
    ready: bool,
    names: list[str],
    done: str = "",
    uninitialized: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Return the conditions of a scheduled pod.

    Args:
        sandbox: the pod's sandbox (IP, volumes) is up.
        ready: every container is ready.
        names: the containers that are not ready.
        done: ``PodCompleted``/``PodFailed`` once the pod has finished.
        uninitialized: init containers that have not completed yet.
    """
    reason = done or ("" if ready else "ContainersNotReady")
    message = (
        "" if ready or done else f"containers with unready status: [{' '.join(names)}]"
    )
    waiting_init = uninitialized or []
    init_message = (
        f"containers with incomplete status: [{' '.join(waiting_init)}]"
        if waiting_init
        else ""
    )
    return [
        condition("PodReadyToStartContainers", sandbox and not done),
        condition(
            "Initialized",
            not waiting_init,
            "ContainersNotInitialized" if waiting_init else "",
            init_message,
        ),
        condition("Ready", ready, reason, message),
        condition("ContainersReady", ready, reason, message),
        condition("PodScheduled", True),
    ]


def keep_transitions(
    new: list[dict[str, Any]], old: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` of conditions whose status did not change."""
    before = {c.get("type"): c for c in old}
    out = []
    for cond in new:
        prev = before.get(cond["type"])
        if prev is not None and prev.get("status") == cond["status"]:
            cond = {**cond, "lastTransitionTime": prev.get("lastTransitionTime")}
        out.append(cond)
    return out


def _restartable(container: Mapping[str, Any]) -> bool:
    return container.get("restartPolicy") == "Always"


def pod_phase(
    spec: Mapping[str, Any],
    init_statuses: Mapping[str, Mapping[str, Any]],
    statuses: Mapping[str, Mapping[str, Any]],
    terminal: bool = False,
) -> str:
    """Return the pod phase from its container statuses, as the kubelet's getPhase.

    Args:
        spec: the pod spec.
        init_statuses: init container statuses by name.
        statuses: container statuses by name.
        terminal: the pod is being torn down (deleted, or its node is gone):
            since Kubernetes 1.27 the kubelet then reports Succeeded or Failed.
    """
    policy = spec.get("restartPolicy") or "Always"
    pending_init = failed_init = 0
    for container in spec.get("initContainers") or []:
        st = init_statuses.get(container["name"])
        state = (st or {}).get("state") or {}
        if _restartable(container):
            if st is None or not st.get("started"):
                pending_init += 1
            continue
        last = ((st or {}).get("lastState") or {}).get("terminated")
        if "terminated" in state:
            failed_init += state["terminated"].get("exitCode", 0) != 0
        elif "waiting" in state and last:
            failed_init += last.get("exitCode", 0) != 0
        else:
            pending_init += 1
    unknown = running = waiting = stopped = succeeded = 0
    for container in spec.get("containers") or []:
        st = statuses.get(container["name"])
        state = (st or {}).get("state") or {}
        last = ((st or {}).get("lastState") or {}).get("terminated")
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode", 0) == 0
        elif "waiting" in state:
            if last:
                stopped += 1
            else:
                waiting += 1
        else:
            unknown += 1
    if failed_init and (policy == "Never" or terminal):
        return "Failed"
    if terminal:
        return "Succeeded" if stopped and stopped == succeeded else "Failed"
    if pending_init:
        return "Pending"
    if waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if not running and stopped and not unknown:
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"
    return "Pending"


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

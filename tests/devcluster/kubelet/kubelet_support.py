"""Helpers of the kubelet tests: pods by command, bound claims, status and Events."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from tests.devcluster.cluster_support import Api, pod_manifest, wait_for

NS = "/api/v1/namespaces/jhub"
PY = sys.executable


def server(name: str, port: int = 8888, **spec: Any) -> dict[str, Any]:
    """A pod whose container serves HTTP on ``port`` (bound to 0.0.0.0).

    Its readiness probe connects to the port: without one a container is
    ready once it runs, before the server listens (as in Kubernetes), and a
    test that connects when the pod is ready would race the server's start.
    """
    cmd = [PY, "-m", "http.server", "--bind", "0.0.0.0", str(port)]
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 1}
    container = {"ports": [{"containerPort": port}], "readinessProbe": probe}
    return pod_manifest(name, cmd, container=container, **spec)


def script(name: str, code: str, **spec: Any) -> dict[str, Any]:
    """A pod whose container runs ``python -c code``."""
    return pod_manifest(name, [PY, "-c", code], **spec)


def container(name: str, code: str, **extra: Any) -> dict[str, Any]:
    """A container spec running ``python -c code``."""
    return {"name": name, "image": "python:3.11", "command": [PY, "-c", code], **extra}


async def bound_claim(api: Api, name: str) -> None:
    """Make claim ``name`` in jhub, bound to a 1 GiB volume ``pv-<name>``."""
    pv = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"pv-{name}"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": "/unused"},
        },
    }
    assert (await api.call("POST", "/api/v1/persistentvolumes", pv))[0] == 201
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "volumeName": f"pv-{name}",
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    assert (await api.call("POST", f"{NS}/persistentvolumeclaims", pvc))[0] == 201
    await api.call(
        "PATCH",
        f"{NS}/persistentvolumeclaims/{name}/status",
        {"status": {"phase": "Bound"}},
        "application/merge-patch+json",
    )


async def watch_pod(
    api: Api, name: str, resource_version: str, seconds: int
) -> asyncio.Future[Any]:
    """Watch pod ``name``'s changes after ``resource_version`` for ``seconds``.

    Returns the watch (its events once it ends) after giving it time to open.
    """
    watch = asyncio.ensure_future(
        api.watch(
            f"{NS}/pods?watch=true&resourceVersion={resource_version}"
            f"&fieldSelector=metadata.name%3D{name}&timeoutSeconds={seconds}",
            timeout=5 * seconds,
        )
    )
    await asyncio.sleep(0.1)
    return watch


async def get_pod(api: Api, name: str) -> dict[str, Any]:
    status, pod = await api.call("GET", f"{NS}/pods/{name}")
    assert status == 200, pod
    return pod


async def ready(api: Api, name: str, timeout: float = 15) -> dict[str, Any]:
    """Wait until every container of the pod is ready."""

    async def check() -> dict[str, Any] | None:
        pod = await get_pod(api, name)
        statuses = pod["status"].get("containerStatuses") or []
        return pod if statuses and all(c["ready"] for c in statuses) else None

    return await wait_for(check, timeout)


async def phase(
    api: Api, name: str, wanted: str, timeout: float = 15
) -> dict[str, Any]:
    """Wait until the pod is in phase ``wanted``."""

    async def check() -> dict[str, Any] | None:
        pod = await get_pod(api, name)
        return pod if pod["status"]["phase"] == wanted else None

    return await wait_for(check, timeout)


async def events(api: Api, name: str) -> list[dict[str, Any]]:
    """The Events about a pod, oldest first."""
    _, found = await api.call(
        "GET", f"{NS}/events?fieldSelector=involvedObject.name%3D{name}"
    )
    return list(found["items"])


async def reasons(api: Api, name: str) -> list[str]:
    """The reasons of the Events about a pod, oldest first."""
    return [e["reason"] for e in await events(api, name)]


async def missing(api: Api, name: str) -> bool:
    status, _ = await api.call("GET", f"{NS}/pods/{name}")
    return status == 404


def alive(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read
        return False


def status_of(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    """The status of one container (or init container) of a pod."""
    key = "initContainerStatuses" if init else "containerStatuses"
    for found in pod["status"].get(key) or []:
        if found["name"] == name:
            return dict(found)
    raise AssertionError(f"no status for {name} in {pod['status']}")

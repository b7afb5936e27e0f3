"""Pure helpers of the kubelet: container env, path and IP rewriting, pod status.

A pod's container runs as a local process, so what a container would see
through mounts and its own network namespace is translated:

* Paths: container paths under a volume's ``mountPath`` (in args and env
  values) are rewritten to the host directory that backs the volume.
* Addresses: ``0.0.0.0`` in args and env values (e.g. JupyterHub's
  ``JUPYTERHUB_SERVICE_URL=http://0.0.0.0:8888/...``) becomes the pod IP, a
  loopback address of its own, so pods can all listen on the same port.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from devcluster.timestamps import now_iso

Lookup = Callable[[str, str, str], dict[str, Any] | None]
"""``(plural, namespace, name) -> object or None``."""

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)|\$\$")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` references like the kubelet (``$$`` escapes a ``$``)."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR_REF.sub(repl, text)


def _field_ref(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return str(simple[path])
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    return ""


def _resource_ref(container: Mapping[str, Any], ref: Mapping[str, Any]) -> str:
    resource = str(ref.get("resource", ""))
    kind, _, name = resource.partition(".")
    value = ((container.get("resources") or {}).get(kind) or {}).get(name)
    if value is None:
        return "0"
    from devcluster.quantity import parse_quantity

    amount = parse_quantity(value)
    divisor = parse_quantity(ref.get("divisor") or "1")
    return str(math.ceil(amount / divisor))


def _key_ref(
    lookup: Lookup, plural: str, namespace: str, ref: Mapping[str, Any]
) -> str | None:
    obj = lookup(plural, namespace, str(ref.get("name", "")))
    if obj is None:
        return None
    data = obj.get("data") or {}
    value = data.get(ref.get("key"))
    if value is None:
        return None
    return base64.b64decode(value).decode() if plural == "secrets" else str(value)


def _from_source(
    lookup: Lookup, namespace: str, source: Mapping[str, Any]
) -> dict[str, str]:
    out: dict[str, str] = {}
    prefix = str(source.get("prefix") or "")
    for plural, field in (("configmaps", "configMapRef"), ("secrets", "secretRef")):
        ref = source.get(field)
        if not ref:
            continue
        obj = lookup(plural, namespace, str(ref.get("name", ""))) or {}
        for key, value in (obj.get("data") or {}).items():
            text = (
                base64.b64decode(value).decode() if plural == "secrets" else str(value)
            )
            out[prefix + key] = text
    return out


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    lookup: Lookup,
    pod_ip: str,
    host_ip: str,
) -> dict[str, str]:
    """Return the env a container gets: ``envFrom``, then ``env`` (with refs)."""
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        env.update(_from_source(lookup, namespace, source))
    for var in container.get("env") or []:
        name = str(var.get("name"))
        if "value" in var:
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        ref = var.get("valueFrom") or {}
        value: str | None = ""
        if "fieldRef" in ref:
            value = _field_ref(
                pod, str(ref["fieldRef"].get("fieldPath", "")), pod_ip, host_ip
            )
        elif "resourceFieldRef" in ref:
            value = _resource_ref(container, ref["resourceFieldRef"])
        elif "secretKeyRef" in ref:
            value = _key_ref(lookup, "secrets", namespace, ref["secretKeyRef"])
        elif "configMapKeyRef" in ref:
            value = _key_ref(lookup, "configmaps", namespace, ref["configMapKeyRef"])
        if value is not None:
            env[name] = value
    return env


def rewrite(value: str, mounts: Mapping[str, str], pod_ip: str) -> str:
    """Map container paths to host directories and ``0.0.0.0`` to the pod IP."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if mount_path in ("", "/"):
            continue
        pattern = r"(^|[=:])" + re.escape(mount_path.rstrip("/")) + r"(?=/|$|:)"
        host = mounts[mount_path].replace("\\", "\\\\")
        value = re.sub(pattern, r"\g<1>" + host, value)
    return value.replace("0.0.0.0", pod_ip)


def map_path(path: str, mounts: Mapping[str, str]) -> str | None:
    """Return the host path of a container path under a mount, or None."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        base = mount_path.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return mounts[mount_path] + path[len(base) :]
    return None


def readiness_port(container: Mapping[str, Any], env: Mapping[str, str]) -> int | None:
    """Return the port that must accept TCP before the container is Ready."""
    for port in container.get("ports") or []:
        if port.get("containerPort"):
            return int(port["containerPort"])
    url = env.get("JUPYTERHUB_SERVICE_URL")
    if url:
        parsed = urlsplit(url)
        if parsed.port:
            return parsed.port
    return None


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

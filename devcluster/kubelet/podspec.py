"""Pure helpers of the kubelet: a container's env, and path and IP rewriting.

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
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from devcluster.quantity import parse_quantity

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


def rewrite_paths(value: str, mounts: Mapping[str, str]) -> str:
    """Map container paths under a mount (alone, or after ``=``/``:``) to host ones."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if mount_path in ("", "/"):
            continue
        pattern = r"(^|[=:])" + re.escape(mount_path.rstrip("/")) + r"(?=/|$|:)"
        host = mounts[mount_path].replace("\\", "\\\\")
        value = re.sub(pattern, r"\g<1>" + host, value)
    return value


def rewrite(value: str, mounts: Mapping[str, str], pod_ip: str) -> str:
    """Map container paths to host directories and ``0.0.0.0`` to the pod IP."""
    return rewrite_paths(value, mounts).replace("0.0.0.0", pod_ip)


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

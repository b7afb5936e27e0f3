"""Pure helpers of the kubelet: a container's env, and path and IP rewriting.

* Env: the Service environment variables (``service_env``), then ``envFrom``,
  then ``env`` with its references, in the kubelet's order of precedence.

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
from collections.abc import Callable, Iterable, Mapping
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


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def _link_vars(service: Mapping[str, Any]) -> dict[str, str]:
    spec = service.get("spec") or {}
    ip, prefix = str(spec.get("clusterIP")), _env_name(service["metadata"]["name"])
    found: dict[str, str] = {}
    for index, port in enumerate(spec.get("ports") or []):
        proto = str(port.get("protocol") or "TCP")
        url = f"{proto.lower()}://{ip}:{port['port']}"
        if index == 0:
            found[f"{prefix}_PORT"] = url  # docker special-cases the first port
        base = f"{prefix}_PORT_{port['port']}_{proto.upper()}"
        found[base] = url
        found[f"{base}_PROTO"] = proto.lower()
        found[f"{base}_PORT"] = str(port["port"])
        found[f"{base}_ADDR"] = ip
    return found


def service_env(
    services: Iterable[Mapping[str, Any]], namespace: str, links: bool = True
) -> dict[str, str]:
    """Return the Service environment variables a pod of ``namespace`` gets.

    As the kubelet (``pkg/kubelet/envvars``): for each Service of the pod's
    namespace (with ``enableServiceLinks``, the default) and always for the
    ``kubernetes`` Service of ``default``, unless headless:
    ``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT`` (first port),
    ``<NAME>_SERVICE_PORT_<PORTNAME>`` and the docker-link variables
    ``<NAME>_PORT``, ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``. Names
    are upper case with ``-`` as ``_``. Only Services that exist when the
    container starts are there, as in a cluster.
    """
    chosen: dict[str, Mapping[str, Any]] = {}
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        if spec.get("clusterIP") in (None, "", "None") or not spec.get("ports"):
            continue
        name = str(meta.get("name", ""))
        if meta.get("namespace") == "default" and name == "kubernetes":
            chosen.setdefault(name, service)
        elif meta.get("namespace") == namespace and links:
            chosen[name] = service
    env: dict[str, str] = {}
    for name, service in sorted(chosen.items()):
        spec = service["spec"]
        prefix = _env_name(name)
        env[f"{prefix}_SERVICE_HOST"] = str(spec["clusterIP"])
        env[f"{prefix}_SERVICE_PORT"] = str(spec["ports"][0]["port"])
        for port in spec["ports"]:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(
                    port["port"]
                )
        env.update(_link_vars(service))
    return env


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    lookup: Lookup,
    pod_ip: str,
    host_ip: str,
    services: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the env a container gets: Services, ``envFrom``, ``env`` (with refs).

    ``services`` are the Service variables (``service_env``); the container's
    own variables win over them, and ``$(VAR)`` may refer to them.
    """
    namespace = str((pod.get("metadata") or {}).get("namespace", ""))
    env: dict[str, str] = dict(services or {})
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

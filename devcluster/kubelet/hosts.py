"""Each pod's ``/etc/hosts``: devcluster's stand-in for cluster DNS.

The kubelet manages a pod's ``/etc/hosts`` (localhost, the pod's own IP and
hostname, ``hostAliases``). devcluster has no DNS server a process could be
pointed at without changing the machine's resolver, so the same file also names
every Service the way cluster DNS answers for them: ``<svc>.<ns>``,
``<svc>.<ns>.svc``, ``<svc>.<ns>.svc.cluster.local``, and plain ``<svc>`` for
Services of the pod's own namespace (its DNS search path). A Service's cluster
IP is a loopback address served by devcluster's kube-proxy; a headless Service
names its ready endpoints. Every program resolves through the C library (Python,
Node.js, Go with cgo or its own ``/etc/hosts`` reader), so
``http://hub:8081`` or ``proxy-api:8001`` reach their Services from any pod.

The file is bind-mounted on ``/etc/hosts`` in a mount namespace of the pod's
processes (``devcluster.kubelet.mountns``), which needs root; without root pods
see the machine's own ``/etc/hosts`` and only the Service environment variables
(``<SVC>_SERVICE_HOST``) lead to Services. ``HostsFiles`` rewrites the files of
running pods in place (same inode, so the bind mount sees it) when Services or
their endpoints change, as DNS answers follow them.
"""

from __future__ import annotations

import logging
import socket
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SERVICE_NAME = "kubernetes.io/service-name"

_HEADER = """# Kubernetes-managed hosts file.
127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
fe00::0\tip6-mcastprefix
fe00::1\tip6-allnodes
fe00::2\tip6-allrouters
"""


def service_entries(
    services: Iterable[Mapping[str, Any]],
    slices: Iterable[Mapping[str, Any]],
    namespace: str,
    domain: str = "cluster.local",
) -> list[tuple[str, tuple[str, ...]]]:
    """Return ``(ip, names)`` of every Service, as cluster DNS would answer them.

    Each Service is ``<name>.<namespace>``, ``<name>.<namespace>.svc`` and
    ``<name>.<namespace>.svc.<domain>``, and plain ``<name>`` in the pod's own
    ``namespace`` (the pod's DNS search path). A headless Service names its
    ready endpoints instead of a cluster IP.
    """
    headless: dict[tuple[str, str], list[str]] = defaultdict(list)
    for slice_ in slices:
        meta = slice_.get("metadata") or {}
        name = (meta.get("labels") or {}).get(SERVICE_NAME)
        if not name:
            continue
        for endpoint in slice_.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is not False:
                headless[(str(meta.get("namespace", "")), str(name))] += [
                    str(a) for a in endpoint.get("addresses") or []
                ]
    entries = []
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        ns, name = str(meta.get("namespace", "")), str(meta.get("name", ""))
        names = (f"{name}.{ns}.svc.{domain}", f"{name}.{ns}.svc", f"{name}.{ns}")
        if ns == namespace:
            names += (name,)
        ip = spec.get("clusterIP")
        if ip and ip != "None":
            entries.append((str(ip), names))
        elif ip == "None":
            entries += [
                (address, names) for address in sorted(set(headless[(ns, name)]))
            ]
    return sorted(entries, key=lambda e: (e[1][0], e[0]))


def hosts_text(
    pod: Mapping[str, Any],
    pod_ip: str,
    services: list[tuple[str, tuple[str, ...]]],
    machine: str | None = None,
) -> str:
    """Return a pod's ``/etc/hosts``: the kubelet's part, then the Services.

    A pod's own hostname names its IP. A pod process here has no UTS namespace:
    ``gethostname()`` answers this machine's name (``machine``, default
    :func:`socket.gethostname`), so that name stands beside the pod's, as the
    name a process finds for itself (JupyterHub waits for its proxy at it).
    """
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = str(spec.get("hostname") or meta.get("name", ""))
    names = [hostname]
    own = socket.gethostname() if machine is None else machine
    if own and own not in ("localhost", hostname):
        names.append(own)
    if spec.get("subdomain"):
        namespace = meta.get("namespace", "")
        names.insert(0, f"{hostname}.{spec['subdomain']}.{namespace}.svc.cluster.local")
    lines = [_HEADER.rstrip("\n"), f"{pod_ip}\t{' '.join(names)}"]
    aliases = spec.get("hostAliases") or []
    if aliases:
        lines.append("\n# Entries added by HostAliases.")
        lines += [
            f"{a.get('ip')}\t{chr(9).join(a.get('hostnames') or [])}" for a in aliases
        ]
    if services:
        lines.append("\n# devcluster: Services, as cluster DNS names them.")
        lines += [f"{ip}\t{' '.join(names)}" for ip, names in services]
    return "\n".join(lines) + "\n"


def write_in_place(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` keeping its inode (a bind mount follows it)."""
    if not path.exists():
        path.write_text(text)
        path.chmod(0o644)
        return
    with path.open("r+") as out:
        if out.read() == text:
            return
        out.seek(0)
        out.write(text)
        out.truncate()


class HostsFiles:
    """The ``/etc/hosts`` files of the pods this kubelet runs, kept current.

    Args:
        store: the cluster's objects (Services and EndpointSlices are read).
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._pods: dict[str, tuple[Path, Mapping[str, Any], str]] = {}

    def _services(self, namespace: str) -> list[tuple[str, tuple[str, ...]]]:
        return service_entries(
            self.store.items_raw("services"),
            self.store.items_raw("endpointslices"),
            namespace,
        )

    def write(self, uid: str, path: Path, pod: Mapping[str, Any], pod_ip: str) -> Path:
        """Write a pod's hosts file and keep it current until ``forget``."""
        self._pods[uid] = (path, pod, pod_ip)
        namespace = str((pod.get("metadata") or {}).get("namespace", ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        write_in_place(path, hosts_text(pod, pod_ip, self._services(namespace)))
        return path

    def forget(self, uid: str) -> None:
        """Stop keeping a pod's hosts file."""
        self._pods.pop(uid, None)

    def refresh(self) -> None:
        """Rewrite every kept hosts file that changed (Services moved)."""
        by_namespace: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        for path, pod, pod_ip in list(self._pods.values()):
            namespace = str((pod.get("metadata") or {}).get("namespace", ""))
            if namespace not in by_namespace:
                by_namespace[namespace] = self._services(namespace)
            try:
                write_in_place(path, hosts_text(pod, pod_ip, by_namespace[namespace]))
            except OSError as exc:
                log.info("kubelet: hosts file %s not updated: %s", path, exc)

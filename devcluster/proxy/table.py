"""What each Service port forwards to: kube-proxy's service table. Pure.

A Service with a cluster IP (not headless) gets, for each TCP port, a frontend
``(clusterIP, port)``. Its backends are the endpoints of the Service's
EndpointSlices (label ``kubernetes.io/service-name``) for the slice port of the
same name: the ready ones, or when there are none, the serving ones that are
terminating (kube-proxy's ProxyTerminatingEndpoints). A frontend without
backends still exists: a connection to it is refused (reset), as kube-proxy
rejects traffic to a Service without endpoints.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

SERVICE_NAME = "kubernetes.io/service-name"

Frontend = tuple[str, int]
"""(cluster IP, port)."""
Backend = tuple[str, int]
"""(pod IP, port)."""


@dataclass(frozen=True)
class ServicePort:
    """One Service port as kube-proxy serves it."""

    namespace: str
    service: str
    port_name: str
    backends: tuple[Backend, ...] = field(default=())


def _backends(
    slices: Iterable[Mapping[str, Any]], port_name: str
) -> tuple[Backend, ...]:
    ready: list[Backend] = []
    serving: list[Backend] = []
    for slice_ in slices:
        number = next(
            (
                int(p["port"])
                for p in slice_.get("ports") or []
                if str(p.get("name") or "") == port_name and p.get("port")
            ),
            None,
        )
        if number is None:
            continue
        for endpoint in slice_.get("endpoints") or []:
            conditions = endpoint.get("conditions") or {}
            for ip in endpoint.get("addresses") or []:
                if conditions.get("ready") is not False:  # unset means ready
                    ready.append((str(ip), number))
                elif conditions.get("serving") and conditions.get("terminating"):
                    serving.append((str(ip), number))
    return tuple(sorted(ready or serving))


def service_table(
    services: Iterable[Mapping[str, Any]], slices: Iterable[Mapping[str, Any]]
) -> dict[Frontend, ServicePort]:
    """Return every frontend of the cluster and what it forwards to."""
    by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for slice_ in slices:
        meta = slice_.get("metadata") or {}
        name = (meta.get("labels") or {}).get(SERVICE_NAME)
        if name:
            by_service[(str(meta.get("namespace", "")), str(name))].append(slice_)
    table: dict[Frontend, ServicePort] = {}
    for service in services:
        meta, spec = service.get("metadata") or {}, service.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None" or spec.get("type") == "ExternalName":
            continue
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        for port in spec.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP":
                continue  # UDP and SCTP are not proxied
            name = str(port.get("name") or "")
            table[(str(ip), int(port["port"]))] = ServicePort(
                key[0], key[1], name, _backends(by_service.get(key, []), name)
            )
    return table

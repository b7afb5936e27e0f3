"""Which pods serve a Service, as EndpointSlices and Endpoints. Pure.

After the EndpointSlice and Endpoints controllers of kube-controller-manager
(``pkg/controller/endpointslice``, ``pkg/controller/endpoint``, 1.33):

* A Service with a ``selector`` is served by the pods of its namespace whose
  labels include the selector, that have a pod IP and have not finished. A
  Service without one is left to whoever manages its endpoints (the
  ``kubernetes`` Service is the API server's).
* Each Service port's ``targetPort`` is resolved per pod: a number as it is, a
  name through the pod's container ports of that name and protocol; a pod
  without the named port does not serve that Service port.
* Conditions: ``ready`` (the pod is Ready and not being deleted, or the Service
  has ``publishNotReadyAddresses``), ``serving`` (Ready, even while being
  deleted) and ``terminating``. Endpoints list ready pods under ``addresses``,
  the others under ``notReadyAddresses``, and leave terminating pods out.
* One EndpointSlice per set of resolved ports (usually one), labelled
  ``kubernetes.io/service-name`` and managed by the EndpointSlice controller,
  owned by the Service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from devcluster.controllers.predicates import is_terminal, is_terminating, meta_of
from devcluster.controllers.workloads.replicasets import is_ready, owner_reference

Obj = dict[str, Any]

SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
SLICE_CONTROLLER = "endpointslice-controller.k8s.io"
ENDPOINTS_MANAGED_BY = "endpoints.kubernetes.io/managed-by"
ENDPOINTS_CONTROLLER = "endpoint-controller"

Port = tuple[str, int, str]
"""(name, port, protocol) of one resolved Service port."""


@dataclass(frozen=True)
class Address:
    """One pod serving a Service."""

    ip: str
    pod: str
    uid: str
    node: str
    ready: bool
    serving: bool
    terminating: bool
    ports: tuple[Port, ...]


def selects(service: Mapping[str, Any]) -> bool:
    """Tell whether the endpoints controllers manage this Service's endpoints."""
    return bool((service.get("spec") or {}).get("selector"))


def resolve_port(port: Mapping[str, Any], pod: Mapping[str, Any]) -> int | None:
    """Return the pod port a Service port's ``targetPort`` names (None if none)."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int):
        return target
    text = str(target)
    if text.isdigit():
        return int(text)
    protocol = port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for declared in container.get("ports") or []:
            if (
                declared.get("name") == text
                and declared.get("protocol", "TCP") == protocol
            ):
                return int(declared["containerPort"])
    return None


def addresses(
    service: Mapping[str, Any], pods: Iterable[Mapping[str, Any]]
) -> list[Address]:
    """Return the pods serving ``service`` (of its namespace), by pod name."""
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    namespace = meta_of(service).get("namespace")
    publish = bool(spec.get("publishNotReadyAddresses"))
    found = []
    for pod in pods:
        meta = meta_of(pod)
        labels = meta.get("labels") or {}
        ip = (pod.get("status") or {}).get("podIP")
        if (
            meta.get("namespace") != namespace
            or not ip
            or is_terminal(pod)
            or any(labels.get(k) != v for k, v in selector.items())
        ):
            continue
        ports = []
        for port in spec.get("ports") or []:
            number = resolve_port(port, pod)
            if number is not None:
                ports.append(
                    (str(port.get("name") or ""), number, port.get("protocol", "TCP"))
                )
        ready, going = is_ready(pod), is_terminating(pod)
        found.append(
            Address(
                ip=str(ip),
                pod=str(meta.get("name")),
                uid=str(meta.get("uid", "")),
                node=str((pod.get("spec") or {}).get("nodeName") or ""),
                ready=(ready and not going) or publish,
                serving=ready or publish,
                terminating=going,
                ports=tuple(ports),
            )
        )
    return sorted(found, key=lambda a: a.pod)


def _target(service: Mapping[str, Any], address: Address) -> Obj:
    return {
        "kind": "Pod",
        "namespace": meta_of(service).get("namespace", ""),
        "name": address.pod,
        "uid": address.uid,
    }


def _ports(ports: tuple[Port, ...]) -> list[Obj]:
    return [
        {"name": name, "port": port, "protocol": proto} for name, port, proto in ports
    ]


def endpoint_slices(service: Mapping[str, Any], found: Iterable[Address]) -> list[Obj]:
    """Return the EndpointSlices of a Service (without names: one per port set).

    A Service with no serving pod still has one (empty) slice with its ports
    unresolved, as the controller keeps a placeholder slice.
    """
    groups: dict[tuple[Port, ...], list[Address]] = {}
    for address in found:
        groups.setdefault(address.ports, []).append(address)
    meta = meta_of(service)
    labels = {
        **(meta.get("labels") or {}),
        SERVICE_NAME: str(meta.get("name", "")),
        MANAGED_BY: SLICE_CONTROLLER,
    }
    slices = []
    for ports, members in sorted(groups.items()) or [((), [])]:
        endpoints = []
        for address in members:
            endpoint: Obj = {
                "addresses": [address.ip],
                "conditions": {
                    "ready": address.ready,
                    "serving": address.serving,
                    "terminating": address.terminating,
                },
                "targetRef": _target(service, address),
            }
            if address.node:
                endpoint["nodeName"] = address.node
            endpoints.append(endpoint)
        owner = {**owner_reference({**service, "kind": "Service"}), "apiVersion": "v1"}
        slice_: Obj = {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "namespace": meta.get("namespace", ""),
                "labels": labels,
                "ownerReferences": [owner],
            },
            "addressType": "IPv4",
            "endpoints": endpoints,
        }
        if members:
            slice_["ports"] = _ports(ports)
        slices.append(slice_)
    return slices


def endpoints(service: Mapping[str, Any], found: Iterable[Address]) -> Obj:
    """Return the core/v1 Endpoints of a Service (terminating pods left out)."""
    groups: dict[tuple[Port, ...], dict[str, list[Obj]]] = {}
    for address in found:
        if address.terminating or not address.ports:
            continue
        entry: Obj = {"ip": address.ip, "targetRef": _target(service, address)}
        if address.node:
            entry["nodeName"] = address.node
        key = "addresses" if address.ready else "notReadyAddresses"
        groups.setdefault(address.ports, {}).setdefault(key, []).append(entry)
    meta = meta_of(service)
    labels = {**(meta.get("labels") or {}), ENDPOINTS_MANAGED_BY: ENDPOINTS_CONTROLLER}
    obj: Obj = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "labels": labels,
        },
    }
    subsets = [
        {**members, "ports": _ports(ports)} for ports, members in sorted(groups.items())
    ]
    if subsets:
        obj["subsets"] = subsets
    return obj

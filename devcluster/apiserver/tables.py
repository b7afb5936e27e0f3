"""Server-side printing (``meta.k8s.io/v1 Table``) for ``kubectl get``.

kubectl asks for ``as=Table`` and prints the columns the server sends. The
columns follow the apiserver's printers for the kinds people look at (pods,
nodes, PVCs, PVs, events, Deployments, ReplicaSets, Services, Endpoints,
EndpointSlices); other kinds get Name and Age.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from devcluster.apiserver.resources import Resource
from devcluster.apiserver.store import ListPage

Row = list[Any]
Column = tuple[str, str, int]  # name, type, priority (1 = only with -o wide)


def wants_table(accept: str) -> bool:
    """Tell whether the Accept header asks for a Table."""
    return "as=Table" in accept


def human_age(stamp: str | None) -> str:
    """Return an age like kubectl's (``45s``, ``5m10s``, ``3h``, ``2d``)."""
    if not stamp:
        return "<unknown>"
    then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    secs = max(0, int((datetime.now(UTC) - then).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 10:
        return f"{mins}m{secs % 60}s" if secs % 60 else f"{mins}m"
    if mins < 180:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d"


def _age(obj: dict[str, Any]) -> str:
    return human_age(obj["metadata"].get("creationTimestamp"))


def _pod_status(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if (state.get("waiting") or {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif (state.get("terminated") or {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_row(pod: dict[str, Any]) -> Row:
    status = pod.get("status") or {}
    spec = pod.get("spec") or {}
    statuses = status.get("containerStatuses") or []
    ready = sum(1 for c in statuses if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(spec.get('containers') or [])}",
        _pod_status(pod),
        restarts,
        _age(pod),
        status.get("podIP") or "<none>",
        spec.get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        "<none>",
    ]


def _node_row(node: dict[str, Any]) -> Row:
    status = node.get("status") or {}
    ready = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None
    )
    state = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    if (node.get("spec") or {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    labels = node["metadata"].get("labels") or {}
    prefix = "node-role.kubernetes.io/"
    roles = ",".join(sorted(k[len(prefix) :] for k in labels if k.startswith(prefix)))
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    info = status.get("nodeInfo") or {}
    return [
        node["metadata"]["name"],
        state,
        roles or "<none>",
        _age(node),
        info.get("kubeletVersion", ""),
        addresses.get("InternalIP", "<none>"),
        addresses.get("ExternalIP", "<none>"),
        info.get("osImage", "<unknown>"),
        info.get("kernelVersion", "<unknown>"),
        info.get("containerRuntimeVersion", "<unknown>"),
    ]


def _pvc_row(pvc: dict[str, Any]) -> Row:
    spec, status = pvc.get("spec") or {}, pvc.get("status") or {}
    phase = (
        "Terminating"
        if pvc["metadata"].get("deletionTimestamp")
        else status.get("phase", "")
    )
    return [
        pvc["metadata"]["name"],
        phase,
        spec.get("volumeName", ""),
        (status.get("capacity") or {}).get("storage", ""),
        ",".join(_modes(status.get("accessModes") or [])),
        spec.get("storageClassName") or "<unset>",
        "<unset>",
        _age(pvc),
        spec.get("volumeMode", "Filesystem"),
    ]


def _modes(modes: list[str]) -> list[str]:
    short = {
        "ReadWriteOnce": "RWO",
        "ReadOnlyMany": "ROX",
        "ReadWriteMany": "RWX",
        "ReadWriteOncePod": "RWOP",
    }
    return [short.get(m, m) for m in modes]


def _pv_row(pv: dict[str, Any]) -> Row:
    spec, status = pv.get("spec") or {}, pv.get("status") or {}
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace')}/{ref.get('name')}" if ref else ""
    return [
        pv["metadata"]["name"],
        (spec.get("capacity") or {}).get("storage", ""),
        ",".join(_modes(spec.get("accessModes") or [])),
        spec.get("persistentVolumeReclaimPolicy", ""),
        status.get("phase", ""),
        claim,
        spec.get("storageClassName", ""),
        "<unset>",
        status.get("reason", ""),
        _age(pv),
        spec.get("volumeMode", "Filesystem"),
    ]


def _event_row(ev: dict[str, Any]) -> Row:
    ref = ev.get("involvedObject") or {}
    last = (
        ev.get("lastTimestamp")
        or ev.get("eventTime")
        or ev["metadata"].get("creationTimestamp")
    )
    return [
        human_age(
            last
            if isinstance(last, str) and last.endswith("Z") and "." not in last
            else None
        ),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
        ev.get("message", ""),
    ]


def _containers(obj: dict[str, Any]) -> tuple[str, str]:
    spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = spec.get("containers") or []
    return (
        ",".join(str(c.get("name", "")) for c in containers),
        ",".join(str(c.get("image", "")) for c in containers),
    )


def _selector(obj: dict[str, Any]) -> str:
    selector = (obj.get("spec") or {}).get("selector") or {}
    labels = selector.get("matchLabels", selector)
    pairs = sorted((k, v) for k, v in labels.items() if isinstance(v, str))
    return ",".join(f"{k}={v}" for k, v in pairs) or "<none>"


def _deployment_row(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(obj)
    return [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        status.get("updatedReplicas", 0),
        status.get("availableReplicas", 0),
        _age(obj),
        names,
        images,
        _selector(obj),
    ]


def _replicaset_row(obj: dict[str, Any]) -> Row:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    names, images = _containers(obj)
    return [
        obj["metadata"]["name"],
        spec.get("replicas", 1),
        status.get("replicas", 0),
        status.get("readyReplicas", 0),
        _age(obj),
        names,
        images,
        _selector(obj),
    ]


def _service_row(svc: dict[str, Any]) -> Row:
    spec = svc.get("spec") or {}
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress")
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress or [])
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    ports = ",".join(
        f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}"
        f"/{p.get('protocol', 'TCP')}"
        for p in spec.get("ports") or []
    )
    return [
        svc["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", ""),
        external,
        ports or "<none>",
        _age(svc),
        _selector(svc),
    ]


def _endpoints_row(obj: dict[str, Any]) -> Row:
    found = [
        f"{a['ip']}:{p['port']}"
        for s in obj.get("subsets") or []
        for a in s.get("addresses") or []
        for p in s.get("ports") or []
    ]
    return [obj["metadata"]["name"], ",".join(found) or "<none>", _age(obj)]


def _slice_row(obj: dict[str, Any]) -> Row:
    ports = ",".join(str(p.get("port")) for p in obj.get("ports") or [])
    ips = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    return [
        obj["metadata"]["name"],
        obj.get("addressType", ""),
        ports or "<unset>",
        ",".join(ips) or "<unset>",
        _age(obj),
    ]


_WIDE: list[Column] = [
    ("Containers", "string", 1),
    ("Images", "string", 1),
    ("Selector", "string", 1),
]


_PRINTERS: dict[str, tuple[list[Column], Callable[[dict[str, Any]], Row]]] = {
    "deployments": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            *_WIDE,
        ],
        _deployment_row,
    ),
    "replicasets": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            *_WIDE,
        ],
        _replicaset_row,
    ),
    "services": (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service_row,
    ),
    "endpoints": (
        [("Name", "string", 0), ("Endpoints", "string", 0), ("Age", "string", 0)],
        _endpoints_row,
    ),
    "endpointslices": (
        [
            ("Name", "string", 0),
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        _slice_row,
    ),
    "pods": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_row,
    ),
    "nodes": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Roles", "string", 0),
            ("Age", "string", 0),
            ("Version", "string", 0),
            ("Internal-IP", "string", 1),
            ("External-IP", "string", 1),
            ("OS-Image", "string", 1),
            ("Kernel-Version", "string", 1),
            ("Container-Runtime", "string", 1),
        ],
        _node_row,
    ),
    "persistentvolumeclaims": (
        [
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Age", "string", 0),
            ("VolumeMode", "string", 1),
        ],
        _pvc_row,
    ),
    "persistentvolumes": (
        [
            ("Name", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("Reclaim Policy", "string", 0),
            ("Status", "string", 0),
            ("Claim", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Reason", "string", 0),
            ("Age", "string", 0),
            ("VolumeMode", "string", 1),
        ],
        _pv_row,
    ),
    "events": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Message", "string", 0),
        ],
        _event_row,
    ),
}


def _default_row(obj: dict[str, Any]) -> Row:
    return [obj["metadata"]["name"], _age(obj)]


def table_for(res: Resource, page: ListPage, include_object: str) -> dict[str, Any]:
    """Return a ``Table`` of the listed objects for kubectl."""
    columns, printer = _PRINTERS.get(
        res.plural, ([("Name", "string", 0), ("Age", "string", 0)], _default_row)
    )
    defs = [
        {
            "name": name,
            "type": typ,
            "format": "name" if name == "Name" else "",
            "description": name,
            "priority": prio,
        }
        for name, typ, prio in columns
    ]
    rows = []
    for obj in page.items:
        if include_object == "Object":
            embedded: dict[str, Any] = obj
        elif include_object == "None":
            embedded = {}
        else:
            embedded = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }
        rows.append({"cells": printer(obj), "object": embedded})
    meta: dict[str, Any] = {"resourceVersion": page.resource_version}
    if page.continue_token:
        meta["continue"] = page.continue_token
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": defs,
        "rows": rows,
    }

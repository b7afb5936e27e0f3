"""Builders of Kubernetes objects for the devcluster tests (nodes, pods, claims)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Obj = dict[str, Any]
_counter = itertools.count(1)

POOL = "wbspawner.io/pool"
ZONE = "topology.kubernetes.io/zone"
GPU = "nvidia.com/gpu"


def node(
    name: str,
    *,
    zone: str = "us-east-1a",
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Obj] = (),
    cpu: str = "8",
    memory: str = "64Gi",
    pods: str = "110",
    gpu: int = 0,
    ready: str = "True",
    unschedulable: bool = False,
) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods}
    if gpu:
        allocatable[GPU] = str(gpu)
    spec: Obj = {"taints": [dict(t) for t in taints]} if taints else {}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"kubernetes.io/hostname": name, ZONE: zone, **(labels or {})},
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": dict(allocatable),
            "conditions": [{"type": "Ready", "status": ready}],
        },
    }


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> Obj:
    out = {"key": key, "effect": effect}
    if value:
        out["value"] = value
    return out


def pod(
    name: str,
    *,
    ns: str = "jhub",
    cpu: str | None = None,
    memory: str | None = None,
    gpu: int = 0,
    node_name: str | None = None,
    selector: Mapping[str, str] | None = None,
    required: Sequence[Sequence[Obj]] | None = None,
    preferred: Sequence[tuple[int, Sequence[Obj]]] = (),
    tolerations: Sequence[Obj] = (),
    priority: int | None = None,
    priority_class: str | None = None,
    claims: Iterable[str] = (),
    phase: str = "Pending",
    created: str | None = None,
    preemption_policy: str | None = None,
    nominated: str | None = None,
    owner_kind: str | None = None,
    terminating: bool = False,
    unschedulable_message: str | None = None,
) -> Obj:
    requests: Obj = {}
    if cpu:
        requests["cpu"] = cpu
    if memory:
        requests["memory"] = memory
    if gpu:
        requests[GPU] = str(gpu)
    spec: Obj = {
        "containers": [
            {"name": "main", "image": "x", "resources": {"requests": requests}}
        ],
        "tolerations": [dict(t) for t in tolerations],
        "schedulerName": "default-scheduler",
        "volumes": [
            {"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}}
            for i, c in enumerate(claims)
        ],
    }
    if node_name:
        spec["nodeName"] = node_name
    if selector:
        spec["nodeSelector"] = dict(selector)
    affinity: Obj = {}
    if required is not None:
        affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
            "nodeSelectorTerms": [{"matchExpressions": list(t)} for t in required]
        }
    if preferred:
        affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": {"matchExpressions": list(t)}}
            for w, t in preferred
        ]
    if affinity:
        spec["affinity"] = {"nodeAffinity": affinity}
    if priority is not None:
        spec["priority"] = priority
    if priority_class:
        spec["priorityClassName"] = priority_class
    if preemption_policy:
        spec["preemptionPolicy"] = preemption_policy
    meta: Obj = {
        "name": name,
        "namespace": ns,
        "uid": f"uid-{name}",
        "creationTimestamp": created or f"2026-01-01T00:00:{next(_counter) % 60:02d}Z",
    }
    if owner_kind:
        meta["ownerReferences"] = [{"kind": owner_kind, "name": "o", "uid": "o"}]
    if terminating:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: Obj = {"phase": phase}
    if nominated:
        status["nominatedNodeName"] = nominated
    if unschedulable_message is not None:
        status["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": unschedulable_message,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": spec,
        "status": status,
    }


def expr(key: str, op: str, *values: str) -> Obj:
    out: Obj = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def claim(
    name: str, storage_class: str, *, size: str = "10Gi", volume: str | None = None
) -> Obj:
    """A claim as a client creates it (the store adds namespace, uid, status)."""
    spec: Obj = {
        "storageClassName": storage_class,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if volume:
        spec["volumeName"] = volume
    return {"metadata": {"name": name}, "spec": spec}


def static_volume(name: str, volume_id: str, **spec: Any) -> Obj:
    """A 10 GiB volume an admin made for an existing EBS volume (no class)."""
    return {
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": volume_id},
            **spec,
        },
    }


def pvc(
    name: str,
    *,
    ns: str = "jhub",
    storage_class: str | None = "gp3",
    volume: str | None = None,
    size: str = "10Gi",
) -> Obj:
    spec: Obj = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume:
        spec["volumeName"] = volume
    phase = "Bound" if volume else "Pending"
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
        "spec": spec,
        "status": {"phase": phase},
    }


def pv(name: str, zone: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteOnce"],
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": f"vol-{name}"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [expr(ZONE, "In", zone)]}
                    ]
                }
            },
        },
        "status": {"phase": "Bound"},
    }


def storage_class(
    name: str = "gp3",
    mode: str = "WaitForFirstConsumer",
    zones: Sequence[str] = (),
    reclaim: str = "Delete",
) -> Obj:
    sc: Obj = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": mode,
        "reclaimPolicy": reclaim,
    }
    if zones:
        sc["allowedTopologies"] = [
            {"matchLabelExpressions": [{"key": ZONE, "values": list(zones)}]}
        ]
    return sc


def priority_class(name: str, value: int, global_default: bool = False) -> Obj:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
        "globalDefault": global_default,
    }

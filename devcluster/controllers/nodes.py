"""The node factory: a Node object for an EC2 instance of an Auto Scaling group.

This module owns what a freshly joined EKS worker looks like to the API: the
labels the kubelet, the EBS CSI driver and EKS put on it, the taints and labels
the launch template registers (which must match the Cluster Autoscaler
node-template tags), ``spec.providerID`` and capacity/allocatable computed by
:mod:`wbspawner.catalog.sizing` (the numbers a real node reports, not nominal RAM).
Cluster Autoscaler templates are built with the same function, so a template and
the node it turns into agree (real CA's template uses ``allocatable = capacity``;
ours uses the kubelet's real allocatable — see
``devcluster.controllers.autoscaler.decisions``).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from devcluster.quantity import amount, kib
from wbspawner.catalog.sizing import allocatable, capacity_mib, max_pods
from wbspawner.model import InstanceType, SizingSettings

Obj = dict[str, Any]

INSTANCE_ANNOTATION = "devcluster.wbspawner.io/instance-id"
GROUP_ANNOTATION = "devcluster.wbspawner.io/asg-name"
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
EBS_ZONE_LABEL = "topology.ebs.csi.aws.com/zone"
ROOT_DISK_GIB = 100
"""Root volume size behind ``ephemeral-storage`` (unless a resources tag says)."""


def node_name_for(instance: Mapping[str, Any]) -> str:
    """Return the node name EKS gives an instance (its private DNS name).

    ``ip-10-0-1-23.ec2.internal`` from ``PrivateDnsName`` or the private IP, else
    the instance id.
    """
    dns = str(instance.get("PrivateDnsName") or "")
    if dns:
        return dns
    ip = str(instance.get("PrivateIpAddress") or "")
    if ip:
        return f"ip-{ip.replace('.', '-')}.ec2.internal"
    return str(instance["InstanceId"])


def instance_id_of(node: Mapping[str, Any]) -> str | None:
    """Return the EC2 instance id behind a node (annotation or providerID), if any."""
    meta = node.get("metadata") or {}
    found = (meta.get("annotations") or {}).get(INSTANCE_ANNOTATION)
    if found:
        return str(found)
    provider = str((node.get("spec") or {}).get("providerID") or "")
    tail = provider.rsplit("/", 1)[-1]
    return tail if tail.startswith("i-") else None


def group_of(node: Mapping[str, Any]) -> str | None:
    """Return the Auto Scaling group a node came from, if it came from one."""
    annotations = (node.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(GROUP_ANNOTATION)
    return str(value) if value else None


_NODE_INFO = {
    "bootID": "",
    "containerRuntimeVersion": "containerd://1.7.27",
    "kernelVersion": "6.1.132-147.221.amzn2023.x86_64",
    "kubeProxyVersion": "v1.33.0-eks-802817d",
    "kubeletVersion": "v1.33.0-eks-802817d",
    "machineID": "",
    "operatingSystem": "linux",
    "osImage": "Amazon Linux 2023.7.20250512",
    "systemUUID": "",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _conditions(now: str) -> list[Obj]:
    rows = (
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    )
    return [
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": now,
            "lastTransitionTime": now,
        }
        for kind, status, reason, message in rows
    ]


def resources_for(
    itype: InstanceType,
    sizing: SizingSettings,
    overrides: Mapping[str, str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Return (capacity, allocatable) quantity maps for a node of this type.

    ``overrides`` (Cluster Autoscaler ``node-template/resources/*`` tags) replace
    both the capacity and the allocatable of the resources they name.
    """
    pods = max_pods(itype, sizing.max_pods)
    alloc = allocatable(itype, sizing)
    disk_ki = ROOT_DISK_GIB * 1024 * 1024
    capacity = {
        "cpu": str(itype.vcpu),
        "memory": kib(capacity_mib(itype)),
        "pods": str(pods),
        "ephemeral-storage": f"{disk_ki}Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    allocated = {
        "cpu": f"{alloc.cpu_m}m",
        "memory": kib(alloc.memory_mib),
        "pods": str(pods),
        # nodefs.available 10 % eviction plus 1 GiB kube-reserved ephemeral storage.
        "ephemeral-storage": str((disk_ki * 1024 * 9) // 10 - 1024**3),
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
    }
    if itype.gpu_count:
        capacity["nvidia.com/gpu"] = allocated["nvidia.com/gpu"] = str(itype.gpu_count)
    for name, value in (overrides or {}).items():
        try:
            amount(name, value)
        except ValueError:
            continue
        capacity[name] = allocated[name] = str(value)
    return capacity, allocated


def build_node(
    *,
    name: str,
    itype: InstanceType,
    zone: str,
    region: str,
    capacity_type: str,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Mapping[str, Any]] = (),
    sizing: SizingSettings | None = None,
    instance: Mapping[str, Any] | None = None,
    group: str | None = None,
    resource_overrides: Mapping[str, str] | None = None,
) -> Obj:
    """Build a Ready Node object as an EKS worker of this type would register.

    Args:
        name: node name (``ip-…ec2.internal``, or a template name).
        itype: the instance type from the catalogue.
        zone: availability zone.
        region: region.
        capacity_type: ``spot`` or ``on-demand``.
        labels: extra labels (the pool/capacity labels of the launch template).
        taints: taints registered by the kubelet.
        sizing: node overheads (default ``SizingSettings()``).
        instance: the EC2 instance (``InstanceId``, ``PrivateIpAddress``), if any.
        group: the Auto Scaling group name, if any.
        resource_overrides: resource quantities replacing the computed ones.

    Returns:
        A core/v1 Node dict.
    """
    capacity, allocated = resources_for(
        itype, sizing or SizingSettings(), resource_overrides
    )
    arch = "arm64" if itype.arch == "arm64" else "amd64"
    annotations, spec, addresses = _identity(name, zone, instance, group)
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    all_labels = {
        **standard_labels(name, itype.name, arch, zone, region, capacity_type),
        **(labels or {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels, "annotations": annotations},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocated,
            "conditions": _conditions(_now()),
            "addresses": addresses,
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {**_NODE_INFO, "architecture": arch},
        },
    }


def _identity(
    name: str, zone: str, instance: Mapping[str, Any] | None, group: str | None
) -> tuple[dict[str, str], Obj, list[dict[str, str]]]:
    """Annotations, spec (providerID) and addresses of a node from its instance."""
    annotations = {"node.alpha.kubernetes.io/ttl": "0"}
    spec: Obj = {}
    addresses = [{"type": "Hostname", "address": name}]
    if instance is not None:
        instance_id = str(instance["InstanceId"])
        annotations[INSTANCE_ANNOTATION] = instance_id
        spec["providerID"] = f"aws:///{zone}/{instance_id}"
        ip = instance.get("PrivateIpAddress")
        if ip:
            addresses = [
                {"type": "InternalIP", "address": str(ip)},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ]
    if group:
        annotations[GROUP_ANNOTATION] = group
    return annotations, spec, addresses


def standard_labels(
    name: str, itype: str, arch: str, zone: str, region: str, capacity_type: str
) -> dict[str, str]:
    """Labels the kubelet, EKS and the EBS CSI driver put on every worker."""
    return {
        "kubernetes.io/arch": arch,
        "kubernetes.io/os": "linux",
        "kubernetes.io/hostname": name,
        "beta.kubernetes.io/arch": arch,
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/instance-type": itype,
        "node.kubernetes.io/instance-type": itype,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        EBS_ZONE_LABEL: zone,
        CAPACITY_TYPE_LABEL: "SPOT" if capacity_type == "spot" else "ON_DEMAND",
    }

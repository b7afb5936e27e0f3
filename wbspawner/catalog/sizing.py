"""EKS node sizing: what a whole node of an instance type can give one pod.

This module owns the arithmetic that turns a catalogue :class:`InstanceType` into
the resources a pod may request so that it fills exactly one node:

``allocatable = capacity − kube-reserved − eviction-hard`` (EKS AL2023 ``nodeadm``
sets no system-reserved), and the *full-node request* is that allocatable minus the
requests of the DaemonSets every node runs (plus the GPU-only DaemonSets on GPU
nodes), taking the minimum over a pool's instance types.

Cluster Autoscaler's scale-from-zero template believes ``allocatable = nominal
memory``, so a request computed from nominal memory would start a node that cannot
host the pod; every number here is derived from what the kubelet really reports.

Pure: no I/O, no AWS, no Kubernetes. Units: MiB and millicores (``int``).
"""

from __future__ import annotations

from collections.abc import Sequence

from wbspawner.model import InstanceType, Resources, SizingSettings

# Kernel-visible memory estimate (see capacity_mib). The measured points (2i2c
# production EKS nodes, instance_capacities.yaml) are ~94.8-97.3 % of nominal, the
# small types losing the larger share; a straight line through the two extreme
# points (m5.xlarge and r5.16xlarge) lies on or below every measured point.
CAPACITY_SLOPE_PPM = 974_100
"""Slope of the capacity estimate, in parts per million of nominal memory."""
CAPACITY_OFFSET_MIB = 425
"""Constant subtracted by the capacity estimate, MiB."""

# nodeadm getCPUMillicoresToReserve: basis points over millicore ranges.
_CPU_RESERVE_RANGES: tuple[tuple[int, int | None, int], ...] = (
    (0, 1000, 600),  # 6 % of the first core
    (1000, 2000, 100),  # 1 % of the second core
    (2000, 4000, 50),  # 0.5 % of cores 3-4
    (4000, None, 25),  # 0.25 % of every core above 4
)

_DEFAULT_MAX_PODS = 110
"""nodeadm's fallback when the instance table does not know a type."""


def max_pods(t: InstanceType, cap: int | None = None) -> int:
    """Return the kubelet maxPods nodeadm gives a node of this type.

    The VPC CNI formula ``ENIs × (IPv4 per ENI − 1) + 2``, optionally capped the way
    nodeadm's ``maxPodsExpression`` does (kube-reserved follows the capped value).

    Args:
        t: the instance type.
        cap: upper bound on maxPods; ``None`` keeps the ENI formula.

    Returns:
        maxPods, at least 1.
    """
    if t.enis > 0 and t.ipv4_per_eni > 0:
        pods = t.enis * (t.ipv4_per_eni - 1) + 2
    else:
        pods = _DEFAULT_MAX_PODS
    if cap is not None:
        pods = min(pods, cap)
    return max(pods, 1)


def kube_reserved_memory_mib(max_pods: int) -> int:
    """Return EKS's kube-reserved memory: ``11 MiB × maxPods + 255 MiB``.

    Args:
        max_pods: the node's maxPods (after any cap).

    Returns:
        Reserved memory in MiB.
    """
    return 11 * max_pods + 255


def kube_reserved_cpu_m(vcpu: int) -> int:
    """Return EKS's kube-reserved CPU for a node with ``vcpu`` virtual CPUs.

    6 % of the first core, 1 % of the second, 0.5 % of cores 3-4 and 0.25 % of
    every core above 4 (nodeadm, same as the AL2 bootstrap and Karpenter).

    Args:
        vcpu: virtual CPUs of the node.

    Returns:
        Reserved CPU in millicores.
    """
    total = vcpu * 1000
    reserved = 0
    for start, end, basis_points in _CPU_RESERVE_RANGES:
        if total <= start:
            break
        top = total if end is None else min(total, end)
        reserved += (top - start) * basis_points // 10_000
    return reserved


def estimated_capacity_mib(nominal_mib: int) -> int:
    """Return a conservative estimate of kernel-visible memory for nominal memory.

    ``capacity ≈ 0.9741 × nominal − 425 MiB``. The line runs through the two extreme
    measured points (m5.xlarge, r5.16xlarge) and lies on or below every point of the
    measured table, so an estimated request never exceeds what a node really has;
    on the measured 64-512 GiB types it is within 0.2 % of the truth. The notes'
    least-squares fit (``0.97402 × nominal − 332``) is closer on average but above
    several measured points, which would produce unschedulable requests.

    Args:
        nominal_mib: nominal instance memory (``MemoryInfo.SizeInMiB``).

    Returns:
        Estimated node capacity in MiB (never negative).
    """
    return max(nominal_mib * CAPACITY_SLOPE_PPM // 1_000_000 - CAPACITY_OFFSET_MIB, 0)


def capacity_mib(t: InstanceType) -> int:
    """Return the kernel-visible memory of a node: measured if known, else estimated.

    Args:
        t: the instance type.

    Returns:
        The node's ``status.capacity.memory`` in MiB.
    """
    if t.measured_capacity_mib is not None:
        return t.measured_capacity_mib
    return estimated_capacity_mib(t.memory_mib)


def allocatable(t: InstanceType, settings: SizingSettings) -> Resources:
    """Return the node allocatable the kubelet reports for a node of this type.

    Args:
        t: the instance type.
        settings: node overheads (maxPods cap, eviction threshold).

    Returns:
        Allocatable CPU, memory and GPUs (before DaemonSets).
    """
    pods = max_pods(t, settings.max_pods)
    memory = (
        capacity_mib(t) - kube_reserved_memory_mib(pods) - settings.eviction_hard_mib
    )
    cpu = t.vcpu * 1000 - kube_reserved_cpu_m(t.vcpu)
    return Resources(cpu_m=max(cpu, 0), memory_mib=max(memory, 0), gpus=t.gpu_count)


def node_request(t: InstanceType, settings: SizingSettings) -> Resources:
    """Return what one pod may request to fill a node of this type on its own.

    Allocatable minus the DaemonSet requests (and the GPU DaemonSets on GPU types).

    Args:
        t: the instance type.
        settings: node overheads.

    Returns:
        The full-node request for this one type.
    """
    alloc = allocatable(t, settings)
    cpu = alloc.cpu_m - settings.daemonset_cpu_m
    memory = alloc.memory_mib - settings.daemonset_memory_mib
    if t.gpu_count > 0:
        cpu -= settings.gpu_daemonset_cpu_m
        memory -= settings.gpu_daemonset_memory_mib
    return Resources(cpu_m=max(cpu, 0), memory_mib=max(memory, 0), gpus=t.gpu_count)


def full_node_request(
    types: Sequence[InstanceType], settings: SizingSettings
) -> Resources:
    """Return the request that fills one node of a pool, whichever type it gets.

    Args:
        types: the pool's instance types (at least one).
        settings: node overheads.

    Returns:
        The minimum over the types of :func:`node_request`, per resource.

    Raises:
        ValueError: when ``types`` is empty.
    """
    if not types:
        raise ValueError("a pool needs at least one instance type")
    requests = [node_request(t, settings) for t in types]
    return Resources(
        cpu_m=min(r.cpu_m for r in requests),
        memory_mib=min(r.memory_mib for r in requests),
        gpus=min(r.gpus for r in requests),
    )


def _shape(t: InstanceType) -> tuple[int, int, int, str | None, str]:
    return (t.vcpu, t.memory_mib, t.gpu_count, t.gpu_kind, t.arch)


def describe_shape(t: InstanceType) -> str:
    """Return a short description of a type's shape, e.g. ``8 vCPU, 64 GiB``.

    Args:
        t: the instance type.

    Returns:
        vCPUs, memory, GPUs (if any) and architecture (if not x86_64).
    """
    parts = [f"{t.vcpu} vCPU", f"{t.memory_mib / 1024:g} GiB"]
    if t.gpu_count:
        parts.append(f"{t.gpu_count}× {t.gpu_kind or 'GPU'}")
    if t.arch != "x86_64":
        parts.append(t.arch)
    return ", ".join(parts)


def shape_mismatch(types: Sequence[InstanceType]) -> str | None:
    """Explain why a pool's types are not interchangeable, if they are not.

    Types of one pool must have the same vCPUs, memory, GPU count and kind and CPU
    architecture: Cluster Autoscaler builds its template from the first type, and a
    user asking for "64 GiB" must get the same node whichever type AWS supplies.

    Args:
        types: the pool's instance types.

    Returns:
        ``None`` when all types have the same shape, else a message naming every
        type with its shape, grouped by shape, e.g. ``instance types differ in
        shape: r5.2xlarge (8 vCPU, 64 GiB); m5.2xlarge (8 vCPU, 32 GiB)``.
    """
    groups: dict[tuple[int, int, int, str | None, str], list[InstanceType]] = {}
    for t in types:
        groups.setdefault(_shape(t), []).append(t)
    if len(groups) <= 1:
        return None
    parts = [
        f"{', '.join(t.name for t in members)} ({describe_shape(members[0])})"
        for members in groups.values()
    ]
    return "instance types differ in shape: " + "; ".join(parts)


def same_shape(types: Sequence[InstanceType]) -> bool:
    """Return whether all types have the same vCPUs, memory, GPUs and architecture.

    Args:
        types: the pool's instance types.

    Returns:
        ``True`` for zero or one type, or when every shape is equal.
    """
    return shape_mismatch(types) is None


def pods_per_node_ips(t: InstanceType, warm_enis: int = 1) -> int:
    """Return the subnet IPv4 addresses a node of this type takes with few pods.

    With the VPC CNI default ``WARM_ENI_TARGET=1`` a node holds every address of
    its primary ENI plus one whole spare ENI, whatever few pods it runs, so a
    handful of large nodes can drain a small subnet.

    Args:
        t: the instance type.
        warm_enis: the CNI's ``WARM_ENI_TARGET``.

    Returns:
        Addresses taken from the node's subnet.
    """
    return min(1 + warm_enis, max(t.enis, 1)) * t.ipv4_per_eni

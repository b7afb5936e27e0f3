"""Identity of a pool's nodes: AMIs, labels, taints and tags.

This module owns the names and keys that tie the pieces together (the group names
themselves are :mod:`wbspawner.naming`'s): the labels and taints the kubelet
registers (and the spawner selects and tolerates), Cluster Autoscaler's discovery
and node-template tags, and the cost-allocation tags. The kubelet flags and the CA
tags are built from the same :func:`node_labels` and :func:`node_taints`, so the
node CA imagines for a group with no nodes is the node that boots.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wbspawner.model import (
    CAPACITY_LABEL,
    GPU_RESOURCE,
    LABEL_PREFIX,
    POOL_LABEL,
    SIZE_LABEL,
    CapacityType,
    Catalog,
    InstanceType,
    Pool,
    Profiles,
)
from wbspawner.pools import PoolsError

CA_PREFIX = "k8s.io/cluster-autoscaler"
CA_ENABLED_TAG = f"{CA_PREFIX}/enabled"
NODE_TEMPLATE_PREFIX = f"{CA_PREFIX}/node-template"
CLUSTER_TAG = f"{LABEL_PREFIX}/cluster"
"""Tag naming the cluster on every object wbspawner creates; observe filters on it."""
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
"""Label CA uses to know a node will get GPUs before the device plugin reports them."""
GPU_TAINT_KEY = GPU_RESOURCE
ROOT_DEVICE = "/dev/xvda"
"""Root device of the EKS AL2023 AMIs."""
MANAGED_TAG_PREFIXES = (f"{CA_PREFIX}/", f"{LABEL_PREFIX}/", "kubernetes.io/cluster/")
"""Tag keys wbspawner owns on its groups; other tags are left alone."""
MANAGED_TAG_KEYS = frozenset({"Name"})
NODECONFIG_BOUNDARY = "//"


@dataclass(frozen=True, slots=True)
class Taint:
    """A node taint as the kubelet registers it and as CA's node template reads it."""

    key: str
    value: str
    effect: str = "NoSchedule"

    def kubelet(self) -> str:
        """Return the ``--register-with-taints`` form (``key=value:Effect``)."""
        if self.value:
            return f"{self.key}={self.value}:{self.effect}"
        return f"{self.key}:{self.effect}"

    def ca_tag_value(self) -> str:
        """Return CA's ``node-template/taint/<key>`` tag value (``value:Effect``)."""
        return f"{self.value}:{self.effect}"


# --------------------------------------------------------------------------- naming


def ami_parameter(k8s_version: str, arch: str, gpu: bool) -> str:
    """Return the SSM parameter holding the EKS AL2023 AMI for a kind of node.

    Args:
        k8s_version: Kubernetes minor version, e.g. ``1.33``.
        arch: ``x86_64`` or ``arm64``.
        gpu: whether the node has NVIDIA GPUs (the ``nvidia`` variant).

    Returns:
        ``/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/<variant>/
        recommended/image_id``.
    """
    variant = "nvidia" if gpu else "standard"
    return (
        f"/aws/service/eks/optimized-ami/{k8s_version}/amazon-linux-2023/"
        f"{arch}/{variant}/recommended/image_id"
    )


def pool_types(pool: Pool, catalog: Catalog) -> tuple[InstanceType, ...]:
    """Return a pool's catalogue types, primary first.

    Args:
        pool: the pool.
        catalog: the instance catalogue.

    Returns:
        The instance types.

    Raises:
        PoolsError: when a type is not in the catalogue.
    """
    missing = [t for t in pool.instance_types if t not in catalog.types]
    if missing:
        raise PoolsError(
            f"pool {pool.name}: instance types not in the catalogue: "
            f"{', '.join(missing)}"
        )
    return tuple(catalog.types[t] for t in pool.instance_types)


def required_ami_parameters(
    profiles: Profiles, catalog: Catalog, k8s_version: str
) -> tuple[str, ...]:
    """Return the SSM AMI parameters the pools need, sorted and without repeats.

    Args:
        profiles: the profiles.
        catalog: the instance catalogue.
        k8s_version: Kubernetes minor version.

    Returns:
        Parameter names to resolve before :func:`desired_state`.
    """
    names = {
        ami_parameter(k8s_version, pool_types(p, catalog)[0].arch, p.is_gpu)
        for p in profiles.pools.values()
    }
    return tuple(sorted(names))


def size_tag(pool: Pool) -> str:
    """Return the cost-allocation ``wbspawner.io/size`` value of a pool's nodes.

    Args:
        pool: the pool.

    Returns:
        E.g. ``64GiB`` or ``16GiB-1xA10G``.
    """
    text = f"{pool.memory_mib / 1024:g}GiB"
    if pool.is_gpu:
        text += f"-{pool.gpu_count}x{pool.gpu_kind or 'GPU'}"
    return text


# ------------------------------------------------------------------ node identity


def node_labels(pool: Pool, capacity: CapacityType) -> dict[str, str]:
    """Return the labels the kubelet registers a node of this group with.

    Args:
        pool: the pool.
        capacity: the group's capacity type.

    Returns:
        The pool's extra labels, the pool and capacity labels, and for GPU pools
        ``k8s.amazonaws.com/accelerator`` (so CA waits for the device plugin
        instead of starting another node).
    """
    labels = dict(pool.labels)
    labels[POOL_LABEL] = pool.name
    labels[CAPACITY_LABEL] = capacity
    if pool.is_gpu:
        labels[ACCELERATOR_LABEL] = f"nvidia-{(pool.gpu_kind or 'gpu').lower()}"
    return dict(sorted(labels.items()))


def node_taints(pool: Pool) -> tuple[Taint, ...]:
    """Return the taints of a pool's nodes: the pool's, and ``nvidia.com/gpu``.

    Args:
        pool: the pool.

    Returns:
        Taints in a stable order.
    """
    taints = [Taint(POOL_LABEL, pool.name)]
    if pool.is_gpu:
        taints.append(Taint(GPU_TAINT_KEY, ""))
    return tuple(taints)


def max_pods_expression(cap: int | None) -> str | None:
    """Return nodeadm's ``maxPodsExpression`` for a maxPods cap, if any.

    nodeadm computes kube-reserved from the expression's result, so capping here
    (unlike a literal kubelet ``maxPods``) also gives the memory back.

    Args:
        cap: the cap, or ``None``.

    Returns:
        A CEL expression, or ``None`` to keep the ENI formula.
    """
    if cap is None:
        return None
    return f"max_pods < {cap} ? max_pods : {cap}"


# ------------------------------------------------------------------------- tags


def cost_tags(
    cluster: str,
    pool: Pool,
    capacity: CapacityType,
    name: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """Return the cost-allocation tags of a group, its instances and volumes.

    Args:
        cluster: the cluster name.
        pool: the pool.
        capacity: the capacity type.
        name: the group name (becomes the instances' ``Name``).
        extra: the admin's extra tags (wbspawner's own keys win).

    Returns:
        Tags by key.
    """
    tags = dict(extra)
    tags.update(
        {
            "Name": name,
            CLUSTER_TAG: cluster,
            POOL_LABEL: pool.name,
            SIZE_LABEL: size_tag(pool),
            CAPACITY_LABEL: capacity,
            f"kubernetes.io/cluster/{cluster}": "owned",
        }
    )
    return tags


def autoscaler_tags(
    cluster: str,
    pool: Pool,
    labels: Mapping[str, str],
    taints: Sequence[Taint],
    allocatable: tuple[int, int],
) -> dict[str, str]:
    """Return the Cluster Autoscaler tags of a group.

    Auto-discovery (``enabled`` and ``<cluster>``) and the scale-from-zero node
    template: the kubelet's labels and taints (CA cannot see them on a group with
    no nodes), ``nvidia.com/gpu``, ``ephemeral-storage`` (the root volume), and
    the real allocatable CPU and memory. CA's template otherwise assumes the
    nominal RAM is allocatable and starts nodes that cannot hold a pod asking
    for more than the real allocatable.

    Args:
        cluster: cluster name.
        pool: the pool.
        labels: node labels.
        taints: node taints.
        allocatable: (CPU millicores, memory MiB), the minimum over the pool's types.

    Returns:
        Tags by key.
    """
    tags = {CA_ENABLED_TAG: "true", f"{CA_PREFIX}/{cluster}": "owned"}
    for key, value in labels.items():
        tags[f"{NODE_TEMPLATE_PREFIX}/label/{key}"] = value
    for taint in taints:
        tags[f"{NODE_TEMPLATE_PREFIX}/taint/{taint.key}"] = taint.ca_tag_value()
    res = f"{NODE_TEMPLATE_PREFIX}/resources"
    tags[f"{res}/cpu"] = f"{allocatable[0]}m"
    tags[f"{res}/memory"] = f"{allocatable[1]}Mi"
    tags[f"{res}/ephemeral-storage"] = f"{pool.root_volume_gib}Gi"
    if pool.is_gpu:
        tags[f"{res}/{GPU_RESOURCE}"] = str(pool.gpu_count)
    return tags


def is_managed_tag(key: str) -> bool:
    """Return whether wbspawner owns a tag key (and may change or remove it).

    Args:
        key: tag key.

    Returns:
        ``True`` for CA, ``wbspawner.io/``, ``kubernetes.io/cluster/`` and ``Name``.
    """
    return key in MANAGED_TAG_KEYS or key.startswith(MANAGED_TAG_PREFIXES)

"""The pools as eksctl and Karpenter configuration, for teams that use those tools.

This module owns two alternative renderings of the same pools that
:mod:`~wbspawner.pools.desired` turns into launch templates and groups:

- an eksctl ``ClusterConfig`` with one unmanaged node group per pool × zone ×
  capacity type (same labels, taints, CA tags, IMDS and volume settings);
- Karpenter ``NodePool`` objects, one per pool (instance types, zones and
  capacity types as requirements, the pool's labels and taints, limits equal to
  the groups' maxima), and the ``EC2NodeClass`` objects they use (one per kind
  of node: CPU or GPU, and root volume size).

Karpenter differences an operator should know: when a NodePool allows spot and
on-demand, Karpenter always tries spot first, so a pool that prefers on-demand
(lists it first) gets an on-demand-only NodePool; Karpenter labels nodes with
``karpenter.sh/capacity-type`` rather than ``wbspawner.io/capacity``.

Pure: plain dicts, and YAML text from them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from wbspawner.catalog import sizing
from wbspawner.model import (
    CAPACITY_LABEL,
    POOL_LABEL,
    CapacityType,
    Catalog,
    Pool,
    Profiles,
)
from wbspawner.naming import group_name, group_tail
from wbspawner.pools.desired import JsonDict, pool_allocatable
from wbspawner.pools.nodes import (
    CLUSTER_TAG,
    ROOT_DEVICE,
    autoscaler_tags,
    cost_tags,
    node_labels,
    node_taints,
    pool_types,
)

KARPENTER_GROUP = "karpenter.k8s.aws"
CONSOLIDATE_AFTER = "10m"
"""Empty Karpenter nodes go after the same time CA waits (scale-down-unneeded-time)."""


def _taint(key: str, value: str, effect: str) -> JsonDict:
    out: JsonDict = {"key": key, "effect": effect}
    if value:
        out["value"] = value
    return out


def _pools(profiles: Profiles) -> list[Pool]:
    return sorted(profiles.pools.values(), key=lambda p: p.name)


# -------------------------------------------------------------------------- eksctl


def _eksctl_group(
    profiles: Profiles,
    cluster: str,
    pool: Pool,
    zone: str,
    capacity: CapacityType,
    region: str,
) -> JsonDict:
    labels = node_labels(pool, capacity)
    taints = node_taints(pool)
    name = group_name(cluster, pool.name, zone, region, capacity)
    tags = cost_tags(cluster, pool, capacity, name, {})
    for key in ("Name", f"kubernetes.io/cluster/{cluster}"):
        tags.pop(key)  # eksctl sets these itself
    alloc = pool_allocatable(pool, profiles)
    tags.update(autoscaler_tags(cluster, pool, labels, taints, alloc))
    spot = capacity == "spot"
    distribution: JsonDict = {
        "instanceTypes": list(pool.instance_types),
        "onDemandBaseCapacity": 0,
        "onDemandPercentageAboveBaseCapacity": 0 if spot else 100,
    }
    if spot:
        distribution["spotAllocationStrategy"] = "price-capacity-optimized"
        distribution["capacityRebalance"] = True
    group: JsonDict = {
        "name": group_tail(pool.name, zone, region, capacity),
        "amiFamily": "AmazonLinux2023",
        "availabilityZones": [zone],
        "privateNetworking": True,
        "minSize": pool.min_nodes,
        "maxSize": pool.max_nodes,
        "volumeSize": pool.root_volume_gib,
        "volumeType": "gp3",
        "volumeEncrypted": True,
        "disableIMDSv1": True,
        "disablePodIMDS": True,
        "labels": labels,
        "taints": [_taint(t.key, t.value, t.effect) for t in taints],
        "tags": dict(sorted(tags.items())),
        "propagateASGTags": True,
        "instancesDistribution": distribution,
    }
    if profiles.sizing.max_pods is not None:
        group["maxPodsPerNode"] = profiles.sizing.max_pods
    return group


def eksctl_config(
    profiles: Profiles, cluster: str, k8s_version: str = "1.33"
) -> JsonDict:
    """Return an eksctl ``ClusterConfig`` with the pools' node groups.

    Args:
        profiles: the profiles (pools, region, instance facts).
        cluster: cluster name.
        k8s_version: Kubernetes minor version.

    Returns:
        The ClusterConfig (``eksctl.io/v1alpha5``), node groups in the order of
        :func:`~wbspawner.pools.desired.desired_state`.
    """
    region = profiles.cost.region
    groups = [
        _eksctl_group(profiles, cluster, pool, zone, capacity, region)
        for pool in _pools(profiles)
        for zone in pool.zones
        for capacity in pool.capacity_types
    ]
    return {
        "apiVersion": "eksctl.io/v1alpha5",
        "kind": "ClusterConfig",
        "metadata": {"name": cluster, "region": region, "version": k8s_version},
        "nodeGroups": groups,
    }


# ----------------------------------------------------------------------- Karpenter


def node_class_name(pool: Pool) -> str:
    """Return the EC2NodeClass a pool's NodePool uses.

    Args:
        pool: the pool.

    Returns:
        ``wbspawner-<cpu|gpu>-<root GiB>gib``.
    """
    kind = "gpu" if pool.is_gpu else "cpu"
    return f"wbspawner-{kind}-{pool.root_volume_gib}gib"


def _karpenter_capacity(pool: Pool) -> list[str]:
    # Karpenter tries spot first whenever spot is allowed; honour a pool that
    # prefers on-demand by allowing only on-demand.
    if pool.capacity_types[0] == "on-demand":
        return ["on-demand"]
    return list(pool.capacity_types)


def node_pool(profiles: Profiles, catalog: Catalog, pool: Pool) -> JsonDict:
    """Return the Karpenter ``NodePool`` of one pool.

    Args:
        profiles: the profiles.
        catalog: the instance catalogue.
        pool: the pool.

    Returns:
        The NodePool (``karpenter.sh/v1``); limits allow as many nodes as the
        pool's groups together (max per zone × zones × capacity types).
    """
    capacity = _karpenter_capacity(pool)
    labels = node_labels(pool, "spot")
    del labels[CAPACITY_LABEL]  # the capacity type varies per node
    nodes = pool.max_nodes * len(pool.zones) * len(pool.capacity_types)
    limits: JsonDict = {
        "cpu": str(pool.vcpu * nodes),
        "memory": f"{pool.memory_mib * nodes}Mi",
    }
    if pool.is_gpu:
        limits["nvidia.com/gpu"] = str(pool.gpu_count * nodes)
    arch = {"x86_64": "amd64"}.get(pool_types(pool, catalog)[0].arch, "arm64")
    req = [
        ("node.kubernetes.io/instance-type", list(pool.instance_types)),
        ("topology.kubernetes.io/zone", list(pool.zones)),
        ("karpenter.sh/capacity-type", capacity),
        ("kubernetes.io/arch", [arch]),
    ]
    spec = {
        "nodeClassRef": {
            "group": KARPENTER_GROUP,
            "kind": "EC2NodeClass",
            "name": node_class_name(pool),
        },
        "taints": [_taint(t.key, t.value, t.effect) for t in node_taints(pool)],
        "requirements": [{"key": k, "operator": "In", "values": v} for k, v in req],
        "expireAfter": "720h",
    }
    return {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {
            "name": f"wbspawner-{pool.name}",
            "labels": {POOL_LABEL: pool.name},
        },
        "spec": {
            "template": {"metadata": {"labels": labels}, "spec": spec},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": CONSOLIDATE_AFTER,
            },
            "limits": limits,
        },
    }


def _max_pods(pools: Iterable[Pool], catalog: Catalog, cap: int) -> int:
    # Karpenter takes a literal maxPods for every type of the class; never above
    # what the smallest type's ENIs can address.
    types = [t for p in pools for t in pool_types(p, catalog)]
    return min([cap, *(sizing.max_pods(t) for t in types)])


def node_class(
    name: str, pools: list[Pool], catalog: Catalog, settings: Mapping[str, Any]
) -> JsonDict:
    """Return one Karpenter ``EC2NodeClass``.

    Args:
        name: its name (see :func:`node_class_name`).
        pools: the pools that use it (same kind and root volume size).
        catalog: the instance catalogue.
        settings: ``cluster``, ``role``, ``ami_alias``, ``max_pods`` (or None),
            ``imds_hop_limit``.

    Returns:
        The EC2NodeClass (``karpenter.k8s.aws/v1``).
    """
    cluster = settings["cluster"]
    discovery = [{"tags": {"karpenter.sh/discovery": cluster}}]
    spec: JsonDict = {
        "role": settings["role"],
        "amiSelectorTerms": [{"alias": settings["ami_alias"]}],
        "subnetSelectorTerms": discovery,
        "securityGroupSelectorTerms": discovery,
        "metadataOptions": {
            "httpEndpoint": "enabled",
            "httpProtocolIPv6": "disabled",
            "httpPutResponseHopLimit": settings["imds_hop_limit"],
            "httpTokens": "required",
        },
        "blockDeviceMappings": [
            {
                "deviceName": ROOT_DEVICE,
                "ebs": {
                    "volumeSize": f"{pools[0].root_volume_gib}Gi",
                    "volumeType": "gp3",
                    "encrypted": True,
                    "deleteOnTermination": True,
                },
            }
        ],
        "tags": {CLUSTER_TAG: cluster},
    }
    if settings.get("max_pods") is not None:
        spec["kubelet"] = {"maxPods": _max_pods(pools, catalog, settings["max_pods"])}
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": name},
        "spec": spec,
    }


def karpenter_manifests(
    profiles: Profiles,
    catalog: Catalog,
    cluster: str,
    *,
    role: str | None = None,
    ami_alias: str = "al2023@latest",
    imds_hop_limit: int = 1,
) -> list[JsonDict]:
    """Return the EC2NodeClasses and NodePools for the pools.

    Args:
        profiles: the profiles.
        catalog: the instance catalogue.
        cluster: cluster name (``karpenter.sh/discovery`` selector tag).
        role: IAM role of the nodes (default ``KarpenterNodeRole-<cluster>``).
        ami_alias: AMI alias, e.g. ``al2023@v20260801`` to pin a release
            (``latest`` drifts nodes whenever AWS publishes an AMI).
        imds_hop_limit: IMDS hop limit (1: pods cannot reach the node's role).

    Returns:
        The node classes first, then one NodePool per pool.
    """
    classes: dict[str, list[Pool]] = {}
    for pool in _pools(profiles):
        classes.setdefault(node_class_name(pool), []).append(pool)
    settings = {
        "cluster": cluster,
        "role": role or f"KarpenterNodeRole-{cluster}",
        "ami_alias": ami_alias,
        "max_pods": profiles.sizing.max_pods,
        "imds_hop_limit": imds_hop_limit,
    }
    docs = [node_class(n, p, catalog, settings) for n, p in sorted(classes.items())]
    return docs + [node_pool(profiles, catalog, p) for p in _pools(profiles)]


def to_yaml(docs: Iterable[Mapping[str, Any]]) -> str:
    """Return documents as one multi-document YAML text.

    Args:
        docs: the documents.

    Returns:
        YAML, documents separated by ``---``.
    """
    return "".join(
        "---\n" + yaml.dump(dict(d), Dumper=_NoAliases, sort_keys=False, width=100)
        for d in docs
    )


class _NoAliases(yaml.SafeDumper):
    """Safe dumper that writes repeated objects out instead of ``&id``/``*id``."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

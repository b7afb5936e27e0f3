"""Desired state of the node pools: a launch template and an ASG per group.

This module owns what wbspawner wants to exist on AWS for a set of profiles: for
each pool × availability zone × capacity type, one EC2 launch template (EKS AL2023
AMI, nodeadm user data with the node's labels, taints and maxPods, IMDSv2 only,
encrypted gp3 root) and one Auto Scaling group (that zone's subnets only, a
MixedInstancesPolicy over the pool's same-size types, tags for Cluster Autoscaler
auto-discovery, its scale-from-zero node template and cost allocation).

One group per zone and capacity type: CA models a group by its *first* zone and
type and a home pins its user to one zone; spot and on-demand are separate so the
priority expander can fall back (a mixed group keeps its ratio, never fails over).

Pure: no AWS calls. The AMI ids arrive already resolved in :class:`ClusterSpec`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from wbspawner.catalog import sizing
from wbspawner.model import CapacityType, Catalog, InstanceType, Pool, Profiles
from wbspawner.naming import group_name
from wbspawner.pools import PoolsError
from wbspawner.pools.nodes import (
    CLUSTER_TAG,
    NODECONFIG_BOUNDARY,
    ROOT_DEVICE,
    Taint,
    ami_parameter,
    autoscaler_tags,
    cost_tags,
    max_pods_expression,
    node_labels,
    node_taints,
    pool_types,
)

JsonDict = dict[str, Any]
"""A JSON-like dict as boto3 takes and returns it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterSpec:
    """What the pools need to know about the EKS cluster they join."""

    name: str
    """EKS cluster name (auto-discovery tag, nodeadm ``cluster.name``)."""
    region: str
    """AWS region."""
    k8s_version: str = "1.33"
    """Kubernetes minor version, which selects the AMI."""
    endpoint: str
    """API server URL (``describe_cluster``: ``endpoint``)."""
    certificate_authority: str
    """Base64 cluster CA (``certificateAuthority.data``)."""
    service_cidr: str = "10.100.0.0/16"
    """Service IPv4 CIDR (``kubernetesNetworkConfig.serviceIpv4Cidr``)."""
    subnets: Mapping[str, tuple[str, ...]]
    """Node subnet ids by availability zone."""
    security_group_ids: tuple[str, ...] = ()
    """Security groups of the nodes (the cluster security group at least)."""
    instance_profile: str
    """IAM instance profile of the nodes: a name, or an ARN."""
    amis: Mapping[str, str]
    """AMI id by SSM parameter name (see :func:`ami_parameter`), resolved earlier."""
    imds_hop_limit: int = 1
    """IMDS PUT response hop limit. 1 keeps pods (user notebooks) away from the
    node's IAM role; the DaemonSets that need IMDS use the host network, and
    other pods get AWS credentials through IRSA or Pod Identity."""
    extra_tags: Mapping[str, str] = field(default_factory=dict)
    """More cost-allocation tags for every group and its instances."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchTemplateSpec:
    """A launch template as wbspawner wants it."""

    name: str
    data: Mapping[str, Any]
    """``LaunchTemplateData`` for ``create_launch_template(_version)``."""
    tags: Mapping[str, str]
    """Tags of the launch template itself."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AsgSpec:
    """An Auto Scaling group as wbspawner wants it."""

    name: str
    launch_template: str
    """Name of its launch template (always used at version ``$Default``)."""
    min_size: int
    max_size: int
    subnets: tuple[str, ...]
    """Subnets of the group's one zone, sorted."""
    mixed_instances_policy: Mapping[str, Any]
    capacity_rebalance: bool
    tags: Mapping[str, str]
    propagate_at_launch: frozenset[str]
    """Tag keys copied to the instances (cost allocation, ``Name``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupSpec:
    """One pool × zone × capacity type: its launch template and its group."""

    pool: str
    zone: str
    capacity: CapacityType
    instance_types: tuple[str, ...]
    launch_template: LaunchTemplateSpec
    asg: AsgSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """Everything wbspawner wants on AWS for one cluster, in a stable order."""

    cluster: str
    groups: tuple[GroupSpec, ...]

    def group(self, asg_name: str) -> GroupSpec | None:
        """Return the group with this ASG name, if desired."""
        return next((g for g in self.groups if g.asg.name == asg_name), None)


def user_data(
    cluster: ClusterSpec,
    labels: Mapping[str, str],
    taints: Sequence[Taint],
    max_pods_cap: int | None,
) -> str:
    """Return the nodeadm user data (MIME multipart with one ``NodeConfig``).

    Args:
        cluster: the cluster to join.
        labels: node labels (``--node-labels``).
        taints: node taints (``--register-with-taints``).
        max_pods_cap: maxPods cap, or ``None``.

    Returns:
        The user data text (not yet base64-encoded).
    """
    flags = ["--node-labels=" + ",".join(f"{k}={v}" for k, v in labels.items())]
    if taints:
        flags.append("--register-with-taints=" + ",".join(t.kubelet() for t in taints))
    kubelet: JsonDict = {"flags": flags}
    expression = max_pods_expression(max_pods_cap)
    if expression is not None:
        kubelet["maxPodsExpression"] = expression
    node_config = {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "cluster": {
                "name": cluster.name,
                "apiServerEndpoint": cluster.endpoint,
                "certificateAuthority": cluster.certificate_authority,
                "cidr": cluster.service_cidr,
            },
            "kubelet": kubelet,
        },
    }
    body = yaml.safe_dump(node_config, sort_keys=False, width=10_000)
    b = NODECONFIG_BOUNDARY
    return (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{b}"\n\n'
        f"--{b}\nContent-Type: application/node.eks.aws\n\n---\n{body}\n--{b}--\n"
    )


def _tag_list(tags: Mapping[str, str]) -> list[JsonDict]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def resolved_ami(cluster: ClusterSpec, pool: Pool, first: InstanceType) -> str:
    """Return the AMI a pool's nodes boot: standard, or NVIDIA for GPU pools.

    Args:
        cluster: the cluster, with the resolved AMI ids.
        pool: the pool.
        first: the pool's primary instance type (its architecture).

    Returns:
        The AMI id.

    Raises:
        PoolsError: when it was not resolved.
    """
    parameter = ami_parameter(cluster.k8s_version, first.arch, pool.is_gpu)
    ami = cluster.amis.get(parameter)
    if not ami:
        raise PoolsError(
            f"pool {pool.name}: no AMI resolved for {parameter} "
            f"(Kubernetes {cluster.k8s_version}, region {cluster.region})"
        )
    return ami


def launch_template_data(
    cluster: ClusterSpec,
    pool: Pool,
    types: Sequence[InstanceType],
    capacity: CapacityType,
    cost: Mapping[str, str],
    max_pods_cap: int | None,
) -> JsonDict:
    """Return the ``LaunchTemplateData`` of one group.

    The instance type is the pool's primary type; the group's MixedInstancesPolicy
    overrides it with the whole list. No ``InstanceMarketOptions``: the group
    decides spot or on-demand.

    Args:
        cluster: the cluster.
        pool: the pool.
        types: the pool's instance types, primary first.
        capacity: the group's capacity type.
        cost: cost-allocation tags (put on the root volume).
        max_pods_cap: maxPods cap, or ``None``.

    Returns:
        The data, as boto3 takes it.

    Raises:
        PoolsError: when the AMI for the pool was not resolved.
    """
    ami = resolved_ami(cluster, pool, types[0])
    text = user_data(
        cluster, node_labels(pool, capacity), node_taints(pool), max_pods_cap
    )
    profile = cluster.instance_profile
    data: JsonDict = {
        "ImageId": ami,
        "InstanceType": types[0].name,
        "IamInstanceProfile": (
            {"Arn": profile} if profile.startswith("arn:") else {"Name": profile}
        ),
        "UserData": base64.b64encode(text.encode()).decode(),
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": cluster.imds_hop_limit,
        },
        "BlockDeviceMappings": [
            {
                "DeviceName": ROOT_DEVICE,
                "Ebs": {
                    "VolumeSize": pool.root_volume_gib,
                    "VolumeType": "gp3",
                    "Encrypted": True,
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [{"ResourceType": "volume", "Tags": _tag_list(cost)}],
    }
    if cluster.security_group_ids:
        data["SecurityGroupIds"] = list(cluster.security_group_ids)
    return data


def mixed_instances_policy(
    launch_template: str, types: Sequence[str], capacity: CapacityType
) -> JsonDict:
    """Return a group's MixedInstancesPolicy.

    Spot: price-capacity-optimized over all the pool's (same-size) types, no
    on-demand share. On-demand: 100 % on-demand, the types in the pool's order
    (``prioritized``: the primary type, which CA's template is built from, first).

    Args:
        launch_template: the group's launch template name.
        types: the pool's instance types, primary first.
        capacity: the group's capacity type.

    Returns:
        The policy, as boto3 takes it.
    """
    distribution: JsonDict = {"OnDemandBaseCapacity": 0}
    if capacity == "spot":
        distribution["OnDemandPercentageAboveBaseCapacity"] = 0
        distribution["SpotAllocationStrategy"] = "price-capacity-optimized"
    else:
        distribution["OnDemandPercentageAboveBaseCapacity"] = 100
        distribution["OnDemandAllocationStrategy"] = "prioritized"
    return {
        "LaunchTemplate": {
            "LaunchTemplateSpecification": {
                "LaunchTemplateName": launch_template,
                "Version": "$Default",
            },
            "Overrides": [{"InstanceType": t} for t in types],
        },
        "InstancesDistribution": distribution,
    }


def pool_allocatable(pool: Pool, profiles: Profiles) -> tuple[int, int]:
    """Return the allocatable a pool's scale-from-zero template should promise.

    Args:
        pool: the pool.
        profiles: the profiles (their instance facts, with the measured
            capacities, and node overheads: what the pool's request came from).

    Returns:
        (CPU millicores, memory MiB): the minimum over the pool's types.
    """
    types = pool_types(pool, profiles.catalog)
    allocs = [sizing.allocatable(t, profiles.sizing) for t in types]
    return min(a.cpu_m for a in allocs), min(a.memory_mib for a in allocs)


def _group(
    cluster: ClusterSpec,
    profiles: Profiles,
    catalog: Catalog,
    pool: Pool,
    zone: str,
    capacity: CapacityType,
) -> GroupSpec:
    types = pool_types(pool, catalog)
    name = group_name(cluster.name, pool.name, zone, cluster.region, capacity)
    cost = cost_tags(cluster.name, pool, capacity, name, cluster.extra_tags)
    labels = node_labels(pool, capacity)
    alloc = pool_allocatable(pool, profiles)
    ca = autoscaler_tags(cluster.name, pool, labels, node_taints(pool), alloc)
    data = launch_template_data(
        cluster, pool, types, capacity, cost, profiles.sizing.max_pods
    )
    names = tuple(t.name for t in types)
    asg = AsgSpec(
        name=name,
        launch_template=name,
        min_size=pool.min_nodes,
        max_size=pool.max_nodes,
        subnets=tuple(sorted(cluster.subnets[zone])),
        mixed_instances_policy=mixed_instances_policy(name, names, capacity),
        capacity_rebalance=capacity == "spot",
        tags={**cost, **ca},
        propagate_at_launch=frozenset(cost),
    )
    lt = LaunchTemplateSpec(
        name=name, data=data, tags={CLUSTER_TAG: cluster.name, **cost}
    )
    return GroupSpec(
        pool=pool.name,
        zone=zone,
        capacity=capacity,
        instance_types=names,
        launch_template=lt,
        asg=asg,
    )


def desired_state(
    profiles: Profiles, catalog: Catalog, cluster: ClusterSpec
) -> DesiredState:
    """Return the launch templates and groups the profiles ask for.

    Args:
        profiles: the validated profiles.
        catalog: the instance catalogue.
        cluster: the cluster, with subnets and resolved AMIs.

    Returns:
        One group per pool × zone × capacity type, sorted by pool, zone and the
        pool's order of capacity types.

    Raises:
        PoolsError: when a pool's zone has no subnet, a type is unknown or an AMI
            was not resolved.
    """
    groups: list[GroupSpec] = []
    for pool in sorted(profiles.pools.values(), key=lambda p: p.name):
        pool_types(pool, catalog)  # unknown types fail before any zone check
        for zone in pool.zones:
            if not cluster.subnets.get(zone):
                raise PoolsError(
                    f"pool {pool.name} uses zone {zone}, but cluster "
                    f"{cluster.name} has no node subnet there"
                )
            for capacity in pool.capacity_types:
                groups.append(_group(cluster, profiles, catalog, pool, zone, capacity))
    return DesiredState(cluster=cluster.name, groups=tuple(groups))

"""Node groups straight into moto: one ASG per pool × zone × capacity.

The workbench (and so the demo) makes its groups with ``wbspawner pools apply``
(:func:`devcluster.demo.cli_env.apply_node_groups`). This shortcut is for tests
and the benchmark that run a moto server without devcluster's EKS account
(no subnets, cluster or AMI parameters). The groups are tagged like
``wbspawner pools apply`` tags them (the same pure functions build the tags), so
devcluster's autoscaler scales them from zero as Cluster Autoscaler would; the
launch templates name a placeholder AMI; devcluster boots no image.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from devcluster.config import ClusterConfig
from wbspawner.model import Profiles
from wbspawner.naming import group_name
from wbspawner.pools.desired import mixed_instances_policy, pool_allocatable
from wbspawner.pools.nodes import autoscaler_tags, node_labels, node_taints

CLUSTER = ClusterConfig().cluster_name
REGION = ClusterConfig().region
FAKE_AMI = "ami-0123456789abcdef0"  # moto takes any id; devcluster boots none


def create_node_groups(
    aws: dict[str, Any],
    profiles: Profiles,
    *,
    pools: Iterable[str] | None = None,
    zones: Sequence[str] | None = None,
) -> list[str]:
    """Create one launch template and ASG per pool × zone × capacity type in moto.

    The groups carry the Cluster Autoscaler auto-discovery and node-template tags
    (labels, taints, GPU and allocatable resources) that ``wbspawner pools``
    writes, so devcluster's autoscaler scales them from zero like CA would.

    Args:
        aws: boto3 clients ``{"ec2": …, "autoscaling": …}`` for the moto server.
        profiles: the profiles (with their instance facts).
        pools: pool names to create groups for (default: all).
        zones: zones to use (default: each pool's own).

    Returns:
        The group names, in creation order.
    """
    wanted = set(pools) if pools is not None else set(profiles.pools)
    names = []
    for pool in (p for p in profiles.pools.values() if p.name in wanted):
        alloc = pool_allocatable(pool, profiles)
        for zone in zones or pool.zones:
            for capacity in pool.capacity_types:
                name = group_name(CLUSTER, pool.name, zone, REGION, capacity)
                labels = node_labels(pool, capacity)
                tags = autoscaler_tags(CLUSTER, pool, labels, node_taints(pool), alloc)
                aws["ec2"].create_launch_template(
                    LaunchTemplateName=name,
                    LaunchTemplateData={
                        "ImageId": FAKE_AMI,
                        "InstanceType": pool.instance_types[0],
                    },
                )
                aws["autoscaling"].create_auto_scaling_group(
                    AutoScalingGroupName=name,
                    MinSize=0,
                    MaxSize=pool.max_nodes,
                    DesiredCapacity=0,
                    AvailabilityZones=[zone],
                    MixedInstancesPolicy=mixed_instances_policy(
                        name, pool.instance_types, capacity
                    ),
                    Tags=[
                        {"Key": k, "Value": v, "PropagateAtLaunch": True}
                        for k, v in sorted(tags.items())
                    ],
                )
                names.append(name)
    return names


def aws_clients(endpoint: str) -> dict[str, Any]:
    """Return boto3 ``ec2`` and ``autoscaling`` clients for a moto server."""
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return {
        s: boto3.client(s, endpoint_url=endpoint, region_name=REGION, **keys)
        for s in ("ec2", "autoscaling")
    }

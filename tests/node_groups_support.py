"""Node groups in moto, tagged the way ``wbspawner pools apply`` tags them.

One launch template per pool and one Auto Scaling group per pool × AZ × capacity
type, named ``wbspawner-<cluster>-<pool>-<zone suffix>-<spot|ondemand>``, with the
Cluster Autoscaler auto-discovery and node-template tags. Spot groups use a
MixedInstancesPolicy with 0 % on-demand; on-demand groups the launch template.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

CA = "k8s.io/cluster-autoscaler/"
TEMPLATE = CA + "node-template/"
PRIORITIES = "50:\n  - .*-spot$\n10:\n  - .*-ondemand$\n"

INSTANCE_TYPES = {"mem16": "r5.large", "mem64": "r5.2xlarge", "gpu-a10g": "g5.xlarge"}
"""The instance type of each pool the tests make, unless a test names another."""

MakePool = Callable[..., list[str]]
"""The ``make_pool`` fixture: ``create_pool`` bound to the clients and the cluster."""


def make_network(ec2: Any, zones: Sequence[str]) -> dict[str, str]:
    """Create a VPC with one subnet per AZ; return subnet ids by zone."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return {
        zone: ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone
        )["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    }


def create_pool(
    ec2: Any,
    autoscaling: Any,
    subnets: dict[str, str],
    pool: str,
    *,
    cluster: str,
    zones: Sequence[str],
    instance_type: str | None = None,
    capacities: Sequence[str] = ("spot", "on-demand"),
    min_size: int = 0,
    max_size: int = 3,
    desired: int | None = None,
    gpus: int = 0,
) -> list[str]:
    """Create a pool's launch template and groups; return the group names.

    The groups run ``instance_type``, by default the pool's in ``INSTANCE_TYPES``.
    """
    instance_type = instance_type or INSTANCE_TYPES[pool]
    lt_name = f"wbspawner-{cluster}-{pool}"
    ec2.create_launch_template(
        LaunchTemplateName=lt_name,
        LaunchTemplateData={"ImageId": "ami-12345678", "InstanceType": instance_type},
    )
    names = []
    for zone in zones:
        for capacity in capacities:
            suffix = "spot" if capacity == "spot" else "ondemand"
            name = (
                f"wbspawner-{cluster}-{pool}-{zone.removeprefix('us-east-1')}-{suffix}"
            )
            tags = {
                CA + "enabled": "true",
                CA + cluster: "owned",
                TEMPLATE + "label/wbspawner.io/pool": pool,
                TEMPLATE + "label/wbspawner.io/capacity": capacity,
                TEMPLATE + "taint/wbspawner.io/pool": f"{pool}:NoSchedule",
            }
            if gpus:
                tags[TEMPLATE + "taint/nvidia.com/gpu"] = "present:NoSchedule"
                tags[TEMPLATE + "resources/nvidia.com/gpu"] = str(gpus)
            spec = {"LaunchTemplateName": lt_name, "Version": "$Latest"}
            placement: dict[str, Any] = {}
            if capacity == "spot":
                placement["MixedInstancesPolicy"] = {
                    "LaunchTemplate": {
                        "LaunchTemplateSpecification": spec,
                        "Overrides": [{"InstanceType": instance_type}],
                    },
                    "InstancesDistribution": {
                        "OnDemandBaseCapacity": 0,
                        "OnDemandPercentageAboveBaseCapacity": 0,
                        "SpotAllocationStrategy": "price-capacity-optimized",
                    },
                }
            else:
                placement["LaunchTemplate"] = spec
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=name,
                MinSize=min_size,
                MaxSize=max_size,
                DesiredCapacity=min_size if desired is None else desired,
                AvailabilityZones=[zone],
                VPCZoneIdentifier=subnets[zone],
                Tags=[
                    {
                        "Key": k,
                        "Value": v,
                        "PropagateAtLaunch": False,
                        "ResourceId": name,
                        "ResourceType": "auto-scaling-group",
                    }
                    for k, v in tags.items()
                ],
                **placement,
            )
            names.append(name)
    return names

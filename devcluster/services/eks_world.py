"""The EKS-shaped AWS account devcluster stands for, made in its moto server.

This module owns what ``wbspawner pools plan`` reads from a real account before
it plans, so that the command works against devcluster with no flags beyond
what points it there (endpoint, cluster name):

- a VPC with one node subnet per zone, tagged ``kubernetes.io/cluster/<name>``,
  and a security group for the nodes (:func:`create_eks_world`);
- the EKS cluster itself (endpoint, CA, service CIDR), in moto's EKS;
- the EKS-optimized AMI IDs in SSM under ``/aws/service/eks/…``
  (:func:`seed_eks_amis`). moto refuses to store parameters under
  ``/aws/service/`` through its API, as AWS does, so they go into moto's
  in-process backend: call it in the process that runs the moto server.

The subnets are large enough for every pool's maximum of nodes (the subnet IP
check of ``pools apply`` passes). Nothing here boots anything: the AMI IDs are
names only; devcluster's autoscaler makes nodes.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from wbspawner.pools.nodes import ami_parameter

EKS_VERSION = "1.33"
"""Kubernetes version of the cluster (``wbspawner pools``'s default)."""
VPC_CIDR = "10.0.0.0/16"
SUBNET_PREFIX = 18
"""Each zone's subnet: a /18 holds 16,379 addresses."""
ROLE_ARN = "arn:aws:iam::123456789012:role/devcluster-eks"
"""The cluster role moto records (moto checks nothing of it)."""


def eks_amis(version: str = EKS_VERSION) -> dict[str, str]:
    """Return made-up AMI IDs for every EKS AL2023 parameter of a version.

    Args:
        version: Kubernetes minor version.

    Returns:
        SSM parameter name → AMI ID, for x86_64 and arm64, standard and NVIDIA.
    """
    digits = version.replace(".", "")
    out = {}
    for arch in ("x86_64", "arm64"):
        for gpu in (False, True):
            kind = ("gpu" if gpu else "std") + ("arm" if arch == "arm64" else "x86")
            out[ami_parameter(version, arch, gpu)] = f"ami-0{kind}{digits}"
    return out


def seed_eks_amis(region: str, amis: Mapping[str, str]) -> None:
    """Put EKS AMI parameters into this process's moto SSM backend.

    Args:
        region: the region of the parameters.
        amis: parameter name → AMI ID; names already there are kept.
    """
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ssm.models import Parameter, ssm_backends

    params = ssm_backends[DEFAULT_ACCOUNT_ID][region]._parameters
    for name, ami in amis.items():
        if params.get(name):
            continue
        params[name].append(
            Parameter(
                account_id=DEFAULT_ACCOUNT_ID,
                name=name,
                value=ami,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.datetime.now(),
                version=1,
                data_type="aws:ec2:image",
            )
        )


@dataclass(frozen=True, slots=True)
class EksWorld:
    """What :func:`create_eks_world` made."""

    cluster: str
    vpc_id: str
    subnets: Mapping[str, str]
    """Subnet ID by zone."""
    security_group_id: str


def create_eks_world(
    ec2: Any,
    eks: Any,
    cluster: str,
    zones: Sequence[str],
    version: str = EKS_VERSION,
) -> EksWorld:
    """Create the cluster's VPC, tagged node subnets, security group and EKS cluster.

    Args:
        ec2: a boto3 EC2 client of the moto server.
        eks: a boto3 EKS client of the moto server.
        cluster: the cluster name (subnet tags, EKS cluster).
        zones: one subnet per zone, in order.
        version: the cluster's Kubernetes version.

    Returns:
        The IDs made.
    """
    vpc = ec2.create_vpc(CidrBlock=VPC_CIDR)["Vpc"]["VpcId"]
    tags = [{"Key": f"kubernetes.io/cluster/{cluster}", "Value": "shared"}]
    per_subnet = 2 ** (24 - SUBNET_PREFIX)  # third octets in one subnet
    if len(zones) * per_subnet > 256:
        raise ValueError(f"{VPC_CIDR} holds at most {256 // per_subnet} subnets")
    subnets = {}
    for i, zone in enumerate(zones):
        subnets[zone] = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=f"10.0.{i * per_subnet}.0/{SUBNET_PREFIX}",
            AvailabilityZone=zone,
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName=f"{cluster}-nodes", Description="devcluster nodes", VpcId=vpc
    )["GroupId"]
    eks.create_cluster(
        name=cluster,
        version=version,
        roleArn=ROLE_ARN,
        resourcesVpcConfig={
            "subnetIds": list(subnets.values()),
            "securityGroupIds": [group],
        },
    )
    return EksWorld(cluster, vpc, subnets, group)

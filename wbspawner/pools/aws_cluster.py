"""What the pools learn about their cluster from AWS: EKS facts and AMI ids.

This module owns two read-only adapters: :class:`EksClusters` (the API endpoint,
CA, service CIDR and security groups nodeadm and the launch templates need) and
:class:`SsmAmis` (EKS-optimized AL2023 AMI ids from AWS's public SSM parameters,
with a clear message when a Kubernetes version, variant or region has none).
Like :mod:`~wbspawner.pools.aws`, it holds no policy and calls AWS through
:func:`~wbspawner.adapters.aws.call`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wbspawner.adapters.aws import NotFoundError, call


class SsmAmis:
    """EKS-optimized AMI ids from AWS's public SSM parameters."""

    def __init__(self, client: Any, region: str) -> None:
        self.client = client
        self.region = region

    def resolve(self, parameters: Iterable[str]) -> dict[str, str]:
        """Return the AMI id of each parameter.

        Args:
            parameters: names from :func:`wbspawner.pools.nodes.ami_parameter`.

        Returns:
            AMI id by parameter name.

        Raises:
            NotFoundError: a parameter does not exist (no such AMI for that
                Kubernetes version, variant or region).
        """
        out: dict[str, str] = {}
        for name in parameters:
            try:
                res = call(self.client, "get_parameter", about=name, Name=name)
            except NotFoundError as err:
                err.message = _no_ami_message(name, self.region)
                err.args = (err.message,)
                raise
            out[name] = str(res["Parameter"]["Value"])
        return out


def _no_ami_message(parameter: str, region: str) -> str:
    parts = parameter.split("/")
    k8s, arch, variant = parts[5], parts[7], parts[8]
    return (
        f"no EKS AL2023 AMI for Kubernetes {k8s} ({variant}, {arch}) in region "
        f"{region}: SSM parameter {parameter} does not exist. Check --k8s-version "
        "(a version EKS supports there; AL2023 AMIs start at 1.23), or pin AMIs "
        "with --ami."
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class EksClusterInfo:
    """What ``describe_cluster`` tells the pools."""

    name: str
    version: str
    endpoint: str
    certificate_authority: str
    service_cidr: str
    security_group_ids: tuple[str, ...]
    subnet_ids: tuple[str, ...]


class EksClusters:
    """The EKS cluster the pools join."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def describe(self, name: str) -> EksClusterInfo:
        """Return the cluster's endpoint, CA, service CIDR and security group."""
        c = call(self.client, "describe_cluster", about=f"cluster {name}", name=name)[
            "cluster"
        ]
        vpc = c.get("resourcesVpcConfig", {})
        groups = [vpc.get("clusterSecurityGroupId")] + vpc.get("securityGroupIds", [])
        net = c.get("kubernetesNetworkConfig", {})
        return EksClusterInfo(
            name=name,
            version=str(c.get("version", "")),
            endpoint=str(c.get("endpoint", "")),
            certificate_authority=str(
                c.get("certificateAuthority", {}).get("data", "")
            ),
            service_cidr=str(net.get("serviceIpv4Cidr") or "10.100.0.0/16"),
            security_group_ids=tuple(dict.fromkeys(g for g in groups if g)),
            subnet_ids=tuple(vpc.get("subnetIds", [])),
        )

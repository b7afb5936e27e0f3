"""Thin AWS adapters for the node pools: launch templates, subnets, groups.

This module owns the AWS calls the pools make, and nothing else: it holds no
policy. Each adapter receives its client (made by
:func:`~wbspawner.adapters.aws.make_client`) and calls it through
:func:`~wbspawner.adapters.aws.call` and :func:`~wbspawner.adapters.aws.paginate`
(botocore's retries, clear error messages).

- :class:`Ec2Pools`: launch templates (tagged with the cluster) and subnets.
- :class:`AsgPools`: Auto Scaling groups (tagged with the cluster), failed
  scaling activities.

The cluster's own facts (EKS endpoint, AMI ids from SSM) are read by
:mod:`~wbspawner.pools.aws_cluster`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wbspawner.adapters.aws import CAPACITY_CODES, call, paginate, tag_dict
from wbspawner.pools.desired import JsonDict
from wbspawner.pools.nodes import CLUSTER_TAG
from wbspawner.pools.observed import ObservedAsg, ObservedLaunchTemplate
from wbspawner.pools.subnets import SubnetInfo

__all__ = [
    "AsgPools",
    "Ec2Pools",
    "explain_launch_failure",
    "observed_asg",
]

# ---------------------------------------------------------------------- EC2


class Ec2Pools:
    """Launch templates and subnets of one cluster's pools."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, method: str, about: str = "", **params: Any) -> JsonDict:
        return call(self.client, method, about=about, **params)

    def observe_launch_templates(
        self, cluster: str
    ) -> dict[str, ObservedLaunchTemplate]:
        """Return the launch templates tagged with this cluster, by name.

        Args:
            cluster: cluster name (tag ``wbspawner.io/cluster``).

        Returns:
            Each template with its default and latest versions' data.
        """
        found: dict[str, ObservedLaunchTemplate] = {}
        filters = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
        # MaxResults: the largest page AWS allows (moto also drops NextToken
        # and returns only 15 templates without it).
        for lt in paginate(
            self.client,
            "describe_launch_templates",
            "LaunchTemplates",
            Filters=filters,
            MaxResults=200,
        ):
            name = lt["LaunchTemplateName"]
            versions = self._call(
                "describe_launch_template_versions",
                name,
                LaunchTemplateId=lt["LaunchTemplateId"],
                Versions=["$Default", "$Latest"],
            )["LaunchTemplateVersions"]
            by_number = {v["VersionNumber"]: v for v in versions}
            default = int(lt["DefaultVersionNumber"])
            latest = int(lt["LatestVersionNumber"])
            found[name] = ObservedLaunchTemplate(
                name=name,
                default_version=default,
                latest_version=latest,
                default_data=by_number.get(default, {}).get("LaunchTemplateData", {}),
                latest_data=by_number.get(latest, {}).get("LaunchTemplateData", {}),
            )
        return found

    def create_launch_template(self, params: Mapping[str, Any]) -> int:
        """Create a launch template; return its version number (1)."""
        out = self._call(
            "create_launch_template", params["LaunchTemplateName"], **params
        )
        return int(out["LaunchTemplate"]["LatestVersionNumber"])

    def create_launch_template_version(self, params: Mapping[str, Any]) -> int:
        """Create a new version of a launch template; return its number."""
        out = self._call(
            "create_launch_template_version", params["LaunchTemplateName"], **params
        )
        return int(out["LaunchTemplateVersion"]["VersionNumber"])

    def set_default_version(self, name: str, version: str | None) -> str:
        """Make a version (the newest when ``None``) the default; return it."""
        if version is None:
            lts = self._call(
                "describe_launch_templates", name, LaunchTemplateNames=[name]
            )["LaunchTemplates"]
            version = str(lts[0]["LatestVersionNumber"])
        self._call(
            "modify_launch_template",
            name,
            LaunchTemplateName=name,
            DefaultVersion=version,
        )
        return version

    def delete_launch_template(self, name: str) -> None:
        """Delete a launch template and all its versions."""
        self._call("delete_launch_template", name, LaunchTemplateName=name)

    def subnets(
        self, ids: Sequence[str] = (), cluster: str | None = None
    ) -> list[SubnetInfo]:
        """Return subnets by id, or those tagged ``kubernetes.io/cluster/<cluster>``.

        Args:
            ids: subnet ids; when empty, ``cluster`` selects by tag.
            cluster: cluster name.

        Returns:
            The subnets with their zone and free addresses, sorted by id.
        """
        params: JsonDict = {}
        if ids:
            params["SubnetIds"] = list(ids)
        elif cluster:
            key = f"kubernetes.io/cluster/{cluster}"
            params["Filters"] = [{"Name": "tag-key", "Values": [key]}]
        items = self._call("describe_subnets", "subnets", **params)["Subnets"]
        return sorted(
            (
                SubnetInfo(
                    id=s["SubnetId"],
                    zone=s["AvailabilityZone"],
                    free_ips=int(s.get("AvailableIpAddressCount", 0)),
                    cidr=s.get("CidrBlock", ""),
                )
                for s in items
            ),
            key=lambda s: s.id,
        )


# ---------------------------------------------------------------------- ASG


def observed_asg(group: Mapping[str, Any]) -> ObservedAsg:
    """Return a group from ``describe_auto_scaling_groups`` as an ObservedAsg."""
    tags = group.get("Tags", [])
    mip = group.get("MixedInstancesPolicy")
    spec = (
        (mip or {}).get("LaunchTemplate", {}).get("LaunchTemplateSpecification")
        or group.get("LaunchTemplate")
        or {}
    )
    subnets = [s for s in str(group.get("VPCZoneIdentifier", "")).split(",") if s]
    return ObservedAsg(
        name=group["AutoScalingGroupName"],
        min_size=int(group["MinSize"]),
        max_size=int(group["MaxSize"]),
        desired_capacity=int(group.get("DesiredCapacity", 0)),
        instances=len(group.get("Instances", [])),
        subnets=tuple(sorted(subnets)),
        mixed_instances_policy=mip,
        capacity_rebalance=bool(group.get("CapacityRebalance", False)),
        tags=tag_dict(tags),
        propagate_at_launch=frozenset(
            t["Key"] for t in tags if t.get("PropagateAtLaunch")
        ),
        launch_template=spec.get("LaunchTemplateName"),
    )


class AsgPools:
    """Auto Scaling groups of one cluster's pools."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, method: str, about: str = "", **params: Any) -> JsonDict:
        return call(self.client, method, about=about, **params)

    def observe(self, cluster: str) -> dict[str, ObservedAsg]:
        """Return the groups tagged with this cluster, by name."""
        filters = [{"Name": f"tag:{CLUSTER_TAG}", "Values": [cluster]}]
        groups = paginate(
            self.client,
            "describe_auto_scaling_groups",
            "AutoScalingGroups",
            Filters=filters,
        )
        return {g["AutoScalingGroupName"]: observed_asg(g) for g in groups}

    def create(self, params: Mapping[str, Any]) -> None:
        """Create a group."""
        self._call(
            "create_auto_scaling_group", params["AutoScalingGroupName"], **params
        )

    def update(self, params: Mapping[str, Any]) -> None:
        """Update a group's sizes, subnets, policy or rebalancing."""
        self._call(
            "update_auto_scaling_group", params["AutoScalingGroupName"], **params
        )

    def put_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        """Create or update tags."""
        self._call("create_or_update_tags", _tags_about(tags), Tags=list(tags))

    def delete_tags(self, tags: Sequence[Mapping[str, Any]]) -> None:
        """Delete tags."""
        self._call("delete_tags", _tags_about(tags), Tags=list(tags))

    def delete(self, name: str, force: bool) -> None:
        """Delete a group (``force`` terminates its instances)."""
        self._call(
            "delete_auto_scaling_group",
            name,
            AutoScalingGroupName=name,
            ForceDelete=force,
        )

    def scaling_failures(self, names: Iterable[str], limit: int = 5) -> list[str]:
        """Return messages of recent failed launches of these groups.

        Capacity shortages surface here, not in the API calls that change a
        group: AWS launches asynchronously and records a ``Failed`` activity.

        Args:
            names: group names.
            limit: activities to read per group.

        Returns:
            One message per failed activity, the group name first.
        """
        out: list[str] = []
        for name in names:
            acts = self._call(
                "describe_scaling_activities",
                name,
                AutoScalingGroupName=name,
                MaxRecords=limit,
            )["Activities"]
            for act in acts:
                if act.get("StatusCode") != "Failed":
                    continue
                text = str(act.get("StatusMessage") or act.get("Description", ""))
                out.append(f"{name}: {explain_launch_failure(text)}")
        return out


def _tags_about(tags: Sequence[Mapping[str, Any]]) -> str:
    return ",".join(sorted({str(t.get("ResourceId", "")) for t in tags}))


_NO_CAPACITY = re.compile(r"(insufficient|not have sufficient)\b.*capacity", re.I)


def explain_launch_failure(text: str) -> str:
    """Return an admin's reading of a failed launch's status message.

    Args:
        text: ``StatusMessage`` of a failed scaling activity.

    Returns:
        The message, prefixed with what to do when it is a known capacity error.
    """
    code = next((c for c in sorted(CAPACITY_CODES) if c in text), None)
    if code is None and _NO_CAPACITY.search(text):
        code = "InsufficientInstanceCapacity"
    if code is not None:
        return (
            f"no capacity ({code}): {text} Cluster Autoscaler backs off this "
            "group and tries the next one by priority (spot → on-demand); add "
            "same-size types to the pool or another zone if it persists."
        )
    return text

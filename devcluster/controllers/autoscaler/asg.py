"""Auto Scaling groups as Cluster Autoscaler sees them, and a thin boto3 adapter.

This module owns reading a group the way CA's AWS provider does (auto-discovery
tags ``k8s.io/cluster-autoscaler/enabled`` + ``k8s.io/cluster-autoscaler/<cluster>``;
first AZ; first instance type from the MixedInstancesPolicy overrides or the
launch template; ``node-template/{label,taint,resources}/*`` tags, where a taint
value must read ``value:Effect`` or it is ignored like CA ignores it; spot from
the mixed policy's 0 % on-demand or a spot launch template) and the calls CA
makes (describe, SetDesiredCapacity, TerminateInstanceInAutoScalingGroup), with
the MinSize/MaxSize checks moto does not make. Everything above ``AsgActuator``
is pure.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from wbspawner.model import InstanceType

Obj = dict[str, Any]
log = logging.getLogger(__name__)

TAG_PREFIX = "k8s.io/cluster-autoscaler/"
ENABLED_TAG = TAG_PREFIX + "enabled"
TEMPLATE_PREFIX = TAG_PREFIX + "node-template/"
CAPACITY_LABEL = "wbspawner.io/capacity"
INSTANCE_NOT_FOUND = "InvalidInstanceID.NotFound"
_TAINT_RE = re.compile(r"^(.*):(NoSchedule|NoExecute|PreferNoSchedule)$")


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """One auto-discovered Auto Scaling group and its node template inputs."""

    name: str
    min_size: int
    max_size: int
    desired: int
    zone: str
    """The first AZ of the group (CA models a group as its first AZ)."""
    instance_type: str
    """The first instance type (MixedInstancesPolicy override or launch template)."""
    capacity_type: str
    """``spot`` or ``on-demand``."""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Obj, ...] = ()
    resources: Mapping[str, str] = field(default_factory=dict)
    instances: tuple[str, ...] = ()
    """Ids of the group's instances that are not terminating."""

    def row(self) -> dict[str, Any]:
        """Return the group as a status row."""
        return {
            "name": self.name,
            "min": self.min_size,
            "max": self.max_size,
            "desired": self.desired,
            "zone": self.zone,
            "instance_type": self.instance_type,
            "capacity_type": self.capacity_type,
            "instances": list(self.instances),
        }


# ------------------------------------------------------------------ discovery


def tags_of(asg: Mapping[str, Any]) -> dict[str, str]:
    """Return an ASG's tags as a dict."""
    return {str(t["Key"]): str(t.get("Value") or "") for t in asg.get("Tags") or []}


def is_discovered(tags: Mapping[str, str], cluster_name: str) -> bool:
    """Tell whether an ASG carries both auto-discovery tag keys (values ignored)."""
    return ENABLED_TAG in tags and f"{TAG_PREFIX}{cluster_name}" in tags


def parse_taint(key: str, value: str) -> Obj | None:
    """Parse a ``node-template/taint/<key>`` value ``value:Effect`` (else None)."""
    match = _TAINT_RE.match(value)
    if match is None:
        return None
    taint: Obj = {"key": key, "effect": match.group(2)}
    if match.group(1):
        taint["value"] = match.group(1)
    return taint


def template_from_tags(
    tags: Mapping[str, str],
) -> tuple[dict[str, str], tuple[Obj, ...], dict[str, str]]:
    """Return (labels, taints, resources) from ``node-template/*`` tags."""
    labels: dict[str, str] = {}
    taints: list[Obj] = []
    resources: dict[str, str] = {}
    for key in sorted(tags):
        if not key.startswith(TEMPLATE_PREFIX):
            continue
        kind, _, name = key[len(TEMPLATE_PREFIX) :].partition("/")
        if not name:
            continue
        if kind == "label":
            labels[name] = tags[key]
        elif kind == "taint":
            taint = parse_taint(name, tags[key])
            if taint is not None:
                taints.append(taint)
        elif kind == "resources":
            resources[name] = tags[key]
    return labels, tuple(taints), resources


def capacity_type_of(
    asg: Mapping[str, Any], labels: Mapping[str, str], lt_spot: bool = False
) -> str:
    """Return ``spot`` or ``on-demand`` for a group.

    The MixedInstancesPolicy decides (no on-demand base and 0 % on-demand above
    it → spot); without one, a spot launch template or the group's
    ``wbspawner.io/capacity`` template label.
    """
    mixed = asg.get("MixedInstancesPolicy")
    if mixed:
        dist = mixed.get("InstancesDistribution") or {}
        base = int(dist.get("OnDemandBaseCapacity", 0) or 0)
        pct = int(dist.get("OnDemandPercentageAboveBaseCapacity", 100))
        return "spot" if base == 0 and pct == 0 else "on-demand"
    if lt_spot or labels.get(CAPACITY_LABEL) == "spot":
        return "spot"
    return "on-demand"


def launch_template_ref(asg: Mapping[str, Any]) -> Mapping[str, Any]:
    """Return the launch template spec of a group (plain or inside its mixed policy)."""
    mixed = asg.get("MixedInstancesPolicy") or {}
    spec = (mixed.get("LaunchTemplate") or {}).get("LaunchTemplateSpecification")
    return spec or asg.get("LaunchTemplate") or {}


def group_from_asg(
    asg: Mapping[str, Any], lt_type: str | None, lt_spot: bool = False
) -> NodeGroup:
    """Build a NodeGroup from ``describe_auto_scaling_groups`` output.

    Args:
        asg: one AutoScalingGroups entry.
        lt_type: the launch template's InstanceType (used without overrides).
        lt_spot: the launch template requests spot (InstanceMarketOptions).
    """
    tags = tags_of(asg)
    labels, taints, resources = template_from_tags(tags)
    overrides = (
        (asg.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    ).get("Overrides") or []
    first = next((o["InstanceType"] for o in overrides if o.get("InstanceType")), None)
    instances = tuple(
        str(i["InstanceId"])
        for i in asg.get("Instances") or []
        if not str(i.get("LifecycleState", "")).startswith(("Terminat", "Detach"))
    )
    zones = list(asg.get("AvailabilityZones") or [])
    return NodeGroup(
        name=str(asg["AutoScalingGroupName"]),
        min_size=int(asg.get("MinSize", 0)),
        max_size=int(asg.get("MaxSize", 0)),
        desired=int(asg.get("DesiredCapacity", 0)),
        zone=str(zones[0]) if zones else "",
        instance_type=str(first or lt_type or ""),
        capacity_type=capacity_type_of(asg, labels, lt_spot),
        labels=labels,
        taints=taints,
        resources=resources,
        instances=instances,
    )


# ------------------------------------------------------------------- actuator


def _validation(operation: str, message: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": "ValidationError", "Message": message}}, operation
    )


class AsgActuator:
    """Thin boto3 adapter: discover groups, set desired capacity, terminate instances.

    It adds the checks moto lacks: ``SetDesiredCapacity`` above MaxSize or below
    MinSize, and a decrementing terminate below MinSize, fail with the AWS
    ``ValidationError`` wording.

    Args:
        autoscaling: a boto3 ``autoscaling`` client.
        ec2: a boto3 ``ec2`` client.
        cluster_name: the name in the auto-discovery tag.
    """

    def __init__(self, autoscaling: Any, ec2: Any, cluster_name: str) -> None:
        self.autoscaling = autoscaling
        self.ec2 = ec2
        self.cluster_name = cluster_name
        self._lt_cache: dict[tuple[str, str], tuple[str | None, bool]] = {}

    def describe(self) -> list[Obj]:
        """Return every discovered AutoScalingGroups entry.

        A listing that fails after its first page (its paging token went stale:
        groups deleted meanwhile, or AWS's state lost) is listed again from the
        first page, once.

        Raises:
            ClientError: AWS refused the first page, or the listing twice.
        """
        paginator = self.autoscaling.get_paginator("describe_auto_scaling_groups")
        for again in (False, True):
            found: list[Obj] = []
            pages = 0
            try:
                for page in paginator.paginate():
                    pages += 1
                    found += [
                        a
                        for a in page["AutoScalingGroups"]
                        if is_discovered(tags_of(a), self.cluster_name)
                    ]
            except ClientError as err:
                if again or pages == 0:
                    raise
                log.info("listing groups again from the first page: %s", err)
                continue
            return found
        raise AssertionError("unreachable: the second listing returns or raises")

    def _launch_template(self, ref: Mapping[str, Any]) -> tuple[str | None, bool]:
        ident = str(ref.get("LaunchTemplateId") or ref.get("LaunchTemplateName") or "")
        version = str(ref.get("Version") or "$Default")
        if not ident:
            return None, False
        if (ident, version) not in self._lt_cache:
            key = (
                "LaunchTemplateId"
                if ref.get("LaunchTemplateId")
                else "LaunchTemplateName"
            )
            versions = self.ec2.describe_launch_template_versions(
                **{key: ident}, Versions=[version]
            )
            data = (versions.get("LaunchTemplateVersions") or [{}])[0].get(
                "LaunchTemplateData"
            ) or {}
            spot = (data.get("InstanceMarketOptions") or {}).get("MarketType") == "spot"
            self._lt_cache[(ident, version)] = (data.get("InstanceType"), spot)
        return self._lt_cache[(ident, version)]

    def groups(self) -> list[NodeGroup]:
        """Return the discovered groups, sorted by name."""
        out = []
        for asg in self.describe():
            lt_type, lt_spot = self._launch_template(launch_template_ref(asg))
            out.append(group_from_asg(asg, lt_type, lt_spot))
        return sorted(out, key=lambda g: g.name)

    def set_desired(self, group: NodeGroup, desired: int) -> None:
        """Set a group's desired capacity (ValidationError outside MinSize..MaxSize)."""
        if desired > group.max_size:
            raise _validation(
                "SetDesiredCapacity",
                f"New SetDesiredCapacity value {desired} is above max value "
                f"{group.max_size} for the AutoScalingGroup.",
            )
        if desired < group.min_size:
            raise _validation(
                "SetDesiredCapacity",
                f"New SetDesiredCapacity value {desired} is below min value "
                f"{group.min_size} for the AutoScalingGroup.",
            )
        self.autoscaling.set_desired_capacity(
            AutoScalingGroupName=group.name,
            DesiredCapacity=desired,
            HonorCooldown=False,
        )

    def terminate(
        self, group: NodeGroup, instance_id: str, decrement: bool = True
    ) -> None:
        """Terminate one instance of a group (lowering its desired capacity)."""
        if decrement and group.desired <= group.min_size:
            raise _validation(
                "TerminateInstanceInAutoScalingGroup",
                f"Currently, desiredSize equals minSize ({group.min_size}). "
                "Terminating instance without replacement will violate group's "
                "min size constraint. Either set shouldDecrementDesiredCapacity "
                "flag to false or lower group's min size.",
            )
        self.autoscaling.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=decrement
        )

    def instance_type(self, name: str) -> InstanceType:
        """Describe an instance type moto knows (for types not in the catalogue)."""
        info = self.ec2.describe_instance_types(InstanceTypes=[name])["InstanceTypes"][
            0
        ]
        net = info.get("NetworkInfo") or {}
        gpus = (info.get("GpuInfo") or {}).get("Gpus") or []
        return InstanceType(
            name=name,
            vcpu=int(info["VCpuInfo"]["DefaultVCpus"]),
            memory_mib=int(info["MemoryInfo"]["SizeInMiB"]),
            enis=int(net.get("MaximumNetworkInterfaces", 0)),
            ipv4_per_eni=int(net.get("Ipv4AddressesPerInterface", 0)),
            price_per_hour=0.0,
            gpu_count=sum(int(g.get("Count", 0)) for g in gpus),
        )

    def instances(self, instance_ids: Sequence[str]) -> dict[str, Obj]:
        """Return EC2 instances by id (missing ids are left out).

        EC2 refuses a whole call naming an instance it does not know (gone since
        it was listed, or AWS's state lost): then each id is asked alone.
        """
        if not instance_ids:
            return {}
        try:
            response = self.ec2.describe_instances(InstanceIds=list(instance_ids))
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != INSTANCE_NOT_FOUND:
                raise
            if len(instance_ids) == 1:
                return {}
            found: dict[str, Obj] = {}
            for one in instance_ids:
                found.update(self.instances([one]))
            return found
        return {
            str(instance["InstanceId"]): instance
            for reservation in response.get("Reservations") or []
            for instance in reservation.get("Instances") or []
        }


def with_desired(group: NodeGroup, desired: int) -> NodeGroup:
    """Return a copy of a group with another desired capacity."""
    return replace(group, desired=desired)

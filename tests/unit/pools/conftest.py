"""Shared builders for the pools unit tests (imported by tests/unit/test_pools_*.py).

- ``example()``: the example profiles in ``profiles/`` and the shipped catalogue.
- ``cluster_spec(profiles, catalog)``: a ClusterSpec with one subnet per zone and
  an AMI for every SSM parameter the pools need.
- ``make_pool(catalog, name, types, ...)``: a Pool built directly from the catalogue.
- ``profiles_with(pools)``: Profiles holding just these pools (and the shipped
  catalogue with the measured capacities of ``settings`` applied).
- ``echoed(desired)``: the ObservedState AWS would report after applying ``desired``
  (with the extra fields AWS adds), so "nothing to do" can be tested.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

from wbspawner.catalog import sizing
from wbspawner.catalog.instances import load_catalog
from wbspawner.model import Catalog, Pool, Profiles, SizingSettings
from wbspawner.pools.desired import ClusterSpec, DesiredState
from wbspawner.pools.nodes import required_ami_parameters
from wbspawner.pools.observed import ObservedAsg, ObservedLaunchTemplate, ObservedState
from wbspawner.profiles.loader import load_profiles
from wbspawner.profiles.parsers import with_measured

REPO = Path(__file__).resolve().parents[3]
PROFILES_DIR = REPO / "profiles"
REGION = "us-east-1"


@functools.cache
def example() -> tuple[Profiles, Catalog]:
    catalog = load_catalog()
    return load_profiles([PROFILES_DIR], catalog), catalog


def ami_for(parameter: str) -> str:
    variant = parameter.split("/")[8]
    return f"ami-{variant}-{parameter.split('/')[5].replace('.', '')}"


def cluster_spec(
    profiles: Profiles, catalog: Catalog, name: str = "dev", **changes: Any
) -> ClusterSpec:
    zones = sorted({z for p in profiles.pools.values() for z in p.zones})
    k8s = changes.pop("k8s_version", "1.33")
    amis = {p: ami_for(p) for p in required_ami_parameters(profiles, catalog, k8s)}
    spec = ClusterSpec(
        name=name,
        region=REGION,
        k8s_version=k8s,
        endpoint="https://api.example.eks.amazonaws.com",
        certificate_authority="Q0E=",
        subnets={z: (f"subnet-{z[-1]}",) for z in zones},
        security_group_ids=("sg-cluster",),
        instance_profile="node-profile",
        amis=amis,
    )
    return dataclasses.replace(spec, **changes)


def make_pool(
    catalog: Catalog,
    name: str,
    types: tuple[str, ...],
    *,
    settings: SizingSettings | None = None,
    **fields: Any,
) -> Pool:
    its = [catalog.types[t] for t in types]
    first = its[0]
    values: dict[str, Any] = {
        "name": name,
        "display_name": name,
        "instance_types": types,
        "capacity_types": ("spot", "on-demand"),
        "zones": ("us-east-1a", "us-east-1b"),
        "request": sizing.full_node_request(its, settings or SizingSettings()),
        "gpu_count": first.gpu_count,
        "gpu_kind": first.gpu_kind,
        "vcpu": first.vcpu,
        "memory_mib": first.memory_mib,
        "price_per_hour": min(t.price_per_hour for t in its),
    }
    values.update(fields)
    return Pool(**values)


def profiles_with(*pools: Pool, settings: SizingSettings | None = None) -> Profiles:
    sizing = settings or SizingSettings()
    return Profiles(
        pools=MappingProxyType({p.name: p for p in pools}),
        sizes=(),
        sizing=sizing,
        # As the loader does: the measured capacities apply to the catalogue once.
        catalog=with_measured(example()[1], sizing.measured_capacity_mib),
    )


def _echo_lt_data(data: Any) -> dict[str, Any]:
    echoed = copy.deepcopy(dict(data))
    for bdm in echoed.get("BlockDeviceMappings", []):
        bdm["Ebs"].update({"Iops": 3000, "Throughput": 125})
    echoed.setdefault("MetadataOptions", {})["InstanceMetadataTags"] = "disabled"
    return echoed


def echoed(desired: DesiredState) -> ObservedState:
    lts: dict[str, ObservedLaunchTemplate] = {}
    asgs: dict[str, ObservedAsg] = {}
    for g in desired.groups:
        data = _echo_lt_data(g.launch_template.data)
        lts[g.launch_template.name] = ObservedLaunchTemplate(
            name=g.launch_template.name,
            default_version=1,
            latest_version=1,
            default_data=data,
            latest_data=data,
        )
        mip = copy.deepcopy(dict(g.asg.mixed_instances_policy))
        mip["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"] = (
            "lt-1"
        )
        asgs[g.asg.name] = ObservedAsg(
            name=g.asg.name,
            min_size=g.asg.min_size,
            max_size=g.asg.max_size,
            desired_capacity=g.asg.min_size,
            instances=0,
            subnets=g.asg.subnets,
            mixed_instances_policy=mip,
            capacity_rebalance=g.asg.capacity_rebalance,
            tags=dict(g.asg.tags),
            propagate_at_launch=g.asg.propagate_at_launch,
            launch_template=g.launch_template.name,
        )
    return ObservedState(launch_templates=lts, asgs=asgs)


_CA_TAINT = re.compile(r"^(.*):(NoSchedule|NoExecute|PreferNoSchedule)$")
_TEMPLATE = "k8s.io/cluster-autoscaler/node-template/"


def ca_template(
    tags: dict[str, str],
) -> tuple[dict[str, str], list[dict[str, str]], dict[str, str]]:
    """Read node-template tags the way Cluster Autoscaler's AWS provider does.

    (``aws_manager.go``: labels and resources by key suffix; a taint only when its
    value matches ``(.*):(NoSchedule|NoExecute|PreferNoSchedule)``.)
    """
    labels: dict[str, str] = {}
    taints: list[dict[str, str]] = []
    resources: dict[str, str] = {}
    for key, value in tags.items():
        if not key.startswith(_TEMPLATE):
            continue
        kind, _, name = key[len(_TEMPLATE) :].partition("/")
        if kind == "label":
            labels[name] = value
        elif kind == "resources":
            resources[name] = value
        elif kind == "taint" and (m := _CA_TAINT.match(value)):
            taint = {"key": name, "effect": m.group(2)}
            if m.group(1):
                taint["value"] = m.group(1)
            taints.append(taint)
    return labels, taints, resources

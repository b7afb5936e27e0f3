"""Fixtures of the node pool tests.

- ``spec``: ``cluster_spec`` (tests/unit/conftest.py) of the shipped profiles.
- ``shipped_desired``: the desired state of the shipped profiles on ``spec``.
- ``echoed(desired)``: the ObservedState AWS would report after applying
  ``desired`` (with the extra fields AWS adds), so "nothing to do" can be tested.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from wbspawner.model import Catalog, Profiles
from wbspawner.pools.desired import ClusterSpec, DesiredState, desired_state
from wbspawner.pools.observed import ObservedAsg, ObservedLaunchTemplate, ObservedState


def _echo_lt_data(data: Any) -> dict[str, Any]:
    echoed = copy.deepcopy(dict(data))
    for bdm in echoed.get("BlockDeviceMappings", []):
        bdm["Ebs"].update({"Iops": 3000, "Throughput": 125})
    echoed.setdefault("MetadataOptions", {})["InstanceMetadataTags"] = "disabled"
    return echoed


def _echoed(desired: DesiredState) -> ObservedState:
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


@pytest.fixture(scope="session")
def spec(
    profiles: Profiles, catalog: Catalog, cluster_spec: Callable[..., ClusterSpec]
) -> ClusterSpec:
    return cluster_spec(profiles, catalog)


@pytest.fixture(scope="session")
def shipped_desired(
    profiles: Profiles, catalog: Catalog, spec: ClusterSpec
) -> DesiredState:
    return desired_state(profiles, catalog, spec)


@pytest.fixture(scope="session")
def echoed() -> Callable[[DesiredState], ObservedState]:
    return _echoed

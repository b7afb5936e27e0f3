"""``pools plan|apply --pool/--zone``: a plan of some groups leaves the others alone."""

from __future__ import annotations

import pytest

from tests.paths import REPO
from tests.unit.pools.pools_support import observed_asg
from wbspawner.catalog.instances import load_catalog
from wbspawner.naming import group_name
from wbspawner.pools import PoolsError
from wbspawner.pools.desired import ClusterSpec, DesiredState, desired_state
from wbspawner.pools.nodes import required_ami_parameters
from wbspawner.pools.observed import ObservedAsg, ObservedState
from wbspawner.pools.plan import make_plan, only_groups
from wbspawner.profiles.loader import load_profiles

CLUSTER, REGION = "dev", "us-east-1"


@pytest.fixture(scope="module")
def desired() -> DesiredState:
    catalog = load_catalog()
    profiles = load_profiles([REPO / "profiles"], catalog)
    zones = sorted({z for p in profiles.pools.values() for z in p.zones})
    needed = required_ami_parameters(profiles, catalog, "1.33")
    cluster = ClusterSpec(
        name=CLUSTER,
        region=REGION,
        k8s_version="1.33",
        endpoint="https://api.example",
        certificate_authority="Q0E=",
        subnets={z: (f"subnet-{z[-1]}",) for z in zones},
        instance_profile="node",
        amis=dict.fromkeys(needed, "ami-1"),
    )
    return desired_state(profiles, catalog, cluster)


def asg(name: str) -> ObservedAsg:
    return observed_asg(name, subnets=("subnet-x",), launch_template=name)


def names(plan_actions, kind: str) -> set[str]:
    return {a.target for a in plan_actions if a.kind == kind}


def test_no_filter_changes_nothing(desired: DesiredState) -> None:
    observed = ObservedState(asgs={"stale": asg("stale")})
    assert only_groups(desired, observed) == (desired, observed)


def test_only_the_named_pools_and_zones_are_planned(desired: DesiredState) -> None:
    other = group_name(CLUSTER, "mem64", "us-east-1a", REGION, "spot")
    stale = group_name(CLUSTER, "mem65", "us-east-1b", REGION, "spot")
    mine = group_name(CLUSTER, "cpu16", "us-east-1b", REGION, "spot")
    observed = ObservedState(asgs={n: asg(n) for n in (other, stale, mine)})
    narrow, seen = only_groups(
        desired, observed, pools=["cpu16", "mem64"], zones=["us-east-1b"]
    )
    assert {(g.pool, g.zone) for g in narrow.groups} == {
        ("cpu16", "us-east-1b"),
        ("mem64", "us-east-1b"),
    }
    assert set(seen.asgs) == {mine}
    plan = make_plan(narrow, seen, allow_delete=True)
    targets = {a.target for a in plan.actions}
    assert other not in targets and stale not in targets  # neither changed nor deleted
    assert names(plan.actions, "create-asg") == {
        g.asg.name for g in narrow.groups if g.asg.name != mine
    }
    assert not names(plan.actions, "delete-asg")


@pytest.mark.parametrize(
    ("pools", "zones", "message"),
    [
        pytest.param(["mem65"], [], "no pool mem65 in the profiles", id="pool"),
        pytest.param(
            ["cpu16"],
            ["us-east-1z"],
            "no group of these pools in zone us-east-1z",
            id="zone",
        ),
    ],
)
def test_unknown_names_are_refused(
    desired: DesiredState, pools: list[str], zones: list[str], message: str
) -> None:
    with pytest.raises(PoolsError, match=message):
        only_groups(desired, ObservedState(), pools=pools, zones=zones)

"""The subnet check: addresses per node, per zone, the report (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from wbspawner.model import Catalog, DaskSettings, DaskWorkerSize, Profiles
from wbspawner.pools.desired import desired_state
from wbspawner.pools.subnets import (
    CniModel,
    SubnetInfo,
    check_subnets,
    ips_per_node,
    pods_per_node,
    subnet_report_json,
    subnet_table,
)


@pytest.mark.parametrize(
    ("itype", "pods", "model", "ips"),
    [
        # r5.2xlarge: 4 ENIs × 15 addresses; 3 pods fit the primary ENI, + 1 warm ENI.
        pytest.param("r5.2xlarge", 3, CniModel(), 2 * 15, id="r5.2xlarge-user"),
        # 20 pods need 2 ENIs (14 pod addresses each), + 1 warm.
        pytest.param("r5.2xlarge", 20, CniModel(), 3 * 15, id="r5.2xlarge-dask"),
        # t3.medium: 3 ENIs × 6; 12 pods need 3 ENIs, the warm one cannot be added.
        pytest.param("t3.medium", 12, CniModel(), 3 * 6, id="t3.medium-full"),
        pytest.param(
            "r5.2xlarge", 3, CniModel(warm_eni_target=0), 15, id="no-warm-eni"
        ),
        pytest.param("r5.16xlarge", 3, CniModel(warm_ip_target=2), 1 + 5, id="warm-ip"),
        pytest.param(
            "r5.16xlarge",
            3,
            CniModel(warm_ip_target=2, minimum_ip_target=10),
            11,
            id="min-ip",
        ),
    ],
)
def test_ips_per_node(catalog: Catalog, itype, pods, model, ips):
    assert ips_per_node(catalog.types[itype], pods, model) == ips


def test_dask_pools_pack_more_pods_per_node(profiles: Profiles):
    dask = DaskSettings(
        scheduler_pool=None,
        worker_sizes=(
            DaskWorkerSize(
                name="q", display_name="q", pool="mem64", workers_per_node=8
            ),
        ),
    )
    profiles = dataclasses.replace(profiles, dask=dask)
    model = CniModel()
    assert pods_per_node(profiles, "mem64", model) == model.daemonset_pods + 8
    assert pods_per_node(profiles, "mem128", model) == model.daemonset_pods + 1


@pytest.fixture
def one_pool_state(make_pool, make_profiles, catalog, cluster_spec):
    """``one_pool_state(max_nodes)``: profiles with one pool in us-east-1a and
    their desired state."""

    def state(max_nodes: int):
        pool = make_pool(
            name="m64",
            instance_types=("r5.2xlarge",),
            max_nodes=max_nodes,
            zones=("us-east-1a",),
        )
        profiles = make_profiles(pool)
        return profiles, desired_state(
            profiles, catalog, cluster_spec(profiles, catalog)
        )

    return state


def test_zone_needs_every_group_at_its_maximum(
    one_pool_state: Callable, catalog: Catalog
):
    profiles, desired = one_pool_state(max_nodes=5)
    subnets = [SubnetInfo(id="subnet-a", zone="us-east-1a", free_ips=299)]
    report = check_subnets(desired, profiles, catalog, subnets)
    (zone,) = report.zones
    # spot and on-demand: 5 + 5 nodes × 30 addresses
    assert zone.needed == 300
    assert not report.ok and report.short == (zone,)
    text = subnet_table(report)
    assert "SHORT by 1" in text
    assert "us-east-1a: m64 spot: 5 node(s) × 30 IPs = 150" in text
    assert "Not enough free addresses in us-east-1a" in text
    ok = check_subnets(
        desired, profiles, catalog, [dataclasses.replace(subnets[0], free_ips=300)]
    )
    assert ok.ok and "Every zone has enough free addresses." in subnet_table(ok)


def test_running_nodes_are_already_counted_by_aws(
    one_pool_state: Callable, catalog: Catalog
):
    profiles, desired = one_pool_state(max_nodes=5)
    spot = next(g.asg.name for g in desired.groups if g.capacity == "spot")
    subnets = [SubnetInfo(id="subnet-a", zone="us-east-1a", free_ips=240)]
    report = check_subnets(desired, profiles, catalog, subnets, current={spot: 2})
    assert report.zones[0].needed == (3 + 5) * 30
    assert report.ok


def test_free_addresses_of_several_subnets_add_up(
    one_pool_state: Callable, cluster_spec: Callable, catalog: Catalog
):
    profiles, desired = one_pool_state(max_nodes=1)
    spec = cluster_spec(
        profiles, catalog, subnets={"us-east-1a": ("subnet-a", "subnet-b")}
    )
    desired = desired_state(profiles, catalog, spec)
    subnets = [
        SubnetInfo(id="subnet-a", zone="us-east-1a", free_ips=30),
        SubnetInfo(id="subnet-b", zone="us-east-1a", free_ips=30),
        SubnetInfo(
            id="subnet-x", zone="us-east-1a", free_ips=1000
        ),  # not a node subnet
    ]
    report = check_subnets(desired, profiles, catalog, subnets)
    assert report.zones[0].subnets == ("subnet-a", "subnet-b")
    assert report.zones[0].free_ips == 60
    assert report.ok


def test_example_profiles_report_every_zone(
    profiles: Profiles, catalog: Catalog, cluster_spec: Callable
):
    desired = desired_state(profiles, catalog, cluster_spec(profiles, catalog))
    subnets = [
        SubnetInfo(id=f"subnet-{z}", zone=f"us-east-1{z}", free_ips=8187) for z in "abc"
    ]
    report = check_subnets(desired, profiles, catalog, subnets)
    assert [z.zone for z in report.zones] == ["us-east-1a", "us-east-1b", "us-east-1c"]
    data = subnet_report_json(report)
    assert data["ok"] is report.ok
    assert sum(len(z["groups"]) for z in data["zones"]) == len(desired.groups)
    assert data["model"].startswith("WARM_ENI_TARGET=1")

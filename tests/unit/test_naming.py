"""Node group names: the format, its inverse, and the round trip between them."""

from __future__ import annotations

import itertools
import re

import pytest

from wbspawner.model import CAPACITY_TYPES, CapacityType
from wbspawner.naming import (
    GroupName,
    group_name,
    group_regex,
    group_tail,
    parse_group_name,
    zone_region,
    zone_suffix,
)

REGION = "us-east-1"
CLUSTERS = ("dev", "data-science-prod")
POOLS = ("mem64", "gpu-a10g", "gpu-a10g-x4", "a10g", "x4")
ZONES = ("us-east-1a", "us-east-1b", "us-east-1-bos-1a", "us-east-1-mia-2a")


@pytest.mark.parametrize(
    ("zone", "suffix"),
    [
        pytest.param("us-east-1a", "a", id="standard"),
        pytest.param("us-east-1-bos-1a", "bos1a", id="local-zone"),
        pytest.param("eu-west-3c", "eu-west-3c".replace("-", ""), id="other-region"),
    ],
)
def test_zone_suffix(zone: str, suffix: str) -> None:
    assert zone_suffix(zone, REGION) == suffix
    assert (
        group_name("c", "p", zone, REGION, "on-demand")
        == f"wbspawner-c-p-{suffix}-ondemand"
    )


@pytest.mark.parametrize(
    ("cluster", "pool", "zone", "capacity"),
    [
        pytest.param(*case, id="/".join(case))
        for case in itertools.product(CLUSTERS, POOLS, ZONES, CAPACITY_TYPES)
    ],
)
def test_group_names_read_back_as_they_were_made(
    cluster: str, pool: str, zone: str, capacity: CapacityType
) -> None:
    """Dashes in cluster, pool and zone names; pools whose names end others'."""
    name = group_name(cluster, pool, zone, REGION, capacity)
    assert parse_group_name(name, POOLS, ZONES, REGION) == GroupName(
        cluster=cluster,
        pool=pool,
        zone=zone,
        capacity=capacity,
    )
    assert re.match(group_regex(cluster, pool, capacity), name)


def test_the_tail_is_found_inside_a_name_of_another_format() -> None:
    """eksctl names a pool's node group by its tail; EKS adds a prefix and an id."""
    tail = group_tail("gpu-a10g-x4", "us-east-1-bos-1a", REGION, "spot")
    assert tail == "gpu-a10g-x4-bos1a-spot"
    parsed = parse_group_name(f"eks-{tail}-8ac4f0e2", POOLS, ZONES, REGION)
    assert parsed == GroupName(
        cluster=None, pool="gpu-a10g-x4", zone="us-east-1-bos-1a", capacity="spot"
    )


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("wbspawner-dev-mem128-a-spot", id="unknown-pool"),
        pytest.param("wbspawner-dev-mem64-c-spot", id="unknown-zone"),
        pytest.param("wbspawner-dev-mem64-a-on-demand", id="unknown-capacity"),
        pytest.param("wbspawner-dev-xmem64-a-spot", id="pool-inside-a-word"),
        pytest.param("wbspawner-dev-mem64-a-spotty", id="capacity-inside-a-word"),
        pytest.param("", id="empty"),
    ],
)
def test_names_of_no_known_group(name: str) -> None:
    assert parse_group_name(name, POOLS, ZONES, REGION) is None


def test_a_name_without_a_cluster_has_none() -> None:
    parsed = parse_group_name("wbspawner-mem64-a-spot", POOLS, ZONES, REGION)
    assert parsed is not None and parsed.cluster is None


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        pytest.param("us-east-1a", "us-east-1", id="standard"),
        pytest.param("us-east-1-bos-1a", "us-east-1", id="local-zone"),
        pytest.param("us-gov-west-1b", "us-gov-west-1", id="govcloud"),
        pytest.param("somewhere", None, id="not-a-zone"),
    ],
)
def test_zone_region(zone: str, region: str | None) -> None:
    assert zone_region(zone) == region

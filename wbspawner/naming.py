"""Names of a pool's node groups: how they are made, and how they are read back.

This module owns the one format of Auto Scaling group (and launch template)
names, ``wbspawner-<cluster>-<pool>-<zone suffix>-<spot|ondemand>``, and its
inverse. The Cluster Autoscaler's priority expander matches these names, its
events name them, and the warmer, the pools commands and the spawn progress all
make or read them here, so a change to the format is a change in one place.

The tail ``<pool>-<zone suffix>-<capacity>`` is also the name of the eksctl node
group of a pool (EKS then names its group ``eks-<tail>-<id>``), so a name is read
back by finding the tail of a known pool and zone in it; the cluster is only
known for names in wbspawner's own format.

It also owns the names of data access (:mod:`wbspawner.data`): the IAM role
and the ServiceAccount of an access set, both derived from the set's key.

Pure: no I/O. Below every package but the model, so that spawn (which explains
the autoscaler's events) and pools (which makes the groups) share it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from wbspawner.model import CAPACITY_TYPES, CapacityType

GROUP_PREFIX = "wbspawner"
"""First word of every group wbspawner makes (the expander's regex starts here)."""
CAPACITY_SUFFIX: Mapping[str, str] = {"spot": "spot", "on-demand": "ondemand"}
"""Capacity type as it appears at the end of group names (the expander matches it)."""

_REGION = re.compile(r"^([a-z]{2}(?:-gov)?-[a-z]+-\d+)(.+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupName:
    """What a node group's name says."""

    cluster: str | None
    """The cluster; ``None`` for a name not in wbspawner's own format (eksctl)."""
    pool: str
    zone: str
    capacity: CapacityType


def zone_suffix(zone: str, region: str) -> str:
    """Return the short, dash-free zone name used in group names (``a``, ``bos1a``).

    Args:
        zone: availability zone, e.g. ``us-east-1a``.
        region: its region, e.g. ``us-east-1``.

    Returns:
        What follows the region, without dashes (the whole zone if it does not
        start with the region).
    """
    rest = zone[len(region) :] if zone.startswith(region) else zone
    return rest.replace("-", "") or zone.replace("-", "")


def zone_region(zone: str) -> str | None:
    """Return the region of an availability zone (``us-east-1-bos-1a``: ``us-east-1``).

    Args:
        zone: availability zone.

    Returns:
        The region, or ``None`` when ``zone`` does not look like an AWS zone.
    """
    match = _REGION.match(zone)
    return match.group(1) if match else None


def group_tail(pool: str, zone: str, region: str, capacity: str) -> str:
    """Return the end of a group's name: ``<pool>-<zone suffix>-<spot|ondemand>``.

    Args:
        pool: pool name.
        zone: availability zone.
        region: region of the zone.
        capacity: ``spot`` or ``on-demand``.

    Returns:
        The tail (also the pool's eksctl node group name).
    """
    return f"{pool}-{zone_suffix(zone, region)}-{CAPACITY_SUFFIX[capacity]}"


def group_name(cluster: str, pool: str, zone: str, region: str, capacity: str) -> str:
    """Return a group's ASG (and launch template) name.

    ``wbspawner-<cluster>-<pool>-<zone suffix>-<spot|ondemand>``; the priority
    expander matches the pool and the capacity type in it.

    Args:
        cluster: cluster name.
        pool: pool name.
        zone: availability zone.
        region: region of the zone.
        capacity: ``spot`` or ``on-demand``.

    Returns:
        The name.
    """
    return f"{GROUP_PREFIX}-{cluster}-{group_tail(pool, zone, region, capacity)}"


def parse_group_name(
    name: str, pools: Iterable[str], zones: Iterable[str], region: str
) -> GroupName | None:
    """Return what a group's name says: the inverse of :func:`group_name`.

    The name is searched for the tail of each known pool × zone × capacity type,
    between dashes or the ends of the name, so a tail inside a longer name (an
    EKS managed group ``eks-<tail>-<id>``) is found too. When the tails of two
    pools fit (``a10g`` ends ``gpu-a10g``), the longer pool wins; a cluster whose
    name ends with another pool's name is therefore read wrongly, which the names
    of real clusters and pools do not do.

    Args:
        name: a group name.
        pools: the pool names it may hold.
        zones: the zones it may be in.
        region: the region of those zones.

    Returns:
        The cluster (for wbspawner's own format), pool, zone and capacity type,
        or ``None`` when no known tail is in the name.
    """
    found: tuple[int, int, GroupName] | None = None
    for pool in pools:
        for zone in zones:
            for capacity in CAPACITY_TYPES:
                tail = group_tail(pool, zone, region, capacity)
                match = re.search(rf"(?:^|-)({re.escape(tail)})(?:$|-)", name)
                if match is None:
                    continue
                parsed = GroupName(
                    cluster=_cluster(name, match.start(1), match.end(1)),
                    pool=pool,
                    zone=zone,
                    capacity=capacity,
                )
                rank = (len(pool), -match.start(1), parsed)
                if found is None or rank[:2] > found[:2]:
                    found = rank
    return found[2] if found else None


def _cluster(name: str, start: int, end: int) -> str | None:
    """Return the cluster of a name in wbspawner's format whose tail is there."""
    prefix = f"{GROUP_PREFIX}-"
    own = name.startswith(prefix) and end == len(name) and start > len(prefix) + 1
    return name[len(prefix) : start - 1] if own else None


def group_regex(cluster: str, pool: str, capacity: str) -> str:
    """Return the regex matching one pool's groups of one capacity type (any zone).

    The Cluster Autoscaler's priority expander reads it (Go RE2 syntax).

    Args:
        cluster: cluster name.
        pool: pool name.
        capacity: ``spot`` or ``on-demand``.

    Returns:
        E.g. ``^wbspawner-prod-mem64-[a-z0-9]+-spot$`` (any zone).
    """
    suffix = CAPACITY_SUFFIX[capacity]
    head = f"{GROUP_PREFIX}-{_escape(cluster)}-{_escape(pool)}"
    return f"^{head}-[a-z0-9]+-{suffix}$"


def _escape(name: str) -> str:
    # Names are DNS-like; escape anything else for Go's RE2, which reads the
    # ConfigMap (re.escape would also escape "-", which is legal but noisy).
    return re.sub(r"[^A-Za-z0-9_-]", lambda m: "\\" + m.group(0), name)


# ------------------------------------------------------------ data access names

DATA_PREFIX = f"{GROUP_PREFIX}-data-"
"""First words of every data ServiceAccount (``wbspawner-data-<key>``)."""
ROLE_NAME_MAX = 64
"""IAM's limit on a role name."""
DATA_KEY_LENGTH = 10
"""Hex digits of an access set's key (40 bits: no clash among a few hundred)."""


def data_service_account(key: str) -> str:
    """Return the ServiceAccount of an access set, e.g. ``wbspawner-data-3f9a0c1b2d``.

    Args:
        key: the access set's key (:func:`wbspawner.profiles.data_access.access_key`).

    Returns:
        The name, the same in every namespace (the hub's and the Dask one).
    """
    return f"{DATA_PREFIX}{key}"


def data_role_prefix(cluster: str) -> str:
    """Return the start of every data role name of a cluster.

    Roles are global to an AWS account, so the name carries the cluster; a
    cluster name too long for IAM's limit is cut and given a short hash.

    Args:
        cluster: the EKS cluster name.

    Returns:
        ``wbspawner-<cluster>-data-``.
    """
    room = ROLE_NAME_MAX - len(GROUP_PREFIX) - len("--data-") - DATA_KEY_LENGTH
    if len(cluster) > room:
        digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
        cluster = f"{cluster[: room - len(digest) - 1]}-{digest}"
    return f"{GROUP_PREFIX}-{cluster}-data-"


def data_role_name(cluster: str, key: str) -> str:
    """Return the IAM role of an access set in a cluster (at most 64 characters).

    Args:
        cluster: the EKS cluster name.
        key: the access set's key.

    Returns:
        ``wbspawner-<cluster>-data-<key>``.
    """
    return f"{data_role_prefix(cluster)}{key}"

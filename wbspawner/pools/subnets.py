"""Subnet check: does each zone have the IP addresses its pools may need?

One user per node means many nodes, and with the VPC CNI every node takes whole
ENIs' worth of addresses from its subnet, whatever few pods it runs. This module
owns the arithmetic and the report shown before ``pools apply``; apply refuses to
run when a zone is short unless forced.

Model (VPC CNI defaults, ``WARM_ENI_TARGET=1``): a node attaches as many ENIs as
its pods need (each ENI gives ``IPv4 per ENI − 1`` pod addresses, its first
address being the ENI's own) plus ``WARM_ENI_TARGET`` spare ENIs, never more than
the type has, and every attached ENI holds all its addresses. So a node takes
``min(ENIs in use + warm ENIs, max ENIs) × IPv4 per ENI``: 30 addresses for an
r5.2xlarge running a user pod and two DaemonSet pods (host-network DaemonSets
such as aws-node and kube-proxy take none). With ``WARM_IP_TARGET`` set the CNI
keeps that many spare addresses instead of a spare ENI, and a node takes its
primary address plus ``max(pods + WARM_IP_TARGET, MINIMUM_IP_TARGET)``. A group
may still add ``max − current`` nodes; the zone needs the sum over its groups,
spot and on-demand both (the worst case: both at their maximum).

Pure: no I/O. Free addresses come from ``AvailableIpAddressCount``, which already
excludes the nodes that exist.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from wbspawner.model import Catalog, InstanceType, Profiles
from wbspawner.pools.desired import DesiredState
from wbspawner.pools.tables import TableFn, text_table


@dataclass(frozen=True, slots=True, kw_only=True)
class SubnetInfo:
    """One subnet as ``describe_subnets`` reports it."""

    id: str
    zone: str
    free_ips: int
    """``AvailableIpAddressCount``."""
    cidr: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CniModel:
    """How the VPC CNI hands out addresses (its environment variables)."""

    warm_eni_target: int = 1
    warm_ip_target: int | None = None
    minimum_ip_target: int | None = None
    daemonset_pods: int = 2
    """Pods with their own address that every node runs (ebs-csi-node, a metrics
    agent); host-network DaemonSets do not count."""

    def describe(self) -> str:
        """Return the model in one line, for the report."""
        if self.warm_ip_target is not None:
            return (
                f"WARM_IP_TARGET={self.warm_ip_target}, MINIMUM_IP_TARGET="
                f"{self.minimum_ip_target or 0}: 1 + max(pods + warm, minimum) "
                "addresses per node"
            )
        return (
            f"WARM_ENI_TARGET={self.warm_eni_target}: (ENIs in use + "
            f"{self.warm_eni_target}) × IPv4 per ENI addresses per node"
        )


def ips_per_node(t: InstanceType, pods: int, model: CniModel) -> int:
    """Return the subnet addresses one node of a type takes.

    Args:
        t: the instance type.
        pods: pods on the node that get a VPC address.
        model: the CNI's settings.

    Returns:
        Addresses taken from the node's subnet (see the module docstring).
    """
    if model.warm_ip_target is not None:
        return 1 + max(pods + model.warm_ip_target, model.minimum_ip_target or 0)
    per_eni = max(t.ipv4_per_eni - 1, 1)
    in_use = max(1, math.ceil(pods / per_eni))
    return min(in_use + model.warm_eni_target, max(t.enis, 1)) * t.ipv4_per_eni


def pods_per_node(profiles: Profiles, pool: str, model: CniModel) -> int:
    """Return the pods with a VPC address a node of a pool runs at most.

    A user server fills its node; a Dask pool packs ``workers_per_node`` workers.

    Args:
        profiles: the profiles (for the Dask worker sizes).
        pool: the pool name.
        model: the CNI's settings (DaemonSet pods).

    Returns:
        The pod count.
    """
    workers = [w.workers_per_node for w in profiles.dask.worker_sizes if w.pool == pool]
    return model.daemonset_pods + max([1, *workers])


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupNeed:
    """Addresses one group may still need."""

    group: str
    pool: str
    capacity: str
    nodes: int
    """Nodes it may still add (max − current)."""
    ips_per_node: int

    @property
    def ips(self) -> int:
        """Addresses for those nodes."""
        return self.nodes * self.ips_per_node


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneCheck:
    """The check for one zone."""

    zone: str
    subnets: tuple[str, ...]
    free_ips: int
    needs: tuple[GroupNeed, ...]

    @property
    def needed(self) -> int:
        """Addresses the zone's groups may need together."""
        return sum(n.ips for n in self.needs)

    @property
    def ok(self) -> bool:
        """Whether the zone's subnets have enough free addresses."""
        return self.free_ips >= self.needed


@dataclass(frozen=True, slots=True, kw_only=True)
class SubnetReport:
    """The subnet check for every zone the pools use."""

    zones: tuple[ZoneCheck, ...]
    model: CniModel = field(default_factory=CniModel)

    @property
    def ok(self) -> bool:
        """Whether every zone has enough addresses."""
        return all(z.ok for z in self.zones)

    @property
    def short(self) -> tuple[ZoneCheck, ...]:
        """The zones that do not."""
        return tuple(z for z in self.zones if not z.ok)


def check_subnets(
    desired: DesiredState,
    profiles: Profiles,
    catalog: Catalog,
    subnets: Sequence[SubnetInfo],
    current: Mapping[str, int] | None = None,
    model: CniModel | None = None,
) -> SubnetReport:
    """Check every zone's free addresses against what its groups may need.

    Args:
        desired: the desired groups (their subnets, max sizes and types).
        profiles: the profiles (Dask packing per pool).
        catalog: the instance catalogue (ENIs and addresses per type).
        subnets: the subnets as observed, with their free addresses.
        current: instances each group has now, by group name.
        model: the CNI's settings; the defaults when ``None``.

    Returns:
        One :class:`ZoneCheck` per zone, sorted by zone.
    """
    model = model or CniModel()
    current = current or {}
    free = {s.id: s.free_ips for s in subnets}
    zones: dict[str, tuple[set[str], list[GroupNeed]]] = {}
    for g in desired.groups:
        pods = pods_per_node(profiles, g.pool, model)
        ips = max(ips_per_node(catalog.types[t], pods, model) for t in g.instance_types)
        nodes = max(g.asg.max_size - current.get(g.asg.name, 0), 0)
        ids, needs = zones.setdefault(g.zone, (set(), []))
        ids.update(g.asg.subnets)
        needs.append(
            GroupNeed(
                group=g.asg.name,
                pool=g.pool,
                capacity=g.capacity,
                nodes=nodes,
                ips_per_node=ips,
            )
        )
    checks = tuple(
        ZoneCheck(
            zone=zone,
            subnets=tuple(sorted(ids)),
            free_ips=sum(free.get(i, 0) for i in ids),
            needs=tuple(needs),
        )
        for zone, (ids, needs) in sorted(zones.items())
    )
    return SubnetReport(zones=checks, model=model)


def subnet_table(report: SubnetReport, table: TableFn = text_table) -> str:
    """Return the subnet check as a text table with the groups behind each zone.

    Args:
        report: the check.
        table: lays out the rows (default: plain aligned columns).

    Returns:
        The table, the model used, and a verdict line.
    """
    lines = [f"Subnet check ({report.model.describe()})"]
    header = ("ZONE", "SUBNETS", "FREE IPs", "MAY NEED", "STATUS")
    rows = []
    for z in report.zones:
        status = "ok" if z.ok else f"SHORT by {z.needed - z.free_ips}"
        rows.append(
            (z.zone, ",".join(z.subnets), str(z.free_ips), str(z.needed), status)
        )
    lines += table(header, rows)
    for z in report.short:
        for n in z.needs:
            if n.nodes:
                lines.append(
                    f"  {z.zone}: {n.pool} {n.capacity}: {n.nodes} node(s) × "
                    f"{n.ips_per_node} IPs = {n.ips}"
                )
    if report.ok:
        lines.append("Every zone has enough free addresses.")
    else:
        names = ", ".join(z.zone for z in report.short)
        lines.append(
            f"Not enough free addresses in {names}: add or enlarge subnets there, "
            "lower the pools' max_nodes, or set WARM_IP_TARGET/MINIMUM_IP_TARGET on "
            "the VPC CNI (and describe it with --cni-warm-ip-target)."
        )
    return "\n".join(lines)


def subnet_report_json(report: SubnetReport) -> dict[str, object]:
    """Return the subnet check as JSON-serialisable data.

    Args:
        report: the check.

    Returns:
        ``{"ok", "model", "zones": [{zone, subnets, free_ips, needed, ok, groups}]}``.
    """
    return {
        "ok": report.ok,
        "model": report.model.describe(),
        "zones": [
            {
                "zone": z.zone,
                "subnets": list(z.subnets),
                "free_ips": z.free_ips,
                "needed": z.needed,
                "ok": z.ok,
                "groups": [
                    {"group": n.group, "nodes": n.nodes, "ips_per_node": n.ips_per_node}
                    for n in z.needs
                ],
            }
            for z in report.zones
        ],
    }

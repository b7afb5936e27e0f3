"""Refreshing the instance catalogue with what EC2 says about instance types.

This module owns :func:`refresh_catalog`, which merges ``DescribeInstanceTypes``
entries into a catalogue, and :func:`instance_type_from_aws`, which reads one
entry. It stays pure: the entries come from an :class:`InstanceTypeSource` handed
in by a shell (EC2 through
:class:`~wbspawner.adapters.instance_types.Ec2InstanceTypes`), nothing here runs
at import time, and the hub never refreshes (it reads the shipped file).

On-demand prices are not refreshed here: the Pricing API is often unreachable
(other partitions, no ``pricing:GetProducts`` permission, emulators), so prices are
kept from the base catalogue unless the caller supplies them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import Any, Protocol

from wbspawner.catalog.instances import CatalogError, type_path
from wbspawner.errors import Problem
from wbspawner.model import Catalog, InstanceType

_OPERATION = "DescribeInstanceTypes"


def instance_type_from_aws(
    info: Mapping[str, Any], price: float, measured_capacity_mib: int | None = None
) -> InstanceType:
    """Build an :class:`InstanceType` from one ``DescribeInstanceTypes`` entry.

    ENIs are those of the default network card, as the EKS maxPods table counts
    them (a p4d.24xlarge has 4 cards of 15 interfaces; its maxPods uses 15).

    Args:
        info: one element of the response's ``InstanceTypes``.
        price: the on-demand price to record, USD per hour.
        measured_capacity_mib: a measured kernel-visible capacity to keep.

    Returns:
        The instance type.
    """
    net = info.get("NetworkInfo", {})
    card_index = net.get("DefaultNetworkCardIndex", 0)
    enis = net.get("MaximumNetworkInterfaces", 0)
    for card in net.get("NetworkCards", []):
        if card.get("NetworkCardIndex") == card_index:
            enis = card.get("MaximumNetworkInterfaces", enis)
    gpus = info.get("GpuInfo", {}).get("Gpus", [])
    arches = info.get("ProcessorInfo", {}).get("SupportedArchitectures", ["x86_64"])
    return InstanceType(
        name=info["InstanceType"],
        vcpu=info["VCpuInfo"]["DefaultVCpus"],
        memory_mib=info["MemoryInfo"]["SizeInMiB"],
        enis=enis,
        ipv4_per_eni=net.get("Ipv4AddressesPerInterface", 0),
        price_per_hour=price,
        gpu_count=sum(g.get("Count", 0) for g in gpus),
        gpu_kind=gpus[0].get("Name") if gpus else None,
        gpu_memory_mib=gpus[0].get("MemoryInfo", {}).get("SizeInMiB", 0) if gpus else 0,
        arch="x86_64" if "x86_64" in arches else arches[0],
        measured_capacity_mib=measured_capacity_mib,
    )


class InstanceTypeSource(Protocol):
    """Where :func:`refresh_catalog` reads instance-type facts from.

    :class:`wbspawner.adapters.instance_types.Ec2InstanceTypes` reads them from
    EC2; tests may hand in entries they wrote.
    """

    @property
    def region(self) -> str:
        """The region the facts were read in."""
        ...

    def describe(self, names: Sequence[str]) -> Mapping[str, Mapping[str, Any]]:
        """Return the ``DescribeInstanceTypes`` entry of each name.

        Raises:
            AwsError: when the source cannot answer, or does not know some names.
        """
        ...


_EARLIER = " Earlier: "


def refresh_catalog(
    source: InstanceTypeSource,
    base: Catalog,
    names: Sequence[str],
    today: str,
    prices: Mapping[str, float] | None = None,
) -> Catalog:
    """Return ``base`` with the facts of ``names`` refreshed from EC2.

    vCPUs, memory, ENIs, IPv4 per ENI, GPUs and architecture come from
    ``DescribeInstanceTypes``; prices come from ``prices`` when given, else from
    ``base``. A measured capacity is kept while the type's memory is unchanged.
    Types not named are kept as they are; new names are appended.

    Args:
        source: where the facts come from (EC2 through
            :class:`~wbspawner.adapters.instance_types.Ec2InstanceTypes`).
        base: the catalogue to update.
        names: the types to refresh or add.
        today: ISO date recorded as the catalogue's date.
        prices: on-demand USD/hour by type, overriding ``base``.

    Returns:
        The new catalogue.

    Raises:
        AwsError: when EC2 does not know some names (all are listed), or
            cannot be asked (raised by ``source``).
        CatalogError: when ``today`` is not a date or a given price is not
            positive (checked before calling AWS), or when a type EC2 knows is
            new to the catalogue and has no price.
    """
    given = dict(prices or {})
    problems = _refresh_problems(names, today, given)
    if problems:
        raise CatalogError(problems)
    infos = source.describe(list(names))
    missing = [n for n in names if n not in given and n not in base.types]
    if missing:
        msg = "no on-demand price: not in the catalogue and none given"
        raise CatalogError(
            [Problem("<refresh>", type_path(n, "price_per_hour"), msg) for n in missing]
        )
    types = dict(base.types)
    for name in names:
        old = base.types.get(name)
        price = given[name] if name in given else base.types[name].price_per_hour
        fresh = instance_type_from_aws(infos[name], price)
        if old is not None and old.memory_mib == fresh.memory_mib:
            fresh = instance_type_from_aws(
                infos[name], price, old.measured_capacity_mib
            )
        types[name] = fresh
    head = (
        f"Specs of {', '.join(names)} refreshed from EC2 {_OPERATION} "
        f"({source.region}) on {today}; prices for {base.region}"
        f"{' partly given by the admin' if given else ''}."
    )
    return Catalog(
        region=base.region,
        source=head + _EARLIER + base.source.split(_EARLIER)[-1],
        date=today,
        types=MappingProxyType(types),
    )


def _refresh_problems(
    names: Sequence[str], today: str, prices: Mapping[str, float]
) -> list[Problem]:
    where = "<refresh>"
    problems: list[Problem] = []
    try:
        date.fromisoformat(today)
    except ValueError:
        problems.append(Problem(where, "$.date", f"not an ISO date: {today!r}"))
    if not names:
        problems.append(Problem(where, "$.types", "no instance types named"))
    for name in names:
        price = prices.get(name)
        if price is not None and not (math.isfinite(price) and price > 0):
            msg = f"price must be a positive number, not {price!r}"
            problems.append(Problem(where, type_path(name, "price_per_hour"), msg))
    return problems

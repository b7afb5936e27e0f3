"""Refreshing the instance catalogue from EC2 (the ``catalog --refresh`` command).

This module owns the thin :class:`Ec2Catalog` adapter over ``DescribeInstanceTypes``
and :func:`refresh_catalog`, which merges what EC2 says into a catalogue. The boto3
client is created by the caller and passed in; nothing here runs at import time,
and nothing else in wbspawner calls AWS for catalogue facts (the hub reads the
shipped file).

On-demand prices are not refreshed here: the Pricing API is often unreachable
(other partitions, no ``pricing:GetProducts`` permission, emulators), so prices are
kept from the base catalogue unless the caller supplies them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from wbspawner.catalog.instances import CatalogError, type_path
from wbspawner.errors import PermanentAwsError, Problem, TemporaryAwsError
from wbspawner.model import Catalog, InstanceType

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client

_THROTTLING = frozenset({"Throttling", "ThrottlingException", "RequestLimitExceeded"})
_BRACKETS = re.compile(r"\[([^\]]*)\]")
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


class _UnknownTypesError(Exception):
    """EC2 answered ``InvalidInstanceType``; ``names`` as listed in its message."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class Ec2Catalog:
    """Thin adapter: instance-type facts from EC2 ``DescribeInstanceTypes``.

    Args:
        client: a boto3 EC2 client (created by the caller).
    """

    BATCH = 100
    """Most instance types one ``DescribeInstanceTypes`` request may name."""

    def __init__(self, client: EC2Client) -> None:
        self._client = client

    @property
    def region(self) -> str:
        """The client's region."""
        return self._client.meta.region_name

    def describe_instance_types(self, names: Sequence[str]) -> dict[str, Any]:
        """Return the ``DescribeInstanceTypes`` entry of each name.

        Args:
            names: EC2 instance type names.

        Returns:
            Entries by instance type name.

        Raises:
            PermanentAwsError: when EC2 does not know some names (every one is
                listed), or on any other error that retrying will not fix.
            TemporaryAwsError: when AWS throttles the requests.
        """
        found: dict[str, Any] = {}
        unknown: set[str] = set()
        for i in range(0, len(names), self.BATCH):
            batch = list(dict.fromkeys(names[i : i + self.BATCH]))
            try:
                found.update(self._describe(batch))
            except _UnknownTypesError as err:
                # Keep asking for the valid ones so that one typo does not hide
                # a second one; the message lists what EC2 rejected.
                listed = [n for n in err.names if n in batch] or self._probe(batch)
                unknown.update(listed)
                rest = [n for n in batch if n not in listed]
                if rest:
                    found.update(self._describe(rest))
        unknown.update(n for n in names if n not in found)
        if unknown:
            raise PermanentAwsError(
                f"EC2 does not know these instance types in {self.region}: "
                f"{', '.join(sorted(unknown))}",
                code="InvalidInstanceType",
                operation=_OPERATION,
            )
        return found

    def _describe(self, batch: list[str]) -> dict[str, Any]:
        paginator = self._client.get_paginator("describe_instance_types")
        out: dict[str, Any] = {}
        try:
            # The stubs type InstanceTypes as a Literal of known names; ours are str.
            for page in paginator.paginate(InstanceTypes=batch):  # type: ignore[arg-type]
                for info in page.get("InstanceTypes", []):
                    out[info["InstanceType"]] = info
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            if code == "InvalidInstanceType":
                match = _BRACKETS.search(message)
                listed = match.group(1).split(",") if match else []
                raise _UnknownTypesError([n.strip() for n in listed]) from exc
            cls = TemporaryAwsError if code in _THROTTLING else PermanentAwsError
            raise cls(
                f"{_OPERATION} failed ({code}): {message}",
                code=code,
                operation=_OPERATION,
            ) from exc
        return out

    def _probe(self, batch: list[str]) -> list[str]:
        """Find a batch's unknown names one by one (the message listed none)."""
        unknown = []
        for name in batch:
            try:
                self._describe([name])
            except _UnknownTypesError:
                unknown.append(name)
        return unknown


_EARLIER = " Earlier: "


def refresh_catalog(
    ec2_client: EC2Client,
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
        ec2_client: a boto3 EC2 client.
        base: the catalogue to update.
        names: the types to refresh or add.
        today: ISO date recorded as the catalogue's date.
        prices: on-demand USD/hour by type, overriding ``base``.

    Returns:
        The new catalogue.

    Raises:
        PermanentAwsError: when EC2 does not know some names (all are listed).
        TemporaryAwsError: when AWS throttles the requests.
        CatalogError: when ``today`` is not a date or a given price is not
            positive (checked before calling AWS), or when a type EC2 knows is
            new to the catalogue and has no price.
    """
    given = dict(prices or {})
    problems = _refresh_problems(names, today, given)
    if problems:
        raise CatalogError(problems)
    adapter = Ec2Catalog(ec2_client)
    infos = adapter.describe_instance_types(list(names))
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
        f"({adapter.region}) on {today}; prices for {base.region}"
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

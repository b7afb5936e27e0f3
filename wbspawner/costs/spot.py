"""Spot prices in force now, read from EC2's ``DescribeSpotPriceHistory``.

This module owns the one call that observes spot prices for estimates: the
latest Linux price per ``(instance type, zone)``, in the form
:mod:`wbspawner.catalog.pricing` takes (``SpotPrices``). Thin adapter: the pages
come through :func:`~wbspawner.adapters.aws.paginate` (botocore's paginator and
retries, mapped errors).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from wbspawner.adapters.aws import paginate

LINUX = ("Linux/UNIX", "Linux/UNIX (Amazon VPC)")


def latest_spot_prices(
    ec2: Any,
    types: Sequence[str],
    now: datetime | None = None,
) -> dict[tuple[str, str], float]:
    """Return the spot price in force now of each type in each zone.

    Args:
        ec2: an EC2 client from :func:`~wbspawner.adapters.aws.make_client`.
        types: instance types to look up.
        now: the time of the prices (default: now).

    Returns:
        USD per hour by ``(type, zone)``; the latest observation wins.

    Raises:
        AwsError: when EC2 cannot be reached or refuses the call.
    """
    if not types:
        return {}
    latest: dict[tuple[str, str], tuple[datetime, float]] = {}
    items = paginate(
        ec2,
        "describe_spot_price_history",
        "SpotPriceHistory",
        InstanceTypes=sorted(set(types)),
        ProductDescriptions=list(LINUX),
        StartTime=now or datetime.now(UTC),
    )
    for item in items:
        key = (str(item["InstanceType"]), str(item["AvailabilityZone"]))
        stamp: datetime = item["Timestamp"]
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, float(item["SpotPrice"]))
    return {key: price for key, (_, price) in latest.items()}

"""Monthly and yearly cost estimates from the profiles and a usage scenario.

This module owns how a scenario (:mod:`wbspawner.costs.scenario`) becomes line
items: the always-on base (EKS control plane, hub/core nodes, NAT gateway, load
balancer: ``cost.base`` of the profiles unless the scenario states its own),
user compute per size split into on-demand and spot hours, EBS homes and
snapshots, warm capacity from the warm schedules, Dask workers and S3. Every
hourly price comes from :mod:`wbspawner.catalog.pricing` (or from the scenario's stated
prices), and every item says where its price came from.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from wbspawner.catalog.pricing import (
    HOURS_PER_MONTH,
    SpotPrices,
    hourly_cost,
    monthly,
    on_demand_price,
    spot_price,
)
from wbspawner.costs.scenario import MONTHS_PER_YEAR, Scenario, Usage
from wbspawner.errors import Problem, ProfileConfigError
from wbspawner.model import (
    CapacityType,
    Catalog,
    CostItem,
    Pool,
    Profiles,
    WarmSchedule,
)

__all__ = ["Estimate", "LineItem", "Scenario", "estimate"]

WEEKS_PER_MONTH = HOURS_PER_MONTH / (7 * 24)
"""Weeks in an average month, consistent with 730 hours."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LineItem:
    """One line of an estimate."""

    category: str
    """``base``, ``compute``, ``storage``, ``warm``, ``dask`` or ``s3``."""
    name: str
    quantity: float
    """How many ``unit`` per month."""
    unit: str
    """``h`` (node hours), ``GB-month`` or ``month``."""
    unit_price: float
    """USD per unit."""
    monthly: float
    """USD per month."""
    source: str
    """Where the price came from (``catalogue``, ``observed``, ``assumed
    discount``, ``stated``, ``profiles``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """What a scenario costs."""

    scenario: str
    currency: str
    items: tuple[LineItem, ...]

    @property
    def monthly(self) -> float:
        """USD per month, all items."""
        return sum(i.monthly for i in self.items)

    @property
    def yearly(self) -> float:
        """USD per year (12 months)."""
        return self.monthly * MONTHS_PER_YEAR

    @property
    def dominant(self) -> LineItem | None:
        """The most expensive item, if any."""
        return max(self.items, key=lambda i: i.monthly, default=None)

    def by_category(self) -> dict[str, float]:
        """Return USD per month by category, most expensive first."""
        totals: dict[str, float] = {}
        for item in self.items:
            totals[item.category] = totals.get(item.category, 0.0) + item.monthly
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    def as_dict(self) -> dict[str, object]:
        """Return the estimate as JSON-ready data."""
        dominant = self.dominant
        return {
            "scenario": self.scenario,
            "currency": self.currency,
            "items": [asdict(i) for i in self.items],
            "by_category": self.by_category(),
            "monthly": self.monthly,
            "yearly": self.yearly,
            "dominant": None if dominant is None else dominant.name,
        }


@dataclass(frozen=True, slots=True)
class _Rate:
    per_hour: float
    source: str


def _base_items(profiles: Profiles, scenario: Scenario) -> list[LineItem]:
    stated = scenario.base is not None
    base: Sequence[CostItem] = (
        scenario.base if scenario.base is not None else profiles.cost.base
    )
    items = []
    for item in base:
        lower = item.name.lower()
        if not scenario.nat_gateway and "nat" in lower.split():
            continue
        if not scenario.load_balancer and "load balancer" in lower:
            continue
        each = monthly(item.per_hour) + item.per_month
        items.append(
            LineItem(
                category="base",
                name=item.name,
                quantity=item.count,
                unit="month",
                unit_price=each,
                monthly=each * item.count,
                source="stated" if stated else "profiles",
            )
        )
    return items


def _split(
    category: str,
    name: str,
    hours: float,
    spot_share: float,
    rates: tuple[_Rate, _Rate],
) -> list[LineItem]:
    """Return on-demand and spot items for node hours (zero-hour parts left out)."""
    items = []
    for capacity, share, rate in (
        ("on-demand", 1.0 - spot_share, rates[0]),
        ("spot", spot_share, rates[1]),
    ):
        part = hours * share
        if part <= 0:
            continue
        items.append(
            LineItem(
                category=category,
                name=f"{name} ({capacity})",
                quantity=part,
                unit="h",
                unit_price=rate.per_hour,
                monthly=part * rate.per_hour,
                source=rate.source,
            )
        )
    return items


def _pool_rates(
    pool: Pool, profiles: Profiles, spot_prices: SpotPrices | None
) -> tuple[_Rate, _Rate]:
    on_demand = hourly_cost(pool, "on-demand", spot_prices, profiles.cost)
    spot = hourly_cost(pool, "spot", spot_prices, profiles.cost)
    return _Rate(on_demand.per_hour, on_demand.source), _Rate(
        spot.per_hour, spot.source
    )


def _type_rates(
    name: str,
    profiles: Profiles,
    scenario: Scenario,
    catalog: Catalog | None,
    spot_prices: SpotPrices | None,
) -> tuple[_Rate, _Rate]:
    stated = scenario.type_prices.get(name)
    if stated is not None:
        if stated.spot is not None:
            return _Rate(stated.on_demand, "stated"), _Rate(stated.spot, "stated")
        discounted = stated.on_demand * (1.0 - profiles.cost.spot_discount)
        return _Rate(stated.on_demand, "stated"), _Rate(discounted, "assumed discount")
    itype = None if catalog is None else catalog.types.get(name)
    if itype is None:
        raise ProfileConfigError(
            [
                Problem(
                    scenario.source, "$.compute", f"no price for instance type {name}"
                )
            ]
        )
    spot = spot_price([itype], spot_prices, profiles.cost)
    return _Rate(on_demand_price([itype]), "catalogue"), _Rate(
        spot.per_hour, spot.source
    )


def _compute_items(
    profiles: Profiles,
    scenario: Scenario,
    catalog: Catalog | None,
    spot_prices: SpotPrices | None,
) -> list[LineItem]:
    items: list[LineItem] = []
    for usage in scenario.compute:
        share = scenario.spot_share if usage.spot_share is None else usage.spot_share
        rates, name, spot_ok = _usage_rates(
            usage, profiles, scenario, catalog, spot_prices
        )
        share = share if spot_ok else 0.0
        users = scenario.users if usage.users is None else usage.users
        items += _split("compute", name, users * usage.hours_per_month, share, rates)
    return items


def _usage_rates(
    usage: Usage,
    profiles: Profiles,
    scenario: Scenario,
    catalog: Catalog | None,
    spot_prices: SpotPrices | None,
) -> tuple[tuple[_Rate, _Rate], str, bool]:
    """Return a usage's on-demand and spot rates, its name, whether spot is used."""
    if usage.instance_type is not None:
        rates = _type_rates(
            usage.instance_type, profiles, scenario, catalog, spot_prices
        )
        return rates, usage.instance_type, True
    size = profiles.size(usage.size or "")
    if size is None:
        raise ProfileConfigError(
            [Problem(scenario.source, "$.compute", f"no size {usage.size!r}")]
        )
    pool = profiles.pool_of(size)
    name = f"size {size.slug} ({pool.name})"
    spot_ok = "spot" in pool.capacity_types
    return _pool_rates(pool, profiles, spot_prices), name, spot_ok


def window_hours_per_month(schedule: WarmSchedule) -> float:
    """Return how many hours a month a warm schedule's windows are open.

    Args:
        schedule: the warm schedule.

    Returns:
        Hours per average month (windows per week × weeks per month).
    """
    weekly_minutes = 0
    for window in schedule.windows:
        length = (window.end_minute - window.start_minute) % (24 * 60) or 24 * 60
        weekly_minutes += length * len(window.days)
    return weekly_minutes / 60 * WEEKS_PER_MONTH


def _warm_items(
    profiles: Profiles, scenario: Scenario, spot_prices: SpotPrices | None
) -> list[LineItem]:
    items = []
    for schedule in profiles.warm.schedules if scenario.warm else ():
        pool = profiles.pools[schedule.pool]
        if schedule.zones == "all":
            zones = len(pool.zones)
        elif schedule.zones == "homes":
            zones = scenario.home_zones
        else:
            zones = len(schedule.zones)
        capacity: CapacityType = (
            "spot" if "spot" in pool.capacity_types else "on-demand"
        )
        price = hourly_cost(pool, capacity, spot_prices, profiles.cost)
        hours = window_hours_per_month(schedule) * schedule.nodes_per_zone * zones
        items.append(
            LineItem(
                category="warm",
                name=f"warm {schedule.name} ({pool.name}, {capacity})",
                quantity=hours,
                unit="h",
                unit_price=price.per_hour,
                monthly=hours * price.per_hour,
                source=price.source,
            )
        )
    return items


def _dask_items(
    profiles: Profiles, scenario: Scenario, spot_prices: SpotPrices | None
) -> list[LineItem]:
    sizes = {w.name: w for w in profiles.dask.worker_sizes}
    items: list[LineItem] = []
    for use in scenario.dask:
        worker = sizes.get(use.worker_size)
        if worker is None:
            raise ProfileConfigError(
                [
                    Problem(
                        scenario.source, "$.dask", f"no worker size {use.worker_size!r}"
                    )
                ]
            )
        pool = profiles.pools[worker.pool]
        share = scenario.spot_share if use.spot_share is None else use.spot_share
        if "spot" not in pool.capacity_types:
            share = 0.0
        node_hours = use.worker_hours_per_month / worker.workers_per_node
        rates = _pool_rates(pool, profiles, spot_prices)
        items += _split("dask", f"dask {worker.name}", node_hours, share, rates)
    return items


def _storage_items(
    profiles: Profiles, scenario: Scenario, s3_gib: float | None
) -> list[LineItem]:
    ebs = scenario.ebs_gb_month
    snap = scenario.snapshot_gb_month
    rows = [
        (
            "storage",
            "EBS homes",
            scenario.users * scenario.home_gib_per_user,
            profiles.cost.ebs_gb_month if ebs is None else ebs,
            ebs is None,
        ),
        (
            "storage",
            "EBS snapshots",
            scenario.snapshot_gib,
            profiles.cost.snapshot_gb_month if snap is None else snap,
            snap is None,
        ),
    ]
    items = [
        LineItem(
            category=category,
            name=name,
            quantity=gb,
            unit="GB-month",
            unit_price=rate,
            monthly=gb * rate,
            source="profiles" if from_profiles else "stated",
        )
        for category, name, gb, rate, from_profiles in rows
        if gb > 0
    ]
    gib = scenario.s3_gib if s3_gib is None else s3_gib
    if gib > 0:
        items.append(
            LineItem(
                category="s3",
                name="S3 data" if s3_gib is None else "S3 data (granted buckets)",
                quantity=gib,
                unit="GB-month",
                unit_price=scenario.s3_gb_month,
                monthly=gib * scenario.s3_gb_month,
                source="stated" if s3_gib is None else "measured",
            )
        )
    return items


def estimate(
    profiles: Profiles,
    scenario: Scenario,
    spot_prices: SpotPrices | None = None,
    catalog: Catalog | None = None,
    s3_gib: float | None = None,
) -> Estimate:
    """Return what a scenario costs on these profiles.

    Args:
        profiles: the validated profiles (pools, sizes, warm schedules, costs).
        scenario: the usage.
        spot_prices: observed spot prices by ``(type, zone)``; without them spot
            is the on-demand price less ``cost.spot_discount``.
        catalog: prices for scenario items named by instance type (stated
            prices in the scenario come first).
        s3_gib: the S3 data measured in the granted buckets
            (:mod:`wbspawner.costs.s3`), in place of the scenario's ``s3_gib``.

    Returns:
        The estimate: line items, totals, what dominates.

    Raises:
        ProfileConfigError: when the scenario names an unknown size, worker size
            or an instance type with no price.
    """
    items = [
        *_base_items(profiles, scenario),
        *_compute_items(profiles, scenario, catalog, spot_prices),
        *_warm_items(profiles, scenario, spot_prices),
        *_dask_items(profiles, scenario, spot_prices),
        *_storage_items(profiles, scenario, s3_gib),
    ]
    return Estimate(
        scenario=scenario.name, currency=profiles.cost.currency, items=tuple(items)
    )

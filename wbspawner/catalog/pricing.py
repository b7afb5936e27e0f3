"""Prices of nodes: the one place wbspawner computes what capacity costs.

The spawn form, the warmer's budget cap and ``wbspawner cost`` all call these
functions, so a price shown to a user, a budget decision and a cost report always
agree. On-demand prices come from the catalogue; spot prices come from observed
``describe_spot_price_history`` results when the caller has them, otherwise from
the on-demand price and the admin's assumed spot discount, and every spot price
says which of the two it is.

Pure: no I/O. Money is USD ``float`` per hour.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from wbspawner.model import CapacityType, CostSettings, InstanceType, Pool

PriceSource = Literal["catalogue", "observed", "assumed discount"]
"""Where a price came from: catalogue on-demand, observed spot, or estimated spot."""

SpotPrices = Mapping[tuple[str, str], float]
"""Observed spot prices: ``(instance type, availability zone) → USD/hour``."""

HOURS_PER_MONTH = 730.0
"""Hours in an average month (8,760 / 12), as AWS bills and reports them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    """An hourly price and where it came from."""

    per_hour: float
    """USD per hour."""
    source: PriceSource
    """``catalogue`` (on-demand), ``observed`` (spot) or ``assumed discount``."""

    @property
    def is_estimate(self) -> bool:
        """Whether the price is derived from an assumed discount, not observed."""
        return self.source == "assumed discount"


def on_demand_price(types: Sequence[InstanceType]) -> float:
    """Return the on-demand price of a pool's node: its cheapest type.

    Args:
        types: the pool's instance types (at least one).

    Returns:
        USD per hour.

    Raises:
        ValueError: when ``types`` is empty.
    """
    if not types:
        raise ValueError("no instance types to price")
    return min(t.price_per_hour for t in types)


def _spot(
    names: Sequence[str],
    on_demand: float,
    spot_prices: SpotPrices | None,
    cost_settings: CostSettings,
    zones: Sequence[str] | None,
) -> Price:
    observed = [
        price
        for (name, zone), price in (spot_prices or {}).items()
        if name in names and (not zones or zone in zones)
    ]
    if observed:
        return Price(per_hour=min(observed), source="observed")
    return Price(
        per_hour=on_demand * (1.0 - cost_settings.spot_discount),
        source="assumed discount",
    )


def spot_price(
    types: Sequence[InstanceType],
    spot_prices: SpotPrices | None,
    cost_settings: CostSettings,
    zones: Sequence[str] | None = None,
) -> Price:
    """Return the spot price of a pool's node.

    The cheapest observed price among the types (in ``zones``, when given) if any
    was observed; otherwise the cheapest on-demand price less the assumed
    ``cost_settings.spot_discount``.

    Args:
        types: the pool's instance types (at least one).
        spot_prices: observed prices by ``(type, zone)``, or ``None``.
        cost_settings: the admin's cost settings (spot discount).
        zones: restrict observations to these zones; ``None`` or empty: any zone.

    Returns:
        The price and its source (``observed`` or ``assumed discount``).

    Raises:
        ValueError: when ``types`` is empty.
    """
    names = [t.name for t in types]
    return _spot(names, on_demand_price(types), spot_prices, cost_settings, zones)


def hourly_cost(
    pool: Pool,
    capacity_type: CapacityType,
    spot_prices: SpotPrices | None,
    cost_settings: CostSettings,
    zones: Sequence[str] | None = None,
) -> Price:
    """Return what one node of a pool costs per hour when bought this way.

    Args:
        pool: the node pool (its ``price_per_hour`` is the cheapest on-demand price
            of its types).
        capacity_type: ``spot`` or ``on-demand``.
        spot_prices: observed spot prices by ``(type, zone)``, or ``None``.
        cost_settings: the admin's cost settings.
        zones: zones to consider for spot; ``None`` means the pool's zones.

    Returns:
        The price and its source.
    """
    if capacity_type == "on-demand":
        return Price(per_hour=pool.price_per_hour, source="catalogue")
    return _spot(
        pool.instance_types,
        pool.price_per_hour,
        spot_prices,
        cost_settings,
        pool.zones if zones is None else zones,
    )


def preferred_cost(
    pool: Pool, spot_prices: SpotPrices | None, cost_settings: CostSettings
) -> Price:
    """Return the hourly cost of a pool's node bought the preferred way.

    The preferred way is the first of the pool's capacity types (what a user
    normally gets); this is the price the spawn form shows.

    Args:
        pool: the node pool.
        spot_prices: observed spot prices by ``(type, zone)``, or ``None``.
        cost_settings: the admin's cost settings.

    Returns:
        The price and its source.
    """
    first: CapacityType = pool.capacity_types[0] if pool.capacity_types else "on-demand"
    return hourly_cost(pool, first, spot_prices, cost_settings)


def monthly(per_hour: float) -> float:
    """Return the cost of running something all month at this hourly price.

    Args:
        per_hour: USD per hour.

    Returns:
        USD per month (730 hours).
    """
    return per_hour * HOURS_PER_MONTH


def format_price(p: float, unit: str = "/h") -> str:
    """Return a price for people: ``$0.50/h``, ``$0.042/h``, ``$16.29/h``.

    Two decimals from 10 cents up; three below (so a t3.medium's spot price does
    not read ``$0.01``); thousands separators for big sums.

    Args:
        p: USD amount.
        unit: suffix, ``/h`` by default; ``""`` for a plain amount, ``/month``.

    Returns:
        The formatted price.
    """
    sign = "-" if p < 0 else ""
    amount = abs(p)
    text = f"{amount:,.2f}" if amount >= 0.1 or amount == 0 else f"{amount:.3f}"
    return f"{sign}${text}{unit}"


def format_quote(price: Price) -> str:
    """Return a price with a marker when it is estimated, e.g. ``~$0.18/h``.

    Args:
        price: the price and its source.

    Returns:
        ``format_price`` of it, prefixed with ``~`` for an assumed discount.
    """
    text = format_price(price.per_hour)
    return f"~{text}" if price.is_estimate else text

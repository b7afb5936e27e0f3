"""Prices: on-demand, spot (observed or assumed), formatting."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from wbspawner.catalog import pricing
from wbspawner.model import Catalog, CostSettings, InstanceType, Pool

COST = CostSettings()
ZONES = ("us-east-1a", "us-east-1b")


@pytest.fixture
def types(catalog: Catalog) -> Callable[..., list[InstanceType]]:
    """``types(*names)``: these instance types of the catalogue."""

    def of(*names: str) -> list[InstanceType]:
        return [catalog.types[n] for n in names]

    return of


def test_on_demand_price_is_the_cheapest_type(
    types: Callable[..., list[InstanceType]],
) -> None:
    assert pricing.on_demand_price(types("r7i.4xlarge", "r5.4xlarge")) == 1.008
    assert pricing.on_demand_price(types("g5.12xlarge")) == 5.672


def test_on_demand_price_of_no_types_is_an_error() -> None:
    with pytest.raises(ValueError, match="no instance types"):
        pricing.on_demand_price([])


OBSERVED = {
    ("r5.4xlarge", "us-east-1a"): 0.30,
    ("r6i.4xlarge", "us-east-1b"): 0.25,
    ("r5.4xlarge", "us-east-1c"): 0.20,
    ("m5.xlarge", "us-east-1a"): 0.01,
}


@pytest.mark.parametrize(
    ("zones", "price", "source"),
    [
        pytest.param(None, 0.20, "observed", id="any-zone-cheapest"),
        pytest.param(["us-east-1a"], 0.30, "observed", id="one-zone"),
        pytest.param(["us-east-1a", "us-east-1b"], 0.25, "observed", id="two-zones"),
        pytest.param(
            ["us-east-1d"], 1.008 * (1 - 0.65), "assumed discount", id="unobserved"
        ),
    ],
)
def test_spot_price_prefers_observations(
    types: Callable[..., list[InstanceType]],
    zones: list[str] | None,
    price: float,
    source: str,
) -> None:
    quote = pricing.spot_price(
        types("r5.4xlarge", "r6i.4xlarge"), OBSERVED, COST, zones
    )
    assert quote.per_hour == pytest.approx(price)
    assert quote.source == source
    assert quote.is_estimate is (source == "assumed discount")


def test_spot_price_without_observations_uses_the_admin_discount(
    types: Callable[..., list[InstanceType]],
) -> None:
    quote = pricing.spot_price(
        types("g5.xlarge"), None, CostSettings(spot_discount=0.5)
    )
    assert quote.per_hour == pytest.approx(1.006 * 0.5)
    assert quote.source == "assumed discount"


def test_hourly_cost_on_demand_is_the_catalogue_price(
    make_pool: Callable[..., Pool],
) -> None:
    pool = make_pool(
        instance_types=("r5.4xlarge", "r6i.4xlarge", "r7i.4xlarge"), zones=ZONES
    )
    quote = pricing.hourly_cost(pool, "on-demand", OBSERVED, COST)
    assert (quote.per_hour, quote.source) == (1.008, "catalogue")


def test_hourly_cost_spot_only_counts_the_pools_zones(
    make_pool: Callable[..., Pool],
) -> None:
    pool = make_pool(instance_types=("r5.4xlarge", "r6i.4xlarge"), zones=ZONES)
    # us-east-1c's 0.20 is outside the pool's zones.
    quote = pricing.hourly_cost(pool, "spot", OBSERVED, COST)
    assert (quote.per_hour, quote.source) == (0.25, "observed")
    one_zone = pricing.hourly_cost(pool, "spot", OBSERVED, COST, zones=["us-east-1c"])
    assert one_zone.per_hour == 0.20


def test_hourly_cost_spot_falls_back_to_discount(
    make_pool: Callable[..., Pool],
) -> None:
    pool = make_pool(instance_types=("r5.16xlarge",), zones=ZONES)
    quote = pricing.hourly_cost(pool, "spot", OBSERVED, CostSettings(spot_discount=0.7))
    assert quote.per_hour == pytest.approx(4.032 * 0.3)
    assert quote.source == "assumed discount"


def test_preferred_cost_uses_first_capacity_type(
    make_pool: Callable[..., Pool],
) -> None:
    spot_first = make_pool(instance_types=("r5.4xlarge",), zones=ZONES)
    od_first = make_pool(
        instance_types=("r5.4xlarge",),
        zones=ZONES,
        capacity_types=("on-demand", "spot"),
    )
    assert pricing.preferred_cost(spot_first, OBSERVED, COST).per_hour == 0.30
    assert pricing.preferred_cost(od_first, OBSERVED, COST).per_hour == 1.008


def test_monthly_is_730_hours() -> None:
    assert pricing.monthly(1.008) == pytest.approx(735.84)


@pytest.mark.parametrize(
    ("amount", "unit", "text"),
    [
        pytest.param(0.5, "/h", "$0.50/h", id="half"),
        pytest.param(0.1, "/h", "$0.10/h", id="dime"),
        pytest.param(0.0416, "/h", "$0.042/h", id="small-three-decimals"),
        pytest.param(0.099, "/h", "$0.099/h", id="just-below-dime"),
        pytest.param(16.288, "/h", "$16.29/h", id="rounds"),
        pytest.param(0.0, "/h", "$0.00/h", id="zero"),
        pytest.param(1234.5, "/month", "$1,234.50/month", id="thousands"),
        pytest.param(-2.5, "", "-$2.50", id="negative-plain"),
    ],
)
def test_format_price(amount: float, unit: str, text: str) -> None:
    assert pricing.format_price(amount, unit) == text


def test_format_quote_marks_estimates() -> None:
    observed = pricing.Price(per_hour=0.3, source="observed")
    assumed = pricing.Price(per_hour=0.3528, source="assumed discount")
    assert pricing.format_quote(observed) == "$0.30/h"
    assert pricing.format_quote(assumed) == "~$0.35/h"

"""Cost estimates: the published scenario, today's prices, line items, scenarios."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.paths import REPO
from wbspawner.catalog.pricing import HOURS_PER_MONTH
from wbspawner.costs.estimate import Estimate, estimate, window_hours_per_month
from wbspawner.costs.scenario import load_scenario, parse_scenario
from wbspawner.errors import ProfileConfigError
from wbspawner.model import Catalog, Profiles

SCENARIOS = REPO / "costs" / "scenarios"
Run = Callable[..., Estimate]


@pytest.fixture
def run(profiles: Profiles, catalog: Catalog) -> Run:
    """Estimate a scenario file of costs/scenarios on the shipped profiles."""

    def estimated(
        name: str, spot_prices: dict[tuple[str, str], float] | None = None
    ) -> Estimate:
        return estimate(profiles, load_scenario(SCENARIOS / name), spot_prices, catalog)

    return estimated


def published_total() -> float:
    """The write-up's yearly arithmetic, from the prices it states."""
    administration = 12 * 50
    exploratory = 4 * 7 * 24 * 0.05
    heavy = 4 * 2 * 24 * 0.75
    s3 = 1000 * 0.023 * 12
    return administration + exploratory + heavy + s3


def test_every_scenario_file_is_estimated_here() -> None:
    tested = {"carlson-2017.yaml", "carlson-today-eks.yaml", "team-workbench.yaml"}
    assert {p.name for p in SCENARIOS.glob("*.yaml")} == tested


def test_published_scenario_is_reproduced_within_two_percent(run: Run) -> None:
    result = run("carlson-2017.yaml")
    assert result.yearly == pytest.approx(published_total(), rel=0.02)
    assert result.yearly == pytest.approx(1053.60, rel=0.02)  # the published figure
    assert result.monthly * 12 == pytest.approx(result.yearly)


def test_published_scenario_items_and_dominance(run: Run) -> None:
    result = run("carlson-2017.yaml")
    by_name = {i.name: i for i in result.items}
    assert by_name["t2.xlarge (spot)"].quantity == pytest.approx(4 * 7 * 24 / 12)
    assert by_name["m5.12xlarge (spot)"].unit_price == 0.75
    assert by_name["S3 data"].monthly == pytest.approx(1000 * 0.023)
    assert {i.source for i in result.items} == {"stated"}
    assert not any(i.category == "warm" for i in result.items)
    assert result.dominant is not None and result.dominant.category == "base"


def test_todays_prices_on_eks_cost_more_because_of_the_control_plane(run: Run) -> None:
    then, now = run("carlson-2017.yaml"), run("carlson-today-eks.yaml")
    plane = next(i for i in now.items if i.name == "EKS control plane")
    assert plane.monthly == pytest.approx(0.10 * HOURS_PER_MONTH)
    assert now.yearly > then.yearly
    assert now.dominant == plane
    assert not any("NAT" in i.name for i in now.items)  # nat_gateway: false
    hours = {i.name: i.quantity for i in now.items if i.category == "compute"}
    assert sum(hours.values()) == pytest.approx((4 * 7 * 24 + 4 * 2 * 24) / 12)


def test_spot_source_is_shown_assumed_or_observed(run: Run) -> None:
    assumed = run("carlson-today-eks.yaml")
    spot_items = [i for i in assumed.items if i.name.endswith("(spot)")]
    assert spot_items and {i.source for i in spot_items} == {"assumed discount"}
    observed_price = 0.031
    observed = run(
        "carlson-today-eks.yaml", {("r5.large", "us-east-1a"): observed_price}
    )
    medium = next(i for i in observed.items if i.name.startswith("size medium"))
    assert (medium.source, medium.unit_price) == ("observed", observed_price)


def test_team_month_has_every_kind_of_item(run: Run) -> None:
    result = run("team-workbench.yaml")
    categories = result.by_category()
    assert set(categories) == {"base", "compute", "warm", "dask", "storage", "s3"}
    assert result.monthly == pytest.approx(sum(categories.values()))
    assert list(categories.values()) == sorted(categories.values(), reverse=True)
    gpu = [i for i in result.items if i.name.startswith("size gpu-t4")]
    assert sorted(i.quantity for i in gpu) == [30.0, 30.0]  # 2 users, 50 % spot
    dask = next(i for i in result.items if i.name == "dask m64-quarter (spot)")
    assert dask.quantity == pytest.approx(800 * 0.8 / 4)  # 4 workers per node


def test_warm_capacity_follows_the_schedules(run: Run, profiles: Profiles) -> None:
    schedule = profiles.warm.schedules[0]
    weekly = sum(
        (w.end_minute - w.start_minute) / 60 * len(w.days) for w in schedule.windows
    )
    assert window_hours_per_month(schedule) == pytest.approx(
        weekly * HOURS_PER_MONTH / 168
    )
    warm = [i for i in run("team-workbench.yaml").items if i.category == "warm"]
    assert len(warm) == len(profiles.warm.schedules)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"compute": [{"size": "small"}]}, "hours_per_month or hours_per_year"),
        (
            {"compute": [{"size": "a", "instance_type": "b", "hours_per_month": 1}]},
            "exactly one of size or instance_type",
        ),
        ({"spot_share": 2}, "fraction between 0 and 1"),
        ({"users": -1}, "whole number"),
        ({"bogus": 1}, "unknown key"),
        ({"nat_gateway": "no"}, "true or false"),
    ],
    ids=["no-hours", "size-and-type", "share", "users", "unknown", "flag"],
)
def test_bad_scenarios_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ProfileConfigError, match=message):
        parse_scenario(doc, "s.yaml")


def test_unknown_size_is_refused(profiles: Profiles) -> None:
    scenario = parse_scenario({"compute": [{"size": "nope", "hours_per_month": 1}]})
    with pytest.raises(ProfileConfigError, match="no size 'nope'"):
        estimate(profiles, scenario)

"""What right-sizing would save in a month, on the shipped profiles, exactly.

On-demand $/hour there: small (4 GiB, limit 2,772 MiB) 0.0416, medium (16 GiB,
14,610 MiB) 0.126, large (64 GiB) 0.504, xlarge (128 GiB) 1.008; spot is 35 %.
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import pytest

from wbspawner.costs.page import costs_data, parse_query, render_costs
from wbspawner.costs.rightsize import (
    DEFINITION,
    MeasuredRun,
    RightsizeRow,
    Rightsizing,
    rightsizing,
)
from wbspawner.model import CapacityType, Profiles
from wbspawner.spawn.advice import price_of

NOW_MONTH = "2026-12"
NOW = datetime(2026, 12, 8, 12)


def rightsizing_of(*rows: RightsizeRow) -> Rightsizing:
    total = sum((r.saving for r in rows), start=Fraction(0))
    return Rightsizing(rows=rows, saving=total, unmeasured_hours=Fraction(0))


def run(
    user: str,
    size: str,
    hours: int,
    peak: int | None,
    rate: str = "0.504",
    capacity: CapacityType = "on-demand",
) -> MeasuredRun:
    h = Fraction(hours)
    return MeasuredRun(
        user=user,
        size=size,
        capacity_type=capacity,
        hours=h,
        cost=h * Fraction(rate),
        peak_mib=peak,
    )


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        pytest.param([], [], id="nothing-recorded"),
        pytest.param(
            [run("ada", "large", 10, 9 * 1024), run("ada", "large", 30, 2000)],
            [("ada", "large", "medium", 2, 9 * 1024, "40", "15.12")],
            id="highest-peak-picks-16-gib",
        ),
        pytest.param(
            [run("ada", "large", 10, 700)],
            [("ada", "large", "small", 1, 700, "10", "4.624")],
            id="small-enough-for-4-gib",
        ),
        pytest.param(
            [
                run("ada", "large", 10, 40 * 1024),
                run("bob", "xlarge", 5, 1000, "1.008"),
            ],
            [("bob", "xlarge", "small", 1, 1000, "5", "4.832")],
            id="no-cheaper-size-fits-no-row",
        ),
        pytest.param(
            [run("ada", "large", 10, 700, "0.1764", "spot")],
            [("ada", "large", "small", 1, 700, "10", "1.6184")],
            id="spot-runs-compare-with-spot",
        ),
        pytest.param(
            [run("ada", "gpu-t4", 10, 700, "0.526")],
            [],
            id="gpu-runs-only-against-gpu-sizes",
        ),
        pytest.param(
            [run("ada", "retired", 10, 700)],
            [],
            id="size-no-longer-offered",
        ),
        pytest.param(
            [run("ada", "small", 3, 700, "0.0416"), run("bob", "large", 2, 700)],
            [("bob", "large", "small", 1, 700, "2", "0.9248")],
            id="already-the-cheapest",
        ),
    ],
)
def test_rightsizing(
    profiles: Profiles,
    runs: list[MeasuredRun],
    expected: list[tuple[str, str, str, int, int, str, str]],
) -> None:
    found = rightsizing(runs, profiles)
    rows = [
        (r.user, r.size, r.advised, r.sessions, r.peak_mib, str(r.hours), str(r.saving))
        for r in found.rows
    ]
    assert rows == [
        (u, s, a, n, p, h, str(Fraction(v))) for u, s, a, n, p, h, v in expected
    ]
    assert found.saving == sum((r.saving for r in found.rows), start=Fraction(0))


def test_runs_without_a_peak_are_counted_apart(profiles: Profiles) -> None:
    found = rightsizing(
        [run("ada", "large", 4, None), run("ada", "large", 2, 700)], profiles
    )
    assert found.unmeasured_hours == 4
    assert [(r.hours, r.sessions) for r in found.rows] == [(2, 1)]


def test_the_saving_is_the_difference_in_price(profiles: Profiles) -> None:
    """Paid minus what the advised size costs for the same hours, as the form
    prices it."""
    (row,) = rightsizing([run("ada", "large", 7, 700)], profiles).rows
    small = price_of(profiles.pools["cpu4"], "on-demand", profiles)
    assert float(row.saving) == pytest.approx(7 * (0.504 - small))


def test_page_and_json_show_the_table_and_total() -> None:
    found = rightsizing_of(
        RightsizeRow(
            user="<ada>",
            size="large",
            advised="small",
            sessions=3,
            peak_mib=700,
            hours=Fraction(10),
            cost=Fraction("5.04"),
            saving=Fraction("4.624"),
        )
    )
    page = render_costs([], NOW_MONTH, "user", rightsizing=found)
    assert 'id="wb-rightsize-table"' in page
    assert "Right-sizing would save $4.62 in 2026-12, by the table below" in page
    assert '<th scope="row">&lt;ada&gt;</th><td>large</td>' in page
    assert '<td class="wb-num">0.7 GiB</td><td>small</td>' in page
    assert DEFINITION.split(":")[0] in page
    data = costs_data([], parse_query(NOW_MONTH, "user", NOW), rightsizing=found)
    assert data["rightsizing"]["saving"] == 4.624
    assert data["rightsizing"]["rows"][0]["advised"] == "small"


def test_page_without_measured_runs_says_so() -> None:
    page = render_costs([], NOW_MONTH, "user")
    assert "Right-sizing would save $0.00 in 2026-12\n    (0.00 server hours" in page
    assert "wb-rightsize-table" not in page

"""What the warmer shows: cells, readiness, costs over time, the page, the plot."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.unit.warmer.clock_support import NOW, A, B
from wbspawner.catalog.pricing import hourly_cost
from wbspawner.model import CostSettings, Profiles
from wbspawner.pages.svg import Series, line_chart_svg
from wbspawner.spawn.waits import boot_minutes
from wbspawner.warmer.report import (
    Sample,
    Timeline,
    cells,
    cost_since,
    local_midnight,
    readiness,
    ready_nodes,
    timeline,
)
from wbspawner.warmer.snapshot import ClusterSnapshot, NodeInfo, PodInfo
from wbspawner.warmer.status import StatusView, status_json
from wbspawner.warmer.web import render_page


def placeholder(
    name: str, zone: str, node: str | None, minutes_ago: float = 1
) -> PodInfo:
    return PodInfo(
        name=name,
        role="placeholder",
        pool="mem64",
        zone=zone,
        capacity_type="spot",
        node=node,
        running=node is not None,
        created=NOW - timedelta(minutes=minutes_ago),
    )


SNAP = ClusterSnapshot(
    taken_at=NOW,
    nodes=(
        NodeInfo(name="n1", pool="mem64", zone=A, capacity_type="spot", ready=True),
        NodeInfo(
            name="n2", pool="mem64", zone=A, capacity_type="on-demand", ready=True
        ),
    ),
    pods=(
        placeholder("warm-1", A, "n1"),
        placeholder("warm-2", B, None, minutes_ago=1),
        PodInfo(
            name="jupyter-ann",
            role="user",
            pool="mem64",
            zone=A,
            capacity_type="on-demand",
            node="n2",
            running=True,
            created=NOW,
            user="ann",
        ),
    ),
)


def test_cells_count_warm_nodes_users_and_cost(profiles: Profiles) -> None:
    found = {
        (c.pool, c.zone): c for c in cells(profiles.pools, SNAP, None, CostSettings())
    }
    a, b = found[("mem64", A)], found[("mem64", B)]
    spot = hourly_cost(
        profiles.pools["mem64"], "spot", None, CostSettings(), (A,)
    ).per_hour
    assert (a.warm_nodes, a.placeholders_running, a.users) == (1, 1, 1)
    assert (a.spot_nodes, a.on_demand_nodes) == (1, 1)
    assert a.warm_cost_per_hour == pytest.approx(spot)
    assert a.node_cost_per_hour == pytest.approx(
        spot + profiles.pools["mem64"].price_per_hour
    )
    assert (b.warm_nodes, b.placeholders_pending, b.warm_cost_per_hour) == (0, 1, 0)


def test_readiness_per_size(profiles: Profiles) -> None:
    out = readiness(profiles.pools, profiles.sizes, SNAP, NOW)
    large = out["sizes"]["large"]  # type: ignore[index]
    assert (large["ready"], large["minutes"], large["text"]) == (1, 0, "Ready now")
    left = boot_minutes(profiles.pools["mem64"]) * 60 - 60  # waited a minute
    assert large["zones"][B] == {"ready": 0, "seconds": left, "minutes": left // 60}
    small = out["sizes"]["small"]  # type: ignore[index]
    cold = boot_minutes(profiles.pools["cpu4"])
    assert (small["ready"], small["text"]) == (0, f"Starts in about {cold} minutes")
    assert out["pools"] == ready_nodes(profiles.pools, SNAP)
    assert ready_nodes(profiles.pools, SNAP)["mem64"] == {A: 1, B: 0, "us-east-1c": 0}


def test_cost_since_integrates_steps_from_the_start() -> None:
    t0 = NOW - timedelta(hours=3)
    samples = [
        Sample(at=t0, cells={("mem64", A): (1, 0, 1.0)}),
        Sample(
            at=t0 + timedelta(hours=1),
            cells={("mem64", A): (1, 0, 2.0), ("cpu16", B): (1, 0, 0.5)},
        ),
        Sample(at=t0 + timedelta(hours=2), cells={}),
    ]
    assert cost_since(samples, t0, NOW) == pytest.approx(1.0 + 2.5)
    assert cost_since(samples, t0 + timedelta(minutes=30), NOW) == pytest.approx(
        0.5 + 2.5
    )
    assert cost_since(samples, t0, NOW, ("cpu16", B)) == pytest.approx(0.5)


def test_local_midnight() -> None:
    ny = ZoneInfo("America/New_York")
    assert local_midnight(NOW, ny) == datetime(2026, 11, 25, tzinfo=ny)


def test_status_json_and_page_escape_everything(profiles: Profiles) -> None:
    view = StatusView(
        pools=profiles.pools,
        cost=CostSettings(),
        timezone="UTC",
        snapshot=SNAP,
        plan=None,
        errors=[{"at": "t", "pool": "<b>", "action": "x", "message": "<script>"}],
        samples=[],
        now=NOW,
    )
    status = status_json(view)
    assert status["totals"]["warm_cost_today"] == 0
    assert [c["zone"] for c in status["cells"]] == [A, B]
    chart = line_chart_svg([], title="<t>", x_label="x", y_label="y")
    page = render_page(status, Timeline(charts=(chart,), columns=(), rows=()))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt;t&gt;" in page


def test_line_chart_draws_each_series_and_escapes_names() -> None:
    svg = line_chart_svg(
        [Series("a&b", [(0, 0), (1, 2)], step=True), Series("c", [(0, 1), (1, 1)])],
        title="t",
        x_label="x",
        y_label="y",
    )
    assert svg.count("<polyline") == 2 and "a&amp;b" in svg
    assert not math.isnan(float(svg.split('points="')[1].split(",")[0]))


def test_timeline_has_two_charts_local_ticks_and_a_table() -> None:
    """Six hours of samples from 13:30 UTC: ticks and rows on New York's hours."""
    ny = ZoneInfo("America/New_York")
    t0 = datetime(2026, 3, 4, 13, 30, tzinfo=ZoneInfo("UTC"))
    samples = [
        Sample(at=t0 + timedelta(minutes=30 * i), cells={("mem64", A): (i % 2, 1, 0.5)})
        for i in range(13)
    ]
    found = timeline(samples, ny)
    assert len(found.charts) == 2
    assert "local time (America/New_York)" in found.charts[0]
    assert "USD per hour" in found.charts[1] and ">0.5<" in found.charts[1]
    assert [r[0] for r in found.rows] == [
        "Wed 09:00",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
        "14:00",
        "Wed 14:30:00 (latest)",
    ]
    assert found.rows[0][1:] == ("1", "1", "0.50")  # 09:00 holds the 14:00 UTC sample


def test_a_young_timeline_still_has_time_ticks() -> None:
    t0 = datetime(2026, 3, 4, 13, 31, tzinfo=ZoneInfo("UTC"))
    one = [Sample(at=t0, cells={("mem64", A): (1, 0, 0.2)})]
    found = timeline(one, ZoneInfo("UTC"))
    assert ">Wed 13:32<" in found.charts[0] and "<circle" in found.charts[0]
    assert [r[0] for r in found.rows] == ["Wed 13:31:00 (latest)"]

"""Chart axes: round value ticks, local-time ticks, labels people read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wbspawner.pages.svg import (
    Series,
    format_tick,
    line_chart_svg,
    nice_step,
    nice_ticks,
    time_ticks,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        pytest.param(0.825, [0, 0.2, 0.4, 0.6, 0.8, 1.0], id="issue-0.825"),
        pytest.param(1.1, [0, 0.25, 0.5, 0.75, 1.0, 1.25], id="issue-1.1"),
        pytest.param(3, [0, 1, 2, 3], id="small-count"),
        pytest.param(7, [0, 2, 4, 6, 8], id="seven"),
        pytest.param(12, [0, 2.5, 5, 7.5, 10, 12.5], id="twelve"),
        pytest.param(4_032, [0, 1_000, 2_000, 3_000, 4_000, 5_000], id="thousands"),
        pytest.param(0, [0, 0.2, 0.4, 0.6, 0.8, 1.0], id="nothing"),
    ],
)
def test_value_ticks_are_round_and_cover_the_top(
    top: float, ticks: list[float]
) -> None:
    assert nice_ticks(top) == pytest.approx(ticks)


@pytest.mark.parametrize("span", [0.003, 0.7, 1, 9.99, 37, 123_456])
def test_steps_are_1_2_2_5_or_5_times_a_power_of_ten(span: float) -> None:
    step = nice_step(span)
    mantissa = step / 10 ** int(f"{step:e}".split("e")[1])
    assert round(mantissa, 9) in (1, 2, 2.5, 5)
    assert span / step <= 5 + 1e-9


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (2.5, "2.5"), (1_000, "1,000"), (0.05, "0.05"), (0.2, "0.2")],
)
def test_tick_labels(value: float, text: str) -> None:
    assert format_tick(value) == text


def test_time_ticks_fall_on_whole_local_hours() -> None:
    """A 5 h span from 13:07 UTC in New York: ticks each hour, 09:00 local first."""
    ny = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 4, 13, 7, tzinfo=UTC)
    ticks = time_ticks(start, start + timedelta(hours=5), ny)
    assert [label for _, label in ticks] == [
        "Wed 09:00",
        "10:00",
        "11:00",
        "12:00",
        "13:00",
    ]
    assert all(start <= at <= start + timedelta(hours=5) for at, _ in ticks)


def test_time_ticks_name_the_day_at_midnight() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 4, 12, 0, tzinfo=berlin)
    labels = [
        label for _, label in time_ticks(start, start + timedelta(hours=30), berlin)
    ]
    assert labels[0] == "Wed 12:00" and "Thu 00:00" in labels
    assert len(labels) <= 8


def test_short_spans_tick_every_few_minutes() -> None:
    start = datetime(2026, 3, 4, 9, 58, tzinfo=UTC)
    ticks = time_ticks(start, start + timedelta(minutes=20), UTC)
    assert [label for _, label in ticks] == ["Wed 10:00", "10:05", "10:10", "10:15"]


def test_line_chart_has_round_y_ticks_a_legend_and_a_title() -> None:
    svg = line_chart_svg(
        [Series("warm nodes", [(0, 0), (1, 3)], True), Series("users", [(0, 1)])],
        title="Warm nodes",
        x_label="local time",
        y_label="count",
        x_ticks=[(0, "09:00"), (1, "10:00")],
    )
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {
        "0",
        "1",
        "2",
        "3",
        "09:00",
        "10:00",
        "count",
        "warm nodes",
        "users",
    } <= set(texts)
    assert root.findtext(f"{SVG}title") == "Warm nodes"
    assert root.get("role") == "img"

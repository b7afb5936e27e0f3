"""Warm schedules' windows: how they are described and when they are open."""

from __future__ import annotations

from datetime import datetime

import pytest

from wbspawner.model import TimeWindow
from wbspawner.profiles.parsers import parse_time
from wbspawner.warmer.schedule import describe_window, window_open


def window(days: set[int], start: str, end: str) -> TimeWindow:
    return TimeWindow(
        days=frozenset(days), start_minute=parse_time(start), end_minute=parse_time(end)
    )


@pytest.mark.parametrize(
    ("days", "start", "end", "text"),
    [
        pytest.param(
            {1, 2, 3, 4, 5}, "08:00", "18:00", "Mon–Fri 08:00–18:00", id="weekdays"
        ),
        pytest.param({1, 3, 5}, "09:30", "12:00", "Mon,Wed,Fri 09:30–12:00", id="gaps"),
        pytest.param({5}, "22:00", "06:00", "Fri 22:00–06:00", id="wrap"),
    ],
)
def test_describe_window(days: set[int], start: str, end: str, text: str) -> None:
    assert describe_window(window(days, start, end)) == text


def test_whole_day_window_when_start_equals_end() -> None:
    w = window({3}, "00:00", "00:00")
    assert window_open(w, datetime(2026, 11, 25, 0, 0))
    assert window_open(w, datetime(2026, 11, 25, 23, 59))
    assert not window_open(w, datetime(2026, 11, 26, 0, 0))

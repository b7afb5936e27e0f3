"""Warm schedules' windows: how they are described and when they are open."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from wbspawner.model import TimeWindow
from wbspawner.profiles.parsers import parse_time
from wbspawner.warmer.schedule import (
    candidates,
    describe_window,
    pool_users,
    window_open,
)
from wbspawner.warmer.snapshot import ClusterSnapshot, PodInfo


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


def _pod(user: str, pool: str) -> PodInfo:
    return PodInfo(
        name=f"jupyter-{user}",
        role="user",
        pool=pool,
        zone="us-east-1a",
        capacity_type="spot",
        node="n1",
        running=True,
        created=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        user=user,
    )


def test_candidates_are_the_pool_users_with_a_home_there_not_running() -> None:
    """The snapshot's per-pool and running-user indexes answer as a scan would,
    also on a copy made with ``dataclasses.replace``."""
    snapshot = ClusterSnapshot(
        taken_at=datetime(2026, 12, 7, 9, 0, tzinfo=UTC),
        pods=(_pod("ann", "mem64"),),
        homes={"ann": "us-east-1a", "ben": "us-east-1a", "cy": "us-east-1b"},
        user_pools={"ann": ("mem64",), "ben": ("mem64",), "cy": ("mem64", "cpu4")},
    )
    assert pool_users("mem64", snapshot) == ("ann", "ben", "cy")
    assert pool_users("cpu4", snapshot) == ("cy",)
    assert candidates("mem64", "us-east-1a", snapshot) == 1  # ann runs
    assert candidates("gpu-t4", "us-east-1a", snapshot) is None
    later = dataclasses.replace(snapshot, pods=())
    assert candidates("mem64", "us-east-1a", later) == 2

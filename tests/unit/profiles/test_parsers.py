"""The value parsers of profiles: times of day and days of the week."""

from __future__ import annotations

import pytest

from wbspawner.profiles.parsers import parse_days, parse_time


@pytest.mark.parametrize(
    ("value", "minutes"),
    [("00:00", 0), ("08:30", 510), ("23:59", 1439), ("24:00", 1440)],
)
def test_parse_time(value: str, minutes: int) -> None:
    assert parse_time(value) == minutes


@pytest.mark.parametrize(
    "value", ["24:01", "8:00", "25:00", "12:60", "noon", 800, None]
)
def test_parse_time_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="is not a time 'HH:MM'"):
        parse_time(value)


@pytest.mark.parametrize(
    ("value", "days"),
    [
        ("mon-fri", {1, 2, 3, 4, 5}),
        ("fri-mon", {5, 6, 7, 1}),
        ("weekends", {6, 7}),
        ("daily", {1, 2, 3, 4, 5, 6, 7}),
        (["Tue", "thursday"], {2, 4}),
        (["mon", "sat-sun"], {1, 6, 7}),
    ],
)
def test_parse_days(value: object, days: set[int]) -> None:
    assert parse_days(value) == frozenset(days)


@pytest.mark.parametrize("value", ["mon-fryday", ["mon", "funday"], [], [1], "", "mo"])
def test_parse_days_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="day"):
        parse_days(value)

"""Users' habits: who usually starts when, and the warmer's reader of them."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.unit.warmer.clock_support import NOW
from wbspawner.costs.accounting import Start, open_db, record, record_stop
from wbspawner.model import WarmSettings
from wbspawner.warmer.habits import HabitReader
from wbspawner.warmer.schedule import HabitWindow, habit_minutes

NY = ZoneInfo("America/New_York")
SETTINGS = WarmSettings(timezone="America/New_York", habit_days=28)


def start(db_url: str, user: str, at: datetime, kind: str = "server") -> None:
    with open_db(db_url)() as session:
        s = Start(
            user=user,
            size="large",
            pool="mem64",
            capacity_type="spot",
            price_per_hour=0.2,
            at=at,
            zone="us-east-1a",
            kind=kind,
        )  # type: ignore[arg-type]
        record(session, s)
        record_stop(session, user, at + timedelta(hours=1), kind=kind)  # type: ignore[arg-type]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'costs.db'}"


async def test_reads_local_start_minutes_within_the_days(db_url: str) -> None:
    start(db_url, "ann", datetime(2026, 11, 24, 8, 50, tzinfo=NY))
    start(db_url, "ann", datetime(2026, 11, 20, 13, 5, tzinfo=NY))
    start(db_url, "ann", datetime(2026, 10, 1, 7, 0, tzinfo=NY))  # too old
    start(db_url, "ben", datetime(2026, 11, 23, 10, 0, tzinfo=NY), kind="dask")
    habits = await HabitReader(db_url).habits(SETTINGS, NOW)
    assert dict(habits) == {"ann": (8 * 60 + 50, 13 * 60 + 5)}


async def test_a_read_is_reused_until_the_refresh(db_url: str) -> None:
    reader = HabitReader(db_url, refresh_s=600)
    start(db_url, "ann", datetime(2026, 11, 24, 8, 50, tzinfo=NY))
    first = await reader.habits(SETTINGS, NOW)
    start(db_url, "ben", datetime(2026, 11, 24, 9, 30, tzinfo=NY))
    assert await reader.habits(SETTINGS, NOW + timedelta(seconds=599)) == first
    later = await reader.habits(SETTINGS, NOW + timedelta(seconds=600))
    assert set(later) == {"ann", "ben"}


async def test_off_reads_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'never.db'}"
    off = WarmSettings(habit_days=0)
    assert dict(await HabitReader(url).habits(off, NOW)) == {}
    assert not (tmp_path / "never.db").exists()


async def test_an_unreadable_database_means_no_habits_said_once(tmp_path: Path) -> None:
    errors: list[str] = []
    url = f"sqlite:///{tmp_path / 'missing-dir' / 'costs.db'}"
    reader = HabitReader(url, on_error=errors.append)
    assert dict(await reader.habits(SETTINGS, NOW)) == {}
    assert dict(await reader.habits(SETTINGS, NOW + timedelta(seconds=30))) == {}
    assert len(errors) == 1 and "cannot read start times" in errors[0]


@pytest.mark.parametrize(
    ("now", "usual", "expected"),
    [
        pytest.param("09:00", (), True, id="no-record-always"),
        pytest.param("09:00", (8 * 60 + 40,), True, id="within-before"),
        pytest.param("09:00", (9 * 60 + 21,), False, id="just-outside-after"),
        pytest.param("23:55", (10,), True, id="across-midnight"),
        pytest.param("00:05", (23 * 60 + 50,), True, id="across-midnight-back"),
        pytest.param("12:00", (8 * 60, 16 * 60), False, id="between-two-habits"),
    ],
)
def test_habit_window_expects(now: str, usual: tuple[int, ...], expected: bool):
    h, m = (int(x) for x in now.split(":"))
    habit = HabitWindow.at(datetime(2026, 11, 25, h, m, tzinfo=NY), 20)
    assert habit.expects(usual) is expected


def test_habit_minutes_are_local_distinct_and_sorted() -> None:
    starts = {
        "ann": [
            datetime(2026, 11, 24, 9, 5, tzinfo=NY),
            datetime(2026, 11, 23, 8, 50, tzinfo=NY),
            datetime(2026, 11, 20, 9, 5, tzinfo=NY),
        ],
        "ben": [],
    }
    assert habit_minutes(starts, NY) == {"ann": (8 * 60 + 50, 9 * 60 + 5)}
    # the same instants read in UTC are five hours later (EST)
    assert habit_minutes(starts, ZoneInfo("UTC"))["ann"] == (13 * 60 + 50, 14 * 60 + 5)

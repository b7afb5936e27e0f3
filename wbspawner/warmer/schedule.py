"""When warm schedules are open and which zones they warm.

This module owns reading the admin's warm schedules against a time and a
snapshot: whether a weekly window is open (in the schedule's time zone, wrapping
past midnight when it ends before it starts; a wrapping window belongs to the
day it starts on), how a window reads in words, which zones ``homes``, ``all``
or a list stand for, and how many of a pool's users with a home in a zone could
still start a server, and of those, how many usually start around now (their
habits: the minutes of the day of their recorded starts).
:mod:`wbspawner.warmer.policy` decides with them.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from wbspawner.model import Pool, TimeWindow, WarmSchedule, WarmSettings
from wbspawner.warmer.snapshot import ClusterSnapshot

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


# ---------------------------------------------------------------- windows


def window_open(window: TimeWindow, local: datetime) -> bool:
    """Return whether a weekly window is open at a local time.

    A window whose end is not after its start wraps past midnight and belongs
    to the day it starts on (``Fri 22:00–06:00`` is open early on Saturday).

    Args:
        window: the window.
        local: the time in the schedule's time zone.

    Returns:
        Whether it is open.
    """
    minute = local.hour * 60 + local.minute
    day = local.isoweekday()
    if window.start_minute < window.end_minute:
        return day in window.days and window.start_minute <= minute < window.end_minute
    previous = 7 if day == 1 else day - 1
    return (day in window.days and minute >= window.start_minute) or (
        previous in window.days and minute < window.end_minute
    )


def describe_window(window: TimeWindow) -> str:
    """Return a window in words, e.g. ``Mon–Fri 08:00–18:00``.

    Args:
        window: the window.

    Returns:
        The days (ranges joined) and the times.
    """
    days = sorted(window.days)
    runs: list[list[int]] = []
    for d in days:
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    names = ",".join(
        _DAYS[r[0] - 1] if len(r) == 1 else f"{_DAYS[r[0] - 1]}–{_DAYS[r[-1] - 1]}"
        for r in runs
    )
    start, end = window.start_minute, window.end_minute
    return f"{names} {start // 60:02d}:{start % 60:02d}–{end // 60:02d}:{end % 60:02d}"


def open_window(schedule: WarmSchedule, local: datetime) -> TimeWindow | None:
    """Return the schedule's window open at a local time, if any.

    Args:
        schedule: the schedule.
        local: the time in the schedule's time zone.

    Returns:
        The first open window, or ``None``.
    """
    return next((w for w in schedule.windows if window_open(w, local)), None)


# ------------------------------------------------------------------ zones


def pool_users(pool: str, snapshot: ClusterSnapshot) -> tuple[str, ...]:
    """Return the users known to use a pool (from the hub and pods seen).

    Args:
        pool: pool name.
        snapshot: the snapshot.

    Returns:
        User names, sorted.
    """
    return snapshot.users_by_pool.get(pool, ())


def candidates(
    pool: str, zone: str, snapshot: ClusterSnapshot, habit: HabitWindow | None = None
) -> int | None:
    """Return how many users of a pool with a home in a zone are not running now.

    Args:
        pool: pool name.
        zone: zone.
        snapshot: the snapshot.
        habit: when given, count only users who usually start around its minute
            (or have no recorded starts).

    Returns:
        The count, or ``None`` when the pool's users are unknown.
    """
    users = pool_users(pool, snapshot)
    if not users:
        return None
    running = snapshot.running_users
    return sum(
        1
        for u in users
        if snapshot.homes.get(u) == zone
        and u not in running
        and (habit is None or habit.expects(snapshot.habits.get(u, ())))
    )


# ----------------------------------------------------------------- habits

DAY_MINUTES = 24 * 60


@dataclass(frozen=True, slots=True)
class HabitWindow:
    """A minute of the day and a margin: who usually starts around then."""

    minute: int
    """Minute of the day, in the warm settings' time zone."""
    margin: int
    """Minutes either side that still count."""

    @classmethod
    def at(cls, local: datetime, margin_min: int) -> HabitWindow:
        """Return the window around a local time."""
        return cls(local.hour * 60 + local.minute, margin_min)

    def expects(self, usual: Iterable[int]) -> bool:
        """Return whether a user with these usual start minutes may start now.

        Args:
            usual: minutes of the day of the user's recorded starts; none: the
                user's habits are unknown, so they may start any time.

        Returns:
            Whether one start is within the margin (across midnight too), or no
            start is known.
        """
        known = False
        for m in usual:
            known = True
            gap = abs(m - self.minute) % DAY_MINUTES
            if min(gap, DAY_MINUTES - gap) <= self.margin:
                return True
        return not known


def habit_window(settings: WarmSettings, now: datetime) -> HabitWindow | None:
    """Return who usually starts around ``now``, ``None`` when habits are off.

    Args:
        settings: the warm settings (``habit_days``, ``habit_margin_min``, zone).
        now: the current time (aware).

    Returns:
        The window around now in the settings' time zone, or ``None``.
    """
    if settings.habit_days <= 0:
        return None
    local = now.astimezone(ZoneInfo(settings.timezone))
    return HabitWindow.at(local, settings.habit_margin_min)


def habit_minutes(
    starts: Mapping[str, Iterable[datetime]], tz: tzinfo
) -> dict[str, tuple[int, ...]]:
    """Return each user's distinct start minutes of the day in a time zone.

    Args:
        starts: user → aware start times (from the accounting records).
        tz: the warm settings' time zone.

    Returns:
        User → sorted minutes of the day; users without starts are left out.
    """
    out: dict[str, tuple[int, ...]] = {}
    for user, times in starts.items():
        local = [t.astimezone(tz) for t in times]
        minutes = {t.hour * 60 + t.minute for t in local}
        if minutes:
            out[user] = tuple(sorted(minutes))
    return out


def home_zones(pool: Pool, snapshot: ClusterSnapshot) -> tuple[tuple[str, ...], str]:
    """Return the zones where a pool's users have homes, and how they were found.

    Args:
        pool: the pool.
        snapshot: the snapshot.

    Returns:
        The zones (of the pool's) and a phrase for the reason.
    """
    users = pool_users(pool.name, snapshot)
    if users:
        homes = {snapshot.homes[u] for u in users if u in snapshot.homes}
        label = f"zones with homes of {pool.name} users"
    else:
        homes = set(snapshot.homes.values())
        label = "zones with homes (the pool's users are not known)"
    zones = tuple(z for z in pool.zones if z in homes)
    if zones:
        return zones, label
    return pool.zones[:1], (
        "no homes of its users yet: the first zone, where a new home will be made"
    )


def schedule_zones(
    schedule: WarmSchedule, pool: Pool, snapshot: ClusterSnapshot
) -> tuple[tuple[str, ...], str]:
    """Return the zones a schedule warms, and a phrase saying which.

    Args:
        schedule: the schedule.
        pool: its pool.
        snapshot: the snapshot (for homes).

    Returns:
        Zones of the pool, and the phrase.
    """
    if schedule.zones == "homes":
        return home_zones(pool, snapshot)
    if schedule.zones == "all":
        return pool.zones, "all zones of the pool"
    zones = tuple(z for z in schedule.zones if z in pool.zones)
    return zones, "zones " + ", ".join(zones)

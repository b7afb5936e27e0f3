"""When users usually start: the warmer's reader of the accounting records.

This module owns turning the hub's accounting database (every server start is
recorded there, :mod:`wbspawner.costs.accounting`) into the snapshot's
``habits``: user → minutes of the day of their starts within the warm settings'
``habit_days``, in the settings' time zone. It reads at most every
``refresh_s`` seconds (habits change by the day) in a worker thread; when the
database cannot be read, the warmer carries on without habits (every user with
a home counts, as with ``habit_days: 0``) and the failure is reported once per
refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session, sessionmaker

from wbspawner.costs.accounting import open_db, start_times
from wbspawner.model import WarmSettings
from wbspawner.warmer.schedule import habit_minutes

Habits = Mapping[str, tuple[int, ...]]

NO_HABITS: Habits = MappingProxyType({})


class HabitReader:
    """Reads users' start minutes from the accounting database, cached.

    Args:
        db_url: the accounting database URL.
        refresh_s: seconds a read is reused.
        on_error: called with a message when the database cannot be read.
    """

    def __init__(
        self,
        db_url: str,
        refresh_s: float = 600.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.db_url = db_url
        self.refresh_s = refresh_s
        self.on_error = on_error
        self._sessions: sessionmaker[Session] | None = None
        self._read_at: datetime | None = None
        self._key: tuple[int, str] | None = None
        self._habits: Habits = NO_HABITS

    async def habits(self, settings: WarmSettings, now: datetime) -> Habits:
        """Return the users' start minutes for the settings at ``now``.

        Args:
            settings: the warm settings (``habit_days``, ``timezone``).
            now: the current time (aware).

        Returns:
            User → sorted minutes of the day; empty when habits are off or the
            database cannot be read.
        """
        if settings.habit_days <= 0:
            return NO_HABITS
        key = (settings.habit_days, settings.timezone)
        fresh = (
            self._read_at is not None
            and key == self._key
            and timedelta(0) <= now - self._read_at < timedelta(seconds=self.refresh_s)
        )
        if fresh:
            return self._habits
        self._read_at, self._key = now, key
        since = now - timedelta(days=settings.habit_days)
        try:
            starts = await asyncio.to_thread(self._read, since)
        except Exception as err:  # no habits is the old, safe behaviour
            self._habits = NO_HABITS
            if self.on_error is not None:
                self.on_error(f"cannot read start times: {type(err).__name__}: {err}")
            return self._habits
        tz = ZoneInfo(settings.timezone)
        self._habits = MappingProxyType(habit_minutes(starts, tz))
        return self._habits

    def _read(self, since: datetime) -> dict[str, list[datetime]]:
        if self._sessions is None:
            self._sessions = open_db(self.db_url)
        with self._sessions() as session:
            return start_times(session, since)

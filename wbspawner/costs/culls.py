"""Culled runs in the accounting: recording a cull, and what culling saved.

This module owns two things about the idle culler's stops:

- :func:`mark_cull`: the culler stops a server through the hub API, and the
  spawner then closes the run's record as an ordinary ``stop`` (it cannot know
  who asked). Once the hub says the server is gone, the culler marks that
  record ``cull``: the spawner's write always comes first (the hub removes the
  server only after its post-stop hook ran), so the two never race. A record
  still open then (accounting off in the hub, a hub that lost the stop) is
  closed as ``cull``.
- :func:`savings`: what culling saved in a month. **Definition**: for each
  culled run, its price per hour times the hours from the cull until its user
  started a server again or until the end of that day (midnight in the site's
  time zone), whichever came first; a cull not yet followed by a start counts
  up to now. That is what the idle node would have cost had nobody stopped it
  and its user had stopped it on coming back, or at the latest at the end of
  the day.

Exact arithmetic as in :mod:`wbspawner.costs.accounting`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbspawner.costs.accounting import (
    MICRO,
    US_PER_HOUR,
    UsageRecord,
    month_bounds,
    naive_utc,
)


def mark_cull(
    session: Session, user: str, name: str, since: datetime, at: datetime
) -> UsageRecord | None:
    """Record that the culler stopped a user's server.

    Args:
        session: a database session (committed here).
        user: the user.
        name: the server name (``""``: the default server).
        since: when the culler asked the hub to stop it; a record closed from
            then on is this stop.
        at: now: when the hub said the server was gone.

    Returns:
        The record marked (or closed) as ``cull``; ``None`` when there is none.
    """
    query = select(UsageRecord).where(
        UsageRecord.kind == "server",
        UsageRecord.user == user,
        UsageRecord.name == name,
    )
    open_row = session.scalars(query.where(UsageRecord.stopped_at.is_(None))).first()
    if open_row is not None:
        open_row.stopped_at = max(naive_utc(at), open_row.started_at)
        open_row.stop_cause = "cull"
        session.commit()
        return open_row
    closed = session.scalars(
        query.where(UsageRecord.stopped_at >= naive_utc(since)).order_by(
            UsageRecord.stopped_at.desc(), UsageRecord.id.desc()
        )
    ).first()
    if closed is None:
        return None
    closed.stop_cause = "cull"
    session.commit()
    return closed


@dataclass(frozen=True, slots=True, kw_only=True)
class Saving:
    """What one cull saved."""

    user: str
    size: str
    culled_at: datetime
    """Naive UTC."""
    until: datetime
    """Naive UTC: the user's next start, the end of that day, or now."""
    hours: Fraction
    cost: Fraction
    """USD, exact."""


def _end_of_day(at: datetime, tz: ZoneInfo) -> datetime:
    """Return the next local midnight after a naive UTC time, as naive UTC."""
    local = at.replace(tzinfo=UTC).astimezone(tz)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
    return naive_utc(midnight)


def savings(
    session: Session,
    tz: ZoneInfo,
    month: str | None = None,
    now: datetime | None = None,
) -> list[Saving]:
    """Return what each cull of a month saved (see the module's definition).

    Args:
        session: a database session.
        tz: the site's time zone (where a day ends).
        month: ``YYYY-MM`` (default: the month of ``now``).
        now: the current time (default: the clock).

    Returns:
        One saving per culled run stopped in the month, oldest first.
    """
    now = naive_utc(now or datetime.now(UTC))
    start, end = month_bounds(month or now.strftime("%Y-%m"))
    culled = session.scalars(
        select(UsageRecord)
        .where(
            UsageRecord.kind == "server",
            UsageRecord.stop_cause == "cull",
            UsageRecord.stopped_at >= start,
            UsageRecord.stopped_at < end,
        )
        .order_by(UsageRecord.stopped_at, UsageRecord.id)
    ).all()
    out: list[Saving] = []
    for row in culled:
        culled_at = row.stopped_at
        assert culled_at is not None  # selected on it
        later = session.scalars(
            select(UsageRecord.started_at)
            .where(
                UsageRecord.kind == "server",
                UsageRecord.user == row.user,
                UsageRecord.started_at >= culled_at,
            )
            .order_by(UsageRecord.started_at)
        ).first()
        until = min(later or now, _end_of_day(culled_at, tz), now)
        micros = max((until - culled_at) // timedelta(microseconds=1), 0)
        hours = Fraction(micros, US_PER_HOUR)
        cost = hours * Fraction(row.price_micro_per_hour, MICRO)
        out.append(
            Saving(
                user=row.user,
                size=row.size,
                culled_at=culled_at,
                until=until,
                hours=hours,
                cost=cost,
            )
        )
    return out

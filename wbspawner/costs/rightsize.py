"""What right-sizing would save in a month: per user and size, from the memory peaks.

This module owns the costs page's right-size figure. **Definition**: for each user
and size, the month's server runs with a recorded memory peak
(:mod:`wbspawner.costs.peaks`) give the highest peak; the advised size is the
cheapest size of the same kind (CPU, or the same GPUs) whose memory limit is at
least :data:`~wbspawner.spawn.advice.HEADROOM` times that peak
(:func:`wbspawner.spawn.advice.smaller_size`, the rule the spawn form advises
with, over every size in the profiles: the page does not know who may use
which); the saving is, over those runs, the hours in the month times the $/hour
paid minus the advised size's $/hour on the same capacity type (today's
catalogue price, never below zero). Runs without a peak are counted apart
(their hours are not in the figure).

Exact arithmetic as in :mod:`wbspawner.costs.accounting`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbspawner.costs.accounting import (
    MICRO,
    UsageRecord,
    cost_of,
    month_bounds,
    naive_utc,
    to_micro,
)
from wbspawner.model import CapacityType, Profiles
from wbspawner.spawn.advice import HEADROOM, price_of, smaller_size

DEFINITION = (
    "What right-sizing would save: for each user and size, the highest memory "
    "peak of the month's sessions picks the cheapest size of the same kind with "
    f"at least {HEADROOM:g} × that peak as its memory limit; the saving is the month's "
    "hours on the size times the difference in $/hour. Sessions whose memory "
    "was not measured are left out."
)
"""The definition the page states next to the figure."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasuredRun:
    """A server record's share of a month."""

    user: str
    size: str
    capacity_type: CapacityType
    hours: Fraction
    cost: Fraction
    """USD paid in the month, exact."""
    peak_mib: int | None
    """``None``: not measured."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RightsizeRow:
    """One user's runs on one size that a cheaper size would have done."""

    user: str
    size: str
    advised: str
    """The size advised instead (slug)."""
    sessions: int
    peak_mib: int
    hours: Fraction
    cost: Fraction
    """USD paid."""
    saving: Fraction
    """USD the advised size would have saved."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rightsizing:
    """The month's right-size figure."""

    rows: tuple[RightsizeRow, ...]
    """Largest saving first."""
    saving: Fraction
    unmeasured_hours: Fraction
    """Hours of server runs without a recorded peak."""


def month_runs(
    session: Session, month: str | None = None, now: datetime | None = None
) -> list[MeasuredRun]:
    """Return the month's server runs with their hours, cost and peak.

    Args:
        session: a database session.
        month: ``YYYY-MM`` (default: the month of ``now``).
        now: the time open records run to (default: the clock).

    Returns:
        One per record with hours in the month, oldest first.
    """
    now = naive_utc(now or datetime.now(UTC))
    start, end = month_bounds(month or now.strftime("%Y-%m"))
    end = min(end, now) if start <= now else end
    rows = session.scalars(
        select(UsageRecord)
        .where(UsageRecord.kind == "server", UsageRecord.started_at < end)
        .order_by(UsageRecord.started_at, UsageRecord.id)
    )
    out: list[MeasuredRun] = []
    for row in rows:
        hours, cost = cost_of(row, start, end)
        if hours == 0:
            continue
        out.append(
            MeasuredRun(
                user=row.user,
                size=row.size,
                capacity_type=cast(CapacityType, row.capacity_type),
                hours=hours,
                cost=cost,
                peak_mib=row.peak_memory_mib,
            )
        )
    return out


def rightsizing(runs: Sequence[MeasuredRun], profiles: Profiles) -> Rightsizing:
    """Return what right-sizing would have saved (see the module's definition).

    Args:
        runs: the month's server runs (:func:`month_runs`).
        profiles: the profiles in force (sizes, pools, prices).

    Returns:
        The rows with a saving, largest first, their total, and the hours left
        out because no peak was recorded.
    """
    sizes = {s.slug: s for s in profiles.sizes}
    groups: dict[tuple[str, str], list[MeasuredRun]] = {}
    unmeasured = Fraction(0)
    for run in runs:
        if run.peak_mib is None:
            unmeasured += run.hours
            continue
        groups.setdefault((run.user, run.size), []).append(run)
    rows: list[RightsizeRow] = []
    for (user, slug), group in groups.items():
        size = sizes.get(slug)
        if size is None:  # a size no longer offered: nothing to compare
            continue
        peak = max(r.peak_mib or 0 for r in group)
        advised = smaller_size(
            size, peak, group[-1].capacity_type, profiles.sizes, profiles
        )
        if advised is None:
            continue
        pool = profiles.pool_of(advised)
        saving = Fraction(0)
        for run in group:
            rate = Fraction(
                to_micro(price_of(pool, run.capacity_type, profiles)), MICRO
            )
            saving += max(Fraction(0), run.cost - run.hours * rate)
        rows.append(
            RightsizeRow(
                user=user,
                size=slug,
                advised=advised.slug,
                sessions=len(group),
                peak_mib=peak,
                hours=sum((r.hours for r in group), start=Fraction(0)),
                cost=sum((r.cost for r in group), start=Fraction(0)),
                saving=saving,
            )
        )
    rows.sort(key=lambda r: (-r.saving, r.user, r.size))
    total = sum((r.saving for r in rows), start=Fraction(0))
    return Rightsizing(rows=tuple(rows), saving=total, unmeasured_hours=unmeasured)

"""Memory peaks of user servers in the accounting: recording them, reading them back.

This module owns the ``peak_memory_mib`` column of the usage records
(:class:`~wbspawner.costs.accounting.UsageRecord`, revision 0003). The hub samples
each running server's own metrics (jupyter-resource-usage's ``/api/metrics/v1``,
the memory JupyterLab shows the user) while it runs and once more as it stops,
and :func:`record_peak` keeps the highest value on the run's open record. A run
continued at a new price (:func:`~wbspawner.costs.accounting.record_price_change`)
starts a new record, whose peak is measured afresh.

:func:`recent_sessions` gives the spawn form's advice (:mod:`wbspawner.spawn.advice`)
the user's last measured sessions, newest first.
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from wbspawner.costs.accounting import UsageRecord
from wbspawner.model import CapacityType
from wbspawner.spawn.advice import LAST_SESSIONS, PastSession


def record_peak(
    session: Session, user: str, peak_mib: int, name: str = ""
) -> UsageRecord | None:
    """Raise the open server record's peak to ``peak_mib`` (never lower it).

    Args:
        session: a database session (committed here when the peak rises).
        user: user name.
        peak_mib: memory seen in use, MiB.
        name: server name (``""``: the default server).

    Returns:
        The open record, or ``None`` when the server has none.
    """
    query = (
        select(UsageRecord)
        .where(
            UsageRecord.kind == "server",
            UsageRecord.user == user,
            UsageRecord.name == name,
            UsageRecord.stopped_at.is_(None),
        )
        .order_by(UsageRecord.started_at.desc(), UsageRecord.id.desc())
    )
    row = session.scalars(query).first()
    if row is None:
        return None
    if row.peak_memory_mib is None or peak_mib > row.peak_memory_mib:
        row.peak_memory_mib = peak_mib
        session.commit()
    return row


def recent_sessions(
    session: Session, user: str, limit: int = LAST_SESSIONS
) -> list[PastSession]:
    """Return the user's most recent server sessions with a known peak.

    Args:
        session: a database session.
        user: user name.
        limit: how many at most.

    Returns:
        Newest first.
    """
    query = (
        select(UsageRecord)
        .where(
            UsageRecord.kind == "server",
            UsageRecord.user == user,
            UsageRecord.peak_memory_mib.is_not(None),
        )
        .order_by(UsageRecord.started_at.desc(), UsageRecord.id.desc())
        .limit(limit)
    )
    return [
        PastSession(
            size=row.size,
            peak_mib=int(row.peak_memory_mib or 0),
            capacity_type=cast(CapacityType, row.capacity_type),
        )
        for row in session.scalars(query)
    ]

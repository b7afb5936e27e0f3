"""Per-user cost accounting: every server and Dask cluster, with the price in force.

This module owns the accounting database and what is computed from it. One user
per node makes a user's cost exact: each start of a user server records user,
group, size, pool, capacity type, zone, node and the $/hour in force; a stop
closes the record; a price change while running (spot) closes it and opens the
next at the new price. Dask clusters are recorded likewise with their worker
count (cost = workers × hours × $/worker-hour). :func:`report` sums
hours × price per user, group or size for a month, exactly (prices are stored as
whole micro-dollars per hour, times to the microsecond, sums as fractions).

SQLAlchemy 2: SQLite by default (:data:`DEFAULT_DB_URL`), PostgreSQL in
production; the column types are portable. Times are naive UTC. The tables
change only through Alembic revisions (:mod:`wbspawner.costs.migrations`), which
:func:`open_db` applies; a change to :class:`UsageRecord` comes with one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Literal

from sqlalchemy import BigInteger, DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from wbspawner.costs import migrations

DEFAULT_DB_URL = "sqlite:///wbspawner-costs.sqlite"
"""Where records go when no URL is configured (a file in the working directory)."""

MICRO = 1_000_000
US_PER_HOUR = 3600 * MICRO

Kind = Literal["server", "dask"]
GroupBy = Literal["user", "group", "size"]
StopCause = Literal["stop", "cull", "reclaim", "node-gone", "orphan"]
"""Why a run ended: ``stop`` (its user, an admin or its owner's API call
stopped it), ``cull`` (the idle culler), ``reclaim`` (AWS reclaimed its spot
node), ``node-gone`` (its node went away otherwise: maintenance, scale-in)."""
STOP_CAUSES: tuple[StopCause, ...] = ("stop", "cull", "reclaim", "node-gone", "orphan")


class Base(DeclarativeBase):
    """Declarative base of the accounting tables."""


class UsageRecord(Base):
    """A stretch of time a user's server or Dask cluster ran at one price."""

    __tablename__ = "wbspawner_usage"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    """``server`` or ``dask``."""
    user: Mapped[str] = mapped_column(String(255), index=True)
    group: Mapped[str] = mapped_column(String(255), default="")
    name: Mapped[str] = mapped_column(String(255), default="")
    """Server name (``""``: the default server) or Dask cluster name."""
    size: Mapped[str] = mapped_column(String(64))
    """Size slug, or Dask worker size."""
    pool: Mapped[str] = mapped_column(String(64))
    capacity_type: Mapped[str] = mapped_column(String(16))
    zone: Mapped[str] = mapped_column(String(32), default="")
    node: Mapped[str] = mapped_column(String(255), default="")
    units: Mapped[int] = mapped_column(Integer, default=1)
    """1 for a server; the worker count for a Dask cluster."""
    price_micro_per_hour: Mapped[int] = mapped_column(BigInteger)
    """USD per hour per unit, in micro-dollars."""
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    stop_cause: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """A :data:`StopCause`; ``None`` while open, when the run went on at a new
    price (:func:`record_price_change`), or when not known (records closed
    before revision 0002)."""
    peak_memory_mib: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The most memory the server was seen using (MiB, from its own metrics:
    :mod:`wbspawner.costs.peaks`); ``None`` when never measured (Dask
    clusters, records before revision 0003, a server whose metrics did not
    answer)."""


def to_micro(price_per_hour: float | Decimal | str) -> int:
    """Return a USD price as whole micro-dollars (half-even rounding).

    Args:
        price_per_hour: USD.

    Returns:
        Micro-dollars.
    """
    exact = Decimal(str(price_per_hour)) * MICRO
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def naive_utc(at: datetime) -> datetime:
    """Return a time as the database stores it: naive UTC.

    Args:
        at: a naive (taken as UTC) or aware time.

    Returns:
        The same instant, naive, in UTC.
    """
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def open_db(url: str = DEFAULT_DB_URL) -> sessionmaker[Session]:
    """Connect to the accounting database, migrating it to the newest schema.

    An empty database gets every table; an older one is upgraded (one made by
    ``create_all`` before migrations existed is recognised and stamped first).

    Args:
        url: an SQLAlchemy URL (SQLite by default, PostgreSQL in production).

    Returns:
        A session factory.
    """
    engine = create_engine(url, pool_pre_ping=True)
    migrations.upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)


def _open(
    session: Session,
    kind: Kind,
    user: str,
    name: str,
    started_before: datetime | None = None,
) -> UsageRecord | None:
    query = select(UsageRecord).where(
        UsageRecord.kind == kind,
        UsageRecord.user == user,
        UsageRecord.name == name,
        UsageRecord.stopped_at.is_(None),
    )
    if started_before is not None:
        query = query.where(UsageRecord.started_at <= naive_utc(started_before))
    return session.scalars(query).first()


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """What is known when a server or cluster starts."""

    user: str
    size: str
    pool: str
    capacity_type: str
    price_per_hour: float
    """USD per hour per unit."""
    at: datetime
    zone: str = ""
    node: str = ""
    group: str = ""
    name: str = ""
    units: int = 1
    kind: Kind = "server"


def record(session: Session, start: Start) -> UsageRecord:
    """Record a start; an earlier record of the same server still open is closed.

    Args:
        session: a database session (committed here).
        start: what started.

    Returns:
        The new record.
    """
    at = naive_utc(start.at)
    stale = _open(session, start.kind, start.user, start.name)
    if stale is not None:
        stale.stopped_at = max(at, stale.started_at)
    row = UsageRecord(
        kind=start.kind,
        user=start.user,
        group=start.group,
        name=start.name,
        size=start.size,
        pool=start.pool,
        capacity_type=start.capacity_type,
        zone=start.zone,
        node=start.node,
        units=start.units,
        price_micro_per_hour=to_micro(start.price_per_hour),
        started_at=at,
    )
    session.add(row)
    session.commit()
    return row


def record_start(
    session: Session,
    user: str,
    size: str,
    pool: str,
    capacity_type: str,
    zone: str,
    node: str,
    price_per_hour: float,
    at: datetime,
    group: str = "",
) -> UsageRecord:
    """Record that a user's server started on a node at a price.

    Args:
        session: a database session.
        user: user name.
        size: size slug.
        pool: node pool.
        capacity_type: ``spot`` or ``on-demand``.
        zone: availability zone.
        node: node name.
        price_per_hour: USD per hour in force (from :mod:`wbspawner.catalog.pricing`).
        at: when.
        group: the group the user's spending counts against.

    Returns:
        The new record.
    """
    return record(
        session,
        Start(
            user=user,
            size=size,
            pool=pool,
            capacity_type=capacity_type,
            zone=zone,
            node=node,
            price_per_hour=price_per_hour,
            at=at,
            group=group,
        ),
    )


def record_stop(
    session: Session,
    user: str,
    at: datetime,
    kind: Kind = "server",
    name: str = "",
    cause: StopCause | None = None,
    started_before: datetime | None = None,
) -> UsageRecord | None:
    """Record that a user's server (or Dask cluster ``name``) stopped.

    Args:
        session: a database session.
        user: user name.
        at: when.
        kind: ``server`` or ``dask``.
        name: server name or cluster name.
        cause: why it stopped, when known.
        started_before: close only a record started at or before then (the
            orphan sweep: not a server started since it looked).

    Returns:
        The closed record, or ``None`` when none was open.
    """
    row = _open(session, kind, user, name, started_before)
    if row is None:
        return None
    row.stopped_at = max(naive_utc(at), row.started_at)
    row.stop_cause = cause
    session.commit()
    return row


def discard_failed_start(
    session: Session,
    user: str,
    since: datetime,
    kind: Kind = "server",
    name: str = "",
) -> int:
    """Remove the open record of a start that never became ready.

    A server whose pod ran but that the hub then gave up on (its start timed
    out, or it never answered the hub) was never the user's: billing reports
    count one record per server that became ready, so the record goes. Only
    records opened at or after ``since`` (that start) go; an older open record
    is left to its own stop.

    Args:
        session: a database session.
        user: user name.
        since: when the failed start began.
        kind: ``server`` or ``dask``.
        name: server name or cluster name.

    Returns:
        How many records were removed (0 or 1).
    """
    query = select(UsageRecord).where(
        UsageRecord.kind == kind,
        UsageRecord.user == user,
        UsageRecord.name == name,
        UsageRecord.stopped_at.is_(None),
        UsageRecord.started_at >= naive_utc(since),
    )
    rows = list(session.scalars(query))
    for row in rows:
        session.delete(row)
    session.commit()
    return len(rows)


def record_price_change(
    session: Session,
    user: str,
    price_per_hour: float,
    at: datetime,
    kind: Kind = "server",
    name: str = "",
    units: int | None = None,
) -> UsageRecord | None:
    """Close the open record and continue it at a new price (or worker count).

    Args:
        session: a database session.
        user: user name.
        price_per_hour: the new USD per hour per unit.
        at: when the change took effect.
        kind: ``server`` or ``dask``.
        name: server or cluster name.
        units: new worker count (Dask), or ``None`` to keep it.

    Returns:
        The new record, or ``None`` when nothing was running.
    """
    row = _open(session, kind, user, name)
    if row is None:
        return None
    start = Start(
        user=row.user,
        size=row.size,
        pool=row.pool,
        capacity_type=row.capacity_type,
        price_per_hour=price_per_hour,
        at=at,
        zone=row.zone,
        node=row.node,
        group=row.group,
        name=row.name,
        units=row.units if units is None else units,
        kind=kind,
    )
    return record(session, start)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """Return the first instant of a ``YYYY-MM`` month and of the next.

    Args:
        month: ``YYYY-MM``.

    Returns:
        Naive UTC start and end.

    Raises:
        ValueError: when the month is malformed.
    """
    try:
        start = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"month must be YYYY-MM, got {month!r}") from None
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """Spending of one user, group or size in a month."""

    key: str
    hours: Fraction
    """Node hours (worker hours for Dask)."""
    cost: Fraction
    """USD, exact."""


def cost_of(
    row: UsageRecord, start: datetime, end: datetime
) -> tuple[Fraction, Fraction]:
    """Return the hours and USD of a record within ``[start, end)``, exactly."""
    stop = row.stopped_at or end
    first, last = max(row.started_at, start), min(stop, end)
    if last <= first:
        return Fraction(0), Fraction(0)
    micros = (last - first) // timedelta(microseconds=1)
    hours = Fraction(micros * row.units, US_PER_HOUR)
    return hours, hours * Fraction(row.price_micro_per_hour, MICRO)


def report(
    session: Session,
    by: GroupBy = "user",
    month: str | None = None,
    now: datetime | None = None,
    user: str | None = None,
) -> list[ReportRow]:
    """Return a month's spending per user, group or size, most expensive first.

    Args:
        session: a database session.
        by: ``user``, ``group`` or ``size``.
        month: ``YYYY-MM`` (default: the month of ``now``).
        now: the time open records run to (default: the current time).
        user: only this user's records (``None``: everyone's).

    Returns:
        One row per key with its hours and exact cost.
    """
    now = naive_utc(now or datetime.now(UTC))
    start, end = month_bounds(month or now.strftime("%Y-%m"))
    end = min(end, now) if start <= now else end
    query = select(UsageRecord).where(UsageRecord.started_at < end)
    if user is not None:
        query = query.where(UsageRecord.user == user)
    rows: Iterable[UsageRecord] = session.scalars(query)
    totals: dict[str, tuple[Fraction, Fraction]] = {}
    for row in rows:
        hours, cost = cost_of(row, start, end)
        if hours == 0:
            continue
        key = getattr(row, by) or "-"
        had = totals.get(key, (Fraction(0), Fraction(0)))
        totals[key] = (had[0] + hours, had[1] + cost)
    result = [ReportRow(key=k, hours=h, cost=c) for k, (h, c) in totals.items()]
    return sorted(result, key=lambda r: (-r.cost, r.key))


def list_open(session: Session, kind: Kind) -> list[UsageRecord]:
    """Return the records of one kind that are still running (not stopped).

    Args:
        session: a database session.
        kind: ``server`` or ``dask``.

    Returns:
        The open records, oldest first.
    """
    query = (
        select(UsageRecord)
        .where(UsageRecord.kind == kind, UsageRecord.stopped_at.is_(None))
        .order_by(UsageRecord.started_at, UsageRecord.id)
    )
    return list(session.scalars(query))


def start_times(
    session: Session, since: datetime, kind: Kind = "server"
) -> dict[str, list[datetime]]:
    """Return when each user started (servers by default) since a time.

    The warmer reads users' habits from these (when they usually start).

    Args:
        session: a database session.
        since: the earliest start to return.
        kind: ``server`` or ``dask``.

    Returns:
        User → aware UTC start times, oldest first.
    """
    query = (
        select(UsageRecord.user, UsageRecord.started_at)
        .where(UsageRecord.kind == kind, UsageRecord.started_at >= naive_utc(since))
        .order_by(UsageRecord.started_at, UsageRecord.id)
    )
    out: dict[str, list[datetime]] = {}
    for user, at in session.execute(query):
        out.setdefault(user, []).append(at.replace(tzinfo=UTC))
    return out

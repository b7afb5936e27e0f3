"""Accounting of user servers, as the spawner uses it: record, read, never fail.

This module owns the thin adapter between ``WorkbenchSpawner`` and the
accounting database (:mod:`wbspawner.costs.accounting`):

- when a server's pod runs, :meth:`Accounting.started` records user, the group
  the spending counts against, size, pool, capacity type, zone and node (from
  the node's labels) and the $/hour from :mod:`wbspawner.catalog.pricing` (the function
  the spawn form prices sizes with; an observed spot price in the node's zone
  when there is one);
- when the hub has stopped it (or found it gone), :meth:`Accounting.stopped`
  closes the record; a stop without an open record is fine;
- :meth:`Accounting.budget` reads the month-to-date spend per group and returns
  the user's :class:`~wbspawner.spawn.budget.BudgetState`;
- :meth:`Accounting.peaked` raises the running server's recorded memory peak,
  and :meth:`Accounting.history` reads the user's last measured sessions for
  the spawn form's right-size advice (:mod:`wbspawner.costs.peaks`).

A start recorded again for the same run (same node, size and pool) keeps the
open record, so nothing is counted twice; a different run closes the stale
record when the new one starts (``accounting.record``). Database calls run in
a worker thread, off the hub's event loop. A database failure is logged and
swallowed: accounting never fails a spawn or a stop (and a budget that cannot
be read refuses nothing). A database that cannot be reached (PostgreSQL
restarting) is tried again for ``retry_for`` seconds before a write is given
up: the record keeps the moment of the start or stop, whenever it is written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from wbspawner.catalog.pricing import SpotPrices, hourly_cost
from wbspawner.costs.accounting import (
    Start,
    StopCause,
    UsageRecord,
    discard_failed_start,
    open_db,
    record,
    record_stop,
    report,
)
from wbspawner.costs.peaks import recent_sessions, record_peak
from wbspawner.model import ZONE_LABEL, CapacityType, Pool, Profiles
from wbspawner.spawn.advice import PastSession
from wbspawner.spawn.budget import BudgetState, budget_state, spending_group
from wbspawner.warmer.snapshot import capacity_of

Log = logging.Logger | logging.LoggerAdapter[Any]
ReadNode = Callable[[], Awaitable[Mapping[str, Any] | None]]
"""Returns the node a server's pod runs on (a core/v1 Node as a dict)."""


@dataclass(frozen=True, slots=True)
class Server:
    """A user's server that has started."""

    user: str
    name: str
    """Server name (``""``: the default server)."""
    size: str
    """Size slug."""
    pool: Pool
    groups: tuple[str, ...]
    """The user's groups (to find the group the spending counts against)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeFacts:
    """What the accounting needs from a node."""

    name: str
    zone: str
    capacity_type: CapacityType | None
    """From wbspawner's, EKS's or Karpenter's label; ``None`` when none says."""


def node_facts(node: Mapping[str, Any] | None) -> NodeFacts:
    """Return a node's name, zone and capacity type from its labels.

    Args:
        node: a core/v1 Node as a dict, or ``None`` when unknown.

    Returns:
        The facts (empty strings and ``None`` for what is unknown).
    """
    meta = (node or {}).get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    return NodeFacts(
        name=str(meta.get("name") or ""),
        zone=str(labels.get(ZONE_LABEL) or ""),
        capacity_type=capacity_of(labels),
    )


def usage_start(
    server: Server,
    node: NodeFacts,
    profiles: Profiles,
    spot_prices: SpotPrices | None,
    at: datetime,
) -> Start:
    """Return what to record for a server that runs on a node.

    Args:
        server: the server.
        node: its node.
        profiles: the profiles in force (cost settings, budgets).
        spot_prices: observed spot prices, or ``None``.
        at: when it started.

    Returns:
        The start, priced with :func:`wbspawner.catalog.pricing.hourly_cost`: a spot
        price observed in the node's zone if any, else the price the spawn form
        shows for that capacity type.
    """
    pool = server.pool
    capacity = node.capacity_type or (pool.capacity_types or ("on-demand",))[0]
    zones = (node.zone,) if node.zone else None
    price = hourly_cost(pool, capacity, spot_prices, profiles.cost, zones)
    if price.is_estimate:
        price = hourly_cost(pool, capacity, spot_prices, profiles.cost)
    return Start(
        user=server.user,
        name=server.name,
        size=server.size,
        pool=pool.name,
        capacity_type=capacity,
        zone=node.zone,
        node=node.name,
        price_per_hour=price.per_hour,
        at=at,
        group=spending_group(profiles, server.groups),
    )


def record_server_start(session: Session, start: Start) -> tuple[UsageRecord, bool]:
    """Record a server start unless the same run is already recorded.

    Args:
        session: a database session.
        start: what started.

    Returns:
        The open record, and whether it is new. An open record of the same
        server on the same node, size and pool is the same run (kept as it is);
        any other open record of that server is closed at ``start.at``.
    """
    query = select(UsageRecord).where(
        UsageRecord.kind == start.kind,
        UsageRecord.user == start.user,
        UsageRecord.name == start.name,
        UsageRecord.stopped_at.is_(None),
    )
    for row in session.scalars(query):
        if (row.node, row.size, row.pool) == (start.node, start.size, start.pool):
            return row, False
    return record(session, start), True


@functools.lru_cache(maxsize=8)
def _sessions(url: str) -> sessionmaker[Session]:
    """Return the session factory of a database, opened once per process."""
    return open_db(url)


def _now() -> datetime:
    return datetime.now(UTC)


def unreachable(err: Exception) -> bool:
    """Whether a database error means the server is away (worth trying again)."""
    if isinstance(err, OperationalError | InterfaceError):
        return True
    return isinstance(err, DBAPIError) and bool(err.connection_invalidated)


class Accounting:
    """The accounting database as one spawner uses it; no method raises.

    Args:
        url: SQLAlchemy URL of the database; ``None`` or empty: accounting off.
        log: where failures are logged.
        clock: returns the current time (tests pass a fake).
        retry_for: seconds a write is tried again while the database cannot
            be reached (``0``: once); reads are tried once.
        retry_every: seconds between two tries (doubling up to 8 times that).
    """

    def __init__(
        self,
        url: str | None,
        log: Log,
        clock: Callable[[], datetime] = _now,
        *,
        retry_for: float = 0.0,
        retry_every: float = 1.0,
    ) -> None:
        self.url = url or ""
        self.log = log
        self.clock = clock
        self.retry_for = retry_for
        self.retry_every = retry_every

    @property
    def shown(self) -> str:
        """The database URL as logs may show it (no password)."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return "(unparsable URL)"

    async def _run(
        self, what: str, call: Callable[[Session], Any], retry: bool = False
    ) -> Any:
        """Run ``call`` with a session in a worker thread; ``None`` on failure.

        With ``retry``, a database that cannot be reached is tried again until
        ``retry_for`` seconds have passed (one warning, then one line when done).
        """

        def work() -> Any:
            with _sessions(self.url)() as session:
                return call(session)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.retry_for if retry else 0.0)
        delay, waited = self.retry_every, False
        while True:
            try:
                result = await asyncio.to_thread(work)
            except Exception as err:
                if not unreachable(err) or loop.time() + delay > deadline:
                    self.log.exception(
                        "Accounting: %s failed (database %s)", what, self.shown
                    )
                    return None
                if not waited:
                    self.log.warning(
                        "Accounting: %s: database %s unreachable, trying again "
                        "for up to %.0f s: %s",
                        what,
                        self.shown,
                        self.retry_for,
                        getattr(err, "orig", None) or err,
                    )
                    waited = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_every * 8)
                continue
            if waited:
                self.log.info("Accounting: %s done once the database was back", what)
            return result

    async def started(
        self,
        server: Server,
        profiles: Profiles,
        spot_prices: SpotPrices | None,
        read_node: ReadNode,
    ) -> UsageRecord | None:
        """Record that a server runs; ``None`` when off or on failure (logged).

        Args:
            server: the server.
            profiles: the profiles in force.
            spot_prices: observed spot prices, or ``None``.
            read_node: returns the pod's node.

        Returns:
            The open record (new, or the one of the same run).
        """
        if not self.url:
            return None
        at = self.clock()
        try:
            node = node_facts(await read_node())
        except Exception:
            self.log.exception("Accounting: reading the node of %s failed", server.user)
            node = NodeFacts(name="", zone="", capacity_type=None)
        start = usage_start(server, node, profiles, spot_prices, at)
        done = await self._run(
            f"recording the start of {server.user}",
            lambda s: record_server_start(s, start),
            retry=True,
        )
        if done is None:
            return None
        row, new = done
        self.log.info(
            "Accounting: %s %s: %s on %s (%s, %s, %s) at $%.6f/h for group %s",
            server.user,
            "started" if new else "still running",
            start.size,
            start.node or "?",
            start.pool,
            start.capacity_type,
            start.zone or "?",
            start.price_per_hour,
            start.group or "-",
        )
        return row  # type: ignore[no-any-return]

    async def stopped(
        self, user: str, name: str = "", cause: StopCause | None = None
    ) -> UsageRecord | None:
        """Record that a server stopped; ``None`` when none was open (or off).

        Args:
            user: the user.
            name: the server name.
            cause: why it stopped, when known.

        Returns:
            The closed record.
        """
        if not self.url:
            return None
        at = self.clock()
        row = await self._run(
            f"recording the stop of {user}",
            lambda s: record_stop(s, user, at, name=name, cause=cause),
            retry=True,
        )
        if row is not None:
            self.log.info("Accounting: %s stopped (record %s)", user, row.id)
        return row  # type: ignore[no-any-return]

    async def peaked(self, user: str, name: str, peak_mib: int) -> None:
        """Record that a running server used ``peak_mib`` (kept when higher).

        Args:
            user: the user.
            name: the server name.
            peak_mib: memory seen in use, MiB.
        """
        if not self.url:
            return
        row = await self._run(
            f"recording the memory peak of {user}",
            lambda s: record_peak(s, user, peak_mib, name=name),
            retry=True,
        )
        if row is not None:
            self.log.info(
                "Accounting: %s used %d MiB (record %s, peak %s MiB)",
                user,
                peak_mib,
                row.id,
                row.peak_memory_mib,
            )

    async def history(self, user: str) -> list[PastSession]:
        """Return the user's last sessions with a known memory peak, newest first.

        Returns:
            The sessions; none when off or on failure (logged).
        """
        if not self.url:
            return []
        found = await self._run(
            f"reading the memory peaks of {user}",
            lambda s: recent_sessions(s, user),
        )
        return list(found or [])

    async def failed_start(self, user: str, name: str, since: datetime) -> int:
        """Remove the record of a start the hub gave up on.

        See :func:`~wbspawner.costs.accounting.discard_failed_start`.

        Args:
            user: the user.
            name: the server name.
            since: when that start began.

        Returns:
            How many records were removed (0 when off or on failure).
        """
        if not self.url:
            return 0
        removed = await self._run(
            f"removing the record of {user}'s failed start",
            lambda s: discard_failed_start(s, user, since, name=name),
            retry=True,
        )
        if removed:
            self.log.info(
                "Accounting: %s's start failed before the server was ready: "
                "its record removed",
                user,
            )
        return int(removed or 0)

    async def spent(self) -> dict[str, Fraction] | None:
        """Return this month's spend per group so far; ``None`` on failure.

        Returns:
            USD by group (``-`` for records without a group).
        """
        if not self.url:
            return {}
        now = self.clock()
        rows = await self._run(
            "reading the month's spend", lambda s: report(s, by="group", now=now)
        )
        return None if rows is None else {r.key: r.cost for r in rows}

    async def budget(
        self, profiles: Profiles, groups: Collection[str], is_admin: bool
    ) -> BudgetState:
        """Return the user's budget state (no budget when it cannot be read).

        Args:
            profiles: the profiles in force.
            groups: the user's groups.
            is_admin: whether the user (or the admin acting for them) is an admin.

        Returns:
            The state.
        """
        spent = await self.spent() if profiles.budgets else {}
        if spent is None:
            return BudgetState(group="", level="none", override=is_admin)
        return budget_state(profiles, groups, spent, self.clock(), is_admin=is_admin)
